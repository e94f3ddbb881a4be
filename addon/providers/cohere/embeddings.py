"""OpenAI embeddings <-> Cohere's embed API (`/v2/embed`, or `/v1/embed` with cohere_api v1)."""

from __future__ import annotations

from typing import Any

from ...openai_format import embedding_texts, embedding_usage, embeddings_response
from ..base import Call, UpstreamFormatError, UpstreamRequest, build_url
from .common import BASE_URL, _dig


def _embeddings_request(call: Call) -> UpstreamRequest:
    """OpenAI embeddings -> `/v2/embed` (`/v1/embed` with cohere_api v1): `texts`, `input_type` from
    `options.cohere.embedding_input_type` (default search_document), float vectors, `dimensions` as
    `output_dimension` (embed-v4)."""
    cohere = call.options.cohere
    out: dict[str, Any] = {
        "model": call.model,
        "texts": embedding_texts(call.body, "cohere"),
        "input_type": (cohere.embedding_input_type if cohere else None) or "search_document",
        "embedding_types": ["float"],
    }
    if call.body.get("dimensions") is not None:
        out["output_dimension"] = call.body["dimensions"]
    if out["model"] is None:
        del out["model"]  # v1 falls back to Cohere's default embedding model
    path = "/v1/embed" if call.options.cohere_api == "v1" else "/v2/embed"
    return UpstreamRequest(url=build_url(call.options, BASE_URL, path), body=out)


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    """`embeddings.float` (or v1's bare array of vectors), usage from `meta.billed_units.input_tokens`."""
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected a Cohere embed response object")
    vectors = data.get("embeddings")
    if isinstance(vectors, dict):
        vectors = vectors.get("float")
    if not isinstance(vectors, list):
        raise UpstreamFormatError("expected a Cohere embed response with embeddings.float")
    billed = _dig(data, "meta", "billed_units")
    found = embedding_usage(billed.get("input_tokens")) if isinstance(billed, dict) else None
    model = call.model or ""
    return embeddings_response(vectors, model, found, call.body.get("encoding_format"))
