"""JSON Schemas to Anthropic: structured output (output_config.format) and strict tools adapted to the subset
Anthropic's grammar compiler takes (what the fake refuses, as the real API does), with the relaxation reported and the
answer held to the client's original schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.exchange import build_upstream
from tests.support import schemas
from tests.support.fakes import anthropic_message
from tests.support.pipeline import USER, call, make_rule
from tests.support.schema_refusals import anthropic_problem
from tests.support.schemas import PYDANTIC_PLAIN, VALID_ORDER, ZOD, pydantic_schema, structured

RULE = make_rule("anthropic")


def sent(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return schemas.sent(RULE, body)


@pytest.mark.parametrize("schema", [ZOD, pydantic_schema(), PYDANTIC_PLAIN], ids=["zod", "pydantic-parse", "pydantic"])
def test_structured_output_schemas_refused_as_they_are_are_taken_once_adapted(schema: dict[str, Any]) -> None:
    assert anthropic_problem(schema, "schema") is not None  # what the real API answers with a 400 today
    body, dropped = sent(structured(schema))
    out = body["output_config"]["format"]
    assert out["type"] == "json_schema" and anthropic_problem(out["schema"], "schema") is None
    assert dropped and all(d.startswith("json_schema.") for d in dropped)


def test_the_zod_integer_keeps_its_bounds_in_the_description() -> None:
    body, dropped = sent(structured(ZOD))
    props = body["output_config"]["format"]["schema"]["properties"]
    assert props["count"] == {
        "type": "integer",
        "description": "{minimum: -9007199254740991, maximum: 9007199254740991}",
    }
    assert props["email"] == {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]}
    assert props["tags"]["description"] == "{minItems: 2}"
    assert dropped == [
        "json_schema.minimum",
        "json_schema.maximum",
        "json_schema.minLength",
        "json_schema.maxLength",
        "json_schema.minItems",
    ]


def test_pydantic_field_ge() -> None:
    body, dropped = sent(structured(pydantic_schema()))
    schema = body["output_config"]["format"]["schema"]
    assert schema["$defs"]["Item"]["properties"]["qty"] == {"type": "integer", "title": "Qty",
                                                             "description": "{minimum: 1}"}  # fmt: skip
    assert schema["properties"]["ratio"]["description"] == "{exclusiveMinimum: 0, maximum: 1}"
    assert schema["properties"]["main"]["properties"]["name"]["description"] == "what it is\n\n{minLength: 2}"
    assert set(dropped) == {"json_schema.minimum", "json_schema.exclusiveMinimum", "json_schema.maximum",
                            "json_schema.minLength"}  # fmt: skip


def test_a_schema_anthropic_takes_goes_unchanged_and_unreported() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "format": "date"}}, "required": ["a"],
              "additionalProperties": False}  # fmt: skip
    body, dropped = sent(structured(schema))
    assert body["output_config"]["format"]["schema"] == schema and dropped == []


def test_a_recursive_schema_is_a_400() -> None:
    schema = {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}
    c = call(RULE, structured(schema))
    with pytest.raises(Exception) as e:
        build_upstream(RULE, c)
    assert getattr(e.value, "status", None) == 400 and "recursive" in str(e.value)


def tools_body(strict: bool | None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": "f", "parameters": ZOD}
    if strict is not None:
        fn["strict"] = strict
    return {"messages": USER, "tools": [{"type": "function", "function": fn}]}


def test_strict_tools_are_adapted_and_reported_others_kept() -> None:
    body, dropped = sent(tools_body(True))
    tool = body["tools"][0]
    assert tool["strict"] is True and anthropic_problem(tool["input_schema"], "input_schema") is None
    assert "tool_schema.minimum" in dropped and not any(d.startswith("json_schema.") for d in dropped)
    for strict in (None, False):  # Anthropic does not constrain these: the client's schema as it is
        body, dropped = sent(tools_body(strict))
        assert body["tools"][0]["input_schema"] == ZOD and dropped == []


def respond(request: dict[str, Any], answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return schemas.answered(RULE, request, anthropic_message(json.dumps(answer)))


def test_strict_answers_are_checked_against_the_original_schema() -> None:
    status, out = respond(structured(pydantic_schema()), VALID_ORDER)
    assert status == 200 and json.loads(out["choices"][0]["message"]["content"]) == VALID_ORDER
    bad = {**VALID_ORDER, "items": [{"name": "pen", "qty": 0}]}  # Field(ge=1): only described to the model
    status, out = respond(structured(pydantic_schema()), bad)
    assert status == 502 and out["error"]["code"] == "strict_schema_violation"
    assert "$.items[0].qty" in out["error"]["message"] and "anthropic" in out["error"]["message"]
    status, _ = respond(structured(pydantic_schema(), strict=False), bad)  # no guarantee asked: passed on
    assert status == 200


def test_all_of_with_refs_is_inlined() -> None:
    """Anthropic takes allOf but not a $ref inside it (zod intersections, older pydantic): the definition goes there."""
    schema = {
        "$defs": {"A": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}},
        "allOf": [{"$ref": "#/$defs/A"}, {"type": "object", "properties": {"b": {"type": "integer", "minimum": 0}}}],
    }
    assert anthropic_problem(schema, "s") is not None
    body, dropped = sent(structured(schema))
    out = body["output_config"]["format"]["schema"]
    assert anthropic_problem(out, "s") is None and "$defs" not in out
    assert out["allOf"][0]["properties"] == {"a": {"type": "string"}} and dropped == ["json_schema.minimum"]
