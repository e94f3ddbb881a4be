"""NDJSON: one JSON value per line."""

from __future__ import annotations

from typing import Any

from .common import _loads


class NDJSONDecoder:
    """One JSON value per line (NDJSON)."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode a chunk; return the parsed values of the lines it completed (blank lines skipped)."""
        if b"\n" not in chunk:
            if chunk:
                self._tail.append(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._tail:
            self._tail.append(lines[0])
            lines[0] = b"".join(self._tail)
        last = lines.pop()
        self._tail = [last] if last else []
        # Splitting on the byte "\n" never cuts a UTF-8 character: it cannot occur inside one.
        return [_loads(line, "line") for line in lines if line.strip()]  # strip() also drops "\r"

    def flush(self) -> list[Any]:
        """End of body: parse a last line that had no trailing newline."""
        line = b"".join(self._tail)
        self._tail = []
        return [_loads(line, "line")] if line.strip() else []
