"""To Anthropic: the Messages API body (/v1/messages), and the legacy Text Completions body (/v1/complete)."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...openai_format import CHAT, OPENAI_ONLY, max_tokens_of, refuse_unsupported, single_prompt, stop_list
from ..base import Call
from .caching import mark_tools, system_blocks
from .common import DEFAULT_MAX_TOKENS, MAX_TEMPERATURE
from .messages import _messages
from .schema import output_schema
from .thinking import apply as apply_thinking
from .thinking import legacy as legacy_thinking
from .thinking import unsigned
from .tools import _tool_choice, _tool_fields, _tools

# OpenAI fields Anthropic has no equivalent for: refused when set to anything but their neutral value, so a
# client never silently gets different behaviour than it asked for.
_UNSUPPORTED = OPENAI_ONLY

# response_format json_object has no native Anthropic equivalent (structured outputs need a schema, and an object
# schema must close its properties). The fallback is this system instruction: it composes with tools, streams
# unchanged and keeps the answer in `content`, where the client reads it. Prefilling "{" was rejected (newer models
# and extended thinking refuse prefill, and the client would get the answer without its first brace) and so was a
# forced tool (it would fight the client's own tools and move the answer out of `content`).
JSON_OBJECT_INSTRUCTION = (
    "Respond only with a single valid JSON object. Do not add any text before or after it and do not wrap it in "
    "Markdown code fences."
)


def _common(call: Call) -> dict[str, Any]:
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


def messages_body(call: Call) -> dict[str, Any]:
    body = call.body
    out = _common(call)
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
        out["output_config"] = {"format": {"type": "json_schema", "schema": output_schema(schema, call.dropped)}}
    elif kind == "json_object":
        system = f"{system}\n\n{JSON_OBJECT_INSTRUCTION}" if system else JSON_OBJECT_INSTRUCTION
    blocks = system_blocks(body["messages"]) if call.route_type == CHAT else None
    if blocks is not None:  # cache breakpoints in the system prompt: it goes as text blocks
        instruction = [{"type": "text", "text": JSON_OBJECT_INSTRUCTION}] if kind == "json_object" else []
        out["system"] = [*blocks, *instruction]
    elif system:
        out["system"] = system
    out["messages"] = messages
    openai_tools, choice, param, legacy = _tool_fields(body)
    tools = _tools(openai_tools, "functions" if legacy else "tools", call.dropped)
    mark_tools(openai_tools, tools)
    if tools:
        out["tools"] = tools
    parallel = False if legacy else body.get("parallel_tool_calls")  # functions: one call per turn
    anthropic_choice = _tool_choice(tools, choice, parallel, param)
    if anthropic_choice:
        out["tool_choice"] = anthropic_choice
    if call.route_type == CHAT:
        unsigned(call)
    apply_thinking(call, out)
    return out


def legacy_body(call: Call) -> dict[str, Any]:
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
    out = _common(call)
    legacy_thinking(call)
    out["prompt"] = prompt
    out["max_tokens_to_sample"] = max_tokens_of(body) or DEFAULT_MAX_TOKENS
    return out


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
