"""Streams: ConverseStream (AWS eventstream) -> OpenAI chunks."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...errors import default_error_type
from ...streaming import Decoder, FramedTranslator
from ...streams import EventStreamDecoder, EventStreamMessage
from ..base import Call, as_str
from .common import (
    _client_status,
    _exception_status,
    _json_object,
    decode_tool_id,
    finish_reason,
    stop_sequence_of,
    usage_of,
)


class BedrockStream(FramedTranslator):
    """Translates a ConverseStream eventstream into OpenAI chunks, frame by frame.

    Payloads are the event member's shape, not wrapped, with a random `p` padding key (ignored). Usage comes in
    the `metadata` event AFTER `messageStop`, so the finish chunk is held until metadata (or the end of the
    stream) so the usage chunk can follow it. `contentBlockIndex` counts every block; OpenAI's tool-call index
    counts tool calls only, so tool blocks are renumbered. An exception frame becomes an OpenAI error event.
    ConverseStream sends no token count before `metadata`: a stream cut off before it is recorded without usage.
    """

    __slots__ = ("_call", "_finish", "_metadata_seen", "_no_arguments", "_started", "_stopped", "_tool_index", "_usage")
    provider = "bedrock"
    incomplete = "ended before messageStop"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._call = call
        self._tool_index: dict[Any, int] = {}  # contentBlockIndex -> OpenAI tool-call index
        self._no_arguments: set[Any] = set()  # tool blocks that streamed no input fragment yet
        self._started = False
        self._stopped = False
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._metadata_seen = False

    def _decoder_for(self, chunk: bytes) -> tuple[Decoder, bytes]:
        return EventStreamDecoder(), chunk

    def _body_ended(self) -> bytes:
        if self._stopped:  # messageStop came but no metadata: finish without usage
            self._done = True
            return self.out.finish(self._finish, None)
        return super()._body_ended()

    def _fail(self, message: str, status: int = 502, type: str | None = None, code: str = "stream_error") -> bytes:
        # The error type follows the status (a throttled stream is a rate-limit error), not always server_error.
        return super()._fail(message, status, type or default_error_type(status), code)

    def _event(self, msg: EventStreamMessage) -> bytes:
        headers = msg.headers
        kind = headers.get(":message-type", "event")
        if kind == "exception":
            return self._exception(headers.get(":exception-type"), msg.payload)
        if kind == "error":
            code = headers.get(":error-code")
            return self._fail(
                str(headers.get(":error-message") or f"bedrock stream error {code or ''}").strip(),
                status=_client_status(_exception_status(code) or 502),
                code=code or "stream_error",
            )
        handler = _HANDLERS.get(headers.get(":event-type", ""))
        if handler is None:
            return b""  # unknown events are ignored (versioning policy)
        try:
            event = jsonutil.loads(msg.payload) if msg.payload else {}
        except ValueError:
            return self._fail("bedrock sent an event that is not JSON")
        if not isinstance(event, dict):
            return self._fail("bedrock sent an event that is not a JSON object")
        return handler(self, event)

    def _exception(self, name: Any, payload: bytes) -> bytes:
        data = _json_object(payload)
        message = data.get("message") or data.get("Message")
        name = name if isinstance(name, str) and name else None
        status = _client_status(_exception_status(name) or 502)
        return self._fail(
            str(message or f"bedrock stream failed: {name or 'unknown exception'}"), status, code=name or "stream_error"
        )

    def _role(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.out.role()

    def _message_start(self, event: dict[str, Any]) -> bytes:
        return self._role()

    def _block_start(self, event: dict[str, Any]) -> bytes:
        start = event.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return b""
        block_index = _block_index(event)
        if block_index < 0 or block_index in self._tool_index:
            return b""  # not a block of this answer, or one that already started
        out = self._role()
        index = self._tool_index[block_index] = len(self._tool_index)
        self._no_arguments.add(block_index)
        return out + self.out.tool_call_start(
            index, decode_tool_id(use.get("toolUseId")), as_str(use.get("name")) or ""
        )

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return b""
        if isinstance(delta.get("text"), str):
            return self._role() + self.out.text(delta["text"])
        if isinstance(delta.get("toolUse"), dict):
            block_index = _block_index(event)
            index = self._tool_index.get(block_index)
            fragment = delta["toolUse"].get("input")
            if index is None or not isinstance(fragment, str) or not fragment:
                return b""
            self._no_arguments.discard(block_index)
            return self.out.tool_call_arguments(index, fragment)
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._role() + self.out.reasoning(reasoning["text"])
        if isinstance(reasoning, dict) and isinstance(reasoning.get("signature"), str):
            return self._role() + self.out.reasoning_signature(reasoning["signature"])
        if isinstance(reasoning, dict) and isinstance(reasoning.get("redactedContent"), str):
            return self._role() + self.out.reasoning_redacted(reasoning["redactedContent"])
        return b""  # citations: nothing the writers show

    def _block_stop(self, event: dict[str, Any]) -> bytes:
        """A tool call whose input streamed no fragment (a function without parameters) gets "{}", as the
        non-streamed answer's `input: {}` does, so the accumulated arguments are always JSON."""
        block_index = _block_index(event)
        if block_index not in self._no_arguments:
            return b""
        self._no_arguments.discard(block_index)
        return self.out.tool_call_arguments(self._tool_index[block_index], "{}")

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        out = b"".join(self._block_stop({"contentBlockIndex": i}) for i in list(self._no_arguments))  # never stopped
        self._stopped = True
        self._finish = finish_reason(event.get("stopReason")) or "stop"
        self.result.stop_sequence = stop_sequence_of(self._call, event)
        if self._metadata_seen:  # metadata came first (not what Bedrock does, but complete either way)
            self._done = True
            return out + self.out.finish(self._finish, self._usage)
        return out

    def _metadata(self, event: dict[str, Any]) -> bytes:
        self._usage = usage_of(event.get("usage"))
        self.out.note_usage(self._usage)  # in the record at once, should the stream be cut before messageStop
        self._metadata_seen = True
        if self._stopped:
            self._done = True
            return self.out.finish(self._finish, self._usage)
        return b""


_HANDLERS = {
    "messageStart": BedrockStream._message_start,
    "contentBlockStart": BedrockStream._block_start,
    "contentBlockDelta": BedrockStream._block_delta,
    "contentBlockStop": BedrockStream._block_stop,
    "messageStop": BedrockStream._message_stop,
    "metadata": BedrockStream._metadata,
}


def _block_index(event: dict[str, Any]) -> int:
    """The event's contentBlockIndex; anything but an integer counts as block -1, which no block start has."""
    index = event.get("contentBlockIndex", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else -1
