"""route_type llm/v1/embeddings: validation and rules, whatever the provider (pure). Each provider's request and
response mapping is in tests/providers/<name>/test_embeddings_<name>.py; the builders in tests/support/embeddings.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from addon.errors import ProxyError
from addon.openai_format import encode_embedding, validate
from addon.rules import RulesError
from tests.support.embeddings import EMB, VEC, floats, make_rule, refused, upstream


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": 3}, "input"),
        ({"input": []}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [[1, 2], "a"]}, "input"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": True}, "dimensions"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "stream": True}, "stream"),
        ({"input": "a", "stream_options": {"include_usage": True}}, "stream_options"),
        ({"input": "a", "model": 3}, "model"),
    ],
)
def test_validation_refuses(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ProxyError) as info:
        validate(EMB, body)
    assert info.value.status == 400 and info.value.param == param


@pytest.mark.parametrize("value", ["a", ["a", "b"], [1, 2, 3], [[1, 2], [3]]])
def test_validation_accepts(value: Any) -> None:
    body = {"input": value, "model": "m", "encoding_format": "base64", "dimensions": 8, "stream": False}
    assert validate(EMB, body) is body


@pytest.mark.parametrize(
    ("provider", "extra"),
    [("anthropic", {}), ("llama2", {"upstream_url": "http://127.0.0.1:1"})],
)
def test_rules_refuse_providers_without_embeddings(provider: str, extra: dict[str, Any]) -> None:
    with pytest.raises(RulesError, match="no embeddings API"):
        make_rule(provider, options=extra)


def test_rules_refuse_native_formats() -> None:
    with pytest.raises(RulesError, match="llm_format: openai"):
        make_rule("cohere", llm_format="cohere")


def test_tuning_and_streaming_policy_do_not_apply() -> None:
    rule = make_rule("openai", response_streaming="always", options={"temperature": 0.5, "max_tokens": 9})
    c, up = upstream(rule, {"input": "hi", "model": "embed-model"})
    assert c.stream is False
    assert up.body == {"input": "hi", "model": "embed-model"}
    assert up.headers["accept"] == "application/json"


def test_rule_dimensions_default_and_conflict() -> None:
    rule = make_rule("openai", options={"embeddings_dimensions": 256})
    _, up = upstream(rule, {"input": "hi"})
    assert up.body == {"input": "hi", "model": "embed-model", "dimensions": 256}
    _, up = upstream(rule, {"input": "hi", "dimensions": 256})
    assert up.body["dimensions"] == 256
    refused(rule, {"input": "hi", "dimensions": 512}, "dimensions")


def test_model_conflict_refused() -> None:
    refused(make_rule("openai"), {"input": "hi", "model": "other"}, "model")


def test_base64_is_little_endian_float32() -> None:
    assert encode_embedding([1.0]) == base64.b64encode(b"\x00\x00\x80\x3f").decode()
    assert floats(encode_embedding(VEC)) == VEC
