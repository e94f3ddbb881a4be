"""Anthropic: OpenAI chat/completions <-> the Messages API (and the legacy Text Completions API on request)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ... import jsonutil
from ...errors import bad_request
from ...openai_format import (
    CHAT,
    chat_response,
    chat_to_completion,
    completion_response,
    max_tokens_of,
    new_id,
    refuse_unsupported,
    single_prompt,
    stop_list,
    text_of,
    usage_with_cache,
)
from ...spec import ModelOptions
from ...streaming import SSETranslator, usage_so_far
from ...streams import SSEEvent
from ..base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    as_dict,
    as_str,
    build_url,
    register,
    url_path,
)

DEFAULT_VERSION = "2023-06-01"
# Anthropic requires max_tokens; 4096 is within every current Claude model's output limit.
DEFAULT_MAX_TOKENS = 4096
MAX_TEMPERATURE = 1.0  # OpenAI allows 0-2, Anthropic 0-1: values above 1 are clamped

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
LEGACY_FINISH_REASONS = {"stop_sequence": "stop", "max_tokens": "length"}

# OpenAI fields Anthropic has no equivalent for: refused when set to anything but their neutral value, so a
# client never silently gets different behaviour than it asked for.
_UNSUPPORTED = {
    "n": 1,
    "seed": None,
    "reasoning_effort": "none",  # thinking is not mapped; "none" asks for none
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "audio": None,
    "prediction": None,
}

# response_format json_object has no native Anthropic equivalent (structured outputs need a schema, and an object
# schema must close its properties). The fallback is this system instruction: it composes with tools, streams
# unchanged and keeps the answer in `content`, where the client reads it. Prefilling "{" was rejected (newer models
# and extended thinking refuse prefill, and the client would get the answer without its first brace) and so was a
# forced tool (it would fight the client's own tools and move the answer out of `content`).
JSON_OBJECT_INSTRUCTION = (
    "Respond only with a single valid JSON object. Do not add any text before or after it and do not wrap it in "
    "Markdown code fences."
)
# Anthropic tool_use ids must match ^[a-zA-Z0-9_-]+$; ids minted elsewhere are mapped the same way in the
# assistant tool_use and in the tool_result that answers it, so they keep matching.
_TOOL_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
# The only image media types Anthropic accepts (image_block_param.py), by the labels clients use for them:
# `image/jpg` is common (browsers, pasteboards) and Anthropic refuses it with a 400.
_MEDIA_TYPES = {
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_of(raw: Any) -> dict[str, Any] | None:
    """Anthropic usage -> OpenAI usage; cache reads and writes are part of the prompt."""
    return usage_with_cache(
        raw, "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"
    )


def usage_so_far_of(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The usage of a stream not yet ended, from the counts merged so far: as `usage_of` once an output count has
    come (message_start usually carries a first one), else the prompt alone with completion_tokens null."""
    found = usage_of(raw)
    input_tokens = raw.get("input_tokens")
    if found is not None or not isinstance(input_tokens, int):
        return found
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return usage_so_far(input_tokens + cache_read + cache_write, None, cached_tokens=cache_read)


def uses_functions(call: Call) -> bool:
    """The client uses the deprecated functions/function_call API (and expects function_call answers)."""
    return call.route_type == CHAT and (
        call.body.get("functions") is not None or call.body.get("function_call") is not None
    )


