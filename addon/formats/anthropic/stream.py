"""The Anthropic stream writer: what provider translators emit (role, text, reasoning, tool calls, finish, error)
as Anthropic Messages SSE events, in the order the anthropic SDK's `messages.stream()` accumulator and Claude Code
read them: message_start, then per block content_block_start / content_block_delta... / content_block_stop,
then message_delta (stop reason, final usage) and message_stop. Tool arguments are sent as `input_json_delta`
the moment they arrive. Constant memory: only the assembled answer for the record when payloads are kept."""

from __future__ import annotations

import time
from typing import Any

from ... import jsonutil
from ...chunks import StreamResult
from ...errors import ProxyError
from . import errors
from .response import matched_sequence, new_id, stop_reason, usage

_STOP_TEXT = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + jsonutil.dumps(data) + b"\n\n"


class AnthropicWriter:
    chat = True  # the chat route's writer (translators ask, as of ChunkWriter)
    __slots__ = ("_block", "_index", "_kind", "_started", "_tool_blocks", "id", "model", "result")

    def __init__(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> None:
        self.id = new_id("msg")
        self.model = model
        self.result = StreamResult(model=model)
        if keep_payload:
            self.result.text, self.result.tool_calls, self.result.reasoning = [], [], []
        self._started = False
        self._index = -1  # the last block started
        self._kind: str | None = None  # the kind of the open text/thinking block (None: none open)
        self._block: int | None = None  # the index of the open block
        self._tool_blocks: dict[int, int] = {}  # tool-call index -> block index

    def set_model(self, model: str | None) -> None:
        if model and not self._started:
            self.model = self.result.model = model

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(self.result.usage),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def role(self) -> bytes:
        return self._start()

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        out = _STOP_TEXT + str(self._block).encode() + b"}\n\n"
        self._block = self._kind = None
        return out

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._start() + self._close()
        self._index += 1
        self._block, self._kind = self._index, kind
        return out + _event(
            "content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block}
        )

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def text(self, text: str) -> bytes:
        if not text:
            return b""
        result = self.result
        if result.first_token_at is None:
            result.first_token_at = time.time()
        if result.text is not None:
            result.text.append(text)
        out = b"" if self._kind == "text" else self._open("text", {"type": "text", "text": ""})
        assert self._block is not None
        return out + self._delta(self._block, {"type": "text_delta", "text": text})

    def reasoning(self, text: str) -> bytes:
        if not text:
            return b""
        if self.result.reasoning is not None:
            self.result.reasoning.append(text)
        out = (
            b""
            if self._kind == "thinking"
            else self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        )
        assert self._block is not None
        return out + self._delta(self._block, {"type": "thinking_delta", "thinking": text})

    def reasoning_signature(self, signature: str) -> bytes:
        """A signature_delta on the thinking block it signs (opened empty if the provider sent no text first)."""
        if not signature:
            return b""
        out = (
            b""
            if self._kind == "thinking"
            else self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        )
        assert self._block is not None
        out += self._delta(self._block, {"type": "signature_delta", "signature": signature})
        self._kind = None  # the signature ends its thinking block: reasoning after it opens a new one
        return out

    def reasoning_redacted(self, data: str) -> bytes:
        """A redacted_thinking block, whole in its start event as Anthropic streams it."""
        if not data:
            return b""
        return self._open("redacted_thinking", {"type": "redacted_thinking", "data": data}) + self._close()

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        result = self.result
        if result.first_token_at is None:
            result.first_token_at = time.time()
        if result.tool_calls is not None:
            result.tool_calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}})
        out = self._open("tool_use", {"type": "tool_use", "id": call_id or new_id("toolu"), "name": name, "input": {}})
        self._kind = None  # text after a tool call opens a new block
        self._tool_blocks[index] = self._index
        return out

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        block = self._tool_blocks.get(index)
        if not fragment or block is None:
            return b""
        calls = self.result.tool_calls
        if calls is not None and index < len(calls):
            calls[index]["function"]["arguments"] += fragment
        return self._delta(block, {"type": "input_json_delta", "partial_json": fragment})

    def note_usage(self, usage: dict[str, Any] | None) -> None:
        if usage is not None:
            self.result.usage = usage

    def finish(self, reason: str | None, final_usage: dict[str, Any] | None) -> bytes:
        result = self.result
        result.finish_reason = reason
        self.note_usage(final_usage)
        result.completed = True
        out = self._start() + self._close()
        sequence = result.stop_sequence
        delta = {"stop_reason": stop_reason(reason, sequence), "stop_sequence": matched_sequence(sequence)}
        out += _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage(result.usage)})
        return out + b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

    def error(self, err: ProxyError) -> bytes:
        self.result.error = err
        return errors.event(err)
