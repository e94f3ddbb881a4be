"""The report's figures: per group of records, requests, errors, tokens, cost and the latency percentiles.

Definitions (the README's "Spend report" says the same):
- an error is a record with an `error` or a status of 400 or more (a stream cut off after a 200 has an error);
- tokens are summed where the record has them; total_tokens is prompt + completion where a record has no total;
- cost is the sum of the records' costs; `unpriced` counts the records without one (unknown price, no usage);
- percentiles are nearest-rank: the p-th percentile of n sorted values is the value at rank ceil(p/100 * n),
  over the records that have the figure (a record without a latency is left out, not counted as 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from .scan import DIMENSIONS, Fields

FIGURES = (
    "requests",
    "errors",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost",
    "unpriced",
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
)


class Tally:
    """The running figures of one group."""

    __slots__ = (
        "cached",
        "completion",
        "cost",
        "errors",
        "latencies",
        "prompt",
        "requests",
        "total",
        "ttfts",
        "unpriced",
        "written",
    )

    def __init__(self) -> None:
        self.requests = self.errors = self.unpriced = 0
        self.prompt = self.completion = self.total = self.cached = self.written = 0
        self.cost = 0.0
        self.latencies: list[float] = []
        self.ttfts: list[float] = []

    def add(self, f: Fields) -> None:
        _, _, _, _, _, error, prompt, completion, total, cached, cost, latency, ttft, written = f
        self.requests += 1
        if error:
            self.errors += 1
        if prompt is not None:
            self.prompt += prompt
        if completion is not None:
            self.completion += completion
        if total is not None:
            self.total += total
        if cached is not None:
            self.cached += cached
        if written is not None:
            self.written += written
        if cost is None:
            self.unpriced += 1
        else:
            self.cost += cost
        if latency is not None:
            self.latencies.append(latency)
        if ttft is not None:
            self.ttfts.append(ttft)

    def merge(self, other: Tally) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.unpriced += other.unpriced
        self.prompt += other.prompt
        self.completion += other.completion
        self.total += other.total
        self.cached += other.cached
        self.written += other.written
        self.cost += other.cost
        self.latencies += other.latencies
        self.ttfts += other.ttfts

    def figures(self) -> dict[str, Any]:
        latencies, ttfts = sorted(self.latencies), sorted(self.ttfts)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.total,
            "cached_tokens": self.cached,
            "cache_write_tokens": self.written,
            "cost": round(self.cost, 10),
            "unpriced": self.unpriced,
            "latency_p50_ms": percentile(latencies, 50),
            "latency_p95_ms": percentile(latencies, 95),
            "ttft_p50_ms": percentile(ttfts, 50),
            "ttft_p95_ms": percentile(ttfts, 95),
        }


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values; None for none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class Report:
    """Tallies by the chosen dimensions, the total, and (for the chart) cost per day and model."""

    def __init__(self, by: Sequence[str], chart: bool = False) -> None:
        unknown = [d for d in by if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)} (choose from {', '.join(DIMENSIONS)})")
        self.by = tuple(by)
        indexes = [DIMENSIONS.index(d) for d in self.by]
        self._key = itemgetter(*indexes) if indexes else None  # one dimension: the key is the value itself
        self.groups: dict[Any, Tally] = {}
        self.chart = chart
        self.cost_by_day_model: dict[tuple[str, str], float] = {}  # kept when `chart`

    def add(self, f: Fields) -> None:
        key = self._key(f) if self._key is not None else ()
        tally = self.groups.get(key)
        if tally is None:
            tally = self.groups[key] = Tally()
        tally.add(f)
        if self.chart and f[10]:
            at = (f[0], f[3])
            self.cost_by_day_model[at] = self.cost_by_day_model.get(at, 0.0) + f[10]

    def total(self) -> Tally:
        """All the groups together."""
        out = Tally()
        for tally in self.groups.values():
            out.merge(tally)
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One row per group, in the order of the group keys: the dimensions' values, then the figures."""
        one = len(self.by) == 1
        return [
            {**dict(zip(self.by, (key,) if one else key, strict=True)), **tally.figures()}
            for key, tally in sorted(self.groups.items())
        ]
