"""JSON on the hot paths: orjson (C, several times faster than the standard library for both directions), with
the standard library as the fallback for the rare value orjson refuses (integers beyond 64 bits)."""

from __future__ import annotations

import json
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError  # a subclass of json.JSONDecodeError, hence of ValueError


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits, which are valid JSON; the standard library takes them (and
        # explains real syntax errors as well).
        return json.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()
