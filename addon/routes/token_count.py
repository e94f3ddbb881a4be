"""Token counts a client format asks for (e.g. count_tokens): through the provider's own counter where it has
one (Provider.count_tokens_request), else — and whenever that counter fails, is refused or cannot be
reached — the client format's local estimate. Never an error for a valid request: a coding agent that counts
before each turn must not stop because a counter did. The answer says which it is in `x-ai-proxy-token-count`."""

from __future__ import annotations

import logging

from .. import flows, jsonutil
from ..errors import ProxyError
from ..exchange import ClientRequest, call_for, count_upstream
from ..formats import ClientFormat, TokenCount
from ..providers import Call, UpstreamRequest
from ..record import Exchange

log = logging.getLogger("ai_proxy")

SOURCE_HEADER = "x-ai-proxy-token-count"  # "provider" (its counter answered) or "estimate"


def counter_call(
    ex: Exchange, fmt: ClientFormat, count: TokenCount, captures: dict[str, str], client: ClientRequest
) -> Call | None:
    """The Call whose input is counted; None when the rule cannot serve it (then the estimate is the answer)."""
    ex.token_count = count
    try:
        call = call_for(ex.rule, captures, client, dict(count.standard), [], fmt)
    except ProxyError as e:
        log.info(f"AI proxy: rule '{ex.rule.name}': no provider token count ({e.message}); answering the estimate")
        return None
    call.stream = False  # a count is never streamed, whatever the rule's streaming policy
    return call


def counter_request(ex: Exchange, call: Call) -> UpstreamRequest | None:
    """The request to the provider's counter (ex.call is then `call`); None when the provider has none or cannot
    count this request (then the estimate is the answer)."""
    try:
        up = count_upstream(ex.rule, call)
    except ProxyError as e:
        log.info(f"AI proxy: rule '{ex.rule.name}': no provider token count ({e.message}); answering the estimate")
        return None
    if up is not None:
        ex.call = call
    return up


def answer(flow: flows.HTTPFlow, ex: Exchange, tokens: int | None) -> None:
    """The client's answer: the provider's count, or the estimate when there is none."""
    count = ex.token_count
    assert isinstance(count, TokenCount)
    flow.response = flows.new_response(200, b"", {})
    _fill(flow.response, ex, count, tokens)


def from_counter(flow: flows.HTTPFlow, ex: Exchange) -> None:
    """The counter's answer is in: the client gets its count, or the estimate when the counter failed."""
    response = flow.response
    assert response is not None and isinstance(ex.token_count, TokenCount)
    raw = response.get_content(strict=False) or b""
    ex.upstream_response = raw
    tokens = None
    if response.status_code < 300:
        try:
            tokens = ex.provider.parse_token_count(jsonutil.loads(raw))
        except ValueError:
            tokens = None
    if tokens is None:
        log.info(
            f"AI proxy: rule '{ex.rule.name}': the {ex.provider.name} token counter answered HTTP "
            f"{response.status_code} without a count; answering the estimate"
        )
    _fill(response, ex, ex.token_count, tokens)


def estimate_response(ex: Exchange) -> flows.Response:
    """The answer of a count whose counter could not be reached (or timed out): the estimate."""
    response = flows.new_response(200, b"", {})
    assert isinstance(ex.token_count, TokenCount)
    _fill(response, ex, ex.token_count, None)
    return response


def _fill(response: flows.Response, ex: Exchange, count: TokenCount, tokens: int | None) -> None:
    ex.client_answer = count.answer(count.estimate if tokens is None else tokens)
    ex.status = 200
    body = jsonutil.dumps(ex.client_answer)
    response.status_code, response.reason = 200, "OK"
    response.headers = flows.header_list(
        [
            (b"content-type", b"application/json"),
            (SOURCE_HEADER.encode(), b"estimate" if tokens is None else b"provider"),
            (b"content-length", str(len(body)).encode()),
        ]
    )
    response.raw_content = body
