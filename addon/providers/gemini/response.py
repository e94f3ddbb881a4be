"""A Gemini GenerateContentResponse as an OpenAI chat completion (or text completion)."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...openai_format import CHAT, EMBEDDINGS, chat_response, chat_to_completion
from ..base import Call, UpstreamFormatError, assistant_message, uses_functions
from .common import finish_reason, usage_of
from .embeddings import _embeddings_response
from .ids import tool_call_id

_SEVERAL = "gemini answered a functions request with several function calls"


def parse_response(call: Call, data: Any) -> dict[str, Any]:
    if call.route_type == EMBEDDINGS:
        return _embeddings_response(call, data)
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]  # a one-element JSON array: what the streaming operation answers in one piece
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected a GenerateContentResponse object")
    candidates = data.get("candidates")
    feedback = data.get("promptFeedback")
    if candidates is None and not isinstance(feedback, dict):
        raise UpstreamFormatError("expected a GenerateContentResponse with 'candidates'")
    if not isinstance(candidates, list):
        candidates = []
    choices = []
    for position, candidate in enumerate(c for c in candidates if isinstance(c, dict)):
        choices.append(_choice(candidate, position, uses_functions(call)))
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): no candidate at all.
        blocked = isinstance(feedback, dict) and feedback.get("blockReason")
        message = {"role": "assistant", "content": ""}
        choices = [{"index": 0, "message": message, "logprobs": None, "finish_reason": _blocked(blocked)}]
    choices.sort(key=lambda c: c["index"])
    response = chat_response(
        id=data.get("responseId"),
        model=data.get("modelVersion") or call.model or "",
        message=choices[0]["message"],
        finish_reason=choices[0]["finish_reason"],
        usage=usage_of(data.get("usageMetadata")),
    )
    response["choices"] = choices
    return response if call.route_type == CHAT else chat_to_completion(response)


def _blocked(reason: Any) -> str:
    return "content_filter" if reason else "stop"


def _choice(candidate: dict[str, Any], position: int, functions: bool = False) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in _parts(candidate):
        if isinstance(part.get("text"), str):
            (reasoning if part.get("thought") else texts).append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            tool_calls.append(_tool_call(part))
    reason = finish_reason(candidate.get("finishReason"), bool(tool_calls)) or "stop"
    message, reason = assistant_message(texts, reasoning, tool_calls, reason, functions, _SEVERAL)
    index = candidate.get("index")
    return {
        "index": index if isinstance(index, int) else position,
        "message": message,
        "logprobs": None,
        "finish_reason": reason,
    }


def _parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _tool_call(part: dict[str, Any]) -> dict[str, Any]:
    fn = part["functionCall"]
    native_id = fn.get("id") if isinstance(fn.get("id"), str) else None
    signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
    return {
        "id": tool_call_id(native_id, signature),
        "type": "function",
        "function": {"name": fn.get("name") or "", "arguments": jsonutil.dumps_str(fn.get("args") or {})},
    }
