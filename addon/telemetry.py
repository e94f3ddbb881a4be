"""The addon's exporters of metrics and spans, each off until its option is set: the Prometheus endpoint
(metrics.py, `ai_metrics_listen`) and OpenTelemetry over OTLP (otel.py, `ai_otlp_endpoint`). Fed once per exchange,
at its end, with the exchange's summary (webview.summary)."""

from __future__ import annotations

import logging
from typing import Any

from . import metrics, otel

log = logging.getLogger("ai_proxy")


class Telemetry:
    def __init__(self) -> None:
        self.metrics: metrics.Metrics | None = None
        self.otel: otel.Otel | None = None

    @staticmethod
    def add_options(loader: Any) -> None:
        loader.add_option(metrics.OPTION, str, "", "Serve Prometheus metrics on this host:port (off when empty).")
        loader.add_option(
            otel.OPTION, str, "", "Export OpenTelemetry spans and metrics to this OTLP/HTTP URL (off when empty)."
        )

    def configure(self, updated: set[str], options: Any) -> None:
        """Apply changed options; a bad value raises mitmproxy's OptionsError and leaves the running one as it was."""
        if metrics.OPTION in updated:
            self.metrics = metrics.reconfigure(self.metrics, getattr(options, metrics.OPTION))
        if otel.OPTION in updated:
            self.otel = otel.reconfigure(self.otel, getattr(options, otel.OPTION))

    def observe(self, summary: dict[str, Any] | None) -> None:
        if summary is None:
            return
        for exporter in (self.metrics, self.otel):
            if exporter is not None:
                try:
                    exporter.observe(summary)
                except Exception:  # telemetry must never fail an exchange or its record
                    log.exception("AI proxy: could not record the exchange's metrics")

    def close(self) -> None:
        self.metrics = metrics.reconfigure(self.metrics, "")
        self.otel = otel.reconfigure(self.otel, "")
