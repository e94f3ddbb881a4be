"""One handled exchange as the addon remembers it between its hooks, and what it becomes: the audit record (Kong's
analytics names) and the one-line summary mitmweb shows. Pure: no mitmproxy."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from . import audit, jsonutil, native
from .errors import ProxyError
from .formats import format_label
from .openai_format import cache_counts
from .providers import Call, Provider
from .rules import Rule
from .streaming import StreamTranslator


@dataclass(slots=True)
class Exchange:
    """What the addon remembers about one handled flow between its hooks."""

    rule: Rule
    provider: Provider
    client_url: str
    client_body: bytes
    started: float = field(default_factory=time.time)
    call: Call | None = None
    upstream_url: str | None = None
    upstream_body: dict[str, Any] | None = None
    upstream_payload: bytes | None = None  # upstream_body as sent, serialised (None when credentials went into it)
    client_json: bool = False  # client_body has been parsed as JSON (the record may then embed it as it is)
    secrets: tuple[str, ...] = ()
    secret_params: tuple[str, ...] = ()
    local_error: ProxyError | None = None
    upstream_status: int | None = None
    upstream_response: bytes | None = None
    client_response: Any = None  # the standard (OpenAI-format) answer: usage and cost are read from it
    client_answer: Any = None  # what a client of another format received, when it differs from client_response
    status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    client_headers: dict[str, str] = field(default_factory=dict)
    scrubbed: bool = False
    preserved: bool = False  # route_type preserve: passed through, not translated
    preserved_model: str | None = None
    native: native.NativeUpstream | None = None  # llm_format other than openai: passed through, recorded
    translator: StreamTranslator | None = None
    ttft_ms: float | None = None
    finished: float = 0.0
    summary: dict[str, Any] | None = None
    watchdog: Any = None  # the upstream timeouts (watchdog.Watchdog), from the request leaving to the answer
    timeout: str | None = None  # the rule key of the timeout that fired, if one did
    client_close: bool = False  # the client asked to close its connection after this exchange
    client_stream: bool = False  # the client has received response headers of a stream
    in_flight_at_shutdown: bool = False  # the proxy began to stop before this exchange ended
    route_state: Any = None  # what a route keeps between its hooks (the Responses route: what to store)
    token_count: Any = None  # a client's token-count request (formats.TokenCount), sent to the provider's counter
    signatures: Any = None  # the signature store's work for this exchange (routes/signatures.Keeper)

    def response_object(self) -> dict[str, Any]:
        return self.client_response if isinstance(self.client_response, dict) else {}

    def error_message(self) -> str | None:
        """What went wrong, if anything: a local refusal, a transport error, or the upstream's error message."""
        error = self.local_error.message if self.local_error else self.error
        if error is None and self.status is not None and self.status >= 400:
            error = (self.response_object().get("error") or {}).get("message")
        return error


SHUT_DOWN_BEFORE_ANSWER = "proxy shut down before the upstream answered"
SHUT_DOWN_MID_ANSWER = "proxy shut down before the upstream's answer was complete"
SHUT_DOWN_MID_STREAM = "proxy shut down mid-stream"
SHUT_DOWN_STATUS = 502  # as for any other exchange the proxy could not finish: no answer reached the client


def cut_off(ex: Exchange, at: float) -> None:
    """Finish an exchange that never got its response or error hook because the proxy stopped (the event loop has
    closed): what its client had got by then. Latencies count from the request hook, the flow being gone.

    A plain answer reaches the client only after the response hook, so such a client got none. A stream's client
    got the status and every chunk translated so far (the answer so far, the usage that had arrived); a stream
    that had ended properly, only its response hook still to come, is recorded as the whole answer.
    """
    ex.finished = at
    ex.in_flight_at_shutdown = True
    if ex.local_error is not None:  # answered by the proxy itself, its response hook still to come
        ex.status, ex.client_response = ex.local_error.status, ex.local_error.envelope()
        return
    translator = ex.translator
    if translator is None or ex.call is None:
        ex.status, ex.error = SHUT_DOWN_STATUS, shutdown_error(ex)
        return
    result = translator.result
    ex.status = ex.upstream_status
    ex.latency_ms = round((at - ex.started) * 1000, 1)
    if result.first_token_at:
        ex.ttft_ms = round((result.first_token_at - ex.started) * 1000, 1)
    if result.error is not None:
        ex.error = result.error.message
    elif not result.completed:
        ex.error = SHUT_DOWN_MID_STREAM
    response = result.assembled(ex.call.route_type, "stream")
    ex.client_response = response if response is not None else {"model": result.model, "usage": result.usage}


def shutdown_error(ex: Exchange) -> str:
    """What the record says of an exchange the shutdown cut off."""
    if ex.translator is not None:
        return SHUT_DOWN_MID_STREAM
    # The upstream's headers had come (a passed-through answer leaves no trace here: it may have).
    begun = ex.upstream_status is not None or ex.preserved
    return SHUT_DOWN_MID_ANSWER if begun else SHUT_DOWN_BEFORE_ANSWER


