"""Stream translation to the OpenAI format: the chunk writer every provider translator emits through, the
result that feeds the audit record, and the OpenAI-format passthrough (OpenAI, Azure).

Pure code: translators take upstream bytes and return the bytes to send the client, chunk by chunk, in
constant memory (the assembled answer is kept only when the rule records payloads).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from . import jsonutil
from .errors import ProxyError
from .openai_format import CHAT, new_id
from .streams import SSEDecoder, StreamDecodeError

DONE = b"data: [DONE]\n\n"
log = logging.getLogger(__name__)


class StreamTranslator(Protocol):
    result: StreamResult

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


@dataclass(slots=True)
class StreamResult:
    """What the audit record needs from a stream, filled in as it passes."""

    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None  # the counts as they arrive, not only at the end: a cut stream keeps them
    first_token_at: float | None = None
    error: ProxyError | None = None
    completed: bool = False  # the upstream ended its stream properly
    text: list[str] | None = None  # assembled content, only when payloads are recorded
    tool_calls: list[dict[str, Any]] | None = None
    reasoning: list[str] | None = None

    def assembled(self, route_type: str, id: str) -> dict[str, Any] | None:
        """The whole answer as one OpenAI response object, for the audit record."""
        if self.text is None:
            return None
        text = "".join(self.text)
        if route_type == CHAT:
            message: dict[str, Any] = {"role": "assistant", "content": text if text or not self.tool_calls else None}
            if self.tool_calls:
                message["tool_calls"] = self.tool_calls
            if self.reasoning:
                message["reasoning_content"] = "".join(self.reasoning)
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": self.finish_reason}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": self.finish_reason}
            obj = "text_completion"
        out: dict[str, Any] = {"id": id, "object": obj, "model": self.model, "choices": [choice]}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


class StreamWriter(Protocol):
    """What a provider's stream translator emits through, whatever the client's format: each call returns the
    bytes of that format's events (empty when the format has nothing to say), and `result` feeds the record."""

    result: StreamResult

    def set_model(self, model: str | None) -> None: ...

    def role(self) -> bytes: ...

    def text(self, text: str) -> bytes: ...

    def reasoning(self, text: str) -> bytes: ...

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes: ...

    def tool_call_arguments(self, index: int, fragment: str) -> bytes: ...

    def note_usage(self, usage: dict[str, Any] | None) -> None: ...

    def finish(self, reason: str | None, usage: dict[str, Any] | None) -> bytes: ...

    def error(self, err: ProxyError) -> bytes: ...


