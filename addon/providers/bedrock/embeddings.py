"""Embeddings: InvokeModel with the model family's own body (Titan Text Embeddings, Cohere Embed)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from ...errors import bad_request
from ...openai_format import embedding_texts, embedding_usage, embeddings_response
from ..base import Call, UpstreamFormatError
from .common import _header

TITAN_EMBED, COHERE_EMBED = "amazon.titan-embed", "cohere.embed"


def _embeddings_family(call: Call, url: str) -> str:
    """Which embedding body the model takes: the model id (or the one in a pinned /model/{id}/invoke URL)."""
    model = call.model or ""
    if not model:
        head, _, _ = urlsplit(url).path.rstrip("/").rpartition("/")
        model = unquote(head.rpartition("/")[2])
    for family in (TITAN_EMBED, COHERE_EMBED):
        if family in model:  # also inference profiles: us.cohere.embed-v4:0
            return family
    raise bad_request(
        f"provider bedrock embeds with amazon.titan-embed-* and cohere.embed-* models, not {model!r}", param="model"
    )


def _embeddings_body(call: Call, url: str) -> dict[str, Any]:
    body = call.body
    dimensions = body.get("dimensions")
    if _embeddings_family(call, url) == TITAN_EMBED:
        texts = embedding_texts(body, "bedrock")
        if len(texts) != 1:
            raise bad_request(
                "Amazon Titan embeds one text per request: send 'input' as a single string", param="input"
            )
        out: dict[str, Any] = {"inputText": texts[0]}
        if dimensions is not None:
            if "titan-embed-text-v1" in (call.model or url):
                raise bad_request("'dimensions' needs amazon.titan-embed-text-v2", param="dimensions")
            out["dimensions"] = dimensions
        normalize = call.options.bedrock.embeddings_normalize if call.options.bedrock else None
        if normalize is not None:
            out["normalize"] = normalize
        return out
    cohere = call.options.cohere
    out = {
        "texts": embedding_texts(body, "bedrock"),
        "input_type": (cohere.embedding_input_type if cohere else None) or "search_document",
        "embedding_types": ["float"],
    }
    if dimensions is not None:
        if "embed-v4" not in (call.model or url):
            raise bad_request("'dimensions' needs cohere.embed-v4 on provider bedrock", param="dimensions")
        out["output_dimension"] = dimensions
    return out


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    """Titan `{"embedding", "inputTextTokenCount"}` or Cohere `{"embeddings": {"float": [...]} | [[...]]}`; the
    input token count from the `x-amzn-bedrock-input-token-count` header when present."""
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected an InvokeModel embeddings response object")
    if "embedding" in data:
        vectors = [data["embedding"]]
    else:
        vectors = data.get("embeddings")
        if isinstance(vectors, dict):
            vectors = vectors.get("float")
        if not isinstance(vectors, list):
            raise UpstreamFormatError("expected 'embedding' (Titan) or 'embeddings' (Cohere) in the response")
    count: Any = _header(call.response_headers, "x-amzn-bedrock-input-token-count")
    if count is not None:
        count = int(count) if count.strip().isdigit() else None
    if count is None:
        count = data.get("inputTextTokenCount")
    return embeddings_response(vectors, call.model or "", embedding_usage(count), call.body.get("encoding_format"))
