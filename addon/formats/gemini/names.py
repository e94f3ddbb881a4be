"""Gemini's field names as proto-JSON spells them: camelCase is canonical and Google's API also takes snake_case
(`system_instruction`, `inline_data`, `generation_config`, as many of Google's own REST examples write them). The
decoder reads every Gemini object through `fields`, which notices a snake_case name; the request is then read
again from a camelCase copy (`camel_case`), whose values that are the client's own data — function arguments and
responses, JSON Schemas, enum values, property names — are left as they are."""

from __future__ import annotations

import re
from typing import Any

from ..fields import obj

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
# Whose value is the client's data, not Gemini's fields.
_OPAQUE = frozenset(
    {"args", "response", "parametersJsonSchema", "responseJsonSchema", "_responseJsonSchema", "enum", "required",
     "default", "example", "labels", "propertyOrdering"}
)  # fmt: skip
_MAX_DEPTH = 64  # deeper than any Gemini request; below it, keys are left as they are


class SnakeCase(Exception):
    """A Gemini field named in snake_case: the request is read again with its names in camelCase."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def fields(value: Any, param: str) -> dict[str, Any]:
    """A Gemini object (a 400 naming `param` if it is none) whose field names the decoder reads: SnakeCase if
    one of them is in snake_case."""
    found = obj(value, param)
    for key in found:
        if "_" in key:
            check_name(key)
    return found


def check_name(key: str) -> None:
    """SnakeCase if `key` (a field name with an underscore) is in snake_case."""
    if _SNAKE.match(key):
        raise SnakeCase(key)


def _camel(key: str) -> str:
    if "_" not in key or not _SNAKE.match(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_case(node: Any, depth: int = 0) -> Any:
    """The request with every snake_case field name of Gemini's in camelCase; what holds none is returned as it
    is (no copy: a camelCase request, the SDKs', costs one walk over its objects and arrays)."""
    if depth > _MAX_DEPTH:
        return node
    if isinstance(node, list):
        items: list[Any] | None = None
        for i, item in enumerate(node):
            if isinstance(item, (dict, list)):
                new = camel_case(item, depth + 1)
                if new is not item:
                    if items is None:
                        items = list(node)
                    items[i] = new
        return node if items is None else items
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] | None = None
    for key, value in node.items():
        name = _camel(key)
        new = value
        if name not in _OPAQUE and isinstance(value, (dict, list)):
            if name == "properties" and isinstance(value, dict):  # property names are the client's
                schemas = {prop: camel_case(schema, depth + 2) for prop, schema in value.items()}
                new = value if all(schemas[p] is value[p] for p in value) else schemas
            else:
                new = camel_case(value, depth + 1)
        if out is None and (name is not key or new is not value):
            out = {}
            for done, kept in node.items():  # the fields before this one, unchanged
                if done is key:
                    break
                out[done] = kept
        if out is not None:
            out[name] = new
    return node if out is None else out
