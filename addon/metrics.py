"""Prometheus metrics of the handled exchanges, served on `ai_metrics_listen` (off by default).

Names and labels follow the OpenTelemetry GenAI semantic conventions, spelled as OpenTelemetry's Prometheus
exporters spell them (dots become underscores, a unit of seconds becomes a `_seconds` suffix), so a dashboard works
the same on this endpoint and on an OpenTelemetry collector's Prometheus exporter:
- `gen_ai_client_token_usage` (histogram, tokens; `gen_ai_token_type` input/output),
- `gen_ai_client_operation_duration_seconds` (histogram: the upstream latency),
- `gen_ai_client_operation_time_to_first_chunk_seconds` (histogram, streams only),
with the conventions' bucket boundaries. What the conventions do not define is under `ai_proxy_`:
requests (by HTTP status), tokens by type including cached and reasoning tokens, cost in USD, errors and timeouts.
Every series also carries the rule (`ai_proxy_rule`) and the client format (`ai_proxy_client_format`).

`prometheus-client` is an optional extra (`pip install 'mitm-ai-proxy[metrics]'`), imported only when the option
is set. Updating costs one call per exchange, at its end, from the exchange's summary (webview.summary).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mitmproxy import exceptions

from .providers import REGISTRY

log = logging.getLogger("ai_proxy")

OPTION = "ai_metrics_listen"
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
OPERATION_NAMES = {"llm/v1/chat": "chat", "llm/v1/completions": "text_completion", "llm/v1/embeddings": "embeddings"}


class MetricsError(exceptions.OptionsError):
    """An unusable ai_metrics_listen value, a missing library, or a port that cannot be bound."""


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets: `[::1]:9464`) as (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise MetricsError(f"{OPTION} must be host:port (e.g. 127.0.0.1:9464), not {value!r}")
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise MetricsError(f"{OPTION} must name a host to listen on (e.g. 127.0.0.1:9464), not {value!r}")
    return host, int(port)


def provider_name(provider: str, upstream_url: str | None) -> str:
    """gen_ai.provider.name: the conventions' well-known value where the rule's provider has one (each provider
    knows its own, Provider.telemetry_name)."""
    known = REGISTRY.get(provider)
    return known.telemetry_name(upstream_url) if known is not None else provider


def operation_name(route_type: str) -> str:
    return OPERATION_NAMES.get(route_type) or route_type.rsplit("/", 1)[-1]


def error_type(s: dict[str, Any]) -> str:
    """OpenTelemetry's error.type: "timeout", the HTTP status of a refused or failed exchange, or "_OTHER" (an
    error after a 2xx, e.g. a stream cut off); "" when there was none."""
    if s.get("timeout"):
        return "timeout"
    status = s.get("status") or 0
    if status >= 400:
        return str(status)
    return "_OTHER" if s.get("error") else ""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One metric, for Prometheus and for OpenTelemetry: its names, unit, the attributes it adds to COMMON."""

    kind: str  # "histogram" or "counter"
    otel_name: str
    prom_name: str  # prometheus_client adds _total to a counter's name
    unit: str
    description: str
    extra: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


INSTRUMENTS = {
    "token_usage": Instrument(
        "histogram", "gen_ai.client.token.usage", "gen_ai_client_token_usage", "{token}",
        "Number of input and output tokens used.", ("gen_ai.response.model", "gen_ai.token.type"), TOKEN_BUCKETS,
    ),
    "duration": Instrument(
        "histogram", "gen_ai.client.operation.duration", "gen_ai_client_operation_duration_seconds", "s",
        "GenAI operation duration (upstream latency).", ("gen_ai.response.model", "error.type"), SECONDS_BUCKETS,
    ),
    "ttft": Instrument(
        "histogram", "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai_client_operation_time_to_first_chunk_seconds", "s", "Time to the first chunk of a streamed answer.",
        ("gen_ai.response.model",), SECONDS_BUCKETS,
    ),
    "requests": Instrument(
        "counter", "ai_proxy.requests", "ai_proxy_requests", "{request}",
        "Handled exchanges, by the status the client got.", ("http.response.status_code",),
    ),
    "tokens": Instrument(
        "counter", "ai_proxy.tokens", "ai_proxy_tokens", "{token}",
        "Tokens: input, output, cached_input and cache_write_input (of input), reasoning (of output).",
        ("gen_ai.token.type",),
    ),
    "cost": Instrument("counter", "ai_proxy.cost", "ai_proxy_cost_usd", "USD", "Cost of the exchanges in USD."),
    "errors": Instrument(
        "counter", "ai_proxy.errors", "ai_proxy_errors", "{request}",
        "Exchanges that ended in an error, by error type (timeout, HTTP status, _OTHER).", ("error.type",),
    ),
    "timeouts": Instrument(
        "counter", "ai_proxy.timeouts", "ai_proxy_timeouts", "{timeout}",
        "Upstream timeouts that fired, by the rule's timeout key.", ("ai_proxy.timeout",),
    ),
}  # fmt: skip
COMMON_ATTRIBUTES = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "ai_proxy.rule",
                     "ai_proxy.client_format")  # fmt: skip
