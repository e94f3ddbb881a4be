"""JSON Schema as Gemini's Schema (an OpenAPI 3.0 subset), for function parameters."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ...errors import bad_request
from ...json_schema import TOOL, noted, report

# Gemini's Schema (an OpenAPI 3.0 subset) refuses unknown fields. Kept as they are:
_SCHEMA_KEEP = (
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "propertyOrdering",
)
_FORMATS = frozenset({"date-time", "enum", "int32", "int64", "float", "double"})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_MAX_DEPTH = 40
# Keywords the conversion reads (or drops without loss); the others are noted (_note_losses).
_HANDLED = frozenset(
    {*_SCHEMA_KEEP, "type", "format", "enum", "const", "properties", "required", "items", "anyOf", "oneOf", "allOf",
     "$ref", "$defs", "definitions", "$schema", "$id", "$comment", "additionalProperties"}
)  # fmt: skip


def _schema(node: Any, where: str, defs: dict[str, Any], depth: int, lost: list[str] | None = None) -> dict[str, Any]:
    """A JSON Schema as Gemini's Schema: `type` upper-cased (a ["x", "null"] type becomes `nullable`), local
    `$ref`s inlined (recursive ones refused), `oneOf` read as `anyOf`, a `null` member of anyOf becomes
    `nullable`, a string `const` becomes a one-value `enum`. What Gemini's Schema has no field for, which only
    loosens what the model may send (`additionalProperties` other than false, `default`, `examples`,
    `exclusiveMinimum`, `multipleOf`, `format`s Gemini does not know, non-string `enum`s, ...), moves into the
    description as `{default: 3}` and is reported in `lost` as `tool_schema.<keyword>` (json_schema.py);
    `$schema`, `$id`, `$comment` simply go."""
    if depth > _MAX_DEPTH:
        raise bad_request(f"{where}: schema too deep (or a recursive $ref) for provider gemini", param=where)
    if node is True or node == {}:
        return {}
    if not isinstance(node, dict):
        raise bad_request(f"{where}: unsupported schema {node!r} for provider gemini", param=where)
    ref = node.get("$ref")
    if ref is not None:
        target = _resolve(ref, defs, where)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **rest}
        return _schema(node, where, defs, depth + 1, lost)
    out: dict[str, Any] = {}
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for k in kinds:
        if not isinstance(k, str) or k not in _TYPES:
            raise bad_request(f"{where}: unknown schema type {k!r}", param=where)
    nullable = "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    if len(kinds) == 1:
        out["type"] = kinds[0].upper()
    elif len(kinds) > 1:
        out["anyOf"] = [{"type": k.upper()} for k in kinds]
    elif nullable:
        out["type"] = "NULL"
        nullable = False
    for key in _SCHEMA_KEEP:
        if key in node:
            out[key] = node[key]
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        out["format"] = fmt
    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if isinstance(enum, list):
        if None in enum:
            nullable = True
        values = [v for v in enum if v is not None]
        if values and all(isinstance(v, str) for v in values):
            out["enum"] = values
            out.setdefault("type", "STRING")
    properties = node.get("properties")
    if isinstance(properties, dict) and properties:
        out["properties"] = {
            name: _schema(sub, f"{where}.properties.{name}", defs, depth + 1, lost) for name, sub in properties.items()
        }
        out.setdefault("type", "OBJECT")
        required = node.get("required")
        if isinstance(required, list):
            kept = [r for r in required if isinstance(r, str) and r in properties]
            if kept:
                out["required"] = kept
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _schema(items, f"{where}.items", defs, depth + 1, lost)
        out.setdefault("type", "ARRAY")
    elif items is not None and items is not True:
        raise bad_request(f"{where}.items: only a single items schema is supported by provider gemini", param=where)
    for key in ("anyOf", "oneOf"):
        members = node.get(key)
        if members is None:
            continue
        if not isinstance(members, list) or not members:
            raise bad_request(f"{where}.{key} must be a non-empty array", param=where)
        converted = []
        for j, sub in enumerate(members):
            if isinstance(sub, dict) and sub.get("type") == "null" and len(sub) == 1:
                nullable = True
                continue
            converted.append(_schema(sub, f"{where}.{key}[{j}]", defs, depth + 1, lost))
        if len(converted) == 1 and "type" not in out:
            out = {**converted[0], **out}
        elif converted:
            if "anyOf" in out:
                raise bad_request(f"{where}: several type alternatives cannot be combined", param=where)
            out["anyOf"] = converted
    all_of = node.get("allOf")
    if all_of is not None:
        if not isinstance(all_of, list) or len(all_of) != 1:
            raise bad_request(
                f"{where}.allOf with more than one schema is not supported by provider gemini", param=where
            )
        out = {**_schema(all_of[0], f"{where}.allOf[0]", defs, depth + 1, lost), **out}
    if nullable:
        out["nullable"] = True
    if lost is not None:
        _note_losses(node, out, lost)
    return out


def _note_losses(node: dict[str, Any], out: dict[str, Any], lost: list[str]) -> None:
    """What of `node` the converted `out` does not carry: into out's description, and reported."""
    notes = {k: v for k, v in node.items() if k not in _HANDLED}
    extra = node.get("additionalProperties")
    if extra is not None and extra is not False:
        notes["additionalProperties"] = extra
    fmt = node.get("format")
    if fmt is not None and not (isinstance(fmt, str) and fmt in _FORMATS):
        notes["format"] = fmt
    for key in ("enum", "const"):
        if key in node and "enum" not in out:
            notes[key] = node[key]
    if "oneOf" in node:
        report(lost, TOOL, "oneOf")  # read as anyOf: no longer exclusive
    if notes:
        out["description"] = noted(out.get("description"), notes)
        for key in notes:
            report(lost, TOOL, key)


def _resolve(ref: Any, defs: dict[str, Any], where: str) -> dict[str, Any]:
    for prefix in ("#/$defs/", "#/definitions/"):
        if isinstance(ref, str) and ref.startswith(prefix):
            target = defs.get(unquote(ref[len(prefix) :]).replace("~1", "/").replace("~0", "~"))
            if isinstance(target, dict):
                return target
    raise bad_request(f"{where}: $ref {ref!r} cannot be resolved (only local #/$defs/... refs can)", param=where)
