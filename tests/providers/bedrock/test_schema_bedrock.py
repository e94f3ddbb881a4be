"""JSON Schemas to Bedrock Converse: outputConfig.textFormat and strict toolSpecs adapted to the subset Bedrock's
structured outputs take (the one Anthropic documents for the same feature), with the relaxation reported."""

from __future__ import annotations

import json

import pytest

from tests.providers.bedrock.test_provider_bedrock import make_rule
from tests.support import schemas
from tests.support.schema_refusals import anthropic_problem
from tests.support.schemas import PYDANTIC_PLAIN, ZOD, pydantic_schema, structured

RULE = make_rule()


@pytest.mark.parametrize("schema", [ZOD, pydantic_schema(), PYDANTIC_PLAIN], ids=["zod", "pydantic-parse", "pydantic"])
def test_structured_output_is_adapted(schema: dict) -> None:
    body, dropped = schemas.sent(RULE, structured(schema))
    sent = json.loads(body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"])
    assert anthropic_problem(sent, "schema") is None and anthropic_problem(schema, "schema") is not None
    assert dropped and all(d.startswith("json_schema.") for d in dropped)


def test_zod_bounds_are_described() -> None:
    body, dropped = schemas.sent(RULE, structured(ZOD))
    sent = json.loads(body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"])
    assert sent["properties"]["count"]["description"] == "{minimum: -9007199254740991, maximum: 9007199254740991}"
    assert "json_schema.minimum" in dropped


def test_strict_tools_only() -> None:
    for strict, adapted in ((True, True), (None, False)):
        fn = {"name": "f", "parameters": ZOD} | ({"strict": strict} if strict is not None else {})
        body, dropped = schemas.sent(RULE, {"messages": [{"role": "user", "content": "Hi"}], "tools": [
            {"type": "function", "function": fn}]})  # fmt: skip
        spec = body["toolConfig"]["tools"][0]["toolSpec"]
        if adapted:
            assert anthropic_problem(spec["inputSchema"]["json"], "s") is None and "tool_schema.minimum" in dropped
        else:
            assert spec["inputSchema"]["json"] == ZOD and dropped == []
