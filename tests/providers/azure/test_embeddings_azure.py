"""route_type llm/v1/embeddings for Azure OpenAI: the request and response mapping
(pure). The builders are in tests/support/embeddings.py."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.support.embeddings import make_rule, upstream


def test_azure_deployment_url() -> None:
    rule = make_rule("azure", name=None, options={"azure_instance": "res", "azure_deployment_id": "emb-dep"})
    _, up = upstream(rule, {"input": "a"})
    parts = urlsplit(up.url)
    assert (parts.netloc, parts.path) == ("res.openai.azure.com", "/openai/deployments/emb-dep/embeddings")
    assert parse_qs(parts.query)["api-version"] == ["2024-10-21"]
    assert "stream" not in up.body and "stream_options" not in up.body
