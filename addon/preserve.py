"""`route_type: preserve`: any request under a rule's match goes to the provider as it is (embeddings, audio,
model lists, files...), with only the URL and the credentials rewritten. Pure code: no mitmproxy, no I/O.

The client's path is kept and appended to the provider's base (or to `upstream_url`, whose path then acts as a
prefix); a provider whose URLs differ says how in its `preserve_target`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import jsonutil
from .auth import CREDENTIAL_HEADERS, CREDENTIAL_PARAMS
from .errors import ProxyError
from .providers import REGISTRY
from .rules import Rule
from .templating import TemplateContext

# Client headers never forwarded: hop-by-hop, recomputed (the glue sends the body decoded), or credentials (re-added
# only by allow_override).
_DROPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
     "trailer", "transfer-encoding", "upgrade", "accept-encoding", "content-encoding", *CREDENTIAL_HEADERS}
)  # fmt: skip


@dataclass(slots=True)
class PreservedRequest:
    """A request passed through with its URL and credentials rewritten."""

    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    model: str | None  # for the record, when the body names one


def build(
    rule: Rule,
    captures: Mapping[str, str],
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> PreservedRequest:
    """The upstream request for a preserve rule. Raises ProxyError (413, 400, 500)."""
    spec = rule.spec
    if len(body) > spec.max_request_body_size:
        raise ProxyError(
            413,
            f"request body of {len(body)} bytes exceeds this route's limit of {spec.max_request_body_size}",
            code="request_too_large",
        )
    rule.check_env()
    ctx = TemplateContext(headers, captures, query)
    options = rule.resolve_options(ctx)
    client_model = _body_model(headers, body)
    model = rule.resolve_model_name(ctx) or client_model
    provider = REGISTRY[spec.model.provider]
    client_path = path.split("?", 1)[0]
    out_query = {k: v for k, v in query.items() if k.lower() not in CREDENTIAL_PARAMS}
    forwarded = {k: v for k, v in headers.items() if k not in _DROPPED_HEADERS}
    base, client_path = provider.preserve_target(options, model, client_path, out_query, forwarded)
    if not base:
        raise ProxyError(
            500,
            f"rule '{rule.name}': route_type preserve needs model.options.upstream_url for provider {provider.name}",
            type="server_error",
            code="proxy_misconfigured",
        )
    parts = urlsplit(base)
    prefix = parts.path.rstrip("/")
    base_query = dict(_pairs(parts.query))
    url = f"{parts.scheme}://{parts.netloc}{prefix}{client_path}"
    merged = {**base_query, **out_query}
    if merged:
        url += "?" + urlencode(merged)
    return PreservedRequest(url=url, method=method, headers=forwarded, body=body, model=model)


def usage_of(content_type: str, body: bytes) -> tuple[dict[str, Any] | None, Any]:
    """(usage, parsed body) of a JSON response that carries OpenAI-style usage (embeddings, chat, ...)."""
    if "json" not in content_type.lower() or not body:
        return None, None
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return None, None
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict) and "prompt_tokens" not in usage and "input_tokens" in usage:
        # input/output-style usage (the Messages API shape)
        prompt, completion = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if isinstance(usage, dict):
        usage = {"completion_tokens": 0, **usage}
        usage.setdefault("total_tokens", (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0))
    return (usage if isinstance(usage, dict) else None), data


def _body_model(headers: Mapping[str, str], body: bytes) -> str | None:
    if "json" not in headers.get("content-type", "") or not body:
        return None
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)
