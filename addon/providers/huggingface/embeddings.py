"""Embeddings: the OpenAI-compatible /v1/embeddings (router, TEI), or TEI's native /embed."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...openai_format import (
    embedding_texts,
    embedding_usage,
    embeddings_body,
    embeddings_passthrough,
    embeddings_response,
)
from ..base import Call, UpstreamFormatError, UpstreamRequest, build_url, url_path
from .common import DEFAULT_MODEL, ROUTER_BASE
from .urls import _hf_headers

EMBEDDINGS_PATH = "/v1/embeddings"
TEI_EMBED = "/embed"


def _tei_embed(call: Call) -> bool:
    return (url_path(call.options) or "").rstrip("/").endswith(TEI_EMBED)


def _embeddings_request(call: Call) -> UpstreamRequest:
    url = build_url(call.options, ROUTER_BASE, EMBEDDINGS_PATH)
    if not _tei_embed(call):
        body = embeddings_body(call.body, call.model or DEFAULT_MODEL, "huggingface")
        return UpstreamRequest(url=url, body=body, headers=_hf_headers(call.options))
    if call.body.get("dimensions") is not None:
        raise bad_request(f"'dimensions' is not supported by TEI's {TEI_EMBED}: use /v1/embeddings", param="dimensions")
    return UpstreamRequest(url=url, body={"inputs": embedding_texts(call.body, "huggingface")})


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    encoding = call.body.get("encoding_format")
    if not _tei_embed(call):
        return embeddings_passthrough(data, call.model or DEFAULT_MODEL, encoding)
    if not isinstance(data, list):
        raise UpstreamFormatError(f"expected TEI's {TEI_EMBED} answer: an array of vectors")
    headers = call.response_headers or {}
    tokens = headers.get("x-compute-tokens")  # TEI's count of the tokens it embedded
    found = embedding_usage(int(tokens)) if isinstance(tokens, str) and tokens.isdigit() else None
    return embeddings_response(data, call.model or DEFAULT_MODEL, found, encoding)
