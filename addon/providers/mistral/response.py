"""Mistral's answers and errors -> OpenAI's: finish reasons (`model_length` is `length`, `error` an error),
content chunks flattened (thinking -> reasoning_content), tool calls in OpenAI's shape, FastAPI validation errors."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...errors import ProxyError
from ...openai_format import CHAT, chat_to_completion
from ..base import Call, UpstreamFormatError, upstream_error
from .ids import new_tool_call_id

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",  # the context window was hit
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


def tool_calls_out(calls: Any) -> Any:
    """Mistral's tool calls in OpenAI's shape: `type` set, arguments a JSON string, an id on each."""
    if not isinstance(calls, list):
        raise UpstreamFormatError("expected message.tool_calls to be an array")
    out = []
    for tc in calls:
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise UpstreamFormatError("expected tool calls as {id, function: {name, arguments}}")
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = jsonutil.dumps_str(arguments if arguments is not None else {})
        call_id = tc.get("id") if isinstance(tc.get("id"), str) and tc.get("id") else new_tool_call_id()
        out.append({"id": call_id, "type": "function", "function": {"name": fn["name"], "arguments": arguments}})
    return out


def finish_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def flatten_content(content: Any) -> tuple[Any, str | None]:
    """Mistral reasoning models answer content as chunks ([{type: thinking|text}]): (text, reasoning)."""
    if not isinstance(content, list):
        return content, None
    texts: list[str] = []
    thinking: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thinking.append(inner)
            elif isinstance(inner, list):
                thinking += [str(p.get("text") or "") for p in inner if isinstance(p, dict)]
    return "".join(texts), "".join(thinking) or None


def parse_chat(call: Call, data: Any) -> dict[str, Any]:
    """A chat.completion from Mistral (chat or completions route) as OpenAI's."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamFormatError("expected a chat.completion object with 'choices'")
    choices = []
    for choice in data["choices"]:
        if not isinstance(choice, dict):
            raise UpstreamFormatError("expected choices to be objects")
        reason = choice.get("finish_reason")
        if reason == "error":
            raise UpstreamFormatError("mistral stopped generating with finish_reason 'error'")
        choice = {**choice, "finish_reason": finish_reason(reason)}
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            text, reasoning = flatten_content(message["content"])
            message = {**message, "content": text}
            if reasoning:
                message["reasoning_content"] = reasoning
            choice["message"] = message
        if isinstance(message, dict) and message.get("tool_calls"):
            choice["message"] = {**message, "tool_calls": tool_calls_out(message["tool_calls"])}
            if choice["finish_reason"] == "stop":
                choice["finish_reason"] = "tool_calls"
        choices.append(choice)
    response = {**data, "choices": choices}
    if call.route_type != CHAT and any("message" in c for c in choices):
        return chat_to_completion(response)
    return response


def parse_error(status: int, body: bytes, content_type: str) -> ProxyError:
    err = upstream_error(status, body, content_type, "mistral")
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        return err
    if isinstance(data, dict):
        # FastAPI validation errors: {"detail": [...]}, sometimes inside {"object": "error", "message": {...}}
        detail = data.get("detail")
        if detail is None and isinstance(data.get("message"), dict):
            detail = data["message"].get("detail")
        if isinstance(detail, list) and detail:
            err.message = "; ".join(_detail_text(d) for d in detail)
            first = detail[0] if isinstance(detail[0], dict) else {}
            err.param = _loc(first.get("loc")) or err.param
        elif isinstance(detail, str):
            err.message = detail
    return err


def _loc(loc: Any) -> str | None:
    if not isinstance(loc, list):
        return None
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _detail_text(d: Any) -> str:
    if not isinstance(d, dict):
        return str(d)
    loc = _loc(d.get("loc"))
    msg = str(d.get("msg") or d.get("message") or jsonutil.dumps_str(d))
    return f"{loc}: {msg}" if loc else msg
