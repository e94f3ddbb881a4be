"""A standard (OpenAI Chat) response as an Anthropic `message`, and the pieces the stream writer shares with it:
stop reasons and usage."""

from __future__ import annotations

import uuid
from typing import Any

from ...openai_answer import count
from ...openai_format import STOP_SEQUENCE, THINKING_BLOCKS, cache_counts
from ..fields import arguments_object as tool_input

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: Any, stop_sequence: str | None = None) -> str:
    """Anthropic's stop reason; `stop_sequence`: the standard extension saying a stop sequence ended the answer."""
    if isinstance(stop_sequence, str) and finish_reason == "stop":
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def matched_sequence(stop_sequence: str | None) -> str | None:
    """The `stop_sequence` field: the matched sequence, null when none matched or the provider did not say which."""
    return stop_sequence or None


def usage(standard: Any) -> dict[str, Any]:
    """OpenAI usage as Anthropic's: Anthropic's input_tokens leaves out the tokens read from the cache and written
    to it, which the standard usage counts in prompt_tokens and again in prompt_tokens_details (OpenAI's
    cached_tokens, the extension cache_creation_tokens)."""
    standard = standard if isinstance(standard, dict) else {}
    prompt = count(standard.get("prompt_tokens")) or 0
    cached, written = cache_counts(standard)
    return {
        "input_tokens": max(prompt - cached - written, 0),
        "output_tokens": count(standard.get("completion_tokens")) or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def message(response: dict[str, Any], model: str | None) -> dict[str, Any]:
    """The Anthropic message for a checked standard chat.completion."""
    choice = response["choices"][0]
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = thinking_blocks(msg)
    text = msg.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu"),
                "name": fn.get("name") or "",
                "input": tool_input(fn.get("arguments")),
            }
        )
    sequence = choice.get(STOP_SEQUENCE)
    sequence = sequence if isinstance(sequence, str) else None
    return {
        "id": message_id(response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": response.get("model") or model or "",
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), sequence),
        "stop_sequence": matched_sequence(sequence),
        "usage": usage(response.get("usage")),
    }


def thinking_blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer's thinking blocks: as the provider signed them (the extension thinking_blocks), else its
    reasoning text as one unsigned block."""
    blocks = msg.get(THINKING_BLOCKS)
    if isinstance(blocks, list):
        out = []
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                signature = block.get("signature") if isinstance(block.get("signature"), str) else ""
                out.append({"type": "thinking", "thinking": block["thinking"], "signature": signature})
            elif (
                isinstance(block, dict)
                and block.get("type") == "redacted_thinking"
                and isinstance(block.get("data"), str)
            ):
                out.append({"type": "redacted_thinking", "data": block["data"]})
        return out
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def message_id(upstream_id: Any) -> str:
    if isinstance(upstream_id, str) and upstream_id.startswith("msg_"):
        return upstream_id
    return new_id("msg")


def new_id(prefix: str) -> str:
    """An id as Anthropic spells them (`msg_…`, `toolu_…`)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"
