"""JSON Schemas to Gemini's responseJsonSchema: adapted to the documented subset (what the fake refuses, as the
real API does), with the relaxation reported and the answer held to the client's original schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import schemas
from tests.support.pipeline import USER, make_rule
from tests.support.schema_refusals import gemini_problem
from tests.support.schemas import PYDANTIC_PLAIN, VALID_ORDER, ZOD, pydantic_schema, structured

RULE = make_rule("gemini", "gemini-test")


def sent(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    out, dropped = schemas.sent(RULE, body)
    return out["generationConfig"], dropped


@pytest.mark.parametrize("schema", [ZOD, pydantic_schema(), PYDANTIC_PLAIN], ids=["zod", "pydantic-parse", "pydantic"])
def test_schemas_refused_as_they_are_are_taken_once_adapted(schema: dict[str, Any]) -> None:
    assert gemini_problem(schema, "schema") is not None
    config, dropped = sent(structured(schema))
    assert config["responseMimeType"] == "application/json"
    assert gemini_problem(config["responseJsonSchema"], "schema") is None
    assert dropped and all(d.startswith("json_schema.") for d in dropped)


def test_what_gemini_takes_stays_and_the_rest_is_described() -> None:
    config, dropped = sent(structured(ZOD))
    props = config["responseJsonSchema"]["properties"]
    assert props["count"] == {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991}
    assert props["name"] == {"type": "string", "description": "{minLength: 1, maxLength: 40}"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "minItems": 2}
    assert props["email"] == {"type": ["string", "null"], "format": "email"}
    assert "$schema" not in config["responseJsonSchema"]
    assert dropped == ["json_schema.minLength", "json_schema.maxLength"]


def test_pydantic_refs_with_siblings_are_inlined_and_defaults_described() -> None:
    config, dropped = sent(structured(PYDANTIC_PLAIN))
    schema = config["responseJsonSchema"]
    assert schema["properties"]["main"]["description"] == "the main one"
    assert schema["properties"]["main"]["properties"]["qty"] == {"type": "integer", "title": "Qty", "minimum": 1}
    assert schema["properties"]["items"]["items"] == {"$ref": "#/$defs/Item"} and "Item" in schema["$defs"]
    assert schema["properties"]["note"]["description"] == "{default: null}"
    assert set(dropped) == {"json_schema.default", "json_schema.exclusiveMinimum", "json_schema.minLength"}


def test_strict_answers_are_checked_against_the_original_schema() -> None:
    def respond(answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reply = {"candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps(answer)}]},
                                 "finishReason": "STOP"}]}  # fmt: skip
        return schemas.answered(RULE, structured(pydantic_schema()), reply)

    assert respond(VALID_ORDER)[0] == 200
    status, out = respond({**VALID_ORDER, "items": [{"name": "p", "qty": 1}]})  # minLength 2: only described
    assert status == 502 and "$.items[0].name" in out["error"]["message"]


def test_function_parameters_report_what_gemini_schema_cannot_carry() -> None:
    """Function declarations use Gemini's OpenAPI Schema (schema.py): bounds it has stay, the rest is described."""
    fn = {"name": "order", "parameters": pydantic_schema(), "strict": True}
    body, dropped = schemas.sent(RULE, {"messages": USER, "tools": [{"type": "function", "function": fn}]})
    params = body["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params["properties"]["ratio"] == {"type": "NUMBER", "title": "Ratio", "maximum": 1,
                                             "description": "{exclusiveMinimum: 0}"}  # fmt: skip
    assert params["properties"]["items"]["items"]["properties"]["qty"]["minimum"] == 1
    assert dropped == ["tool_schema.exclusiveMinimum"]
