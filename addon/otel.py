"""OpenTelemetry export over OTLP/HTTP (protobuf), on when `ai_otlp_endpoint` is set (off by default): one GenAI
client span per handled exchange and the same metrics as the Prometheus endpoint (addon/metrics.py's instruments,
under their OpenTelemetry names), so a platform's collector sees every call from every proxy process.

`opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http` are the optional extra `[otel]`, imported only
when the option is set. Spans and metrics are exported by the SDK's own background threads (a batch span
processor, a periodic metric reader): the exchange's end only records them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import exceptions

from . import metrics

log = logging.getLogger("ai_proxy")

OPTION = "ai_otlp_endpoint"
EXPORT_INTERVAL_MS = 10_000
SERVICE_NAME = "mitm-ai-proxy"


class OtelError(exceptions.OptionsError):
    """An unusable ai_otlp_endpoint value or a missing library."""


def parse_endpoint(value: str) -> str:
    """The OTLP/HTTP base URL (e.g. http://127.0.0.1:4318), without a trailing slash."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OtelError(f"{OPTION} must be an OTLP/HTTP URL such as http://127.0.0.1:4318, not {value!r}")
    return url


def span_attributes(s: dict[str, Any]) -> dict[str, Any]:
    """The GenAI semantic conventions' attributes of an exchange's span (and the proxy's own, ai_proxy.*)."""
    common, _ = metrics.measurements(s)
    out: dict[str, Any] = dict(zip(metrics.COMMON_ATTRIBUTES, common, strict=True))
    out["gen_ai.system"] = out["gen_ai.provider.name"]  # the older name, for collectors that still read it
    usage = s.get("usage") or {}
    for key, attribute in (
        ("prompt_tokens", "gen_ai.usage.input_tokens"),
        ("completion_tokens", "gen_ai.usage.output_tokens"),
        ("cached_tokens", "ai_proxy.usage.cached_input_tokens"),
        ("cache_write_tokens", "ai_proxy.usage.cache_write_input_tokens"),
        ("reasoning_tokens", "ai_proxy.usage.reasoning_tokens"),
    ):
        if isinstance(usage.get(key), int):
            out[attribute] = usage[key]
    upstream = urlsplit(s.get("upstream_url") or "")
    extra = {
        "gen_ai.response.model": s.get("response_model"),
        "server.address": upstream.hostname,
        "server.port": upstream.port or {"https": 443, "http": 80}.get(upstream.scheme),
        "http.response.status_code": s.get("status"),
        "error.type": metrics.error_type(s) or None,
        "ai_proxy.cost_usd": s.get("cost"),
        "ai_proxy.stream": bool(s.get("stream")),
        "ai_proxy.dropped": list(s.get("dropped") or []) or None,
        "ai_proxy.timeout": s.get("timeout"),
        "ai_proxy.time_to_first_chunk_ms": s.get("ttft_ms"),
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    return {k: v for k, v in out.items() if v != ""}


@dataclass
class Otel:
    """The SDK's providers (of this addon only, not the process-wide ones), a tracer and the instruments."""

    endpoint: str
    tracer_provider: Any
    meter_provider: Any
    tracer: Any
    instruments: dict[str, Any]
    span_kind: Any
    error_status: Any

    def observe(self, s: dict[str, Any]) -> None:
        """Record one finished exchange: its span, and its measurements."""
        attributes = span_attributes(s)
        name = f"{attributes['gen_ai.operation.name']} {attributes.get('gen_ai.request.model', '')}".strip()
        started, finished = s.get("started") or 0.0, s.get("finished") or 0.0
        span = self.tracer.start_span(name, kind=self.span_kind, start_time=int(started * 1e9), attributes=attributes)
        if s.get("error"):
            span.set_status(self.error_status(str(s["error"])[:500]))
        span.end(end_time=int(max(finished, started) * 1e9))
        common, values = metrics.measurements(s)
        base = dict(zip(metrics.COMMON_ATTRIBUTES, common, strict=True))
        for key, value, extra in values:
            attrs = {**base, **{k: v for k, v in zip(metrics.INSTRUMENTS[key].extra, extra, strict=True) if v}}
            instrument = self.instruments[key]
            if metrics.INSTRUMENTS[key].kind == "counter":
                instrument.add(value, attrs)
            else:
                instrument.record(value, attrs)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()

    def close(self) -> None:
        self.tracer_provider.shutdown()  # exports what is still queued
        self.meter_provider.shutdown()


def start(endpoint: str) -> Otel:
    """Providers exporting to `endpoint` (OTLP/HTTP: /v1/traces and /v1/metrics under it). Raises OtelError."""
    base = parse_endpoint(endpoint)
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind, Status, StatusCode
    except ImportError:
        raise OtelError(
            f"{OPTION} needs the OpenTelemetry SDK and OTLP exporter: pip install 'mitm-ai-proxy[otel]'"
        ) from None
    resource = Resource.create({"service.name": SERVICE_NAME})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=EXPORT_INTERVAL_MS
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("ai_proxy")
    instruments: dict[str, Any] = {}
    for key, i in metrics.INSTRUMENTS.items():
        if i.kind == "counter":
            instruments[key] = meter.create_counter(i.otel_name, unit=i.unit, description=i.description)
        else:
            instruments[key] = meter.create_histogram(
                i.otel_name, unit=i.unit, description=i.description, explicit_bucket_boundaries_advisory=i.buckets
            )
    log.info(f"AI proxy: OpenTelemetry spans and metrics to {base}")
    return Otel(
        base,
        tracer_provider,
        meter_provider,
        tracer_provider.get_tracer("ai_proxy"),
        instruments,
        SpanKind.CLIENT,
        lambda description: Status(StatusCode.ERROR, description),
    )


def reconfigure(current: Otel | None, endpoint: str) -> Otel | None:
    """Apply a new ai_otlp_endpoint value ("" turns the export off); a bad value leaves the current one running."""
    endpoint = endpoint.strip()
    if current is not None and endpoint and parse_endpoint(endpoint) == current.endpoint:
        return current
    new = start(endpoint) if endpoint else None
    if current is not None:
        current.close()
    return new
