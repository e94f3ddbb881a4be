"""A custom (freeform) tool's input streamed as it arrives: the provider streams the arguments of the function the
tool was sent as, `{"input": "..."}`, and the client wants the text inside. `InputStream` decodes that JSON string
incrementally (escapes split anywhere, surrogate pairs kept together); arguments of another shape are sent whole
when the call is complete (`rest`)."""

from __future__ import annotations

import re

from ... import jsonutil
from .response import custom_input

_OPENING = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_HEX = frozenset("0123456789abcdefABCDEF")


def _complete(buf: str, start: int) -> tuple[int, bool]:
    """How far from `start` the buffer holds whole string characters, and whether the string's closing quote is
    there (at the returned index)."""
    j, n = start, len(buf)
    while j < n:
        c = buf[j]
        if c == '"':
            return j, True
        if c != "\\":
            j += 1
            continue
        if j + 1 >= n:
            break
        if buf[j + 1] != "u":
            j += 2
            continue
        if j + 6 > n:
            break
        code = buf[j + 2 : j + 6]
        if not set(code) <= _HEX:
            raise ValueError("not a JSON escape")
        if 0xD800 <= int(code, 16) < 0xDC00:  # a high surrogate: its low half comes with it
            if j + 12 > n:
                break
            j += 12
            continue
        j += 6
    return j, False


class InputStream:
    __slots__ = ("_buf", "_off", "_pos", "sent")

    def __init__(self) -> None:
        self._buf = ""
        self._pos = -1  # where the string's text starts in the buffer; -1: not found yet; -2: not that shape
        self._off = 0  # how much of the text has been decoded
        self.sent = ""

    def feed(self, fragment: str) -> str:
        """The input text that `fragment` completes (may be empty)."""
        self._buf += fragment
        if self._pos == -1:
            found = _OPENING.match(self._buf)
            if found is None:
                if not '{"input":"'.startswith(re.sub(r"\s+", "", self._buf)[:10]):
                    self._pos = -2
                return ""
            self._pos = self._off = found.end()
        if self._pos < 0:
            return ""
        try:
            end, _ = _complete(self._buf, self._off)
            text = jsonutil.loads(('"' + self._buf[self._off : end] + '"').encode())
        except ValueError:
            self._pos = -2  # not JSON as expected: the whole input goes at the end
            return ""
        self._off = end
        self.sent += text
        return text

    def rest(self) -> tuple[str, str]:
        """At the end of the call: (the whole input, what of it has not been sent yet)."""
        whole = custom_input(self._buf)
        return whole, whole[len(self.sent) :] if whole.startswith(self.sent) else ""