_TOKEN_TYPES = (
    ("prompt_tokens", "input"),
    ("completion_tokens", "output"),
    ("cached_tokens", "cached_input"),
    ("cache_write_tokens", "cache_write_input"),
    ("reasoning_tokens", "reasoning"),
)

type Measurement = tuple[str, float, tuple[str, ...]]  # instrument, value, its extra attributes' values


def measurements(s: dict[str, Any]) -> tuple[tuple[str, ...], list[Measurement]]:
    """What one finished exchange adds, from its summary: the common attributes' values, and per instrument the
    value and the values of its extra attributes (in INSTRUMENTS' order; "" for none)."""
    common = (
        operation_name(s.get("route_type") or ""),
        provider_name(s.get("provider") or "", s.get("upstream_url")),
        s.get("request_model") or "",
        s.get("rule") or "",
        s.get("client_format") or "",
    )
    response_model = s.get("response_model") or ""
    err = error_type(s)
    out: list[Measurement] = [("requests", 1, (str(s.get("status") or ""),))]
    usage = s.get("usage") or {}
    for key, kind in _TOKEN_TYPES:
        count = usage.get(key)
        if isinstance(count, int) and kind in ("input", "output"):
            out.append(("token_usage", count, (response_model, kind)))
        if isinstance(count, int) and count > 0:
            out.append(("tokens", count, (kind,)))
    latency = s.get("latency_ms")
    if isinstance(latency, (int, float)):
        out.append(("duration", latency / 1000, (response_model, err)))
    ttft = s.get("ttft_ms")
    if s.get("stream") and isinstance(ttft, (int, float)):
        out.append(("ttft", ttft / 1000, (response_model,)))
    cost = s.get("cost")
    if isinstance(cost, (int, float)) and cost > 0:
        out.append(("cost", cost, ()))
    if err:
        out.append(("errors", 1, (err,)))
    if s.get("timeout"):
        out.append(("timeouts", 1, (s["timeout"],)))
    return common, out


def label(attribute: str) -> str:
    """An OpenTelemetry attribute's name as a Prometheus label, as OpenTelemetry's exporters spell it."""
    return attribute.replace(".", "_")


@dataclass
class Metrics:
    """The Prometheus instruments, their registry and the HTTP server that serves them."""

    registry: Any
    server: Any
    thread: Any
    address: tuple[str, int]
    instruments: dict[str, Any]

    def observe(self, s: dict[str, Any]) -> None:
        """Count one finished exchange from its summary."""
        common, values = measurements(s)
        for key, value, extra in values:
            child = self.instruments[key].labels(*common, *extra)
            if INSTRUMENTS[key].kind == "counter":
                child.inc(value)
            else:
                child.observe(value)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(2)


def start(listen: str) -> Metrics:
    """The instruments in a registry of their own, served on `listen`. Raises MetricsError."""
    host, port = parse_listen(listen)
    try:
        import prometheus_client as prom
    except ImportError:
        raise MetricsError(
            f"{OPTION} needs the prometheus-client package: pip install 'mitm-ai-proxy[metrics]'"
        ) from None
    registry = prom.CollectorRegistry(auto_describe=True)
    instruments: dict[str, Any] = {}
    for key, i in INSTRUMENTS.items():
        labels = [label(a) for a in (*COMMON_ATTRIBUTES, *i.extra)]
        if i.kind == "counter":
            instruments[key] = prom.Counter(i.prom_name, i.description, labels, registry=registry)
        else:
            instruments[key] = prom.Histogram(i.prom_name, i.description, labels, buckets=i.buckets, registry=registry)
    try:
        server, thread = prom.start_http_server(port, host, registry=registry)
    except OSError as e:
        raise MetricsError(f"{OPTION} {listen}: cannot listen: {e}") from None
    log.info(f"AI proxy: Prometheus metrics on http://{listen}/metrics")
    return Metrics(registry, server, thread, (host, port), instruments)


def reconfigure(current: Metrics | None, listen: str) -> Metrics | None:
    """Apply a new ai_metrics_listen value: stop the current endpoint, start the new one ("" turns them off).
    The counts start again from zero, as after a restart (Prometheus handles counter resets)."""
    listen = listen.strip()
    if current is not None and (not listen or parse_listen(listen) == current.address):
        current.close()  # off, or the same address taken again
        current = None
    new = start(listen) if listen else None  # a refusal leaves the running endpoint running
    if current is not None:
        current.close()
    return new
