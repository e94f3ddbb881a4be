"""The generateContent / streamGenerateContent URL of the surface a rule names (Gemini API or Vertex AI)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from ...errors import ProxyError
from ..base import Call
from .common import GEMINI_API, GENERATE, STREAM, _model_segment, _vertex


def url(call: Call) -> str:
    """The standard URL of the surface the rule names; `upstream_url`/`upstream_path` win as given, except
    that the operation in them follows the client's stream flag."""
    options = call.options
    op = STREAM if call.stream else GENERATE
    base, default_path = _standard(call, op)
    query: list[tuple[str, str]] = []
    rule_path = options.upstream_path
    if options.upstream_url:
        parts = urlsplit(options.upstream_url)
        base = f"{parts.scheme}://{parts.netloc}"
        if parts.path not in ("", "/"):
            rule_path = parts.path
        query = parse_qsl(parts.query, keep_blank_values=True)
    path = rule_path or default_path
    pinned_stream = rule_path is not None and path.endswith(":" + STREAM)
    if pinned_stream or path.endswith((":" + GENERATE, ":" + STREAM)):
        path = path.rsplit(":", 1)[0] + ":" + op
        if not call.stream:
            query = [(k, v) for k, v in query if k != "alt"]  # ?alt=sse belongs to the streaming operation
        elif not pinned_stream and not any(k == "alt" for k, _ in query):
            # The rule names the non-streaming operation: switch it and ask for SSE. A rule that names the
            # streaming operation itself keeps its own query (without alt=sse: the JSON-array form).
            query.append(("alt", "sse"))
    url = base.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _standard(call: Call, op: str) -> tuple[str, str]:
    options = call.options
    model = _model_segment(call.model)
    if not _vertex(options):
        return GEMINI_API, f"/v1beta/models/{model}:{op}"
    g = options.gemini
    assert g is not None
    if not (g.project_id and g.location_id):
        raise ProxyError(
            500,
            "this rule's model.options.gemini needs both project_id and location_id for Vertex AI",
            type="server_error",
            code="proxy_misconfigured",
        )
    location = quote(g.location_id, safe="")
    endpoint = g.api_endpoint or (
        "aiplatform.googleapis.com" if g.location_id == "global" else f"{location}-aiplatform.googleapis.com"
    )
    base = endpoint if "://" in endpoint else f"https://{endpoint}"
    scope = f"/v1/projects/{quote(g.project_id, safe='')}/locations/{location}"
    if g.endpoint_id:
        return base, f"{scope}/endpoints/{quote(g.endpoint_id, safe='')}:{op}"
    return base, f"{scope}/publishers/google/models/{model}:{op}"
