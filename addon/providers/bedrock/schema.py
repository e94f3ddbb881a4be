"""The JSON Schema subset of Bedrock's structured outputs (Converse `outputConfig.textFormat` json_schema) and strict
tools (`toolSpec.strict`). Bedrock's structured-output guide (docs.aws.amazon.com/bedrock/latest/userguide/
structured-output.html): the schema is checked against "a supported JSON Schema Draft 2020-12 subset" and an
unsupported feature is an immediate 400; every object needs `additionalProperties: false`. The subset is the one
Anthropic documents for the same feature (its models are the first Bedrock serves with it): numeric bounds, string
lengths, `minItems` above 1, `maxItems`, other string formats, ... move into the description and are reported;
`type` arrays become `anyOf`; recursive schemas are a 400."""

from __future__ import annotations

from typing import Any

from ...json_schema import STRUCTURED, TOOL, adapt, closed_grammar

SUBSET = closed_grammar("bedrock")


def output_schema(schema: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    """response_format's schema as outputConfig.textFormat takes it."""
    return adapt(schema, SUBSET, "response_format.json_schema.schema", STRUCTURED, dropped)


def strict_tool_schema(parameters: dict[str, Any], where: str, dropped: list[str]) -> dict[str, Any]:
    """A strict tool's parameters as its inputSchema.json."""
    return adapt(parameters, SUBSET, where, TOOL, dropped)