def _status_and_error(ex: Exchange) -> tuple[int | None, str | None]:
    """The record's status and error. An exchange in flight when the proxy began to stop that then failed in
    transit (its connection cancelled: the error hook's message is mitmproxy's) failed because of the shutdown,
    and its record says so; an error the upstream itself reported stays."""
    error = ex.error_message()
    if not ex.in_flight_at_shutdown or ex.local_error is not None or ex.error is None:
        return ex.status, error
    if ex.translator is not None:
        if ex.translator.result.error is not None or ex.translator.result.completed:
            return ex.status, error
        return ex.status, SHUT_DOWN_MID_STREAM  # the client has the status and part of the stream
    return SHUT_DOWN_STATUS, shutdown_error(ex)


def usage_summary(ex: Exchange, prices: audit.PriceTable) -> dict[str, Any]:
    """Tokens and cost of an exchange (for the comment and the record), computed once."""
    if ex.summary is None:
        response = ex.response_object()
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else None
        model = response.get("model") or (ex.call.model if ex.call else None)
        options = ex.rule.spec.model.options
        split = prices.cost_split(ex.provider.name, model, usage, options)
        read, write = cache_counts(usage) if usage else (0, 0)
        ex.summary = {
            "prompt_tokens": usage.get("prompt_tokens") if usage else None,
            "completion_tokens": usage.get("completion_tokens") if usage else None,
            "total_tokens": usage.get("total_tokens") if usage else None,
            # Prompt tokens read from the provider's cache and written to it (null when it reported none).
            "cached_tokens": read or _reported_zero(usage, "cached_tokens"),
            "cache_write_tokens": write or None,
            "cost": None if split is None else round(sum(split.values()), 10),
            "time_per_token": audit.time_per_token(ex.latency_ms, usage),
        }
        if split is not None and (read or write):
            ex.summary["cost_details"] = split  # input (uncached), cache_read, cache_write, output
    return ex.summary


def _reported_zero(usage: dict[str, Any] | None, key: str) -> int | None:
    """0 when the provider reported that no prompt token came from its cache, None when it said nothing."""
    details = usage.get("prompt_tokens_details") if usage else None
    return 0 if isinstance(details, dict) and details.get(key) == 0 else None


def line(flow_id: str, ex: Exchange, prices: audit.PriceTable) -> bytes:
    """The audit record of a finished exchange as one JSON line (without its newline), bodies embedded as they were
    sent where that is safe; written anew only when a value beside them needs the standard library's writer."""
    try:
        return jsonutil.dumps(build(flow_id, ex, prices))
    except TypeError:
        return jsonutil.dumps(build(flow_id, ex, prices, embed=False))


def build(flow_id: str, ex: Exchange, prices: audit.PriceTable, embed: bool = True) -> dict[str, Any]:
    """The audit record of a finished exchange; `embed`: bodies already serialised go in as they are."""
    spec = ex.rule.spec
    call = ex.call
    response = ex.response_object()
    status, error = _status_and_error(ex)
    out: dict[str, Any] = {
        "timestamp": audit.iso_time(ex.finished),
        "id": flow_id,
        "meta": {
            "rule": spec.name,
            "provider_name": ex.provider.name,
            "route_type": spec.route_type,
            "request_model": call.model if call else ex.preserved_model,
            "response_model": response.get("model") or None,
            "stream": bool(call and call.stream),
            "status": status,
            "upstream_status": ex.upstream_status,
            "llm_latency": ex.latency_ms,
            "time_to_first_token": ex.ttft_ms,
            "client_url": ex.client_url,
            "upstream_url": ex.upstream_url,
            "error": error,
            "timeout": ex.timeout,
        },
    }
    label = format_label(spec.llm_format, spec.route_type)
    if label != "openai":
        out["meta"]["client_format"] = label
    if call is not None and call.client_model:
        out["meta"]["client_model"] = call.client_model
    if call is not None and call.dropped:
        out["meta"]["dropped"] = call.dropped
    if spec.logging.log_statistics:
        out["usage"] = usage_summary(ex, prices)
    if spec.logging.log_payloads:
        out["payload"] = {
            "client_request": audit.payload_value(ex.client_body, valid_json=embed and ex.client_json),
            "upstream_request": (
                audit.raw_json(ex.upstream_payload) if embed and ex.upstream_payload is not None else ex.upstream_body
            ),
            "upstream_response": audit.payload_value(ex.upstream_response),
            "client_response": ex.client_answer if ex.client_answer is not None else ex.client_response,
        }
    return out


def comment(ex: Exchange, usage: dict[str, Any]) -> str:
    """The flow's comment in mitmweb: provider/model [rule] · tokens · cost · latency (· the error)."""
    model = ex.response_object().get("model") or (ex.call.model if ex.call else None) or "?"
    asked = ex.call.client_model if ex.call else None
    label = format_label(ex.rule.spec.llm_format, ex.rule.spec.route_type)
    client = f" from {label}" if label != "openai" else ""  # the client's format, when not OpenAI Chat
    parts = [f"{ex.provider.name}/{model}" + (f" (asked {asked})" if asked else "") + f" [{ex.rule.name}]{client}"]
    if usage.get("prompt_tokens") is not None:
        completion = usage["completion_tokens"]  # None when a stream was cut off before the provider counted it
        parts.append(f"{usage['prompt_tokens']}+{'?' if completion is None else completion} tokens")
    if usage.get("cost") is not None:
        parts.append(f"${usage['cost']:.6f}")
    if ex.latency_ms is not None:
        parts.append(f"{ex.latency_ms:.0f} ms")
    error = ex.error_message()
    if error:
        parts.append(f"HTTP {ex.status}: {error[:120]}")
    return " · ".join(parts)