class Anthropic(Provider):
    name = "anthropic"
    supports_streaming = True
    api_base = "https://api.anthropic.com"
    price_id = "anthropic"
    native_format = "anthropic"
    kept_header_prefixes = (b"x-ratelimit-", b"anthropic-ratelimit-")

    def embeddings_problem(self, options: ModelOptions) -> str | None:
        return "provider anthropic has no embeddings API"

    def preserve_target(
        self, options: ModelOptions, model: str | None, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[str | None, str]:
        headers.setdefault("anthropic-version", options.anthropic_version or DEFAULT_VERSION)
        return super().preserve_target(options, model, path, query, headers)

    def build_request(self, call: Call) -> UpstreamRequest:
        options = call.options
        legacy = (url_path(options) or "").rstrip("/").endswith("/v1/complete")
        body = self._legacy_body(call) if legacy else self._messages_body(call)
        url = build_url(options, "https://api.anthropic.com", "/v1/messages")
        headers = {"anthropic-version": options.anthropic_version or DEFAULT_VERSION}
        return UpstreamRequest(url=url, body=body, headers=headers)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> AnthropicStream:
        return AnthropicStream(call, include_usage, keep_payload)

    # ---- to Anthropic --------------------------------------------------------------------------------------

    def _common(self, call: Call) -> dict[str, Any]:
        body = call.body
        refuse_unsupported(body, "anthropic", _UNSUPPORTED)
        out: dict[str, Any] = {"model": call.model}
        temperature = body.get("temperature")
        if temperature is not None:
            out["temperature"] = min(float(temperature), MAX_TEMPERATURE)
        top_p = body.get("top_p")
        if top_p is not None and top_p < 1:
            # top_p 1 (what many OpenAI clients send) is no nucleus filtering, Anthropic's default: it is not sent,
            # as newer models refuse "`temperature` and `top_p` cannot both be specified for this model".
            out["top_p"] = top_p
        if body.get("top_k") is not None:
            out["top_k"] = body["top_k"]
        stop = stop_list(body)
        if stop:
            out["stop_sequences"] = stop
        if isinstance(body.get("user"), str):
            out["metadata"] = {"user_id": body["user"]}
        out["stream"] = call.stream
        return out

    def _messages_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        out = self._common(call)
        out["max_tokens"] = max_tokens_of(body) or DEFAULT_MAX_TOKENS
        system = ""
        if call.route_type == CHAT:
            system, messages = _messages(body["messages"])
        else:
            messages = [{"role": "user", "content": single_prompt(body)}]
        if not messages:
            raise bad_request("at least one user message is required", param="messages")
        kind, schema = _response_format(body)
        if kind == "json_schema":
            out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        elif kind == "json_object":
            system = f"{system}\n\n{JSON_OBJECT_INSTRUCTION}" if system else JSON_OBJECT_INSTRUCTION
        if system:
            out["system"] = system
        out["messages"] = messages
        openai_tools, choice, param, legacy = _tool_fields(body)
        tools = _tools(openai_tools, "functions" if legacy else "tools")
        if tools:
            out["tools"] = tools
        parallel = False if legacy else body.get("parallel_tool_calls")  # functions: one call per turn
        anthropic_choice = _tool_choice(tools, choice, parallel, param)
        if anthropic_choice:
            out["tool_choice"] = anthropic_choice
        return out

    def _legacy_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        _refuse_for_legacy(body, call.route_type == CHAT)
        if call.route_type == CHAT:
            system, messages = _messages(body["messages"])
            turns = [system] if system else []
            for m in messages:
                speaker = "Human" if m["role"] == "user" else "Assistant"
                turns.append(f"\n\n{speaker}: {_blocks_text(m['content'])}")
            prompt = "".join(turns) + "\n\nAssistant:"
        else:
            prompt = f"\n\nHuman: {single_prompt(body)}\n\nAssistant:"
        out = self._common(call)
        out["prompt"] = prompt
        out["max_tokens_to_sample"] = max_tokens_of(body) or DEFAULT_MAX_TOKENS
        return out

    # ---- from Anthropic ------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise UpstreamFormatError("expected a JSON object")
        if "completion" in data and "content" not in data:
            return self._parse_legacy(call, data)
        content = data.get("content")
        if not isinstance(content, list):
            raise UpstreamFormatError("expected an Anthropic message with a 'content' array")
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        reasoning: list[str] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif kind == "tool_use":
                if not isinstance(block.get("name"), str):
                    raise UpstreamFormatError("expected a tool_use block with a name")
                tool_calls.append(
                    {
                        "id": block.get("id") or new_id("call"),
                        "type": "function",
                        "function": {"name": block["name"], "arguments": json.dumps(block.get("input") or {})},
                    }
                )
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                reasoning.append(block["thinking"])
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not tool_calls else None,
        }
        reason = finish_reason(data.get("stop_reason")) or "stop"
        if tool_calls and uses_functions(call):
            # A client of the deprecated `functions` API gets the deprecated answer: one function_call.
            if len(tool_calls) > 1:
                raise UpstreamFormatError("anthropic answered a functions request with several tool calls")
            message["function_call"] = tool_calls[0]["function"]
            reason = "function_call" if reason == "tool_calls" else reason
        elif tool_calls:
            message["tool_calls"] = tool_calls
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        model = data.get("model") or call.model or ""
        response = chat_response(
            id=data.get("id"),
            model=model,
            message=message,
            finish_reason=reason,
            usage=usage_of(data.get("usage")),
        )
        return response if call.route_type == CHAT else chat_to_completion(response)

    def _parse_legacy(self, call: Call, data: dict[str, Any]) -> dict[str, Any]:
        text = data.get("completion")
        if not isinstance(text, str):
            raise UpstreamFormatError("expected a text completion with a 'completion' string")
        stop = data.get("stop_reason")
        reason = LEGACY_FINISH_REASONS.get(stop, "stop") if isinstance(stop, str) else "stop"
        model = data.get("model") or call.model or ""
        if call.route_type == CHAT:
            message = {"role": "assistant", "content": text}
            return chat_response(id=data.get("id"), model=model, message=message, finish_reason=reason, usage=None)
        return completion_response(id=data.get("id"), model=model, text=text, finish_reason=reason, usage=None)


