"""The report's chart (PNG): cost per day stacked by model, and the distribution of latency and time to first
token. Needs matplotlib, an optional extra: `pip install 'mitm-ai-proxy[report]'`."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

from .figures import percentile

MISSING = (
    "the chart needs matplotlib, which is not installed: "
    "pip install 'mitm-ai-proxy[report]' (or: pip install matplotlib)"
)
TOP_MODELS = 8  # more models than this stack as "other"


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def write_chart(
    path: Path, cost_by_day_model: dict[tuple[str, str], float], latencies: list[float], ttfts: list[float]
) -> None:
    """Two panels in one PNG: stacked daily cost by model (every day between the first and the last, empty days
    included), then histograms of latency and TTFT on a log scale with their p50 and p95 marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise ChartUnavailable(MISSING) from None

    fig, (costs, spread) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    by_model: dict[str, float] = {}
    for (_, model), cost in cost_by_day_model.items():
        by_model[model] = by_model.get(model, 0.0) + cost
    ranked = sorted(by_model, key=lambda m: -by_model[m])
    shown = ranked[:TOP_MODELS] if len(ranked) <= TOP_MODELS + 1 else ranked[: TOP_MODELS - 1]
    if cost_by_day_model:
        days = _days(min(d for d, _ in cost_by_day_model), max(d for d, _ in cost_by_day_model))
        series = {m: [0.0] * len(days) for m in [*shown, *(["other"] if len(shown) < len(ranked) else [])]}
        index = {d: i for i, d in enumerate(days)}
        for (day, model), cost in cost_by_day_model.items():
            series[model if model in shown else "other"][index[day]] += cost
        bottom = [0.0] * len(days)
        positions = range(len(days))
        for model, values in series.items():
            costs.bar(positions, values, bottom=bottom, label=model, width=0.8)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        step = max(1, math.ceil(len(days) / 15))
        costs.set_xticks(list(positions)[::step], [d[5:] for d in days[::step]], rotation=45, ha="right")
        costs.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        costs.text(0.5, 0.5, "no priced records", ha="center", va="center", transform=costs.transAxes)
    costs.set_title("Cost per day (USD, UTC days) by model")
    costs.set_ylabel("USD")

    spread.set_title("Latency distribution")
    values = [v for v in (*latencies, *ttfts) if v > 0]
    if values:
        low, high = min(values), max(values)
        edges = [low * (high / low) ** (i / 40) for i in range(41)] if high > low else [low * 0.9, high * 1.1]
        for label, data, color in (
            ("upstream latency", latencies, "tab:blue"),
            ("time to first token", ttfts, "tab:orange"),
        ):
            data = sorted(v for v in data if v > 0)
            if not data:
                continue
            p50, p95 = percentile(data, 50), percentile(data, 95)
            spread.hist(
                data,
                bins=edges,
                histtype="step",
                linewidth=1.5,
                color=color,
                label=f"{label} (p50 {p50:,.0f} ms, p95 {p95:,.0f} ms, n={len(data):,})",
            )
            for mark, style in ((p50, "--"), (p95, ":")):
                spread.axvline(mark, color=color, linestyle=style, linewidth=1)
        spread.set_xscale("log")
        spread.legend(fontsize="small")
    else:
        spread.text(0.5, 0.5, "no latencies recorded", ha="center", va="center", transform=spread.transAxes)
    spread.set_xlabel("milliseconds (log scale)")
    spread.set_ylabel("requests")
    fig.savefig(path, dpi=100)
    plt.close(fig)
