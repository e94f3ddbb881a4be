"""What the stream decoders share: their one error, excerpts for its messages, JSON values parsed strictly."""

from __future__ import annotations

from typing import Any

from .. import jsonutil


class StreamDecodeError(ValueError):
    """Malformed framing: a bad JSON line or element, a CRC mismatch, bad array syntax, a truncated frame."""


def _excerpt(raw: bytes | str, limit: int = 60) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


_BOM = b"\xef\xbb\xbf"


def _loads(raw: bytes, what: str) -> Any:
    try:
        # jsonutil: strict UTF-8, no NaN or lone surrogates, bounded nesting, and only ValueErrors.
        return jsonutil.loads(raw[3:] if raw.startswith(_BOM) else raw)
    except ValueError as e:  # JSONDecodeError, InvalidJSON
        raise StreamDecodeError(f"invalid JSON {what}: {e}: {_excerpt(raw)}") from None
