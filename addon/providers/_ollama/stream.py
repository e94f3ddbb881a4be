"""Ollama NDJSON streams (`/api/chat`, `/api/generate`) -> OpenAI chunks."""

from __future__ import annotations

from typing import Any

from ...streaming import ChunkWriter, guarded, stream_error
from ...streams import NDJSONDecoder, StreamDecodeError
from ..base import Call, UpstreamFormatError
from .response import finish_reason, tool_call_out, tool_finish, usage_of


class OllamaStream:
    """Translates an Ollama NDJSON stream (`/api/chat` or `/api/generate`) into OpenAI chunks, line by line."""

    __slots__ = ("_decoder", "_done", "_started", "_tool_calls", "out", "provider", "result")

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool, provider: str) -> None:
        self.provider = provider
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder = NDJSONDecoder()
        self._started = False
        self._done = False
        self._tool_calls = 0  # tool calls emitted so far: the OpenAI index of the next one

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return b""
        # One line per chunk is the rule; a chunk holding several is decoded line by line, so that a malformed
        # line loses none of the good lines before it, wherever the chunk boundaries fall.
        out = b""
        start, end = 0, len(chunk)
        while start < end and not self._done:
            cut = chunk.find(b"\n", start, end - 1)
            stop = end if cut < 0 else cut + 1
            try:
                lines = self._decoder.feed(chunk[start:stop] if start or stop < end else chunk)
            except StreamDecodeError as e:
                return out + self._fail(f"{self.provider} (ollama) stream is malformed: {e}")
            out += b"".join(self._line(line) for line in lines)
            start = stop
        return out

    @guarded
    def finish(self) -> bytes:
        if self._done:
            return b""
        try:
            out = b"".join(self._line(line) for line in self._decoder.flush())
        except StreamDecodeError as e:
            return self._fail(f"{self.provider} (ollama) stream is malformed: {e}")
        if not self._done:
            out += self._fail(f"{self.provider} (ollama) stream ended before its final (done) line")
        return out

    def _fail(self, message: str, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, code=code))

    def _line(self, line: Any) -> bytes:
        if self._done or not isinstance(line, dict):
            return b""
        if "error" in line:
            err = line["error"]
            message = err.get("message") if isinstance(err, dict) else err
            return self._fail(str(message or "ollama stream error"), code="upstream_error")
        if line.get("done"):
            # Ollama counts tokens only in its final line (a stream cut before it has no usage); they go into the
            # record before the line is translated, so that a line that fails (a malformed tool call) keeps them.
            self.out.note_usage(usage_of(line))
        out = b""
        if not self._started:
            self._started = True
            self.out.set_model(line.get("model"))
            out += self.out.role()
        message = line.get("message")
        if isinstance(message, dict):
            if message.get("thinking"):
                out += self.out.reasoning(message["thinking"])
            content = message.get("content")
        else:
            if line.get("thinking"):
                out += self.out.reasoning(line["thinking"])
            content = line.get("response")
        if isinstance(content, str) and content:
            out += self.out.text(content)
        calls = message.get("tool_calls") if isinstance(message, dict) and self.out.chat else None
        if calls:
            # Ollama sends each call whole (in one line): id and name first, then the arguments in one fragment.
            if not isinstance(calls, list):
                return out + self._fail(f"{self.provider} (ollama) sent tool_calls that are not an array")
            for tc in calls:
                try:
                    call_id, name, arguments = tool_call_out(tc)
                except UpstreamFormatError as e:
                    return out + self._fail(f"{self.provider} (ollama) stream: {e}")
                index = self._tool_calls
                self._tool_calls += 1
                out += self.out.tool_call_start(index, call_id, name) + self.out.tool_call_arguments(index, arguments)
        if line.get("done"):
            self._done = True
            reason = tool_finish(finish_reason(line.get("done_reason")), self._tool_calls > 0)
            out += self.out.finish(reason, usage_of(line))
        return out
