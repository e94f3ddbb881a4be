"""Embeddings on the Gemini API: OpenAI /v1/embeddings <-> batchEmbedContents."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ...errors import ProxyError
from ...openai_format import embedding_texts, embeddings_response
from ..base import Call, UpstreamFormatError
from .common import GEMINI_API, GENERATE, STREAM, _model_segment, _vertex

EMBED = "batchEmbedContents"


def _embeddings_url(call: Call) -> str:
    """`/v1beta/models/{model}:batchEmbedContents` (Gemini API); a rule's whole URL is used as given, with a
    generate or single-embed operation in it switched to the batch one."""
    options = call.options
    if _vertex(options):
        raise ProxyError(
            500,
            "embeddings on Vertex AI (:predict) are not supported: use the Gemini API for embedding rules",
            type="server_error",
            code="proxy_misconfigured",
        )
    base, path, query = GEMINI_API, f"/v1beta/models/{_model_segment(call.model)}:{EMBED}", []
    if options.upstream_url:
        parts = urlsplit(options.upstream_url)
        base = f"{parts.scheme}://{parts.netloc}"
        if parts.path not in ("", "/"):
            path = parts.path
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "alt"]
    elif options.upstream_path:
        path = options.upstream_path
    if path.endswith((":" + GENERATE, ":" + STREAM, ":embedContent")):
        path = path.rsplit(":", 1)[0] + ":" + EMBED
    url = base.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _embeddings_body(call: Call) -> dict[str, Any]:
    model = "models/" + (call.model or "").removeprefix("models/")
    dimensions = call.body.get("dimensions")
    requests = []
    for text in embedding_texts(call.body, "gemini"):
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    """`embeddings[].values`; Gemini reports no token counts for embeddings, so the answer has no usage."""
    items = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise UpstreamFormatError("expected a batchEmbedContents response with embeddings[].values")
    vectors = [e.get("values") for e in items]
    return embeddings_response(vectors, call.model or "", None, call.body.get("encoding_format"))
