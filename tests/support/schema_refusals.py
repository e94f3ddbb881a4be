"""What the real Anthropic and Gemini APIs refuse in a JSON Schema, for the fakes: a request whose structured-output
schema (or strict tool schema) the real API would answer with a 400 gets that 400 from the fake too.

Anthropic (structured outputs guide, "JSON Schema limitations"; anthropic-sdk-python transform_schema): the basic
types, enum/const, anyOf/allOf, local $ref/$defs, default, required, pattern, the listed string formats, minItems
0 or 1, and additionalProperties false on every object; nothing else (numeric bounds, string lengths, type
arrays, oneOf, recursive refs, ...). Gemini responseJsonSchema (GenerationConfig reference): only the listed
keywords, enums of strings and numbers, and no sibling of a $ref but $-keywords."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

ANTHROPIC_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "allOf", "$ref",
     "$defs", "definitions", "description", "title", "default", "format", "pattern", "minItems"}
)  # fmt: skip
ANTHROPIC_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
GEMINI_KEYWORDS = frozenset(
    {"$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items", "prefixItems",
     "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties", "additionalProperties",
     "required", "propertyOrdering"}
)  # fmt: skip
_VALUE_KEYS = frozenset({"enum", "const", "default", "examples", "properties", "$defs", "definitions"})


def _nodes(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema of `schema` with its path."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield from _nodes(sub, f"{path}.{key}.{name}")
    for key in ("items", "additionalProperties", "not"):
        yield from _nodes(schema.get(key), f"{path}.{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key) or ()):
            yield from _nodes(sub, f"{path}.{key}[{i}]")


def _recursive_ref(schema: dict[str, Any]) -> str | None:
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}

    def refs(node: Any) -> set[str]:
        return {n["$ref"].rsplit("/", 1)[-1] for _, n in _nodes(node, "") if isinstance(n.get("$ref"), str)}

    for name, sub in defs.items():
        seen, todo = set(), list(refs(sub))
        while todo:
            ref = todo.pop()
            if ref == name:
                return name
            if ref not in seen and ref in defs:
                seen.add(ref)
                todo.extend(refs(defs[ref]))
    return None


def anthropic_problem(schema: Any, where: str) -> str | None:
    """The 400 message Anthropic gives for a structured-output or strict-tool schema, or None when it takes it."""
    if not isinstance(schema, dict):
        return f"{where}: schema must be an object"
    name = _recursive_ref(schema)
    if name is not None:
        return f"{where}: recursive schemas are not supported ({name})"
    for path, node in _nodes(schema, where):
        kind = node.get("type")
        if isinstance(kind, list):
            return f"{path}: 'type' must be a string; use anyOf for unions"
        for key, value in node.items():
            if key not in ANTHROPIC_KEYWORDS:
                return f"{path}: For '{kind}' type, property '{key}' is not supported"
            if key == "minItems" and value not in (0, 1):
                return f"{path}: For 'array' type, 'minItems' values other than 0 or 1 are not supported"
            if key == "format" and value not in ANTHROPIC_FORMATS:
                return f"{path}: For 'string' type, format '{value}' is not supported"
        if any(isinstance(m, dict) and "$ref" in m for m in node.get("allOf") or ()):
            return f"{path}: allOf with $ref is not supported"
        if (kind == "object" or "properties" in node) and node.get("additionalProperties") is not False:
            return f"{path}: For 'object' type, 'additionalProperties' must be explicitly set to false"
    return None


def gemini_problem(schema: Any, where: str) -> str | None:
    """The 400 message Gemini gives for a responseJsonSchema, or None when it takes it."""
    if not isinstance(schema, dict):
        return f"{where}: must be an object"
    for path, node in _nodes(schema, where):
        if "$ref" in node and any(not k.startswith("$") for k in node):
            return f"{path}: if $ref is set, no other properties may be set except those starting with $"
        for key, value in node.items():
            if key not in GEMINI_KEYWORDS:
                return f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
            if key == "enum" and not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
                return f"{path}.enum: only strings and numbers are supported"
    return None


def refusal(path: str, body: Any) -> tuple[str, str] | None:
    """(provider, message) when the real API would refuse the schemas of this request body; None otherwise."""
    if not isinstance(body, dict):
        return None
    if path.endswith("/v1/messages"):
        config = body.get("output_config")
        fmt = config.get("format") if isinstance(config, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            problem = anthropic_problem(fmt.get("schema"), "output_config.format.schema")
            if problem:
                return "anthropic", problem
        for i, tool in enumerate(body.get("tools") or ()):
            if isinstance(tool, dict) and tool.get("strict") is True:
                problem = anthropic_problem(tool.get("input_schema"), f"tools.{i}.input_schema")
                if problem:
                    return "anthropic", problem
    elif path.endswith(("/converse", "/converse-stream")):  # Bedrock: the same subset as Anthropic's
        return _bedrock_refusal(body)
    elif path.endswith((":generateContent", ":streamGenerateContent")):
        config = body.get("generationConfig")
        if isinstance(config, dict) and "responseJsonSchema" in config:
            problem = gemini_problem(config["responseJsonSchema"], "generation_config.response_json_schema")
            if problem:
                return "gemini", problem
    return None


def _bedrock_refusal(body: dict[str, Any]) -> tuple[str, str] | None:
    fmt = ((body.get("outputConfig") or {}).get("textFormat") or {}).get("structure", {}).get("jsonSchema")
    if isinstance(fmt, dict) and isinstance(fmt.get("schema"), str):
        problem = anthropic_problem(json.loads(fmt["schema"]), "outputConfig.textFormat.structure.jsonSchema.schema")
        if problem:
            return "bedrock", problem
    for i, tool in enumerate((body.get("toolConfig") or {}).get("tools") or ()):
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and spec.get("strict") is True:
            problem = anthropic_problem((spec.get("inputSchema") or {}).get("json"), f"toolConfig.tools.{i}.toolSpec")
            if problem:
                return "bedrock", problem
    return None


def refusal_body(provider: str, message: str) -> dict[str, Any]:
    """The provider's own 400 error body."""
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    if provider == "bedrock":
        return {"message": message}
    return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
