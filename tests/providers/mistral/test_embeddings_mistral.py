"""route_type llm/v1/embeddings for Mistral: the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

from tests.support.embeddings import VEC, answer, floats, make_rule, upstream


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
