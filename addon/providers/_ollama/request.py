"""OpenAI chat/completions/embeddings -> Ollama's native requests (`/api/chat`, `/api/generate`, `/api/embed`):
generation parameters under `options`, tools in OpenAI's shape, tool calls with object arguments, tool results
named, images as raw base64, the fields Ollama has no equivalent for refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import openai_format
from ...errors import ProxyError, bad_request
from ...openai_format import (
    CHAT,
    arguments_object,
    embedding_texts,
    max_tokens_of,
    response_format_type,
    single_prompt,
    stop_list,
    text_of,
)
from ..base import Call, UpstreamRequest, build_url, url_path
from .thinking import ollama_think

if TYPE_CHECKING:
    from ...spec import ModelOptions

CHAT_PATH = "/api/chat"
GENERATE_PATH = "/api/generate"
EMBED_PATH = "/api/embed"

# OpenAI fields with no Ollama-native equivalent: refused unless neutral, so a client never silently gets other
# behaviour than it asked for. (`user`, `store`, `metadata`, `service_tier` are bookkeeping and simply dropped.)
UNSUPPORTED = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "audio": None,
    "prediction": None,
    "web_search_options": None,
    "functions": None,
    "function_call": None,
    "best_of": 1,
    "echo": False,
}
# Sampling parameters that go under `options` with the same name.
_SAME_NAME_OPTIONS = ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty")


def require_upstream_url(options: ModelOptions, provider: str, fmt: str) -> None:
    """Self-hosted formats have no standard host: a rule without upstream_url is a configuration error (500)."""
    if not options.upstream_url:
        raise ProxyError(
            500,
            f"provider {provider} with format '{fmt}' is self-hosted: the rule must set model.options.upstream_url "
            "(for example http://127.0.0.1:11434 for Ollama)",
            type="server_error",
            code="proxy_misconfigured",
        )


def refuse_unsupported(body: dict[str, Any], provider: str, table: dict[str, Any] = UNSUPPORTED) -> None:
    openai_format.refuse_unsupported(body, provider, table)


def refuse_tools(body: dict[str, Any], provider: str) -> None:
    """For formats without tool calling: refuse tools rather than let the model answer without them."""
    if body.get("tools"):
        raise bad_request(
            f"tools are not supported by provider {provider}: use llama2_format ollama or openai", param="tools"
        )
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise bad_request(f"tool_choice needs tools, which provider {provider} does not support", param="tool_choice")


def tools(body: dict[str, Any], provider: str) -> list[dict[str, Any]] | None:
    """OpenAI `tools` in the shape Ollama takes (OpenAI's own), or None when none are to be sent."""
    declared = body.get("tools")
    choice = body.get("tool_choice")
    if declared is not None and not isinstance(declared, list):
        raise bad_request("'tools' must be an array", param="tools")
    if choice is not None and choice not in ("auto", "none"):
        what = repr(choice) if isinstance(choice, str) else "a named function"
        raise bad_request(
            f"tool_choice {what} is not supported by provider {provider} (ollama): Ollama has no tool_choice, "
            "use 'auto' or 'none'",
            param="tool_choice",
        )
    if body.get("parallel_tool_calls") is False:
        raise bad_request(
            f"parallel_tool_calls false is not supported by provider {provider} (ollama)", param="parallel_tool_calls"
        )
    if not declared or choice == "none":
        return None  # `none`: the model gets no tools (tool calls and results in the history still go)
    out = []
    for i, tool in enumerate(declared):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise bad_request(
                f"tools[{i}]: only function tools are supported by provider {provider}", param=f"tools[{i}]"
            )
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"tools[{i}].function.name is required", param=f"tools[{i}].function.name")
        out.append({"type": "function", "function": fn})
    return out


# --------------------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------------------


def endpoint(call: Call) -> str:
    """`chat` or `generate`: the route decides, unless the rule pins one of the two native paths."""
    path = (url_path(call.options) or "").rstrip("/")
    if path.endswith(CHAT_PATH):
        return "chat"
    if path.endswith(GENERATE_PATH):
        if call.route_type == CHAT:
            raise ProxyError(
                500,
                f"model.options.upstream_url/upstream_path pins {GENERATE_PATH}, which takes a single prompt: chat "
                f"routes need {CHAT_PATH} (or a URL without a path)",
                type="server_error",
                code="proxy_misconfigured",
            )
        return "generate"
    return "chat" if call.route_type == CHAT else "generate"


def build_request(call: Call, provider: str, fmt: str = "ollama") -> UpstreamRequest:
    require_upstream_url(call.options, provider, fmt)
    body = call.body
    refuse_unsupported(body, provider)
    kind = endpoint(call)
    out: dict[str, Any] = {"model": call.model}
    if call.route_type == CHAT:
        out["messages"] = messages(body["messages"], provider)
        declared = tools(body, provider)
        if declared:
            out["tools"] = declared
    else:
        refuse_tools(body, f"{provider} (ollama {GENERATE_PATH})")
        prompt = single_prompt(body)
        if kind == "generate":
            out["prompt"] = prompt
            if body.get("suffix"):
                out["suffix"] = body["suffix"]
        else:
            if body.get("suffix"):
                raise bad_request(f"'suffix' needs {GENERATE_PATH} with provider {provider}", param="suffix")
            out["messages"] = [{"role": "user", "content": prompt}]
    fmt_value = response_format(body, provider)
    if fmt_value is not None:
        out["format"] = fmt_value
    generation = options(body)
    if generation:
        out["options"] = generation
    think, relaxed = ollama_think(call.model, body)  # reasoning_effort / the extension thinking
    call.dropped.extend(k for k in relaxed if k not in call.dropped)
    if think is not None:
        out["think"] = think
    out["stream"] = call.stream  # Ollama streams unless told not to
    url = build_url(call.options, "", CHAT_PATH if kind == "chat" else GENERATE_PATH)
    headers = {"accept": "application/x-ndjson"} if call.stream else {}
    return UpstreamRequest(url=url, body=out, headers=headers)


