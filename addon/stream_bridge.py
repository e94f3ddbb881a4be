"""Streams for clients that do not speak OpenAI: every provider translator emits through the client format's writer.

Provider translators built on the shared skeleton (streaming.FramedTranslator) emit through `self.out`: the client
format's writer takes that place. Providers whose stream is already OpenAI's (OpenAI, Azure, Mistral, OpenAI-style
Llama and Hugging Face servers) pass chunks through (streaming.OpenAIPassthrough, with their own fixes); for another
client format those chunks are read once more, event by event, into the writer (OpenAIChunkReader). Providers never
learn which format the client spoke. Pure code."""

from __future__ import annotations

from typing import Any

from . import jsonutil
from .chunks import ChunkWriter, StreamResult, StreamWriter
from .errors import ProxyError
from .providers.base import Call, Provider
from .streaming import FramedTranslator, OpenAIPassthrough, StreamTranslator, chunk_problem
from .streams import SSEEvent


def client_translator(provider: Provider, call: Call, include_usage: bool, keep_payload: bool) -> StreamTranslator:
    """The translator of a 2xx stream, writing the client's format."""
    if call.writer is ChunkWriter:
        return provider.stream_translator(call, include_usage, keep_payload)
    # Usage is always asked of the provider's translator: the client format decides what its client sees.
    writer = call.writer(call.route_type, call.model or "", True, keep_payload)
    translator: Any = provider.stream_translator(call, True, False)
    if isinstance(translator, OpenAIPassthrough):
        return Reencoded(translator, writer)
    translator.out = writer  # the skeleton's translators (and those shaped like it) emit through `out`
    translator.result = writer.result
    return translator


class OpenAIChunkReader(FramedTranslator):
    """OpenAI chat.completion.chunk events in, the client format's writer out."""

    __slots__ = ("_finish", "_started", "_tools", "_usage")
    provider = "upstream"
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
        if data == "[DONE]":
            self._done = True
            return self.out.finish(self._finish or "stop", self._usage)
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("upstream sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if obj.get("error"):
            err = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
            self._done = True
            message = err.get("message") if isinstance(err.get("message"), str) else "upstream stream error"
            return self.out.error(
                ProxyError(502, message, code=err.get("code") if isinstance(err.get("code"), str) else None)
            )
        problem = chunk_problem(obj)
        if problem:
            return self._fail(f"upstream sent a malformed chunk: {problem}")
        out = b""
        if not self._started:
            self._started = True
            self.out.set_model(obj.get("model") if isinstance(obj.get("model"), str) else None)
            out = self.out.role()
        if isinstance(obj.get("usage"), dict):
            self._usage = obj["usage"]
            self.out.note_usage(self._usage)
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


class Reencoded:
    """A passthrough translator's OpenAI chunks (with the provider's own fixes) read into another format's writer."""

    __slots__ = ("inner", "reader", "result")

    def __init__(self, inner: OpenAIPassthrough, writer: StreamWriter) -> None:
        self.inner = inner
        self.reader = OpenAIChunkReader(writer)
        self.result: StreamResult = writer.result

    def feed(self, chunk: bytes) -> bytes:
        return self.reader.feed(self.inner.feed(chunk))

    def finish(self) -> bytes:
        out = self.reader.feed(self.inner.finish())
        return out + self.reader.finish()


__all__ = ["OpenAIChunkReader", "Reencoded", "client_translator"]
