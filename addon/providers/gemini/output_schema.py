"""The JSON Schema subset of Gemini's `generationConfig.responseJsonSchema` (structured output).

After the API reference of GenerationConfig.responseJsonSchema (ai.google.dev/api/generate-content, the same text in
the Vertex AI reference): "only the following properties are supported: $id, $defs, $ref, $anchor, type, format,
title, description, enum (for strings and numbers), items, prefixItems, minItems, maxItems, minimum, maximum,
anyOf, oneOf (interpreted the same as anyOf), properties, additionalProperties, required" and `propertyOrdering`;
"if $ref is set on a sub-schema, no other properties, except for those starting with a $, may be set"; cyclic refs
are unrolled to a limited depth. So, before sending:
- moved into the description and reported: `exclusiveMinimum`/`exclusiveMaximum`, `multipleOf`, `minLength`,
  `maxLength`, `pattern`, `default`, `examples`, `uniqueItems`, `minProperties`/`maxProperties`, `not`, enums of
  booleans or null, ...;
- rewritten without loss: `const` as a one-value `enum`, `allOf` merged into its node, a `$ref` with siblings
  inlined (recursive ones keep the ref and lose the siblings, reported), `definitions` as `$defs`;
- `oneOf` sent as `anyOf` (what Gemini does with it anyway) and reported.
Function parameters go the other way, to Gemini's OpenAPI `Schema` (see schema.py)."""

from __future__ import annotations

from typing import Any

from ...json_schema import STRUCTURED, Subset, adapt

SUBSET = Subset(
    provider="gemini",
    keywords=frozenset({"minItems", "maxItems", "minimum", "maximum", "propertyOrdering", "prefixItems"}),
    one_of=False,
    all_of=False,
    ref_siblings=frozenset(),
    enum_values=(str, int, float),
    const=False,
)


def output_schema(schema: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    """response_format's schema as responseJsonSchema takes it."""
    return adapt(schema, SUBSET, "response_format.json_schema.schema", STRUCTURED, dropped)
