"""Stream translation: the skeleton every provider's stream translator shares (any framing decoder, one end of
the stream, a last-resort guard), and the OpenAI-format stream passthrough. The writer side (what translators
emit through, and the record's StreamResult) is chunks.py, re-exported here.

Pure code: translators take upstream bytes and return the bytes to send the client, chunk by chunk, in
constant memory (the assembled answer is kept only when the rule records payloads).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from . import jsonutil
from .chunks import (  # noqa: F401 - the writer side, re-exported for the translators
    DONE,
    ChunkWriter,
    StreamResult,
    StreamWriter,
    stream_error,
    stream_error_event,
    usage_so_far,
)
from .errors import ProxyError
from .openai_format import CHAT
from .streams import SSEDecoder, StreamDecodeError

log = logging.getLogger(__name__)


class StreamTranslator(Protocol):
    result: StreamResult

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


def guarded[M: Callable[..., bytes]](method: M) -> M:
    """Last resort for a translator's feed/finish: an upstream event of a shape no translation foresaw ends the
    stream with an OpenAI error event (as any malformed stream does) instead of an exception, which the glue
    could only log with a traceback. The translator's bug shows at debug level, once per stream."""

    @functools.wraps(method)
    def run(self: Any, *args: Any) -> bytes:
        try:
            return method(self, *args)
        except Exception as e:  # the last resort described above
            if self._done:
                return b""  # already ended: nothing more may follow
            log.debug("%s: unexpected %s translating a stream", type(self).__name__, type(e).__name__, exc_info=True)
            self._done = True
            err = stream_error(
                f"the upstream stream could not be translated (unexpected {type(e).__name__})",
                code="bad_upstream_response",
            )
            writer = getattr(self, "out", None)
            if writer is not None:  # the client format's own error event
                return writer.error(err)
            self.result.error = err
            return b"data: " + jsonutil.dumps(err.envelope()) + b"\n\n"

    return run  # type: ignore[return-value]


class Decoder(Protocol):
    """A framing decoder (addon/streams/): bytes in, whole events out, constant memory."""

    def feed(self, chunk: bytes) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


class FramedTranslator:
    """The skeleton of every provider's stream translator: the body's framing decoder (chosen once, from the first
    bytes where the framing varies), each decoded event handed to `_event`, and one end of the stream — the
    provider's own, or an OpenAI error event if the upstream broke off or sent something malformed.

    Subclasses set `provider` and `incomplete`, implement `_event` (emitting through `self.out`), and override
    `_decoder_for` (framing other than SSE, or sniffed), `_decode` (where a chunk is decoded in parts) and
    `_body_ended` (where the end of the body is the end of the answer, or says more)."""

    __slots__ = ("_decoder", "_done", "out", "result")
    provider: ClassVar[str] = "upstream"
    incomplete: ClassVar[str] = "ended before its final event"  # what finish() says of a stream cut short

    def __init__(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> None:
        self.out = ChunkWriter(route_type, model, include_usage, keep_payload)
        self.result = self.out.result
        self._decoder: Decoder | None = None
        self._done = False

    def _decoder_for(self, chunk: bytes) -> tuple[Decoder, bytes] | None:
        """The decoder for this body and the bytes to feed it, from its first chunk(s); None while undecided
        (the subclass then keeps what it needs). SSE unless a subclass says otherwise."""
        return SSEDecoder(), chunk

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        if self._done or not chunk:
            return b""
        if self._decoder is None:
            chosen = self._decoder_for(chunk)
            if chosen is None:
                return b""
            self._decoder, chunk = chosen
        return self._decode(chunk)

    def _decode(self, chunk: bytes) -> bytes:
        """The events of a chunk, translated; a malformed chunk ends the stream."""
        assert self._decoder is not None
        try:
            events = self._decoder.feed(chunk)
        except StreamDecodeError as e:
            return self._fail(f"{self.provider} stream is malformed: {e}")
        if len(events) == 1:  # the usual case: upstreams flush event by event
            return self._event(events[0])
        return b"".join([self._event(e) for e in events if not self._done])

    @guarded
    def finish(self) -> bytes:
        if self._done:
            return b""
        out = b""
        if self._decoder is not None:
            try:
                out = b"".join([self._event(e) for e in self._decoder.flush() if not self._done])
            except StreamDecodeError as e:
                return self._fail(f"{self.provider} stream is malformed: {e}")
        if not self._done:
            out += self._body_ended()
        return out

    def _body_ended(self) -> bytes:
        """The body ended without the provider's final event."""
        return self._fail(f"{self.provider} stream {self.incomplete}")

    def _fail(self, message: str, status: int = 502, type: str | None = None, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, status=status, code=code, type=type))

    def _event(self, event: Any) -> bytes:
        raise NotImplementedError


