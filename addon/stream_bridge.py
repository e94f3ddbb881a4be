"""Streams for clients that do not speak OpenAI: every provider translator emits through the client format's writer.

Provider translators built on the shared skeleton (streaming.FramedTranslator) emit through `self.out`: the client
format's writer takes that place. Providers whose stream is already OpenAI's (OpenAI itself and the OpenAI-compatible
servers) pass chunks through (streaming.OpenAIPassthrough, with their own fixes); for another
client format those chunks are read once more, event by event, into the writer (OpenAIChunkReader). Providers never
learn which format the client spoke. Pure code."""

from __future__ import annotations

from typing import Any

from .chunk_reader import OpenAIChunkReader
from .chunks import ChunkWriter, StreamResult, StreamWriter
from .providers.base import Call, Provider
from .streaming import OpenAIPassthrough, StreamTranslator


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