# --------------------------------------------------------------------------------------------------------------
# Message mapping
# --------------------------------------------------------------------------------------------------------------


def _messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI messages -> (system text, Anthropic messages with strictly alternating roles)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    # Deprecated function calls carry no id: the assistant's function_call gets one made from its message index,
    # and the `function` message that answers it (matched by name) refers to it.
    pending_functions: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        role = m["role"]
        if role in ("system", "developer"):
            if isinstance(m.get("content"), list) and any(p.get("type") != "text" for p in m["content"]):
                raise bad_request(f"messages[{i}]: a {role} message may hold only text", param=f"messages[{i}]")
            system.append(text_of(m.get("content")))
            continue
        if role == "user":
            blocks = _user_blocks(m.get("content"), i)
            turn = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(m, i)
            pending_functions = [(b["id"], b["name"]) for b in blocks if b.get("_function")]
            for b in blocks:
                b.pop("_function", None)
            turn = "assistant"
        elif role == "tool":
            tool_call_id = m.get("tool_call_id")
            if not isinstance(tool_call_id, str) or not tool_call_id:
                raise bad_request(f"messages[{i}].tool_call_id is required", param=f"messages[{i}].tool_call_id")
            blocks = [_tool_result(_tool_id(tool_call_id), m.get("content"), i)]
            turn = "user"
        elif role == "function":
            name = m.get("name")
            match = next((k for k, (_, fn) in enumerate(pending_functions) if fn == name), None)
            if match is None:
                where = "name" if pending_functions else "role"
                raise bad_request(
                    f"messages[{i}]: a 'function' message must answer the assistant function_call before it"
                    + (f" (no pending call of function {name!r})" if pending_functions else ""),
                    param=f"messages[{i}].{where}",
                )
            call_id, _ = pending_functions.pop(match)
            blocks = [_tool_result(call_id, m.get("content"), i)]
            turn = "user"
        else:
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider anthropic; use tools",
                param=f"messages[{i}].role",
            )
        if not blocks:
            continue
        if out and out[-1]["role"] == turn:
            # Anthropic demands alternation: consecutive turns of one role become one turn.
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": turn, "content": blocks})
    if out and out[-1]["role"] == "assistant" and out[-1]["content"][-1]["type"] == "text":
        # A final assistant turn is a prefill, which Anthropic refuses when it ends in whitespace ("final assistant
        # content cannot end with trailing whitespace"); a prefill of only whitespace is no prefill.
        blocks = out[-1]["content"]
        blocks[-1]["text"] = blocks[-1]["text"].rstrip()
        if not blocks[-1]["text"]:
            blocks.pop()
            if not blocks:
                out.pop()
    for m in out:
        # Tool results must lead their user turn.
        m["content"].sort(key=lambda b: b["type"] != "tool_result")
        if len(m["content"]) == 1 and m["content"][0]["type"] == "text":
            m["content"] = m["content"][0]["text"]
    return "\n\n".join(s for s in system if s), out


def _tool_id(raw: str) -> str:
    return _TOOL_ID_INVALID.sub("_", raw)


