"""OpenAI-format stream events (chat.completion.chunk) read into a stream writer, event by event: the client
format's writer (stream_bridge), or a provider's own reshaping of an OpenAI-shaped stream. Pure code."""

from __future__ import annotations

from typing import Any

from .chunks import StreamWriter
from .errors import ProxyError
from .streaming import FramedTranslator, read_chunk
from .streams import SSEEvent


class OpenAIChunkReader(FramedTranslator):
    """OpenAI chat.completion.chunk events in, a writer out. Subclasses override `_is_error`/`_stream_error`
    (the upstream's error events), `_first` (what the first chunk starts) and `_choices` (what a chunk says)."""

    __slots__ = ("_finish", "_started", "_tools", "_usage")
    incomplete = "ended before [DONE]"

    def __init__(self, writer: StreamWriter) -> None:
        self.out = writer
        self.result = writer.result
        self._decoder = None
        self._done = False
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._started = False
        self._tools: set[int] = set()

    def _event(self, sse: SSEEvent) -> bytes:
        data = sse.data
        if self._done:
            return b""
        if data == "[DONE]":
            self._done = True
            return self.out.finish(self._finish or "stop", self._usage)
        obj = read_chunk(data, self.provider, self._is_error)
        if isinstance(obj, str):
            return self._fail(obj)
        if obj is None:
            return b""
        if self._is_error(obj):
            self._done = True
            return self.out.error(self._stream_error(obj))
        out = b""
        if not self._started:
            self._started = True
            self.out.set_model(obj.get("model") if isinstance(obj.get("model"), str) else None)
            out = self._first()
        if isinstance(obj.get("usage"), dict):
            self._usage = obj["usage"]
            self.out.note_usage(self._usage)
        return out + self._choices(obj)

    def _is_error(self, obj: dict[str, Any]) -> bool:
        return bool(obj.get("error"))

    def _stream_error(self, obj: dict[str, Any]) -> ProxyError:
        err = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
        message = err.get("message") if isinstance(err.get("message"), str) else "upstream stream error"
        return ProxyError(502, message, code=err.get("code") if isinstance(err.get("code"), str) else None)

    def _first(self) -> bytes:
        return self.out.role()

    def _choices(self, obj: dict[str, Any]) -> bytes:
        out = b""
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out = b""
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str):
            out += self.out.reasoning(reasoning)
        if isinstance(delta.get("content"), str):
            out += self.out.text(delta["content"])
        calls = delta.get("tool_calls")
        for call in [calls] if isinstance(calls, dict) else calls or ():
            out += self._tool_call(call)
        if isinstance(choice.get("finish_reason"), str):
            self._finish = choice["finish_reason"]
        return out

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        fn = call.get("function") or {}
        out = b""
        if index not in self._tools:
            self._tools.add(index)
            call_id = call.get("id") if isinstance(call.get("id"), str) else ""
            out += self.out.tool_call_start(index, call_id, fn.get("name") if isinstance(fn.get("name"), str) else "")
        arguments = fn.get("arguments")
        if isinstance(arguments, str):
            out += self.out.tool_call_arguments(index, arguments)
        return out
