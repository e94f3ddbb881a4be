"""Which framing a body has, from its first meaningful byte."""

from __future__ import annotations

from .common import _BOM

_WHITESPACE = b" \t\r\n"


class FramingSniffer:
    """Holds the first bytes of a body whose framing shows only in its first meaningful byte (after whitespace
    and a UTF-8 BOM, which may itself be split across chunks): `[` a JSON array, `{` NDJSON, else SSE."""

    __slots__ = ("_head",)

    def __init__(self) -> None:
        self._head = b""

    def sniff(self, chunk: bytes) -> tuple[bytes, bytes, bytes] | None:
        """None while undecided; else (the first meaningful byte, the body from it on, all bytes so far)."""
        head = self._head + chunk
        rest = head.lstrip(_WHITESPACE)
        if rest.startswith(_BOM):
            rest = rest[len(_BOM) :].lstrip(_WHITESPACE)
        if not rest or _BOM.startswith(rest):  # nothing yet, or perhaps the start of a split BOM
            self._head = head
            return None
        self._head = b""
        return rest[:1], rest, head
