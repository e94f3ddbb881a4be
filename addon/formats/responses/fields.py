"""Reading a Responses request's fields: each read checks the JSON type first, and a value of another type is a
400 naming the field in the Responses API's own terms (`input[2].content[0].image_url`)."""

from __future__ import annotations

import math
from typing import Any, NoReturn

from ...errors import bad_request
from ...openai_validate import MAX_INT

_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def fail(param: str, what: str) -> NoReturn:
    raise bad_request(f"{param}: {what}", param=param)


def typed(value: Any, kind: type, param: str) -> Any:
    """`value` if it is of `kind`, else a 400 saying what `param` must be."""
    if not isinstance(value, kind):
        fail(param, f"must be {_NAMES[kind]}")
    return value


def optional(body: dict[str, Any], key: str, kind: type, param: str | None = None) -> Any:
    """body[key] when present and of `kind`; None when absent or null."""
    value = body.get(key)
    return None if value is None else typed(value, kind, param or key)


def integer(body: dict[str, Any], key: str, low: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < MAX_INT:
        fail(key, f"must be an integer of at least {low}")
    return value


def number(body: dict[str, Any], key: str, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and math.isfinite(value))
    if not ok or not 0 <= value <= high:
        fail(key, f"must be a number from 0 to {high:g}")
    return value


def kind_of(item: dict[str, Any], param: str) -> str:
    """An object's `type` (a string) or a 400."""
    return typed(item.get("type"), str, f"{param}.type")
