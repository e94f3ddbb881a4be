"""A JSON array streamed element by element."""

from __future__ import annotations

import re
from typing import Any, NoReturn

from .common import StreamDecodeError, _excerpt, _loads

# Inside an element, outside strings: skip in one C-level match everything that cannot change the nesting,
# whole string literals included, so Python only sees brackets (and the quote of a string cut by the chunk).
_SKIP = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
# Inside a string: consume as many whole characters and escape pairs as possible in one C-level match; it
# stops at the closing quote, at the end of the data, or at a lone "\" at the very end (escape split).
_STR_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_WS = re.compile(rb"[ \t\r\n]*")
_SCALAR_END = re.compile(rb"[ \t\r\n,\]]")

# Where we are between elements.
_START, _FIRST, _AFTER, _NEXT, _DONE = range(5)
_QUOTE = 0x22


class JSONArrayDecoder:
    """A JSON array streamed element by element (a streaming API answered without SSE framing)."""

    __slots__ = ("_depth", "_esc", "_in_elem", "_in_str", "_parts", "_pos", "_scalar", "_state")

    def __init__(self) -> None:
        self._state = _START
        self._in_elem = False
        self._depth = 0  # nesting inside the current element
        self._in_str = False
        self._esc = False  # the chunk ended right after a "\" inside a string
        self._scalar = False  # the current element is a number/true/false/null
        self._parts: list[bytes] = []  # earlier chunks' bytes of the current element
        self._pos = 0  # stream offset of the current chunk, for error messages

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode a chunk; return every top-level element it completed, parsed."""
        out: list[Any] = []
        n = len(chunk)
        i = 0
        start = 0  # where the current element begins in this chunk
        while i < n:
            if not self._in_elem:
                i = _WS.match(chunk, i).end()
                if i == n:
                    break
                c = chunk[i]
                state = self._state
                if state == _AFTER:
                    if c == 0x2C:  # ","
                        self._state = _NEXT
                    elif c == 0x5D:  # "]"
                        self._state = _DONE
                    else:
                        self._syntax(chunk, i, "',' or ']' after an element")
                    i += 1
                    continue
                if state == _START:
                    if c != 0x5B:  # "["
                        self._syntax(chunk, i, "'[' at the start of the body")
                    self._state = _FIRST
                    i += 1
                    continue
                if state == _DONE:
                    self._syntax(chunk, i, "nothing after the closing ']'")
                if c == 0x5D and state == _FIRST:  # empty array
                    self._state = _DONE
                    i += 1
                    continue
                if c in b",]":
                    self._syntax(chunk, i, "an element")
                self._in_elem = True
                start = i
                i += 1
                if c == 0x7B or c == 0x5B:  # "{" or "["
                    self._depth = 1
                elif c == _QUOTE:
                    self._in_str = True
                else:
                    self._scalar = True
                continue
            # Inside an element.
            end = -1
            if self._esc:  # the byte after a split "\" is escaped, whatever it is
                self._esc = False
                i += 1
            elif self._in_str:
                j = _STR_BODY.match(chunk, i).end()
                if j == n:
                    i = n
                elif chunk[j] == _QUOTE:
                    self._in_str = False
                    i = j + 1
                    if self._depth == 0:  # a top-level string element
                        end = i
                else:  # a "\" as the last byte
                    self._esc = True
                    i = n
            elif self._scalar:
                m = _SCALAR_END.search(chunk, i)
                if m is None:
                    i = n
                else:
                    i = end = m.start()  # the delimiter is left for the between-elements code
            else:
                j = _SKIP.match(chunk, i).end()
                if j == n:
                    i = n
                else:
                    c = chunk[j]
                    i = j + 1
                    if c == _QUOTE:  # a string the chunk cuts off
                        self._in_str = True
                    elif c == 0x7B or c == 0x5B:
                        self._depth += 1
                    else:
                        self._depth -= 1
                        if self._depth == 0:  # mismatched brackets are left for json.loads to reject
                            end = i
            if end >= 0:
                raw = chunk[start:end]
                if self._parts:
                    self._parts.append(raw)
                    raw = b"".join(self._parts)
                    self._parts = []
                out.append(_loads(raw, f"array element before offset {self._pos + end}"))
                self._in_elem = self._scalar = False
                self._state = _AFTER
        if self._in_elem:
            self._parts.append(chunk[start:] if start else chunk)
        self._pos += n
        return out

    def flush(self) -> list[Any]:
        """End of body: a body cut between elements is accepted (nothing more to emit); mid-element raises."""
        if self._in_elem:
            raw = b"".join(self._parts)
            raise StreamDecodeError(f"JSON array ends inside an element at {self._pos}: {_excerpt(raw)}")
        return []

    def _syntax(self, chunk: bytes, i: int, expected: str) -> NoReturn:
        got = _excerpt(chunk[i : i + 20])
        raise StreamDecodeError(f"bad JSON array syntax at offset {self._pos + i}: expected {expected}, got {got}")
