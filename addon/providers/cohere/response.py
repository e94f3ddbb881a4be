"""A Cohere answer -> the OpenAI response, recognised by its shape whatever the rule said: a v2 body has a
`message` object, a v1 chat body a `text`, a v1 generate body `generations` (embeddings: embeddings.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ...openai_format import (
    CHAT,
    EMBEDDINGS,
    chat_response,
    chat_to_completion,
    completion_response,
    matched_stop,
)
from ..base import Call, UpstreamFormatError, as_list
from .common import STOP_SEQUENCE, _str_or_none, failure, finish_reason, usage_of, v1_tool_calls, v1_usage
from .embeddings import _embeddings_response


def parse_response(call: Call, data: Any) -> dict[str, Any]:
    if call.route_type == EMBEDDINGS:
        return _embeddings_response(call, data)
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected a JSON object")
    if isinstance(data.get("message"), dict):
        response = parse_v2(call, data)
    elif isinstance(data.get("generations"), list):
        return parse_generate(call, data)
    elif isinstance(data.get("text"), str) or isinstance(data.get("tool_calls"), list):
        response = parse_v1_chat(call, data)
    else:
        raise UpstreamFormatError(
            "expected a Cohere chat response: a 'message' object (v2), a 'text' (v1 chat) or 'generations'"
        )
    return response if call.route_type == CHAT else chat_to_completion(response)


def parse_v2(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    reason = data.get("finish_reason")
    message_in = data["message"]
    err = failure(reason, data.get("error") or message_in.get("error"))
    if err:
        raise err
    texts: list[str] = []
    thinking: list[str] = []
    for block in as_list(message_in.get("content")):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            thinking.append(block["thinking"])
    tool_calls = [_tool_call(c) for c in as_list(message_in.get("tool_calls")) if isinstance(c, dict)]
    text = "".join(texts)
    if not text and tool_calls and isinstance(message_in.get("tool_plan"), str):
        # The text the model writes before its tool calls, as OpenAI models put it in `content`.
        text = message_in["tool_plan"]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    return chat_response(
        id=_str_or_none(data.get("id")),
        model=call.model or "",
        message=message,
        finish_reason=finish_reason(reason),
        usage=usage_of(data.get("usage")),
        stop_sequence=matched_stop(call.body, None) if reason == STOP_SEQUENCE else None,
    )


def parse_v1_chat(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    reason = data.get("finish_reason")
    err = failure(reason)
    if err:
        raise err
    text = data.get("text") if isinstance(data.get("text"), str) else ""
    tool_calls = v1_tool_calls(data.get("tool_calls"))
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return chat_response(
        id=_str_or_none(data.get("generation_id")) or _str_or_none(data.get("response_id")),
        model=call.model or "",
        message=message,
        # v1 says COMPLETE when it asks for tool calls: their presence is the finish reason (providers.md §11.2).
        finish_reason="tool_calls" if tool_calls and reason in (None, "COMPLETE") else finish_reason(reason),
        usage=v1_usage(data),
        stop_sequence=matched_stop(call.body, None) if reason == STOP_SEQUENCE else None,
    )


def parse_generate(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    generations = [g for g in data["generations"] if isinstance(g, dict) and isinstance(g.get("text"), str)]
    if not generations:
        raise UpstreamFormatError("expected 'generations' with at least one text")
    for g in generations:
        err = failure(g.get("finish_reason"))
        if err:
            raise err
    model = call.model or ""
    id = _str_or_none(data.get("id"))
    first = generations[0]
    if call.route_type == CHAT:
        message = {"role": "assistant", "content": first["text"]}
        reason = finish_reason(first.get("finish_reason"))
        return chat_response(id=id, model=model, message=message, finish_reason=reason, usage=v1_usage(data))
    out = completion_response(
        id=id, model=model, text=first["text"], finish_reason=finish_reason(first.get("finish_reason")), usage=None
    )
    out["choices"] = [
        {"index": i, "text": g["text"], "logprobs": None, "finish_reason": finish_reason(g.get("finish_reason"))}
        for i, g in enumerate(generations)
    ]
    found = v1_usage(data)
    if found is not None:
        out["usage"] = found
    return out


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = fn.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": fn.get("name") or "", "arguments": arguments},
    }
