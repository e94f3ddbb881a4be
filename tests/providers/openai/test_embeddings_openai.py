"""route_type llm/v1/embeddings for OpenAI: the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

import json

import pytest

from addon.openai_format import encode_embedding
from tests.support.embeddings import KONG, VEC, VEC2, answer, call, floats, make_rule, openai_list, upstream


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
