"""A standard (OpenAI Chat) response as a Gemini GenerateContentResponse, and the pieces the stream writer shares
with it: finish reasons, usage metadata, function-call parts."""

from __future__ import annotations

import uuid
from typing import Any

from ...openai_answer import count
from ..fields import arguments_object, usage_counts

# OpenAI finish_reason -> Gemini finishReason. Gemini has no tool-call reason: a turn of function calls is STOP.
FINISH_REASONS = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}


def finish_reason(reason: Any) -> str:
    return FINISH_REASONS.get(reason, "OTHER") if isinstance(reason, str) else "STOP"


def usage_metadata(standard: Any) -> dict[str, Any] | None:
    """OpenAI usage as Gemini's usageMetadata: Gemini counts thoughts apart from the candidates' tokens, which
    OpenAI counts in completion_tokens (and again in completion_tokens_details.reasoning_tokens)."""
    if not isinstance(standard, dict):
        return None
    prompt, completion, cached, thoughts = usage_counts(standard)
    thoughts = min(thoughts, completion)
    out: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion - thoughts,
        "totalTokenCount": count(standard.get("total_tokens")) or prompt + completion,
    }
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if cached:
        out["cachedContentTokenCount"] = cached
    return out


def function_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """A functionCall part; the provider's call id rides along as Gemini's optional `id`, which the client sends
    back on its functionResponse."""
    call: dict[str, Any] = {"name": name, "args": arguments_object(arguments)}
    if call_id:
        call["id"] = call_id
    return {"functionCall": call}


def chunk(
    parts: list[dict[str, Any]], model: str, response_id: str, finish: str | None = None, usage: Any = None
) -> dict[str, Any]:
    """A GenerateContentResponse of one candidate (a whole answer, or one chunk of a stream)."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or [{"text": ""}]}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate]}
    metadata = usage_metadata(usage)
    if metadata is not None:
        out["usageMetadata"] = metadata
    out["modelVersion"] = model
    out["responseId"] = response_id
    return out


def answer(response: dict[str, Any], model: str | None) -> dict[str, Any]:
    """The GenerateContentResponse for a checked standard chat.completion."""
    choice = response["choices"][0]
    msg = choice.get("message") or {}
    parts: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    text = msg.get("content")
    if isinstance(text, str) and text:
        parts.append({"text": text})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        parts.append(function_call(call.get("id") or "", fn.get("name") or "", fn.get("arguments")))
    upstream_id = response.get("id")
    return chunk(
        parts,
        response.get("model") or model or "",
        upstream_id if isinstance(upstream_id, str) and upstream_id else new_id(),
        finish_reason(choice.get("finish_reason")),
        response.get("usage"),
    )


def new_id() -> str:
    return uuid.uuid4().hex[:24]
