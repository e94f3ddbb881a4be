"""Ollama's answers -> OpenAI's: `/api/chat` and `/api/generate` responses, `/api/embed` embeddings, finish
reasons, token counts, tool calls (object arguments as JSON strings, synthesised ids when Ollama sent none)."""

from __future__ import annotations

import uuid
from typing import Any

from ... import jsonutil
from ...openai_format import (
    CHAT,
    chat_response,
    chat_to_completion,
    completion_response,
    embedding_usage,
    embeddings_response,
    usage,
)
from ..base import Call, UpstreamFormatError

# `load`/`unload` answer empty requests (model management), not generations: nothing was cut short.
FINISH_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def parse_embeddings(call: Call, data: Any) -> dict[str, Any]:
    """`{"embeddings": [[...]], "prompt_eval_count"}` -> the OpenAI embeddings list."""
    if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
        raise UpstreamFormatError("expected an Ollama /api/embed response with 'embeddings'")
    model = data.get("model") or call.model or ""
    found = embedding_usage(data.get("prompt_eval_count"))
    return embeddings_response(data["embeddings"], model, found, call.body.get("encoding_format"))


def finish_reason(done_reason: Any) -> str:
    return FINISH_REASONS.get(done_reason, "stop") if isinstance(done_reason, str) else "stop"


def usage_of(data: dict[str, Any]) -> dict[str, Any] | None:
    completion = data.get("eval_count")
    if not isinstance(completion, int):
        return None
    prompt = data.get("prompt_eval_count")  # omitted when the prompt was fully cached
    return usage(prompt if isinstance(prompt, int) else 0, completion)


def new_call_id() -> str:
    """A tool-call id for a call Ollama sent without one (the next turn resolves it by scanning the history)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call_out(tc: Any) -> tuple[str, str, str]:
    """(id, name, arguments as a JSON string) of one Ollama tool call."""
    fn = tc.get("function") if isinstance(tc, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise UpstreamFormatError("expected Ollama tool calls as {function: {name, arguments}}")
    arguments = fn.get("arguments")
    if arguments is None:
        arguments = {}
    text = arguments if isinstance(arguments, str) else jsonutil.dumps_str(arguments)
    call_id = tc.get("id")
    return (call_id if isinstance(call_id, str) and call_id else new_call_id()), fn["name"], text


def tool_finish(reason: str, has_tool_calls: bool) -> str:
    """Ollama says `stop` when the model called tools; OpenAI says `tool_calls` (as Ollama's own /v1 layer)."""
    return "tool_calls" if has_tool_calls and reason == "stop" else reason


def parse_response(call: Call, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected an Ollama JSON object")
    model = data.get("model") or call.model or ""
    reason = finish_reason(data.get("done_reason"))
    message = data.get("message")
    if isinstance(message, dict):  # /api/chat
        content = message.get("content")
        calls = message.get("tool_calls") or []
        if not isinstance(content, str) and not (content is None and calls):
            raise UpstreamFormatError("expected an Ollama chat response with message.content")
        if not isinstance(calls, list):
            raise UpstreamFormatError("expected message.tool_calls to be an array")
        out_message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
        if message.get("thinking"):
            out_message["reasoning_content"] = message["thinking"]
        if calls and call.route_type == CHAT:
            out_message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                for call_id, name, arguments in map(tool_call_out, calls)
            ]
            reason = tool_finish(reason, True)
        response = chat_response(id=None, model=model, message=out_message, finish_reason=reason, usage=usage_of(data))
        return response if call.route_type == CHAT else chat_to_completion(response)
    text = data.get("response")  # /api/generate
    if not isinstance(text, str) or call.route_type == CHAT:
        raise UpstreamFormatError(
            "expected an Ollama response with 'message' (/api/chat) or 'response' (/api/generate)"
        )
    return completion_response(id=None, model=model, text=text, finish_reason=reason, usage=usage_of(data))
