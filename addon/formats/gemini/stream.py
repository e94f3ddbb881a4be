"""The Gemini stream writer: what provider translators emit (text, reasoning, tool calls, finish, error) as
streamGenerateContent chunks, each a whole GenerateContentResponse, as the google-genai SDK and gemini-cli read
them. With `alt=sse` every chunk is one `data: {...}` event; without it the chunks are the elements of one JSON
array streamed as it grows (`[{...}\\r\\n,{...}]`), Google's default form.

Text and thoughts (`thought: true` parts) go out as they arrive. A functionCall part carries its args as an
object, whole, in Gemini's own streams: Gemini's format cannot stream partial arguments, so a call goes out the
moment its arguments are complete — when the next call starts, text follows, or the stream finishes (then in the
final chunk, with finishReason and usageMetadata). Memory: the arguments of the calls not yet sent, and the
assembled answer for the record when payloads are kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import jsonutil
from ...chunks import StreamResult
from ...errors import ProxyError
from . import errors
from .response import chunk, finish_reason, function_call, new_id


@dataclass(slots=True)
class GeminiResult(StreamResult):
    """The record's view of a stream, and the stream's form, so an error written by the route (a timeout, a
    translation failure) ends the client's stream in the form it began in."""

    sse: bool = True
    opened: bool = False  # the JSON array's "[" is out


def frame(result: GeminiResult, data: bytes) -> bytes:
    """One chunk (or the error) in the stream's form."""
    if result.sse:
        return b"data: " + data + b"\r\n\r\n"
    if result.opened:
        return b"\r\n," + data
    result.opened = True
    return b"[" + data


def error_tail(result: GeminiResult, err: ProxyError) -> bytes:
    """The chunk that ends a stream with an error; the JSON array is closed after it."""
    result.error = err
    out = frame(result, errors.body(err))
    return out if result.sse else out + b"]"


class GeminiWriter:
    chat = True  # the chat route's writer (translators ask, as of ChunkWriter)
    __slots__ = ("_calls", "_sent", "_started", "id", "model", "result")

    def __init__(self, route_type: str, model: str, include_usage: bool, keep_payload: bool, sse: bool = True) -> None:
        self.id = new_id()
        self.model = model
        self.result = GeminiResult(model=model, sse=sse)
        if keep_payload:
            self.result.text, self.result.tool_calls, self.result.reasoning = [], [], []
        self._started = False  # a chunk is out
        self._calls: dict[int, list[Any]] = {}  # tool-call index -> [id, name, [argument fragments]], not yet sent
        self._sent: set[int] = set()

    def set_model(self, model: str | None) -> None:
        if model and not self._started:
            self.model = self.result.model = model

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None, usage: Any = None) -> bytes:
        if self.result.error is not None:
            return b""  # the stream has ended with its error
        self._started = True
        return frame(self.result, jsonutil.dumps(chunk(parts, self.model, self.id, finish, usage)))

    def _call_parts(self) -> list[dict[str, Any]]:
        """The function calls received whole, as parts; they leave the waiting list."""
        parts = [function_call(call_id, name, "".join(fragments)) for call_id, name, fragments in self._calls.values()]
        self._sent.update(self._calls)
        self._calls.clear()
        return parts

    def _flush_calls(self) -> bytes:
        return self._chunk(self._call_parts()) if self._calls else b""

    def role(self) -> bytes:
        return b""  # a Gemini stream has no opening event

    def text(self, text: str) -> bytes:
        if not text:
            return b""
        self.result.note_text(text)
        return self._flush_calls() + self._chunk([{"text": text}])

    def reasoning(self, text: str) -> bytes:
        if not text:
            return b""
        self.result.note_reasoning(text)
        return self._flush_calls() + self._chunk([{"text": text, "thought": True}])

    def reasoning_signature(self, signature: str) -> bytes:
        return b""  # another provider's reasoning signature is no Gemini thoughtSignature: nothing to say

    def reasoning_redacted(self, data: str) -> bytes:
        return b""  # nor its redacted reasoning

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        self.result.note_call(call_id, name)
        out = self._flush_calls()  # the calls before this one are complete
        self._calls[index] = [call_id, name, []]
        return out

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        if not fragment:
            return b""
        if index in self._sent:
            return self.error(ProxyError(502, "the provider sent more arguments of a function call already sent"))
        call = self._calls.get(index)
        if call is None:
            return b""
        call[2].append(fragment)
        self.result.note_arguments(index, fragment)
        return b""

    def note_usage(self, usage: dict[str, Any] | None) -> None:
        if usage is not None:
            self.result.usage = usage

    def finish(self, reason: str | None, final_usage: dict[str, Any] | None) -> bytes:
        self.result.note_finish(reason, final_usage)
        out = self._chunk(self._call_parts(), finish_reason(reason), self.result.usage)
        return out if self.result.sse or not out else out + b"]"

    def error(self, err: ProxyError) -> bytes:
        return b"" if self.result.error is not None else error_tail(self.result, err)
