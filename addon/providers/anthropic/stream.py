"""Streams: Anthropic SSE (Messages, or the legacy /v1/complete) -> OpenAI chunks."""

from __future__ import annotations

import json
import time
from typing import Any

from ... import jsonutil
from ...openai_format import new_id
from ...streaming import SSETranslator
from ...streams import SSEEvent
from ..base import Call, as_dict, as_str, uses_functions
from .common import LEGACY_FINISH_REASONS, finish_reason, usage_of, usage_so_far_of


class AnthropicStream(SSETranslator):
    """Translates an Anthropic Messages (or legacy completion) SSE stream into OpenAI chunks, event by event.

    Anthropic's block `index` counts every content block; OpenAI's tool-call `index` counts tool calls only,
    so tool blocks are renumbered (text and thinking blocks never shift it). A tool call whose input streams no
    fragment (a function without arguments) gets "{}" when its block stops, so the accumulated arguments are
    always JSON, as in the non-streamed answer. Usage comes from `message_start` (input) and the cumulative
    `message_delta` (output); the finish chunk is held until `message_stop` so usage can follow it. The record
    gets each count as it arrives, so a stream cut off after message_start still has its input tokens. The legacy
    /v1/complete stream carries no token counts at all: its record's usage stays null.
    """

    __slots__ = ("_finish", "_functions", "_no_arguments", "_tool_index", "_usage_raw")
    provider = "anthropic"
    incomplete = "ended before message_stop"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self._no_arguments: dict[int, Any] = {}  # Anthropic block index -> its start input, until a fragment comes
        self._functions = uses_functions(call)  # deprecated API: answer with delta.function_call
        self._usage_raw: dict[str, Any] = {}
        self._finish: str | None = None

    def _event(self, sse: SSEEvent) -> bytes:
        name, data = sse.event, sse.data
        if self._done or name == "ping":
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("anthropic sent an event that is not JSON")
        if not isinstance(event, dict):
            return b""  # not an event object: nothing to translate (unknown events are ignored too)
        kind = event.get("type", name)
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, event) if handler else b""  # unknown events are ignored (versioning policy)

    def _message_start(self, event: dict[str, Any]) -> bytes:
        message = as_dict(event.get("message"))
        self.out.set_model(as_str(message.get("model")))
        self._usage_raw.update(as_dict(message.get("usage")))
        self.out.note_usage(usage_so_far_of(self._usage_raw))
        return self.out.role()

    def _block_start(self, event: dict[str, Any]) -> bytes:
        block = as_dict(event.get("content_block"))
        block_index = _block_index(event)
        if block.get("type") == "tool_use" and block_index is not None and block_index not in self._tool_index:
            index = self._tool_index[block_index] = len(self._tool_index)
            self._no_arguments[block_index] = block.get("input") or {}
            return self._tool_start(index, as_str(block.get("id")) or new_id("call"), as_str(block.get("name")) or "")
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            return self.out.text(block["text"])
        if block.get("type") == "redacted_thinking":  # whole in its start event
            return self.out.reasoning_redacted(as_str(block.get("data")) or "")
        if block.get("type") == "thinking":  # usually empty: the text and signature come as deltas
            return self.out.reasoning(as_str(block.get("thinking")) or "") + self.out.reasoning_signature(
                as_str(block.get("signature")) or ""
            )
        return b""

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = as_dict(event.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta":
            return self.out.text(as_str(delta.get("text")) or "")
        if kind == "input_json_delta":
            block_index = _block_index(event)
            index = self._tool_index.get(block_index) if block_index is not None else None
            fragment = as_str(delta.get("partial_json"))
            if index is None or not fragment:
                return b""
            self._no_arguments.pop(block_index, None)
            return self._tool_arguments(index, fragment)
        if kind == "thinking_delta":
            return self.out.reasoning(as_str(delta.get("thinking")) or "")
        if kind == "signature_delta":  # ends its thinking block: the client must send it back with the text
            return self.out.reasoning_signature(as_str(delta.get("signature")) or "")
        return b""

    def _block_stop(self, event: dict[str, Any]) -> bytes:
        block_index = _block_index(event)
        if block_index is None or block_index not in self._no_arguments:
            return b""
        return self._tool_arguments(self._tool_index[block_index], json.dumps(self._no_arguments.pop(block_index)))

    def _tool_start(self, index: int, call_id: str, name: str) -> bytes:
        if not self._functions:
            return self.out.tool_call_start(index, call_id, name)
        if index > 0:
            return self._fail("anthropic answered a functions request with several tool calls")
        result = self.result
        if result.first_token_at is None:
            result.first_token_at = time.time()
        if result.tool_calls is not None:
            result.tool_calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}})
        return self.out.function_call_delta(name=name)

    def _tool_arguments(self, index: int, fragment: str) -> bytes:
        if not self._functions:
            return self.out.tool_call_arguments(index, fragment)
        if self.result.tool_calls:
            self.result.tool_calls[0]["function"]["arguments"] += fragment
        return self.out.function_call_delta(arguments=fragment)

    def _message_delta(self, event: dict[str, Any]) -> bytes:
        reason = as_dict(event.get("delta")).get("stop_reason")
        if reason:
            self._finish = finish_reason(reason)
        # Cumulative counts: the latest wins, but a null field (MessageDeltaUsage types all but output_tokens as
        # Optional) keeps the value message_start gave, as the SDK's own accumulator does.
        self._usage_raw.update({k: v for k, v in as_dict(event.get("usage")).items() if v is not None})
        self.out.note_usage(usage_so_far_of(self._usage_raw))
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        out = b"".join(self._block_stop({"index": i}) for i in list(self._no_arguments))  # blocks never stopped
        if self._done:
            return out
        self._done = True
        reason = self._finish or "stop"
        if self._functions and reason == "tool_calls":
            reason = "function_call"
        return out + self.out.finish(reason, usage_of(self._usage_raw))

    def _completion(self, event: dict[str, Any]) -> bytes:
        """Legacy /v1/complete stream: `completion` events carry text and finally a stop_reason."""
        out = b""
        if self.result.first_token_at is None and self.out.chat:
            out += self.out.role()
        out += self.out.text(as_str(event.get("completion")) or "")
        reason = event.get("stop_reason")
        if reason:
            self._done = True
            out += self.out.finish(
                LEGACY_FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop", None
            )
        return out

    def _error(self, event: dict[str, Any]) -> bytes:
        err = as_dict(event.get("error"))
        etype = as_str(err.get("type"))
        status = {"overloaded_error": 503, "rate_limit_error": 429, "api_error": 502}.get(etype or "", 502)
        return self._fail(
            as_str(err.get("message")) or "anthropic stream error",
            status=status,
            type=etype,
            code=etype or "stream_error",
        )


def _block_index(event: dict[str, Any]) -> int | None:
    """A content block's index (0 when absent, as in the oldest events); None when it is not an integer."""
    index = event.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else None


_HANDLERS = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "content_block_stop": AnthropicStream._block_stop,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
    "completion": AnthropicStream._completion,
    "error": AnthropicStream._error,
}
