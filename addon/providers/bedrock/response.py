"""A Converse answer (or an InvokeModel embeddings answer) -> the OpenAI response."""

from __future__ import annotations

import json
from typing import Any

from ...openai_format import CHAT, EMBEDDINGS, THINKING_BLOCKS, chat_response, chat_to_completion
from ..base import Call, UpstreamFormatError
from .common import decode_tool_id, finish_reason, stop_sequence_of, usage_of
from .embeddings import _embeddings_response


def parse_converse(call: Call, data: Any) -> dict[str, Any]:
    if call.route_type == EMBEDDINGS:
        return _embeddings_response(call, data)
    output = data.get("output") if isinstance(data, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise UpstreamFormatError("expected a Converse response with output.message.content")
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            tool_calls.append(
                {
                    "id": decode_tool_id(use.get("toolUseId")),
                    "type": "function",
                    "function": {"name": use.get("name"), "arguments": json.dumps(use.get("input", {}))},
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            text = block["reasoningContent"].get("reasoningText")
            redacted = block["reasoningContent"].get("redactedContent")
            if isinstance(text, dict) and isinstance(text.get("text"), str):
                reasoning.append(text["text"])
                signature = text.get("signature") if isinstance(text.get("signature"), str) else ""
                thinking_blocks.append({"type": "thinking", "thinking": text["text"], "signature": signature})
            elif isinstance(redacted, str):
                thinking_blocks.append({"type": "redacted_thinking", "data": redacted})
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
    }
    if tool_calls:
        out_message["tool_calls"] = tool_calls
    if reasoning:
        out_message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        out_message[THINKING_BLOCKS] = thinking_blocks
    response = chat_response(
        id=None,
        model=call.model or "",
        message=out_message,
        finish_reason=finish_reason(data.get("stopReason")) or "stop",
        usage=usage_of(data.get("usage")),
        stop_sequence=stop_sequence_of(call, data),
    )
    return response if call.route_type == CHAT else chat_to_completion(response)
