"""route_type llm/v1/embeddings: validation, rules, and each provider's request and response mapping (pure)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.openai_format import encode_embedding, validate
from addon.providers import Call, UpstreamRequest
from addon.rules import Rule, RulesError
from tests.support.rules import one_rule

EMB = "llm/v1/embeddings"
VEC = [0.25, -0.5, 1.0]
VEC2 = [0.125, 0.75, -1.5]


def make_rule(provider: str, name: str | None = "embed-model", **extra: Any) -> Rule:
    return one_rule(provider, name, EMB, extra.pop("options", {}), **extra)


def call(rule: Rule, body: Any) -> Call:
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", json.dumps(body).encode()))


def upstream(rule: Rule, body: Any) -> tuple[Call, UpstreamRequest]:
    c = call(rule, body)
    return c, build_upstream(rule, c)


def answer(rule: Rule, c: Call, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    c.response_headers = headers or {}
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return translate_response(provider_for(rule), c, status, raw, "application/json")


def floats(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def refused(rule: Rule, body: Any, param: str | None = None) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        c = call(rule, body)
        build_upstream(rule, c)
    assert info.value.status == 400, info.value.message
    if param is not None:
        assert info.value.param == param
    return info.value


# --------------------------------------------------------------------------------------------------------------
# Validation, rules, the Call
# --------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------
# OpenAI, Azure: passthrough
# --------------------------------------------------------------------------------------------------------------


def openai_list(*vectors: Any, prompt_tokens: int = 7) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def test_openai_passthrough() -> None:
    rule = make_rule("openai", name=None)
    body = {"input": ["a", "b"], "model": "text-embedding-3-small", "encoding_format": "base64", "dimensions": 3}
    c, up = upstream(rule, {**body, "user": "u1"})
    assert up.url == "https://api.openai.com/v1/embeddings"
    assert up.body == {**body, "user": "u1"}
    encoded = [encode_embedding(VEC), encode_embedding(VEC2)]
    status, out = answer(rule, c, openai_list(*encoded))
    assert status == 200
    assert [d["embedding"] for d in out["data"]] == encoded  # OpenAI encoded it: unchanged
    assert out["usage"] == {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}


def test_openai_bad_shape_is_502() -> None:
    rule = make_rule("openai")
    c = call(rule, {"input": "a"})
    status, out = answer(rule, c, {"choices": []})
    assert status == 502 and out["error"]["code"] == "bad_upstream_response"


def test_openai_error_envelope() -> None:
    rule = make_rule("openai")
    c = call(rule, {"input": "a"})
    err = {"error": {"message": "bad dims", "type": "invalid_request_error", "param": "dimensions", "code": None}}
    status, out = answer(rule, c, err, status=400)
    assert status == 400 and out["error"]["message"] == "bad dims" and out["error"]["param"] == "dimensions"


def test_azure_deployment_url() -> None:
    rule = make_rule("azure", name=None, options={"azure_instance": "res", "azure_deployment_id": "emb-dep"})
    _, up = upstream(rule, {"input": "a"})
    parts = urlsplit(up.url)
    assert (parts.netloc, parts.path) == ("res.openai.azure.com", "/openai/deployments/emb-dep/embeddings")
    assert parse_qs(parts.query)["api-version"] == ["2024-10-21"]
    assert "stream" not in up.body and "stream_options" not in up.body


# --------------------------------------------------------------------------------------------------------------
# Cohere
# --------------------------------------------------------------------------------------------------------------


def cohere_embed(*vectors: Any, tokens: Any = 5) -> dict[str, Any]:
    return {
        "id": "emb-1",
        "embeddings": {"float": list(vectors)},
        "texts": ["a", "b"],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        "response_type": "embeddings_by_type",
    }


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


# --------------------------------------------------------------------------------------------------------------
# Gemini
# --------------------------------------------------------------------------------------------------------------


def test_gemini_request_and_response() -> None:
    rule = make_rule("gemini", name="gemini-embedding-001")
    c, up = upstream(rule, {"input": ["a", "b"], "dimensions": 3})
    assert up.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert up.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}, "outputDimensionality": 3}
            for t in ("a", "b")
        ]
    }
    status, out = answer(rule, c, {"embeddings": [{"values": VEC}, {"values": VEC2}]})
    assert status == 200
    assert [d["embedding"] for d in out["data"]] == [VEC, VEC2]
    assert "usage" not in out  # Gemini reports no token counts for embeddings


def test_gemini_pinned_operation_switched() -> None:
    rule = make_rule("gemini", name="m", options={"upstream_url": "http://127.0.0.1:9/v1beta/models/m:embedContent"})
    _, up = upstream(rule, {"input": "a"})
    assert up.url == "http://127.0.0.1:9/v1beta/models/m:batchEmbedContents"
    rule = make_rule("gemini", name="m", options={"upstream_url": "http://127.0.0.1:9"})
    _, up = upstream(rule, {"input": "a"})
    assert up.url == "http://127.0.0.1:9/v1beta/models/m:batchEmbedContents"


def test_gemini_vertex_refused_as_misconfigured() -> None:
    rule = make_rule("gemini", options={"gemini": {"project_id": "p", "location_id": "us-central1"}})
    with pytest.raises(ProxyError) as info:
        upstream(rule, {"input": "a"})
    assert info.value.status == 500 and info.value.code == "proxy_misconfigured"


def test_gemini_bad_shape() -> None:
    rule = make_rule("gemini")
    c = call(rule, {"input": "a"})
    assert answer(rule, c, {"candidates": []})[0] == 502


# --------------------------------------------------------------------------------------------------------------
# Bedrock
# --------------------------------------------------------------------------------------------------------------

BEDROCK_AUTH = {"aws_access_key_id": "AKIDEMBEDFAKE0000001", "aws_secret_access_key": "fake/secret/embed"}


def bedrock_rule(model: str, **options: Any) -> Rule:
    return make_rule(
        "bedrock", name=model, options={"bedrock": {"aws_region": "us-east-1"}, **options}, auth=BEDROCK_AUTH
    )


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


# --------------------------------------------------------------------------------------------------------------
# Mistral, Ollama (llama2 / mistral), OpenAI-compatible llama2, Hugging Face
# --------------------------------------------------------------------------------------------------------------


def test_mistral_floats_requested_and_encoded_here() -> None:
    rule = make_rule("mistral", name="codestral-embed")
    c, up = upstream(rule, {"input": ["a"], "encoding_format": "base64", "dimensions": 3, "user": "u"})
    assert up.url == "https://api.mistral.ai/v1/embeddings"
    assert up.body == {"model": "codestral-embed", "input": ["a"], "output_dimension": 3}
    data = {
        "id": "e",
        "object": "list",
        "model": "codestral-embed",
        "data": [{"object": "embedding", "index": 0, "embedding": VEC}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2, "completion_tokens": 0},
    }
    status, out = answer(rule, c, data)
    assert status == 200 and floats(out["data"][0]["embedding"]) == VEC
    assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2}


def ollama_embed(*vectors: Any) -> dict[str, Any]:
    return {"model": "nomic-embed-text", "embeddings": list(vectors), "total_duration": 1, "prompt_eval_count": 9}


@pytest.mark.parametrize(
    ("provider", "options"),
    [("llama2", {"llama2_format": "ollama"}), ("mistral", {"mistral_format": "ollama"})],
)
def test_ollama_api_embed(provider: str, options: dict[str, Any]) -> None:
    rule = make_rule(provider, name="nomic-embed-text", options={"upstream_url": "http://127.0.0.1:11434", **options})
    c, up = upstream(rule, {"input": "a", "dimensions": 2})
    assert up.url == "http://127.0.0.1:11434/api/embed"
    assert up.body == {"model": "nomic-embed-text", "input": ["a"], "dimensions": 2}
    status, out = answer(rule, c, ollama_embed(VEC))
    assert status == 200 and out["data"][0]["embedding"] == VEC and out["model"] == "nomic-embed-text"
    assert out["usage"] == {"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9}
    assert answer(rule, c, {"embedding": VEC})[0] == 502  # the old /api/embeddings shape is not this one


def test_llama2_openai_compatible_server() -> None:
    rule = make_rule("llama2", name="bge", options={"upstream_url": "http://127.0.0.1:8000", "llama2_format": "openai"})
    c, up = upstream(rule, {"input": [[1, 2, 3]], "encoding_format": "base64"})
    assert up.url == "http://127.0.0.1:8000/v1/embeddings"
    assert up.body == {"model": "bge", "input": [[1, 2, 3]]}  # token ids pass; floats asked for
    status, out = answer(rule, c, openai_list(VEC))
    assert status == 200 and floats(out["data"][0]["embedding"]) == VEC


def test_huggingface_router_and_tei() -> None:
    rule = make_rule("huggingface", name="BAAI/bge-small-en-v1.5", options={"huggingface": {"wait_for_model": True}})
    c, up = upstream(rule, {"input": "a"})
    assert up.url == "https://router.huggingface.co/v1/embeddings"
    assert up.body == {"model": "BAAI/bge-small-en-v1.5", "input": ["a"]}
    assert up.headers["x-wait-for-model"] == "true"
    assert answer(rule, c, openai_list(VEC))[1]["data"][0]["embedding"] == VEC

    tei = make_rule("huggingface", name=None, options={"upstream_url": "http://127.0.0.1:8080/embed"})
    c, up = upstream(tei, {"input": ["a", "b"]})
    assert up.url == "http://127.0.0.1:8080/embed"
    assert up.body == {"inputs": ["a", "b"]}
    status, out = answer(tei, c, [VEC, VEC2], headers={"x-compute-tokens": "4"})
    assert status == 200 and [d["embedding"] for d in out["data"]] == [VEC, VEC2]
    assert out["usage"]["prompt_tokens"] == 4
    assert answer(tei, c, {"embeddings": []})[0] == 502
    refused(tei, {"input": "a", "dimensions": 8}, "dimensions")


KONG = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "kong"


@pytest.mark.skipif(not KONG.is_dir(), reason="Kong fixtures not available")
def test_kong_openai_embeddings_response() -> None:
    data = json.loads((KONG / "ai-proxy/openai/llm-v1-embeddings/responses/good.json").read_text())
    for encoding in ("float", "base64"):
        for provider in ("openai", "mistral"):  # passed through / floats asked for and encoded here
            rule = make_rule(provider)
            c = call(rule, {"input": "a", "encoding_format": encoding})
            status, out = answer(rule, c, data)
            assert status == 200 and len(out["data"]) == len(data["data"])
            got = out["data"][0]["embedding"]
            want = data["data"][0]["embedding"]
            if encoding == "base64" and provider == "mistral":
                assert floats(got) == pytest.approx(want, rel=1e-6)
            else:
                assert got == want
            assert out["usage"]["completion_tokens"] == 0
            assert out["usage"]["prompt_tokens"] == data["usage"]["prompt_tokens"]
