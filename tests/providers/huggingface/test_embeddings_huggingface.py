"""route_type llm/v1/embeddings for Hugging Face (router and TEI): the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

from tests.support.embeddings import VEC, VEC2, answer, make_rule, openai_list, refused, upstream


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
