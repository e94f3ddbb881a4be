"""What a client still connected gets when its exchange ends in mitmproxy's error hook (an upstream that failed,
a timeout that fired, the proxy shutting down), and what the record says: in the client's own format, instead of
mitmproxy's HTML page or a cut connection."""

from __future__ import annotations

import time

from .. import flows, record, upstream_faults
from ..errors import ProxyError
from ..record import Exchange
from .base import Route, finish_stream


def interrupted(flow: flows.HTTPFlow, ex: Exchange, route: Route) -> None:
    """An exchange that ended in mitmproxy's error hook: say in the record what happened, and give a client
    that is still there an answer in its own format instead of mitmproxy's HTML page or a cut connection."""
    if ex.translator is not None and ex.client_stream:
        finish_stream(ex, flow.request.timestamp_end, time.time())
        result = ex.translator.result
        if result.completed:
            return  # a hang-up after the end of a complete stream is how OpenAI SDKs close: not an error
        cause = failure(flow, ex)
        tail = route.stream_tail(ex, cause) if cause.code != "client_gone" else None
        if tail is not None:
            upstream_faults.answer_with(flow, upstream_faults.Answer(tail=tail))
        ex.error = ex.error or (result.error.message if result.error else cause.message)
    elif not ex.client_stream:
        cause = failure(flow, ex)
        ex.error = cause.message
        if cause.code == "client_gone":
            ex.status = ex.status or (502 if ex.upstream_status is None else ex.upstream_status)
        else:
            answer = route.error_answer(ex, cause, http1=not (flow.request.is_http2 or flow.request.is_http3))
            upstream_faults.answer_with(flow, upstream_faults.Answer(response=answer))
            ex.status, ex.client_response = cause.status, cause.envelope()
    else:
        ex.error = flow.error.msg if flow.error else "unknown error"
        if ex.status is None:
            ex.status = 502 if ex.upstream_status is None else ex.upstream_status


def failure(flow: flows.HTTPFlow, ex: Exchange) -> ProxyError:
    """What went wrong, as the client is told: a timeout that fired (504), or the transport's error (502)."""
    if ex.timeout is not None:
        return ProxyError(504, ex.rule.timeouts.describe(ex.timeout), code="upstream_timeout")
    if ex.in_flight_at_shutdown:  # its connection was cancelled by the shutdown, not by the upstream
        return ProxyError(record.SHUT_DOWN_STATUS, record.shutdown_error(ex), code="proxy_shutting_down")
    msg = flow.error.msg if flow.error else "unknown error"
    if not flow.client_conn.connected:  # nobody is told; the record says who hung up
        return ProxyError(502, f"the client hung up before the answer was complete: {msg}", code="client_gone")
    if flow.response is None and ex.upstream_status is None:
        return ProxyError(
            502, f"the upstream could not be reached or did not answer: {msg}", code="upstream_unreachable"
        )
    return ProxyError(502, f"the upstream broke off its answer: {msg}", code="upstream_broken")
