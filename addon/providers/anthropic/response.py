"""From Anthropic: a Messages answer (or a legacy /v1/complete one) -> an OpenAI chat or text completion."""

from __future__ import annotations

import json
from typing import Any

from ...openai_format import CHAT, chat_response, chat_to_completion, completion_response, new_id
from ..base import Call, UpstreamFormatError, assistant_message, uses_functions
from .common import LEGACY_FINISH_REASONS, finish_reason, usage_of
from .thinking import answer_block, with_blocks

_SEVERAL = "anthropic answered a functions request with several tool calls"


def parse_message(call: Call, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected a JSON object")
    if "completion" in data and "content" not in data:
        return _parse_legacy(call, data)
    content = data.get("content")
    if not isinstance(content, list):
        raise UpstreamFormatError("expected an Anthropic message with a 'content' array")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
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
        else:
            answer_block(block, reasoning, thinking_blocks)
    reason = finish_reason(data.get("stop_reason")) or "stop"
    message, reason = assistant_message(texts, reasoning, tool_calls, reason, uses_functions(call), _SEVERAL)
    model = data.get("model") or call.model or ""
    response = chat_response(
        id=data.get("id"),
        model=model,
        message=with_blocks(message, thinking_blocks),
        finish_reason=reason,
        usage=usage_of(data.get("usage")),
    )
    return response if call.route_type == CHAT else chat_to_completion(response)


def _parse_legacy(call: Call, data: dict[str, Any]) -> dict[str, Any]:
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