def _tool_result(tool_use_id: str, content: Any, i: int) -> dict[str, Any]:
    if isinstance(content, list) and any(p.get("type") != "text" for p in content):
        raise bad_request(f"messages[{i}]: a tool result may hold only text", param=f"messages[{i}].content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
    text = text_of(content)
    if text:  # an empty result is sent without content: Anthropic rejects empty text
        block["content"] = text
    return block


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content or []):
        kind = part["type"]
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part, f"messages[{i}].content[{j}]"))
        else:
            raise bad_request(
                f"messages[{i}].content[{j}]: '{kind}' parts are not supported by provider anthropic",
                param=f"messages[{i}].content[{j}]",
            )
    return blocks


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request(f"{where}: image_url.url is required", param=where)
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0].strip().lower()
        media_type = _MEDIA_TYPES.get(media_type, media_type)
        if ";base64" not in header or not media_type.startswith("image/"):
            raise bad_request(f"{where}: data URLs must be base64-encoded images", param=where)
        if media_type not in _MEDIA_TYPES.values():
            raise bad_request(
                f"{where}: provider anthropic takes jpeg, png, gif and webp images, not {media_type}", param=where
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(f"{where}: image_url must be a data: or http(s) URL", param=where)


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    """A tool call's JSON-string arguments -> the object Anthropic's `input` must be."""
    if raw is None or raw == "":
        return {}
    try:
        value = jsonutil.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise bad_request(f"{where}.arguments must be a JSON object encoded as a string", param=where)
    return value


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(m.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(m.get("tool_calls") or []):
        where = f"messages[{i}].tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"{where} must be a function call with a name", param=where)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise bad_request(f"{where}.id is required", param=where)
        input_ = _arguments(fn.get("arguments"), where)
        blocks.append({"type": "tool_use", "id": _tool_id(call_id), "name": fn["name"], "input": input_})
    function_call = m.get("function_call")
    if function_call is not None:
        where = f"messages[{i}].function_call"
        if not isinstance(function_call, dict) or not isinstance(function_call.get("name"), str):
            raise bad_request(f"{where} must be an object with a name", param=where)
        input_ = _arguments(function_call.get("arguments"), where)
        blocks.append(
            {
                "type": "tool_use",
                "id": f"call_fn_{i}",
                "name": function_call["name"],
                "input": input_,
                "_function": True,
            }
        )
    return blocks


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _refuse_for_legacy(body: dict[str, Any], chat: bool) -> None:
    """The legacy /v1/complete API takes one text prompt: refuse what it would silently lose. `messages` is
    validated (and read) on the chat route only: on the completions route it is a foreign field."""
    for key in ("tools", "functions"):
        if body.get(key):
            raise bad_request(f"'{key}' needs the Messages API; this rule uses the legacy /v1/complete", param=key)
    for key in ("tool_choice", "function_call"):
        if body.get(key) not in (None, "none", "auto"):
            raise bad_request(f"'{key}' needs the Messages API; this rule uses the legacy /v1/complete", param=key)
    if _response_format(body)[0] != "text":
        raise bad_request("response_format needs the Messages API (/v1/messages)", param="response_format")
    for i, m in enumerate(body["messages"] if chat else ()):
        content = m.get("content")
        lost = m["role"] in ("tool", "function") or m.get("tool_calls") or m.get("function_call")
        if lost or (isinstance(content, list) and any(p.get("type") != "text" for p in content)):
            raise bad_request(
                f"messages[{i}]: only text messages can be sent to the legacy /v1/complete API", param=f"messages[{i}]"
            )


def _response_format(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(kind, json schema) of the client's response_format: text, json_object or json_schema."""
    response_format = body.get("response_format")
    if response_format is None:
        return "text", None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return "text", None
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request(
                "response_format.json_schema.schema must be a JSON Schema object", param="response_format"
            )
        return "json_schema", schema
    raise bad_request("response_format.type must be text, json_object or json_schema", param="response_format")


def _tool_fields(body: dict[str, Any]) -> tuple[list[Any] | None, Any, str, bool]:
    """(OpenAI tools, tool choice, the choice's param name, deprecated functions?) from `tools`/`tool_choice` or
    the deprecated `functions`/`function_call`, which map the same way."""
    functions = body.get("functions")
    function_call = body.get("function_call")
    if functions is None and function_call is None:
        return body.get("tools"), body.get("tool_choice"), "tool_choice", False
    if body.get("tools") is not None or body.get("tool_choice") is not None:
        param = "functions" if functions is not None else "function_call"
        raise bad_request("use either tools/tool_choice or the deprecated functions/function_call", param=param)
    if functions is not None and not isinstance(functions, list):
        raise bad_request("'functions' must be an array", param="functions")
    tools = [{"type": "function", "function": f} for f in functions or []]
    choice = function_call
    if isinstance(function_call, dict):
        choice = {"type": "function", "function": function_call}
    elif function_call not in (None, "none", "auto"):
        raise bad_request("function_call must be 'none', 'auto' or {'name': ...}", param="function_call")
    return tools, choice, "function_call", True


def _tools(tools: list[Any] | None, param: str) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    if not isinstance(tools, list):
        raise bad_request(f"'{param}' must be an array", param=param)
    out = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise bad_request(f"{param}[{k}]: only function tools are supported by anthropic", param=f"{param}[{k}]")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"{param}[{k}] must be a function with a name", param=f"{param}[{k}]")
        parameters = fn.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise bad_request(f"{param}[{k}]: parameters must be a JSON Schema object", param=f"{param}[{k}]")
        spec: dict[str, Any] = {"name": fn["name"], "input_schema": parameters or {"type": "object", "properties": {}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        if fn.get("strict") is True:
            spec["strict"] = True  # Anthropic strict tool use: inputs guaranteed to match input_schema
        out.append(spec)
    return out


def _tool_choice(tools: list[dict[str, Any]] | None, choice: Any, parallel: Any, param: str) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if not tools:
        # Anthropic refuses a tool_choice without tools; "none"/"auto" mean nothing then, a forced tool is an error.
        if choice in (None, "none", "auto"):
            return None
        raise bad_request(f"{param} needs tools", param=param)
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if name not in {t["name"] for t in tools}:
            raise bad_request(f"{param} names function {name!r}, which is not among the tools", param=param)
        out = {"type": "tool", "name": name}
    else:
        raise bad_request(f"unsupported {param}", param=param)
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# --------------------------------------------------------------------------------------------------------------
# Streams: Anthropic SSE -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class AnthropicStream(SSETranslator):
    """Translates an Anthropic Messages (or legacy completion) SSE stream into OpenAI chunks, event by event.

    Anthropic's block `index` counts every content block; OpenAI's tool-call `index` counts tool calls only,
    so tool blocks are renumbered (text and thinking blocks never shift it). A tool call whose input streams no
    fragment (a function without arguments) gets "{}" when its block stops, so the accumulated arguments are
    always JSON, as in the non-streamed answer. Usage comes from `message_start` (input) and the cumulative
    `message_delta` (output); the finish chunk is held until `message_stop` so usage can follow it. The record
    gets each count as it arrives, so a stream cut off after message_start still has its input tokens. The legacy
    /v1/complete stream carries no token counts at all: its record's usage stays null.
    """

    __slots__ = ("_finish", "_functions", "_no_arguments", "_tool_index", "_usage_raw")
    provider = "anthropic"
    incomplete = "ended before message_stop"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self._no_arguments: dict[int, Any] = {}  # Anthropic block index -> its start input, until a fragment comes
        self._functions = uses_functions(call)  # deprecated API: answer with delta.function_call
        self._usage_raw: dict[str, Any] = {}
        self._finish: str | None = None

    def _event(self, sse: SSEEvent) -> bytes:
        name, data = sse.event, sse.data
        if self._done or name == "ping":
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("anthropic sent an event that is not JSON")
        if not isinstance(event, dict):
            return b""  # not an event object: nothing to translate (unknown events are ignored too)
        kind = event.get("type", name)
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, event) if handler else b""  # unknown events are ignored (versioning policy)

    def _message_start(self, event: dict[str, Any]) -> bytes:
        message = as_dict(event.get("message"))
        self.out.set_model(as_str(message.get("model")))
        self._usage_raw.update(as_dict(message.get("usage")))
        self.out.note_usage(usage_so_far_of(self._usage_raw))
        return self.out.role()

    def _block_start(self, event: dict[str, Any]) -> bytes:
        block = as_dict(event.get("content_block"))
        block_index = _block_index(event)
        if block.get("type") == "tool_use" and block_index is not None and block_index not in self._tool_index:
            index = self._tool_index[block_index] = len(self._tool_index)
            self._no_arguments[block_index] = block.get("input") or {}
            return self._tool_start(index, as_str(block.get("id")) or new_id("call"), as_str(block.get("name")) or "")
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            return self.out.text(block["text"])
        return b""

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = as_dict(event.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta":
            return self.out.text(as_str(delta.get("text")) or "")
        if kind == "input_json_delta":
            block_index = _block_index(event)
            index = self._tool_index.get(block_index) if block_index is not None else None
            fragment = as_str(delta.get("partial_json"))
            if index is None or not fragment:
                return b""
            self._no_arguments.pop(block_index, None)
            return self._tool_arguments(index, fragment)
        if kind == "thinking_delta":
            return self.out.reasoning(as_str(delta.get("thinking")) or "")
        return b""

    def _block_stop(self, event: dict[str, Any]) -> bytes:
        block_index = _block_index(event)
        if block_index is None or block_index not in self._no_arguments:
            return b""
        return self._tool_arguments(self._tool_index[block_index], json.dumps(self._no_arguments.pop(block_index)))

    def _tool_start(self, index: int, call_id: str, name: str) -> bytes:
        if not self._functions:
            return self.out.tool_call_start(index, call_id, name)
        if index > 0:
            return self._fail("anthropic answered a functions request with several tool calls")
        result = self.result
        if result.first_token_at is None:
            result.first_token_at = time.time()
        if result.tool_calls is not None:
            result.tool_calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}})
        return self.out.function_call_delta(name=name)

    def _tool_arguments(self, index: int, fragment: str) -> bytes:
        if not self._functions:
            return self.out.tool_call_arguments(index, fragment)
        if self.result.tool_calls:
            self.result.tool_calls[0]["function"]["arguments"] += fragment
        return self.out.function_call_delta(arguments=fragment)

    def _message_delta(self, event: dict[str, Any]) -> bytes:
        reason = as_dict(event.get("delta")).get("stop_reason")
        if reason:
            self._finish = finish_reason(reason)
        # Cumulative counts: the latest wins, but a null field (MessageDeltaUsage types all but output_tokens as
        # Optional) keeps the value message_start gave, as the SDK's own accumulator does.
        self._usage_raw.update({k: v for k, v in as_dict(event.get("usage")).items() if v is not None})
        self.out.note_usage(usage_so_far_of(self._usage_raw))
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        out = b"".join(self._block_stop({"index": i}) for i in list(self._no_arguments))  # blocks never stopped
        if self._done:
            return out
        self._done = True
        reason = self._finish or "stop"
        if self._functions and reason == "tool_calls":
            reason = "function_call"
        return out + self.out.finish(reason, usage_of(self._usage_raw))

    def _completion(self, event: dict[str, Any]) -> bytes:
        """Legacy /v1/complete stream: `completion` events carry text and finally a stop_reason."""
        out = b""
        if self.result.first_token_at is None and self.out.chat:
            out += self.out.role()
        out += self.out.text(as_str(event.get("completion")) or "")
        reason = event.get("stop_reason")
        if reason:
            self._done = True
            out += self.out.finish(
                LEGACY_FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop", None
            )
        return out

    def _error(self, event: dict[str, Any]) -> bytes:
        err = as_dict(event.get("error"))
        etype = as_str(err.get("type"))
        status = {"overloaded_error": 503, "rate_limit_error": 429, "api_error": 502}.get(etype or "", 502)
        return self._fail(
            as_str(err.get("message")) or "anthropic stream error",
            status=status,
            type=etype,
            code=etype or "stream_error",
        )


def _block_index(event: dict[str, Any]) -> int | None:
    """A content block's index (0 when absent, as in the oldest events); None when it is not an integer."""
    index = event.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else None


_HANDLERS = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "content_block_stop": AnthropicStream._block_stop,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
    "completion": AnthropicStream._completion,
    "error": AnthropicStream._error,
}


ANTHROPIC = register(Anthropic())
