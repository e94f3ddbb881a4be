"""What mitmweb and mitmproxy console show of a handled flow: the "AI Exchange" contentview (the default view of
handled flows, and only of them), the flow's summary in `flow.metadata`, and a mark on flows that failed. The glue;
the text itself is addon/exchange_view.py.

At the end of an exchange (`finish`, called from the addon's `_finish`) the flow gets:
- `flow.metadata["ai_proxy"]`: a compact, JSON-safe summary (rule, provider, model, client format, status, usage,
  cost, latency, TTFT, the loss report, the error), which the view, the metrics and other addons read;
- `flow.metadata["ai_proxy_payloads"]`: what the flow itself no longer holds — the client's request as it came
  (headers with credentials redacted; the body is the exchange's own bytes object, not a copy), the provider's
  answer before translation, and the standard answer (kept for chat and completions only);
- a mark when it failed: ":stopwatch:" for an upstream timeout, ":red_circle:" for any other error or status >= 400
  (a mark the user set first is kept);
- for a streamed response (mitmproxy keeps no body of one), a bounded stand-in body saying what the proxy kept, so
  that mitmweb and the console ask the view for it instead of saying "Content is missing".
"""

from __future__ import annotations

import logging
import shutil
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import contentviews, ctx, http
from mitmproxy.contentviews import Contentview, Metadata
from mitmproxy.net import encoding

from . import columns, exchange_view, flows, jsonutil, record
from .exchange_view import Message
from .openai_format import cache_counts
from .record import Exchange
from .routes import route_for

log = logging.getLogger("ai_proxy")

META = "ai_proxy"
PAYLOADS = "ai_proxy_payloads"
ERROR_MARK = ":red_circle:"
TIMEOUT_MARK = ":stopwatch:"
STAND_IN = "stand_in"  # in PAYLOADS: the response's body is the proxy's stand-in for a stream's (not kept)
VIEW_NAME = "AI Exchange"
PRIORITY = 10.0  # above every built-in view (JSON is 1), for handled flows only
_ANSWER_ROUTES = ("llm/v1/chat", "llm/v1/completions")


