"""Gemini's field names as proto-JSON spells them: camelCase is canonical and Google's API also takes snake_case
(`system_instruction`, `inline_data`, `generation_config`, as many of Google's own REST examples write them). The
body is read in camelCase once, here; values that are the client's own data — function arguments and responses,
JSON Schemas, enum values, property names — are left as they are."""

from __future__ import annotations

import re
from typing import Any

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
# Whose value is the client's data, not Gemini's fields.
_OPAQUE = frozenset(
    {"args", "response", "parametersJsonSchema", "responseJsonSchema", "_responseJsonSchema", "enum", "required",
     "default", "example", "labels", "propertyOrdering"}
)  # fmt: skip
_MAX_DEPTH = 64  # deeper than any Gemini request; below it, keys are left as they are


def _camel(key: str) -> str:
    if not _SNAKE.match(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_case(node: Any, depth: int = 0) -> Any:
    """The request with every snake_case field name of Gemini's in camelCase."""
    if depth > _MAX_DEPTH:
        return node
    if isinstance(node, list):
        return [camel_case(item, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = _camel(key)
        if name in _OPAQUE:
            out[name] = value
        elif name == "properties" and isinstance(value, dict):  # property names are the client's
            out[name] = {prop: camel_case(schema, depth + 2) for prop, schema in value.items()}
        else:
            out[name] = camel_case(value, depth + 1)
    return out
