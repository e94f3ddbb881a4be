"""text/event-stream (SSE), per the WHATWG parsing rules."""

from __future__ import annotations

import codecs
from typing import NamedTuple


class SSEEvent(NamedTuple):
    """One dispatched server-sent event (a NamedTuple: built once per event on the hot path, cheaply)."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """text/event-stream, per the WHATWG parsing rules."""

    __slots__ = ("_data", "_decoder", "_event", "_last_id", "_retry", "_skip_lf", "_tail")

    def __init__(self) -> None:
        # utf-8-sig drops a BOM only at stream start (even one split across chunks); "replace" because a
        # stray invalid byte from upstream must not kill the whole stream.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._tail: list[str] = []  # pieces of the current incomplete line, joined once it completes
        self._skip_lf = False  # the previous text ended in "\r": a leading "\n" belongs to that line end
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None  # persists across events, as the spec's "last event ID" does
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode a chunk; return the events whose terminating blank line it completed."""
        text = self._decoder.decode(chunk)
        if not text:  # e.g. only the first bytes of a multibyte character: keep _skip_lf as it is
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._tail.append(text)
            return []
        lines = text.split("\n")
        if self._tail:
            self._tail.append(lines[0])
            lines[0] = "".join(self._tail)
        last = lines.pop()
        self._tail = [last] if last else []
        return self._lines(lines)

    def flush(self) -> list[SSEEvent]:
        """End of body: dispatch a last event that lacked its blank line; the decoder is then empty."""
        text = self._decoder.decode(b"", final=True)
        if self._skip_lf and text[:1] == "\n":
            text = text[1:]
        self._skip_lf = False
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if text else [""]
        if self._tail:
            lines[0] = "".join(self._tail) + lines[0]
            self._tail = []
        lines.append("")  # the missing blank line
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line.startswith("data:"):  # the common case first: no partition, no field comparisons
                data.append(line[6:] if line[5:6] == " " else line[5:])
                continue
            if not line:
                # An event is dispatched only if it had a data line; event/retry are reset regardless.
                if data:
                    text = data[0] if len(data) == 1 else "\n".join(data)
                    out.append(SSEEvent(text, self._event or "message", self._last_id, self._retry))
                    data.clear()
                self._event = ""
                self._retry = None
                continue
            if line[0] == ":":  # comment (keep-alive)
                continue
            field, _, value = line.partition(":")
            if value[:1] == " ":  # exactly one optional space: "data:x" and "data: x" are the same
                value = value[1:]
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._event = value
            elif field == "id" and "\0" not in value:
                self._last_id = value
            elif field == "retry" and value.isascii() and value.isdigit():  # isdigit alone accepts "²"
                self._retry = int(value)
            # Unknown fields, an id with NUL and a non-numeric retry are ignored.
        return out
