"""The shared JSON Schema adaptation (addon/json_schema.py) and the strict check of answers (addon/schema_check.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from addon.errors import ProxyError
from addon.json_schema import STRUCTURED, TOOL, Subset, adapt
from addon.schema_check import check_answer
from tests.support.schemas import ZOD, pydantic_schema

NOTHING = Subset(provider="p", keywords=frozenset())  # takes only the structural keywords


def run(schema: dict[str, Any], subset: Subset = NOTHING, prefix: str = STRUCTURED) -> tuple[dict[str, Any], list]:
    dropped: list[str] = []
    before = copy.deepcopy(schema)
    out = adapt(schema, subset, "response_format.json_schema.schema", prefix, dropped)
    assert schema == before  # the client's schema is never touched: the answer is checked against it
    return out, dropped


def test_unsupported_keywords_move_into_the_description_and_are_reported() -> None:
    out, dropped = run({"type": "integer", "description": "How many", "minimum": 1, "maximum": 10})
    assert out == {"type": "integer", "description": "How many\n\n{minimum: 1, maximum: 10}"}
    assert dropped == ["json_schema.minimum", "json_schema.maximum"]
    _, dropped = run({"type": "string", "maxLength": 3}, prefix=TOOL)
    assert dropped == ["tool_schema.maxLength"]


def test_kept_keywords_and_limits() -> None:
    subset = Subset(provider="p", keywords=frozenset({"minItems"}), limits={"minItems": lambda v: v in (0, 1)})
    assert run({"type": "array", "minItems": 1}, subset) == ({"type": "array", "minItems": 1}, [])
    out, dropped = run({"type": "array", "minItems": 2}, subset)
    assert out == {"type": "array", "description": "{minItems: 2}"} and dropped == ["json_schema.minItems"]


def test_metadata_goes_without_a_report() -> None:
    assert run({"$schema": "x", "$id": "y", "$comment": "z", "type": "string"}) == ({"type": "string"}, [])


def test_type_lists_become_any_of_with_each_type_keeping_its_keywords() -> None:
    subset = Subset(provider="p", keywords=frozenset({"maxLength"}), type_lists=False)
    out, dropped = run({"type": ["string", "null"], "maxLength": 5, "description": "d"}, subset)
    assert out == {"description": "d", "anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]}
    assert dropped == []


def test_one_of_as_any_of_is_reported_and_all_of_is_merged() -> None:
    subset = Subset(provider="p", keywords=frozenset(), one_of=False, all_of=False)
    out, dropped = run({"oneOf": [{"type": "string"}, {"type": "integer"}]}, subset)
    assert out == {"anyOf": [{"type": "string"}, {"type": "integer"}]} and dropped == ["json_schema.oneOf"]
    schema = {
        "$defs": {"A": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}},
        "allOf": [{"$ref": "#/$defs/A"}, {"properties": {"b": {"type": "integer"}}, "required": ["b"]}],
    }
    out, dropped = run(schema, subset)
    assert out == {
        "type": "object",
        "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
        "required": ["a", "b"],
    }
    assert dropped == []


def test_const_as_enum_and_enums_the_provider_cannot_take() -> None:
    subset = Subset(provider="p", keywords=frozenset(), const=False, enum_values=(str, int, float))
    assert run({"const": "x"}, subset) == ({"enum": ["x"]}, [])
    out, dropped = run({"enum": [True, False]}, subset)  # a bool is no number here
    assert out == {"description": "{enum: [true, false]}"} and dropped == ["json_schema.enum"]


def test_refs_are_kept_inlined_or_refused_as_the_provider_needs() -> None:
    schema = {
        "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/Item"}, "b": {"$ref": "#/$defs/Item", "description": "B"}},
        "definitions": {"Unused": {"type": "string"}},
    }
    schema["definitions"]["Item"] = schema["$defs"]["Item"]
    out, _ = run(schema)  # any sibling allowed: refs kept, spelled #/$defs/, unused definitions left out
    assert out["properties"] == {"a": {"$ref": "#/$defs/Item"}, "b": {"$ref": "#/$defs/Item", "description": "B"}}
    assert list(out["$defs"]) == ["Item"]
    out, dropped = run(schema, Subset(provider="p", keywords=frozenset(), ref_siblings=frozenset()))
    assert out["properties"]["b"] == {"type": "object", "properties": {"n": {"type": "integer"}}, "description": "B"}
    assert out["properties"]["a"] == {"$ref": "#/$defs/Item"} and dropped == []

    recursive = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node", "description": "n"}}}},
        "$ref": "#/$defs/Node",
    }
    out, dropped = run(recursive, Subset(provider="p", keywords=frozenset(), ref_siblings=frozenset()))
    assert out["$defs"]["Node"]["properties"]["next"] == {"$ref": "#/$defs/Node"}
    assert dropped == ["json_schema.description"]
    with pytest.raises(ProxyError) as e:
        run(recursive, Subset(provider="p", keywords=frozenset(), recursion=False))
    assert e.value.status == 400 and "recursive" in e.value.message and "provider p" in e.value.message
    with pytest.raises(ProxyError) as e:
        run({"$ref": "https://example.com/s.json"})
    assert e.value.status == 400 and "cannot be resolved" in e.value.message


def test_closed_objects() -> None:
    subset = Subset(provider="p", keywords=frozenset(), close_objects=True)
    assert run({"type": "object", "properties": {}}, subset)[0]["additionalProperties"] is False
    out, dropped = run({"type": "object", "additionalProperties": {"type": "string"}}, subset)
    assert out == {"type": "object", "additionalProperties": False} and dropped == ["json_schema.additionalProperties"]


def test_malformed_schemas_are_a_400_naming_the_path() -> None:
    with pytest.raises(ProxyError) as e:
        run({"type": "object", "properties": {"a": 3}})
    assert e.value.status == 400 and e.value.param == "response_format.json_schema.schema.properties.a"
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(70):
        deep = {"type": "array", "items": deep}
    with pytest.raises(ProxyError):
        run(deep)


# ---- the strict check of answers --------------------------------------------------------------------------------


RELAXED = ["json_schema.minimum", "tool_schema.minimum"]  # what the translation relaxed (the call's loss report)


def check(provider: str, body: dict[str, Any], ans: dict[str, Any], dropped: list[str] = RELAXED) -> None:
    check_answer(provider, body, ans, dropped)


def request(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    spec = {"name": "x", "schema": schema, "strict": strict}
    return {"response_format": {"type": "json_schema", "json_schema": spec}}


def answer(content: str | None, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content,
                                                                           **message}}]}  # fmt: skip


def test_a_strict_answer_that_breaks_the_original_schema_is_a_502_naming_the_path() -> None:
    body = request(ZOD)
    good = {"count": 3, "name": "a", "tags": ["x", "y"], "email": None}
    check("anthropic", body, answer(json.dumps(good)))
    with pytest.raises(ProxyError) as e:
        check("anthropic", body, answer(json.dumps({**good, "tags": ["x"]})))
    assert e.value.status == 502 and e.value.code == "strict_schema_violation"
    assert (
        "anthropic" in e.value.message
        and "$.tags" in e.value.message
        and "choices[0].message.content" in (e.value.message)
    )
    with pytest.raises(ProxyError) as e:
        check("gemini", request(pydantic_schema()), answer('{"items": [], "note": null, "ratio": 0.5}'))
    assert "main" in e.value.message
    with pytest.raises(ProxyError) as e:
        check("anthropic", body, answer("not json"))
    assert "not valid JSON" in e.value.message


def test_what_is_not_checked() -> None:
    bad = answer('{"count": "many"}')
    check("p", request(ZOD, strict=False), bad)  # no guarantee asked
    check("p", request(ZOD), answer('{"count": "ma', finish="length"))  # cut short: says so itself
    check("p", request(ZOD), answer(None, refusal="I can't"))
    check("p", request({"type": "object", "properties": {"a": {"type": 12}}}), bad)  # unreadable schema
    check("p", {}, bad)
    check("p", request(ZOD), bad, dropped=["cache_control"])  # sent whole: the provider's to enforce
    check("p", request(ZOD), bad, dropped=["tool_schema.minimum"])  # only the tools were relaxed


def test_strict_tool_arguments_are_checked() -> None:
    params = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}
    body = {"tools": [{"type": "function", "function": {"name": "f", "parameters": params, "strict": True}},
                      {"type": "function", "function": {"name": "g", "parameters": params}}]}  # fmt: skip

    def calls(name: str, arguments: str) -> dict[str, Any]:
        call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
        return answer(None, finish="tool_calls", tool_calls=[call])

    check("p", body, calls("f", '{"n": 1}'))
    check("p", body, calls("g", '{"n": 0}'))  # not strict
    check("p", body, calls("f", '{"n": 0}'), dropped=["json_schema.minimum"])  # the tools were sent whole
    with pytest.raises(ProxyError) as e:
        check("p", body, calls("f", '{"n": 0}'))
    assert "tool_calls[0].function.arguments at $.n" in e.value.message


def test_any_junk_is_adapted_or_a_400_never_a_crash() -> None:
    """Random JSON built from schema keywords and odd values: every subset either adapts it or answers a 400."""
    import random

    from addon.providers.anthropic.schema import SUBSET as ANTHROPIC
    from addon.providers.gemini.output_schema import SUBSET as GEMINI
    from addon.providers.gemini.schema import _schema

    keys = ["type", "properties", "items", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "enum",
            "const", "format", "minimum", "required", "additionalProperties", "prefixItems", "default"]  # fmt: skip
    values = [None, True, False, 0, 2.5, "x", "string", "object", "#/$defs/a", "#/definitions/b", [], [1, "a"], {},
              {"a": 1}, ["string", "null"], [{"type": "string"}], {"a": {"type": "string"}}]  # fmt: skip
    rng = random.Random(14)

    def junk(depth: int = 0) -> Any:
        if depth > 3 or rng.random() < 0.3:
            return copy.deepcopy(rng.choice(values))
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 4))}

    for _ in range(3000):
        schema = junk()
        schema = schema if isinstance(schema, dict) else {"x": schema}
        schema.setdefault("$defs", {"a": junk(1)})
        for subset in (ANTHROPIC, GEMINI):
            try:
                adapt(schema, subset, "s", STRUCTURED, [])
            except ProxyError as e:
                assert e.status == 400
        try:
            _schema(schema, "s", schema["$defs"] if isinstance(schema["$defs"], dict) else {}, 0, [])
        except ProxyError as e:
            assert e.status == 400
