"""A route: how one kind of handled flow goes upstream and comes back — translated (the client's format to the
rule's provider), native (the provider's own format, passed through) or preserve (any endpoint, passed through).
The hooks in proxy.py only guard and dispatch to the rule's route; the translation itself is the pure core."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from .. import flows
from ..auth import redact_url
from ..errors import ProxyError
from ..record import Exchange
from ..spec import AuthSpec


class Services(Protocol):
    """What a route needs from the addon: OAuth tokens, closing an upstream connection early, the Responses store, the
    store of signed reasoning (None when off)."""

    def gcp_tokens(self) -> Any: ...

    def close_upstream(self, flow: flows.HTTPFlow) -> None: ...

    def response_store(self) -> Any: ...

    def signature_store(self) -> Any: ...


class Route:
    # What the client is told when the addon itself fails while building the upstream request.
    failure_message: ClassVar[str] = "AI proxy failed to translate the request"

    async def forward(self, services: Services, flow: flows.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        """Point the flow's request at the upstream, finished (URL, headers with auth, body). Raises ProxyError
        for a request answered locally."""
        raise NotImplementedError

    def response_headers(self, services: Services, flow: flows.HTTPFlow, ex: Exchange) -> None:
        """The upstream's response headers are in: decide whether and how its body is streamed."""

    def response(self, flow: flows.HTTPFlow, ex: Exchange) -> None:
        """The whole upstream response (or the end of its stream) is in: what the client gets, and the record."""
        raise NotImplementedError

    def error_body(self, ex: Exchange, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        """An error as the client's format spells it (the OpenAI envelope unless the route says otherwise)."""
        return err.body(), {}

    def error_answer(self, ex: Exchange, err: ProxyError, http1: bool = False) -> flows.Response:
        """An error as the client's whole response. An HTTP/1 connection whose upstream failed is closed after
        it (HTTP/2 has no such header: its stream simply ends)."""
        body, extra = self.error_body(ex, err)
        headers = {"content-type": "application/json", **flows.checked({**extra, **err.headers})}
        if http1:
            headers["connection"] = "close"
        return flows.new_response(self.error_status(ex, err.status), body, headers)

    def error_status(self, ex: Exchange, status: int) -> int:
        """The status of an error as the client's format spells it (the same unless the route says otherwise)."""
        return status

    def stream_tail(self, ex: Exchange, err: ProxyError) -> bytes | None:
        """What ends a client's stream that the upstream cut off: an error event in the client's format, or
        None to cut the client's stream off too (a native stream is the provider's bytes)."""
        return None


def annotate(flow: flows.HTTPFlow, ex: Exchange, model: str | None) -> None:
    """What mitmweb and other addons can read about a handled flow."""
    flow.metadata["ai_proxy"] = {
        "rule": ex.rule.name,
        "provider": ex.provider.name,
        "model": model,
        "original_url": ex.client_url,
        "upstream_url": ex.upstream_url,
    }


def keep_secrets(ex: Exchange, secrets: list[str], auth: AuthSpec | None, url: str) -> None:
    """Remember this exchange's credentials (redacted from the flow and the record) and its redacted URL."""
    ex.secrets = tuple(flows.with_bare_tokens(secrets))
    ex.secret_params = (auth.param_name,) if auth and auth.param_name else ()
    ex.upstream_url = redact_url(url, set(ex.secret_params))


def finish_stream(ex: Exchange, request_end: float | None, end: float | None) -> None:
    """The record's fields of a stream that has ended (completely or not)."""
    assert ex.translator is not None and ex.call is not None
    result = ex.translator.result
    if request_end:
        if end:
            ex.latency_ms = round((end - request_end) * 1000, 1)
        if result.first_token_at:
            ex.ttft_ms = round((result.first_token_at - request_end) * 1000, 1)
    ex.status = ex.upstream_status
    if result.error is not None:
        ex.error = result.error.message
    response = result.assembled(ex.call.route_type, "stream")
    ex.client_response = response if response is not None else {"model": result.model, "usage": result.usage}


def upstream_body(flow: flows.HTTPFlow, ex: Exchange) -> bytes | None:
    """The upstream's answer has ended: its status and latency recorded, and its body (kept for the record), or
    None for a translated or recorded stream, whose record is finished here."""
    response = flow.response
    assert response is not None
    ex.upstream_status = response.status_code
    latency(flow, ex)
    if ex.translator is not None:
        finish_stream(ex, flow.request.timestamp_end, response.timestamp_end)
        return None
    raw = response.get_content(strict=False) or b""
    ex.upstream_response = raw
    return raw


def latency(flow: flows.HTTPFlow, ex: Exchange) -> None:
    response = flow.response
    if response is not None and response.timestamp_end and flow.request.timestamp_end:
        ex.latency_ms = round((response.timestamp_end - flow.request.timestamp_end) * 1000, 1)