def embeddings_request(call: Call, provider: str) -> UpstreamRequest:
    """OpenAI embeddings -> `/api/embed` `{"model", "input": [texts], "dimensions"?}`."""
    require_upstream_url(call.options, provider, "ollama")
    out: dict[str, Any] = {"model": call.model, "input": embedding_texts(call.body, provider)}
    if call.body.get("dimensions") is not None:
        out["dimensions"] = call.body["dimensions"]
    return UpstreamRequest(url=build_url(call.options, "", EMBED_PATH), body=out)


def options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        out["num_predict"] = max_tokens
    for key in _SAME_NAME_OPTIONS:
        if body.get(key) is not None:
            out[key] = body[key]
    stop = stop_list(body)
    if stop:
        out["stop"] = stop
    return out


def response_format(body: dict[str, Any], provider: str) -> Any:
    rf = body.get("response_format")
    kind = response_format_type(rf)
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
        raise bad_request("response_format.json_schema.schema must be an object", param="response_format")
    raise bad_request(f"unsupported response_format for provider {provider}", param="response_format")


def messages(msgs: list[dict[str, Any]], provider: str) -> list[dict[str, Any]]:
    out = []
    names: dict[str, str] = {}  # tool_call_id -> function name, from the assistant turns so far
    for i, m in enumerate(msgs):
        role = m["role"]
        if role == "developer":
            role = "system"
        elif role not in ("system", "user", "assistant", "tool"):
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider {provider}; use 'tool' messages",
                param=f"messages[{i}].role",
            )
        if role == "tool":
            out.append(_tool_result(m, i, names, provider))
            continue
        message: dict[str, Any] = {"role": role, "content": text_of(m.get("content"))}
        images = _images(m.get("content"), i, provider, role)
        if images:
            message["images"] = images
        if m.get("tool_calls"):
            if role != "assistant":
                raise bad_request(f"messages[{i}]: only assistant messages carry tool_calls", param=f"messages[{i}]")
            message["tool_calls"] = _tool_calls(m["tool_calls"], i, names)
        out.append(message)
    return out


def _tool_calls(calls: Any, i: int, names: dict[str, str]) -> list[dict[str, Any]]:
    """An assistant turn's OpenAI tool calls as Ollama's: arguments as an object, the id kept (newer builds)."""
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise bad_request(f"{where} must be an array", param=where)
    out = []
    for j, tc in enumerate(calls):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"{where}[{j}] must be a function call with a name", param=where)
        param = f"{where}[{j}].function.arguments"
        arguments = arguments_object(fn.get("arguments"), param, param)
        call: dict[str, Any] = {"function": {"index": j, "name": fn["name"], "arguments": arguments}}
        if isinstance(tc.get("id"), str) and tc["id"]:
            call["id"] = tc["id"]
            names[tc["id"]] = fn["name"]
        out.append(call)
    return out


def _tool_result(m: dict[str, Any], i: int, names: dict[str, str], provider: str) -> dict[str, Any]:
    """A `tool` message: Ollama matches results by `tool_name`, resolved from the call that has this id."""
    call_id = m.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None and isinstance(m.get("name"), str) and m["name"]:
        name = m["name"]  # no call with this id, but the client named the function
    if name is None:
        raise bad_request(
            f"messages[{i}].tool_call_id {call_id!r} matches no tool call of an earlier assistant message "
            f"(provider {provider} needs the function name of each tool result)",
            param=f"messages[{i}].tool_call_id",
        )
    content = m.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part["type"] != "text":
                where = f"messages[{i}].content[{j}]"
                raise bad_request(f"{where}: tool results take text parts only", param=where)
    out = {"role": "tool", "content": text_of(content), "tool_name": name}
    if isinstance(call_id, str):
        out["tool_call_id"] = call_id
    return out


def _images(content: Any, i: int, provider: str, role: str) -> list[str]:
    if not isinstance(content, list):
        return []
    images = []
    for j, part in enumerate(content):
        kind = part["type"]
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            continue
        if kind != "image_url" or role != "user":
            raise bad_request(f"{where}: '{kind}' parts are not supported by provider {provider}", param=where)
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        header, _, data = url.partition(",") if isinstance(url, str) else ("", "", "")
        if not (header.startswith("data:image/") and header.endswith(";base64") and data):
            # Ollama takes raw base64 only; fetching remote images is not the proxy's business.
            raise bad_request(f"{where}: images must be base64 data: URLs for provider {provider}", param=where)
        images.append(data)
    return images
