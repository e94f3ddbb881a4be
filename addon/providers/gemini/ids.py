"""Tool-call ids that carry Gemini's native call id and thoughtSignature to the client and back."""

from __future__ import annotations

import base64
import binascii
import re
import uuid

# Tool-call ids. Gemini API function calls carry no id (Vertex may add one) and thinking models put an opaque
# thoughtSignature on them that must come back with the call on the next turn (Gemini 3 refuses the turn
# without it). Both travel inside the id the client gets and sends back: call_<24 hex>[.id.<b64>][.ts.<b64>],
# base64url without padding. The function name for the tool result is looked up in the history instead.
_ID_HEAD = re.compile(r"^call_[0-9a-f]{24}$")
_ID_FIELDS = ("id", "ts")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def tool_call_id(native_id: str | None = None, signature: str | None = None) -> str:
    out = f"call_{uuid.uuid4().hex[:24]}"
    for key, value in zip(_ID_FIELDS, (native_id, signature), strict=True):
        if value:
            out += f".{key}." + base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
    return out


def parse_tool_call_id(call_id: str) -> tuple[str | None, str | None]:
    """(native id, thoughtSignature) carried by an id of ours; (None, None) for any other id."""
    head, *rest = call_id.split(".")
    if not _ID_HEAD.match(head) or len(rest) % 2:
        return None, None
    found: dict[str, str] = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        if key not in _ID_FIELDS or key in found or not _B64URL.match(value):
            return None, None
        try:
            found[key] = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, ValueError):
            return None, None
    return found.get("id"), found.get("ts")
