"""A standard (OpenAI Chat) response as a Responses API `response` object, as openai-python's
`types/responses/response.py` parses it, and the pieces the stream writer shares with it: ids, usage, status and
the output items.

- `choices[0].message.reasoning_content` -> a `reasoning` item whose summary is the text, and the provider's signed
  blocks (the extension `thinking_blocks`) sealed in its `encrypted_content` (sealed.py);
- `content` -> a `message` item with one `output_text` part; `tool_calls` -> `function_call` items (calls of the
  request's custom tools -> `custom_tool_call` items with their `input` text, `with_custom_calls`);
- `finish_reason` length -> status `incomplete` with `incomplete_details.reason: max_output_tokens`,
  content_filter -> `incomplete` with reason `content_filter`; otherwise `completed`;
- usage: prompt/completion tokens -> input/output tokens, cached and reasoning token details kept.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ... import jsonutil
from ...openai_answer import count
from ...openai_format import THINKING_BLOCKS, cache_counts
from .items import CUSTOM_ARGUMENT
from .sealed import seal

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id as the Responses API spells them: resp_…, msg_…, fc_…, rs_…"""
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(standard: Any) -> dict[str, Any]:
    """OpenAI Chat usage as the Responses API's (both count cached tokens inside the input tokens)."""
    standard = standard if isinstance(standard, dict) else {}
    prompt = count(standard.get("prompt_tokens")) or 0
    completion = count(standard.get("completion_tokens")) or 0
    cached, written = cache_counts(standard)
    completion_details = standard.get("completion_tokens_details")
    reasoning = count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else None
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning or 0},
        "total_tokens": prompt + completion,
    }


def status(finish_reason: Any) -> tuple[str, dict[str, Any] | None]:
    """The response's status and incomplete_details for a Chat finish reason."""
    reason = INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def skeleton(response_id: str, model: str, created_at: int, state: str = "in_progress") -> dict[str, Any]:
    """A response object without output; the stream's response.created and the answer share it."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": state,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": None,
        "metadata": {},
    }


def message_item(item_id: str, text: str, state: str = "completed") -> dict[str, Any]:
    part = output_text(text)
    return {"id": item_id, "type": "message", "role": "assistant", "status": state, "content": [part]}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(item_id: str, call_id: str, name: str, arguments: str, state: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": state,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def custom_input(arguments: str) -> str:
    """A custom (freeform) tool's input from the arguments of the function it was sent as: {"input": text}; any
    other arguments are kept whole rather than lost."""
    try:
        value = jsonutil.loads(arguments)
    except ValueError:
        return arguments
    text = value.get(CUSTOM_ARGUMENT) if isinstance(value, dict) else None
    return text if isinstance(text, str) else arguments


def custom_item(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "custom_tool_call",
        "call_id": call_id,
        "name": name,
        "input": custom_input(arguments),
    }


def with_custom_calls(answer: dict[str, Any], custom_tools: frozenset[str]) -> dict[str, Any]:
    """The answer with its calls of custom tools (sent to the provider as functions) as `custom_tool_call` items."""
    if custom_tools:
        answer["output"] = [
            custom_item(item["id"], item["call_id"], item["name"], item["arguments"])
            if item.get("type") == "function_call" and item.get("name") in custom_tools
            else item
            for item in answer["output"]
        ]
    return answer


def reasoning_item(item_id: str, text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
    if blocks:
        item["encrypted_content"] = seal(blocks)
    return item


def encode(standard: dict[str, Any]) -> dict[str, Any]:
    """The Responses `response` for a checked standard chat.completion."""
    choice = standard["choices"][0]
    msg = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning_content")
    blocks = msg.get(THINKING_BLOCKS) if isinstance(msg.get(THINKING_BLOCKS), list) else None
    if (isinstance(reasoning, str) and reasoning) or blocks:
        output.append(reasoning_item(new_id("rs"), reasoning if isinstance(reasoning, str) else "", blocks))
    text = msg.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(new_id("msg"), text))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        arguments = fn.get("arguments")
        output.append(
            call_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                fn.get("name") or "",
                arguments if isinstance(arguments, str) else "",
            )
        )
    created = standard.get("created")
    out = skeleton(new_id("resp"), standard.get("model") or "", created if isinstance(created, int) else now())
    out["status"], out["incomplete_details"] = status(choice.get("finish_reason"))
    out["output"] = output
    out["usage"] = usage(standard.get("usage"))
    return out


def now() -> int:
    return int(time.time())
