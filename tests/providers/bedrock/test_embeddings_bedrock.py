"""route_type llm/v1/embeddings for Bedrock (Titan and Cohere models): the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

import json

from addon.exchange import provider_for
from tests.support.embeddings import VEC, VEC2, answer, bedrock_rule, floats, make_rule, refused, upstream


def test_bedrock_titan() -> None:
    rule = bedrock_rule(
        "amazon.titan-embed-text-v2:0", bedrock={"aws_region": "us-east-1", "embeddings_normalize": True}
    )
    c, up = upstream(rule, {"input": "hello", "dimensions": 256})
    assert up.url == "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert up.body == {"inputText": "hello", "dimensions": 256, "normalize": True}
    body = json.dumps(up.body).encode()
    provider_for(rule).sign(c, up, body)
    assert up.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEMBEDFAKE0000001/")
    status, out = answer(rule, c, {"embedding": VEC, "inputTextTokenCount": 3})
    assert status == 200 and out["data"][0]["embedding"] == VEC
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}
    status, out = answer(
        rule, c, {"embedding": VEC, "inputTextTokenCount": 3}, headers={"X-Amzn-Bedrock-Input-Token-Count": "4"}
    )
    assert out["usage"]["prompt_tokens"] == 4  # the header wins


def test_bedrock_titan_one_input_only() -> None:
    rule = bedrock_rule("amazon.titan-embed-text-v2:0")
    error = refused(rule, {"input": ["a", "b"]}, "input")
    assert "one text" in error.message
    _, up = upstream(rule, {"input": ["only"]})
    assert up.body == {"inputText": "only"}


def test_bedrock_titan_v1_has_no_dimensions() -> None:
    refused(bedrock_rule("amazon.titan-embed-text-v1"), {"input": "a", "dimensions": 8}, "dimensions")


def test_bedrock_cohere() -> None:
    rule = bedrock_rule("cohere.embed-english-v3", cohere={"embedding_input_type": "classification"})
    c, up = upstream(rule, {"input": ["a", "b"], "encoding_format": "base64"})
    assert up.url.endswith("/model/cohere.embed-english-v3/invoke")
    assert up.body == {"texts": ["a", "b"], "input_type": "classification", "embedding_types": ["float"]}
    refused(rule, {"input": "a", "dimensions": 8}, "dimensions")
    data = {"id": "x", "embeddings": {"float": [VEC, VEC2]}, "response_type": "embeddings_by_type"}
    status, out = answer(rule, c, data, headers={"x-amzn-bedrock-input-token-count": "6"})
    assert status == 200 and [floats(d["embedding"]) for d in out["data"]] == [VEC, VEC2]
    assert out["usage"]["total_tokens"] == 6
    status, out = answer(rule, c, {"embeddings": [VEC]})  # no embedding_types: a bare array, no count
    assert status == 200 and "usage" not in out
    _, up = upstream(bedrock_rule("us.cohere.embed-v4:0"), {"input": "a", "dimensions": 512})
    assert up.body["output_dimension"] == 512


def test_bedrock_unknown_family_and_pinned_url() -> None:
    refused(bedrock_rule("meta.llama3-70b-instruct-v1:0"), {"input": "a"}, "model")
    url = "http://127.0.0.1:9/model/amazon.titan-embed-text-v2%3A0/converse"
    rule = make_rule("bedrock", name=None, options={"upstream_url": url, "bedrock": {"aws_region": "us-east-1"}})
    _, up = upstream(rule, {"input": "a"})
    assert up.url == "http://127.0.0.1:9/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert up.body == {"inputText": "a"}
