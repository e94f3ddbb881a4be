"""route_type llm/v1/embeddings for Cohere: the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

from tests.support.embeddings import VEC, VEC2, answer, call, cohere_embed, floats, make_rule, refused, upstream


def test_cohere_v2_request_and_response() -> None:
    rule = make_rule("cohere", name="embed-v4.0")
    c, up = upstream(rule, {"input": ["a", "b"], "dimensions": 256, "user": "dropped"})
    assert up.url == "https://api.cohere.com/v2/embed"
    assert up.body == {
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 256,
    }
    status, out = answer(rule, c, cohere_embed(VEC, VEC2, tokens=5.0))
    assert status == 200
    assert out["object"] == "list" and out["model"] == "embed-v4.0"
    assert [d["embedding"] for d in out["data"]] == [VEC, VEC2]
    assert [d["index"] for d in out["data"]] == [0, 1]
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}


def test_cohere_input_type_option_v1_and_base64() -> None:
    rule = make_rule("cohere", options={"cohere_api": "v1", "cohere": {"embedding_input_type": "search_query"}})
    c, up = upstream(rule, {"input": "q", "encoding_format": "base64"})
    assert up.url == "https://api.cohere.com/v1/embed"
    assert up.body["input_type"] == "search_query" and up.body["texts"] == ["q"]
    # v1 without embedding_types answers a bare array of vectors
    status, out = answer(rule, c, {"embeddings": [VEC], "meta": {"billed_units": {"input_tokens": 1}}})
    assert status == 200 and floats(out["data"][0]["embedding"]) == VEC


def test_cohere_refuses_token_ids() -> None:
    refused(make_rule("cohere"), {"input": [1, 2, 3]}, "input")


def test_cohere_bad_shape() -> None:
    rule = make_rule("cohere")
    c = call(rule, {"input": "a"})
    assert answer(rule, c, {"embeddings": {"int8": [[1]]}})[0] == 502
    assert answer(rule, c, {"embeddings": {"float": [["x"]]}})[0] == 502
