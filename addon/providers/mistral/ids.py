"""Mistral's tool-call ids: exactly 9 characters of [a-zA-Z0-9] (docs/providers.md §7.1, §12)."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from typing import Any

_ID = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = string.ascii_letters + string.digits


def mistral_id(call_id: Any) -> Any:
    """A tool-call id Mistral accepts (`[a-zA-Z0-9]{9}`): kept when it already is one, else a hash of it (the same
    id always gives the same result, so an assistant call and its tool result still match)."""
    if not isinstance(call_id, str) or _ID.fullmatch(call_id):
        return call_id
    n = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8])
    out = []
    for _ in range(9):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def new_tool_call_id() -> str:
    """An id for a tool call that came without one: valid for Mistral too, so it goes back unchanged."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(9))