class ChunkWriter:
    """Emits OpenAI stream events (`chat.completion.chunk` or `text_completion`) for one response.

    The constant part of every chunk is serialised once; a text delta costs one serialisation of its text.
    """

    __slots__ = ("_head", "_text_tail", "chat", "id", "include_usage", "model", "result")

    def __init__(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> None:
        self.chat = route_type == CHAT
        self.id = new_id("chatcmpl" if self.chat else "cmpl")
        self.model = model
        self.include_usage = include_usage
        self.result = StreamResult(model=model)
        if keep_payload:
            self.result.text = []
            if self.chat:
                self.result.tool_calls = []
                self.result.reasoning = []
        self._set_head()

    def _set_head(self) -> None:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        head = jsonutil.dumps({"id": self.id, "object": obj, "created": int(time.time()), "model": self.model})
        choices = b'"choices":[{"index":0,"delta":{"content":' if self.chat else b'"choices":[{"text":'
        self._head = b"data: " + head[:-1] + b"," + choices
        usage_null = b',"usage":null' if self.include_usage else b""
        if self.chat:
            self._text_tail = b'},"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"
        else:
            self._text_tail = b',"index":0,"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"

    def set_model(self, model: str | None) -> None:
        """The upstream's own model name, when it tells us before the first chunk."""
        if model and model != self.model:
            self.model = model
            self.result.model = model
            self._set_head()

    def _chunk(self, choice: dict[str, Any] | None, usage: Any = None, with_usage: bool = False) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice] if choice is not None else [],
        }
        if self.include_usage or with_usage:
            body["usage"] = usage
        return b"data: " + jsonutil.dumps(body) + b"\n\n"

    def role(self) -> bytes:
        if not self.chat:
            return b""
        return self._chunk(
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
        )

    def text(self, text: str) -> bytes:
        if not text:
            return b""
        if self.result.first_token_at is None:
            self.result.first_token_at = time.time()
        if self.result.text is not None:
            self.result.text.append(text)
        return self._head + jsonutil.dumps(text) + self._text_tail

    def reasoning(self, text: str) -> bytes:
        if not text or not self.chat:
            return b""
        if self.result.reasoning is not None:
            self.result.reasoning.append(text)
        return self._chunk({"index": 0, "delta": {"reasoning_content": text}, "logprobs": None, "finish_reason": None})

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        if self.result.first_token_at is None:
            self.result.first_token_at = time.time()
        if self.result.tool_calls is not None:
            self.result.tool_calls.append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            )
        delta = {
            "tool_calls": [
                {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            ]
        }
        return self._chunk({"index": 0, "delta": delta, "logprobs": None, "finish_reason": None})

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        if not fragment:
            return b""
        calls = self.result.tool_calls
        if calls is not None and index < len(calls):
            calls[index]["function"]["arguments"] += fragment
        delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
        return self._chunk({"index": 0, "delta": delta, "logprobs": None, "finish_reason": None})

    def function_call_delta(self, name: str | None = None, arguments: str = "") -> bytes:
        """A deprecated `delta.function_call` fragment (clients of the `functions` API): name first, then the
        arguments in pieces."""
        function_call: dict[str, Any] = {"arguments": arguments}
        if name is not None:
            function_call = {"name": name, "arguments": arguments}
        return self._chunk(
            {"index": 0, "delta": {"function_call": function_call}, "logprobs": None, "finish_reason": None}
        )

    def note_usage(self, usage: dict[str, Any] | None) -> None:
        """Usage that arrived before the end of the stream goes into the record at once, so a stream cut off
        later (by the client, the upstream or the proxy) is recorded with it. The client sees nothing of it
        here: its usage chunk still comes only with `finish`. None (nothing counted) changes nothing."""
        if usage is not None:
            self.result.usage = usage

    def finish(self, reason: str | None, usage: dict[str, Any] | None) -> bytes:
        """The finish chunk, the usage chunk when the client asked for it, and [DONE]. A final usage of None
        keeps in the record what `note_usage` had recorded (the client's usage chunk says null, as it did)."""
        self.result.finish_reason = reason
        self.note_usage(usage)
        self.result.completed = True
        if self.chat:
            choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        else:
            choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": reason}
        out = self._chunk(choice)
        if self.include_usage:
            out += self._chunk(None, usage, with_usage=True)
        return out + DONE

    def error(self, err: ProxyError) -> bytes:
        """An OpenAI-style error event (the SDKs raise on it); the stream ends after it."""
        self.result.error = err
        return b"data: " + jsonutil.dumps(err.envelope()) + b"\n\n"


def stream_error_event(result: StreamResult, err: ProxyError) -> bytes:
    """An OpenAI-style error event that ends a stream; the result keeps the error for the record."""
    result.error = err
    return b"data: " + jsonutil.dumps(err.envelope()) + b"\n\n"


def usage_so_far(prompt_tokens: int, completion_tokens: int | None, cached_tokens: int | None = None) -> dict[str, Any]:
    """OpenAI usage of a stream that has not ended: the prompt count has arrived, the completion count may not
    have (null then, never a guess); total_tokens is the sum of the counts known, so it stays consistent."""
    out: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + (completion_tokens or 0),
    }
    if cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return out


def stream_error(message: str, *, status: int = 502, code: str = "stream_error", type: str | None = None) -> ProxyError:
    return ProxyError(status, message, code=code, type=type or "server_error")


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
            self.result.error = stream_error(
                f"the upstream stream could not be translated (unexpected {type(e).__name__})",
                code="bad_upstream_response",
            )
            return b"data: " + jsonutil.dumps(self.result.error.envelope()) + b"\n\n"

    return run  # type: ignore[return-value]


class Decoder(Protocol):
    """A framing decoder (streams.py): bytes in, whole events out, constant memory."""

    def feed(self, chunk: bytes) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


class FramedTranslator:
    """The skeleton of every provider's stream translator: the body's framing decoder (chosen once, from the first
    bytes where the framing varies), each decoded event handed to `_event`, and one end of the stream — the
    provider's own, or an OpenAI error event if the upstream broke off or sent something malformed.

    Subclasses set `provider` and `incomplete`, implement `_event` (emitting through `self.out`), and override
    `_decoder_for` (framing other than SSE, or sniffed) and `_body_ended` (where the end of the body is the end
    of the answer)."""

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
    chunk carries it, as it arrives (OpenAI and Azure send it only in the last chunk before [DONE]; servers that
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
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("upstream sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if obj.get("error"):  # as the OpenAI SDK: an `"error": null` field is no error
            err = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
            self.result.error = ProxyError(502, str(err.get("message")), type=err.get("type"), code=err.get("code"))
            self._done = True
            return f"data: {data}\n\n".encode()
        problem = chunk_problem(obj)
        if problem:
            return self._fail(f"upstream sent a malformed chunk: {problem}")
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
