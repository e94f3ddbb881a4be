"""The JSON Schema subset of Anthropic's structured outputs (`output_config.format`) and strict tools
(`strict: true`), whose grammar compiler answers 400 to the rest ("For 'integer' type, property 'minimum' is not
supported"). After Anthropic's structured-outputs guide ("JSON Schema limitations") and anthropic-sdk-python's
`lib/_parse/_transform.py` (`transform_schema`, what the SDK itself sends):
- taken: the basic types, `enum` of primitives, `const`, `anyOf`, `allOf`, local `$ref`/`$defs`, `default`,
  `required`, `additionalProperties: false` (required on every object), `pattern`, the string formats below,
  `minItems` 0 or 1;
- not taken (moved into the description and reported): numeric bounds (`minimum`, `maximum`, `exclusiveMinimum`,
  `exclusiveMaximum`, `multipleOf`), string lengths (`minLength`, `maxLength`), other formats, `minItems` above 1,
  `maxItems`, `uniqueItems`, `prefixItems`, `minProperties`/`maxProperties`, `not`, `if`/`then`/`else`, ...;
  `oneOf` is read as `anyOf`; an object's `additionalProperties` other than false becomes false;
- refused (400): recursive schemas.
Non-strict tools keep their `input_schema` as the client wrote it: Anthropic only constrains strict ones."""

from __future__ import annotations

from typing import Any

from ...json_schema import STRUCTURED, TOOL, adapt, closed_grammar

SUBSET = closed_grammar("anthropic")


def output_schema(schema: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    """response_format's schema as output_config.format takes it."""
    return adapt(schema, SUBSET, "response_format.json_schema.schema", STRUCTURED, dropped)


def strict_tool_schema(parameters: dict[str, Any], where: str, dropped: list[str]) -> dict[str, Any]:
    """A strict tool's parameters as its input_schema."""
    return adapt(parameters, SUBSET, where, TOOL, dropped)
