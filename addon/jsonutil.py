"""JSON on the hot paths: orjson (C, several times faster than the standard library for both directions), with
the standard library as the fallback for the rare value orjson refuses (integers beyond 64 bits).

Both paths give the same verdict on hostile input: strict UTF-8, no lone surrogates (neither as bytes nor as
\\u escapes), no NaN or Infinity, no number beyond a double's range, at most MAX_DEPTH levels of nesting. Every
refusal is a ValueError (a JSONDecodeError, or an InvalidJSON naming where the bad value is).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError  # a subclass of json.JSONDecodeError, hence of ValueError

MAX_DEPTH = 1024  # orjson's own limit: the fallback enforces the same one
_SURROGATE = re.compile("[\ud800-\udfff]")  # what survives decoding only as a lone surrogate or a bad byte


class InvalidJSON(ValueError):
    """Syntactically JSON, but not a value the proxy accepts; `path` names where (e.g. messages[2].content)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        refused = e
    # orjson refuses integers beyond 64 bits, which are valid JSON; the standard library takes them. It also
    # takes what orjson rightly refuses (lone surrogates, invalid UTF-8 through surrogatepass, NaN, Infinity,
    # nesting beyond any limit), so its result is checked for those before it is used.
    # surrogateescape: an invalid byte becomes a lone surrogate, found (with its field) by the check below.
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "surrogateescape")
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidJSON(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:
        raise refused from None  # a syntax error: orjson's message says where
    _check(value)
    return value


def _check(value: Any) -> None:
    """Raise InvalidJSON for the first string with a lone surrogate, non-finite number or too deep nesting."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise InvalidJSON(f"nested more than {MAX_DEPTH} levels deep", _path(path[:3]) + "…")
        if isinstance(node, dict):
            for key, item in node.items():
                if _SURROGATE.search(key):
                    raise InvalidJSON("a key is not valid UTF-8 (or holds a lone surrogate)", _path(path))
                stack.append((item, (*path, key)))
        elif isinstance(node, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(node))
        elif isinstance(node, str):
            if _SURROGATE.search(node):
                raise InvalidJSON("not valid UTF-8 (or a lone surrogate)", _path(path))
        elif isinstance(node, float) and not math.isfinite(node):
            raise InvalidJSON("NaN and Infinity are not JSON numbers (nor are numbers beyond 1.8e308)", _path(path))


def _path(path: tuple[Any, ...]) -> str:
    """('messages', 2, 'content') -> messages[2].content; the empty path is the body itself."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON bytes. A TypeError for an orjson.Fragment that only the fallback would have to write (the
    standard library cannot: the caller writes the value without fragments)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_fallback_default).encode()


def _fallback_default(value: Any) -> str:
    if isinstance(value, orjson.Fragment):
        raise TypeError("an orjson.Fragment beside a value orjson cannot write")
    return str(value)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()