def summary(ex: Exchange, usage: dict[str, Any], sent_upstream: bool, method: str) -> dict[str, Any]:
    """The exchange's JSON-safe summary: what the view's headline, the metrics and filters read."""
    spec = ex.rule.spec
    call = ex.call
    response = ex.response_object()
    status, error = record._status_and_error(ex)  # the record's own verdict
    raw = response.get("usage") if isinstance(response.get("usage"), dict) else None
    tokens: dict[str, Any] = {}
    if raw:
        tokens = {k: raw.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
        written = cache_counts(raw)[1] or None  # prompt tokens written to the provider's cache
        reasoning = (raw.get("completion_tokens_details") or {}).get("reasoning_tokens")
        pairs = (("cached_tokens", cached), ("cache_write_tokens", written), ("reasoning_tokens", reasoning))
        tokens.update({k: v for k, v in pairs if v is not None})
    request_model = call.model if call else ex.preserved_model
    return {
        "rule": spec.name,
        "provider": ex.provider.name,
        "model": response.get("model") or request_model,
        "request_model": request_model,
        "response_model": response.get("model") or None,
        "client_model": call.client_model if call else None,
        "client_format": spec.llm_format,
        "route": type(route_for(ex.rule)).__name__.lower(),
        "route_type": spec.route_type,
        "method": method,
        "stream": bool(call and call.stream),
        "status": status,
        "upstream_status": ex.upstream_status,
        "error": error,
        "timeout": ex.timeout,
        "dropped": list(call.dropped) if call is not None and call.dropped else [],
        "usage": tokens,
        "cost": usage.get("cost"),
        "started": ex.started,  # epoch seconds: the request hook
        "finished": ex.finished,
        "latency_ms": ex.latency_ms,
        "client_url": ex.client_url,  # credentials in its query redacted (flows.client_url)
        "ttft_ms": ex.ttft_ms,
        "original_url": ex.client_url,
        "upstream_url": ex.upstream_url if sent_upstream else None,
        "sent_upstream": sent_upstream,
    }


def finish(flow: http.HTTPFlow, ex: Exchange, usage: dict[str, Any]) -> dict[str, Any] | None:
    """Put the exchange's summary and payloads on the flow, mark it if it failed; returns the summary (None if it
    could not be made: logged, and the exchange and its record go on as they are)."""
    try:
        return _finish(flow, ex, usage)
    except Exception:
        log.exception(f"AI proxy: rule '{ex.rule.name}': could not summarise the exchange for the view")
        return None


def _finish(flow: http.HTTPFlow, ex: Exchange, usage: dict[str, Any]) -> dict[str, Any]:
    # The routes annotate a flow when its request leaves for the provider: no annotation, nothing was sent.
    sent = ex.local_error is None and META in flow.metadata
    s = summary(ex, usage, sent, flow.request.method)
    flow.metadata[META] = s
    auth = ex.rule.spec.auth
    body = ex.client_body
    if auth is not None and auth.param_location == "body" and ex.secrets:
        body = flows.redact_json_body(body, ex.secrets)
    keep_answer = ex.rule.spec.route_type in _ANSWER_ROUTES and isinstance(ex.client_response, dict)
    flow.metadata[PAYLOADS] = {
        "client_headers": flows.redacted_headers(
            ex.client_headers, ex.secrets, (auth.header_name,) if auth is not None and auth.header_name else ()
        ),
        "client_body": body,
        "upstream_response": ex.upstream_response,
        "answer": ex.client_response if keep_answer else None,
        "client_answer": ex.client_answer if ex.client_stream else None,
    }
    response = flow.response
    if response is not None and response.raw_content is None:  # streamed: mitmproxy kept no body
        # Without a body mitmweb and the console show "Content is missing" and never ask a view: a bounded stand-in
        # saying what the proxy kept (it is set after the stream has gone to the client: nothing more is sent).
        stand_in = exchange_view.stream_stand_in(s, flow.metadata[PAYLOADS]["answer"])
        try:
            response.raw_content = encoding.encode(stand_in, response.headers.get("content-encoding", "identity"))
        except ValueError:  # an encoding mitmproxy cannot write: as it is (the views say "cannot decode")
            response.raw_content = stand_in
        flow.metadata[PAYLOADS][STAND_IN] = True
    if not flow.marked and (s["error"] or (s["status"] or 0) >= 400):
        flow.marked = TIMEOUT_MARK if ex.timeout else ERROR_MARK
    return s


# ---- the contentview ---------------------------------------------------------------------------------------------


def _content(message: http.Message | None) -> bytes | None:
    return None if message is None else message.get_content(strict=False)


def _content_type(message: http.Message) -> str:
    return message.headers.get("content-type", "")


def render(flow: http.HTTPFlow, response_tab: bool, width: int = exchange_view.WIDTH) -> str:
    """The view's text for a finished handled flow: its request tab, or its response tab; two-column sections
    `width` cells wide."""
    s: dict[str, Any] = flow.metadata[META]
    p: dict[str, Any] = flow.metadata.get(PAYLOADS) or {}
    request = flow.request
    reply = p.get("answer")
    if response_tab:
        received: Message | None = None
        if flow.response is not None:
            title = f"HTTP {flow.response.status_code}"
            body = None if p.get(STAND_IN) else _content(flow.response)
            if not body and s.get("stream"):  # a stream: passed on as it came, not kept
                title += " (streamed: assembled here)"
                assembled = p.get("client_answer") or reply
                body = jsonutil.dumps(assembled) if assembled is not None else None
            received = Message(title, exchange_view.header_pairs(flow.response.headers.fields), body)
        upstream_body = p.get("upstream_response")
        provider = None
        if s.get("sent_upstream") and s.get("upstream_status") is not None:
            note = ""
            if upstream_body is None:
                translated = s.get("route") == "translated"
                note = " (streamed: its events are not kept)" if translated else " (passed on unchanged: see beside)"
            provider = Message(f"HTTP {s['upstream_status']}{note}", [], upstream_body)
        return exchange_view.response_text(s, provider, received, reply, width)
    # The client's request as it came: kept apart once the flow's request has become the upstream one; the flow's
    # own request (credentials redacted) when the proxy answered and what it kept is missing.
    headers = [(k, v) for k, v in p.get("client_headers") or []] or exchange_view.header_pairs(request.headers.fields)
    body = p.get("client_body")
    client = Message(f"{s.get('method')} {s.get('original_url')}", headers, _content(request) if body is None else body)
    upstream: Message | None = None
    if s.get("sent_upstream"):
        upstream = Message(
            f"{request.method} {s.get('upstream_url')}",
            exchange_view.header_pairs(request.headers.fields),
            _content(request),
            _content_type(request),
        )
    path = urlsplit(s.get("original_url") or "").path
    standard = exchange_view.standard_request(
        s.get("client_format", "openai"), s.get("route_type", ""), path, client.body
    )
    return exchange_view.request_text(s, client, upstream, standard, reply, width)


def view_width() -> int:
    """Cells for the view's two-column sections: the terminal's width in mitmproxy's console (which wraps wider
    lines), else exchange_view.WIDTH (mitmweb scrolls a wider line sideways)."""
    try:
        master = ctx.master
    except AttributeError:  # no master (a script calling the view)
        return exchange_view.WIDTH
    if type(master).__module__.startswith("mitmproxy.tools.console"):
        return max(2 * columns.MIN_COLUMN + 3, shutil.get_terminal_size((exchange_view.WIDTH, 24)).columns - 1)
    return exchange_view.WIDTH


def handled(flow: Any) -> bool:
    return isinstance(flow, http.HTTPFlow) and bool((flow.metadata.get(META) or {}).get("finished"))  # epoch s


class AIExchangeView(Contentview):
    """The "AI Exchange" view: a handled flow as a person reads it (see exchange_view)."""

    name = VIEW_NAME  # type: ignore[assignment]  # the Protocol declares a property

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        flow = metadata.flow
        if not handled(flow):
            raise ValueError("not a flow the AI proxy handled")
        assert isinstance(flow, http.HTTPFlow)
        response_tab = metadata.http_message is not None and metadata.http_message is flow.response
        return render(flow, response_tab, view_width())

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return PRIORITY if handled(metadata.flow) else -1.0


VIEW = AIExchangeView()


def register() -> None:
    contentviews.add(VIEW)


def unregister() -> None:
    """Take the view out of mitmproxy's registry (it has no public remove: the registry is a mapping by name)."""
    by_name = getattr(contentviews.registry, "_by_name", None)
    if isinstance(by_name, dict) and by_name.get(VIEW_NAME.lower()) is VIEW:
        del by_name[VIEW_NAME.lower()]
