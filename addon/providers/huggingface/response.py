"""From Hugging Face: OpenAI-shaped answers (ids, finish reasons and tool calls mended) and native
text-generation answers -> OpenAI."""

from __future__ import annotations

import json
from typing import Any

from ...openai_format import CHAT, completion_response, new_id, stop_list
from ..base import Call, UpstreamFormatError
from .common import DEFAULT_MODEL, _native_usage, _strip_stop, finish_reason, new_tool_call_id


def _parse_openai(call: Call, data: Any) -> dict[str, Any]:
    expected = "chat.completion" if call.route_type == CHAT else "text_completion"
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamFormatError(f"expected a {expected} object with 'choices'")
    out = dict(data)
    if not out.get("id"):
        out["id"] = new_id("chatcmpl" if call.route_type == CHAT else "cmpl")  # TGI sends ""
    choices = []
    for choice in data["choices"]:
        if isinstance(choice, dict):
            choice = {**choice, "finish_reason": finish_reason(choice.get("finish_reason"))}
            message = choice.get("message")
            if isinstance(message, dict) and message.get("tool_calls"):
                calls = message["tool_calls"]
                calls = [_tool_call(c) for c in (calls if isinstance(calls, list) else [calls])]
                choice["message"] = {**message, "tool_calls": calls}
                if choice["finish_reason"] == "stop":
                    choice["finish_reason"] = "tool_calls"  # TGI says eos_token after a (grammar) tool call
        choices.append(choice)
    out["choices"] = choices
    return out


def _tool_call(call: Any) -> Any:
    """Older TGI versions send tool-call arguments as an object (OpenAI's are a JSON string), some send an empty
    id or none: synthesised, so that the client can match its tool result to the call."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    fn = call["function"]
    call = {**call, "type": "function"}
    if not call.get("id"):
        call["id"] = new_tool_call_id()
    if isinstance(fn.get("arguments"), (dict, list)):
        call["function"] = {**fn, "arguments": json.dumps(fn["arguments"])}
    elif fn.get("arguments") is None:
        call["function"] = {**fn, "arguments": "{}"}
    return call


def _parse_native(call: Call, data: Any) -> dict[str, Any]:
    item = data[0] if isinstance(data, list) and data else data  # /models/{model} and compat: an array of one
    if not isinstance(item, dict):
        raise UpstreamFormatError("expected a text-generation object or array with 'generated_text'")
    text = item.get("generated_text")
    if not isinstance(text, str):
        if "error" in item:
            raise UpstreamFormatError(f"the upstream answered 200 with an error: {str(item['error'])[:300]}")
        raise UpstreamFormatError("expected a text-generation object or array with 'generated_text'")
    details = item.get("details") if isinstance(item.get("details"), dict) else {}
    raw_reason = details.get("finish_reason")
    if raw_reason in (None, "stop_sequence"):
        text = _strip_stop(text, stop_list(call.body) or [])
    return completion_response(
        id=None,
        model=call.model or DEFAULT_MODEL,
        text=text,
        finish_reason=finish_reason(raw_reason) or "stop",
        usage=_native_usage(details, getattr(call, "response_headers", None)),
    )
