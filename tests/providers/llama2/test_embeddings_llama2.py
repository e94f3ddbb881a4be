"""route_type llm/v1/embeddings for Ollama (llama2 and mistral) and OpenAI-compatible Llama servers: the request
and response mapping (pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.embeddings import VEC, answer, floats, make_rule, ollama_embed, openai_list, upstream


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
