"""route_type llm/v1/embeddings for Gemini: the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

import pytest

from addon.errors import ProxyError
from tests.support.embeddings import VEC, VEC2, answer, call, make_rule, upstream


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