SSETranslator = FramedTranslator  # the SSE case, by its older name


class OpenAIPassthrough:
    """An OpenAI-format stream passed through event by event; usage and the answer are captured on the way.

    When the proxy asked upstream for `stream_options.include_usage` on the client's behalf, the usage-only
    chunk is captured and not shown to the client, which did not ask for it. Usage is recorded from whichever
    chunk carries it, as it arrives (OpenAI sends it only in the last chunk before [DONE]; servers that
    count on every chunk update it each time), so a stream cut off after it keeps it.
    """

    __slots__ = ("_decoder", "_done", "hide_usage_chunk", "result", "route_type")

    def __init__(self, route_type: str, hide_usage_chunk: bool, keep_payload: bool) -> None:
        self.route_type = route_type
        self.hide_usage_chunk = hide_usage_chunk
        self.result = StreamResult()
        if keep_payload:
            self.result.text = []
            self.result.tool_calls = []
        self._decoder = SSEDecoder()
        self._done = False

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        try:
            events = self._decoder.feed(chunk)
        except StreamDecodeError as e:
            return self._fail(f"upstream stream is malformed: {e}")
        return b"".join(self._event(e.data) for e in events)

    @guarded
    def finish(self) -> bytes:
        out = b"".join(self._event(e.data) for e in self._decoder.flush())
        if not self._done and self.result.error is None:
            out += self._fail("upstream stream ended before [DONE]")
        return out

    def _fail(self, message: str) -> bytes:
        self.result.error = stream_error(message)
        self._done = True
        return b"data: " + self.result.error.body() + b"\n\n"

    def _event(self, data: str) -> bytes:
        if self._done:
            return b""
        if data == "[DONE]":
            self._done = True
            self.result.completed = True
            return DONE
        # The hot path of every OpenAI-format stream: read_chunk's steps, inlined (a call per event costs).
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail(f"{self.source} sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if obj.get("error") or (self.object_errors and obj.get("object") == "error"):
            self.result.error = self._stream_error(obj)
            self._done = True
            if self.error_passthrough:
                return f"data: {data}\n\n".encode()
            return b"data: " + self.result.error.body() + b"\n\n"
        problem = chunk_problem(obj)
        if problem:
            return self._fail(f"{self.source} sent a malformed chunk: {problem}")
        return self._chunk(obj, data)

    # ---- what a subclass (a provider whose stream is OpenAI's but for a few fixes) overrides ----
    source: ClassVar[str] = "upstream"  # who sent the stream, in error messages
    error_passthrough: ClassVar[bool] = True  # an upstream error event reaches the client as sent (else re-encoded)
    # An error event: a truthy `error` (as the OpenAI SDK: `"error": null` is no error), or also `object: error`.
    object_errors: ClassVar[bool] = False

    def _stream_error(self, obj: dict[str, Any]) -> ProxyError:
        err = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
        return ProxyError(502, str(err.get("message")), type=err.get("type"), code=err.get("code"))

    def _chunk(self, obj: dict[str, Any], data: str) -> bytes:
        """A well-formed chunk (`obj`, parsed from `data`): captured for the record and passed through."""
        self._capture(obj)
        if self.hide_usage_chunk and not obj.get("choices") and obj.get("usage"):
            return b""
        return f"data: {data}\n\n".encode()

    def _capture(self, obj: dict[str, Any]) -> None:
        """What the record keeps of a chunk that chunk_problem found well-formed."""
        result = self.result
        if isinstance(obj.get("model"), str) and obj["model"]:
            result.model = obj["model"]
        if isinstance(obj.get("usage"), dict):
            result.usage = obj["usage"]
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
                result.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") if self.route_type == CHAT else choice
            if not isinstance(delta, dict):
                continue
            text = delta.get("content") if self.route_type == CHAT else delta.get("text")
            if isinstance(text, str) and text:
                if result.first_token_at is None:
                    result.first_token_at = time.time()
                if result.text is not None:
                    result.text.append(text)
            calls = delta.get("tool_calls")
            if isinstance(calls, list) and calls:
                if result.first_token_at is None:
                    result.first_token_at = time.time()
                if result.tool_calls is not None:
                    _merge_tool_calls(result.tool_calls, calls)


def _merge_tool_calls(calls: list[dict[str, Any]], deltas: Any) -> None:
    for d in deltas if isinstance(deltas, list) else ():
        if not isinstance(d, dict):
            continue
        index = d.get("index", 0)
        if not _is_index(index):
            continue
        while len(calls) <= index:
            calls.append({"id": None, "type": "function", "function": {"name": None, "arguments": ""}})
        fn = d.get("function") if isinstance(d.get("function"), dict) else {}
        if isinstance(d.get("id"), str) and d["id"]:
            calls[index]["id"] = d["id"]
        if isinstance(fn.get("name"), str) and fn["name"]:
            calls[index]["function"]["name"] = fn["name"]
        if isinstance(fn.get("arguments"), str):
            calls[index]["function"]["arguments"] += fn["arguments"]


MAX_INDEX = 1024  # choices and tool calls of one answer: an index beyond this is no real upstream's


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INDEX


def read_chunk(data: str, source: str, is_error: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | str | None:
    """An OpenAI-format stream event's JSON object (error events included: `is_error` tells them); a string: why the
    event is malformed, for the stream's error event; None: an event that is no object, skipped."""
    try:
        obj = jsonutil.loads(data)
    except ValueError:
        return f"{source} sent an event that is not JSON"
    if not isinstance(obj, dict):
        return None
    if not is_error(obj):
        problem = chunk_problem(obj)
        if problem:
            return f"{source} sent a malformed chunk: {problem}"
    return obj


def chunk_problem(obj: dict[str, Any]) -> str | None:
    """What is wrong with an OpenAI-format stream chunk where the proxy reads it (None: nothing). The shapes of
    choices, deltas and tool calls are checked; the values the translators read are type-checked where read."""
    if obj.get("usage") is not None and not isinstance(obj["usage"], dict):
        return "'usage' is not an object"
    choices = obj.get("choices")
    if choices is None:
        return None
    if not isinstance(choices, list):
        return "'choices' is not an array"
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict) or not _is_index(choice.get("index", 0)):
            return f"choices[{i}] is not an object with an index"
        if choice.get("finish_reason") is not None and not isinstance(choice["finish_reason"], str):
            return f"choices[{i}].finish_reason is not a string"
        delta = choice.get("delta")
        if delta is None:
            continue
        if not isinstance(delta, dict):
            return f"choices[{i}].delta is not an object"
        calls = delta.get("tool_calls")
        if calls is None:
            continue
        if isinstance(calls, dict):  # TGI sends one call as an object: the translators take it as one
            calls = [calls]
        if not isinstance(calls, list):
            return f"choices[{i}].delta.tool_calls is not an array"
        for call in calls:
            if not isinstance(call, dict) or not _is_index(call.get("index", 0)):
                return f"choices[{i}].delta.tool_calls holds a call that is not an object with an index"
            if call.get("function") is not None and not isinstance(call["function"], dict):
                return f"choices[{i}].delta.tool_calls holds a function that is not an object"
    return None
