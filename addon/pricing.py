"""The cost of an exchange in USD, split by kind of token: the uncached prompt, the prompt read from the provider's
cache, the prompt written to it, and the completion, each at its own rate.

Rates come from the rule (model.options input_cost / output_cost, with cache_read_cost / cache_write_cost; per 1M
tokens; cache reads and writes at input_cost where the rule names no rate of their own) or else from the
genai-prices table, which has cache read and write rates and long-context tiers (crossing a tier's threshold of
prompt tokens prices all tokens of the request at that tier, as the providers bill). genai-prices is looked up once
per model: the hot path does a dict look-up and a few multiplications.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from .openai_format import CACHE_WRITE_1H_TOKENS, cache_counts

log = logging.getLogger(__name__)

_PER_MILLION = 1_000_000
_SNAPSHOT_WAIT_SECONDS = 10.0
KINDS = ("input", "cache_read", "cache_write", "output")

# A rate per token: the base rate and the tiers above it, (threshold of prompt tokens, rate) in ascending order.
Rate = tuple[float, tuple[tuple[int, float], ...]]


@dataclass(frozen=True, slots=True)
class Rates:
    input: Rate
    cache_read: Rate
    cache_write: Rate
    output: Rate
    cache_write_1h: Rate | None = None  # writes kept for an hour, where they cost more (else cache_write)


def _flat(per_million: float | None) -> Rate:
    return ((per_million or 0) / _PER_MILLION, ())


def rule_rates(options: Any) -> Rates | None:
    """The rule's own rates, when it sets input_cost or output_cost."""
    if options.input_cost is None and options.output_cost is None:
        return None
    read = options.cache_read_cost if options.cache_read_cost is not None else options.input_cost
    write = options.cache_write_cost if options.cache_write_cost is not None else options.input_cost
    return Rates(_flat(options.input_cost), _flat(read), _flat(write), _flat(options.output_cost))


def _at(rate: Rate, prompt: int) -> float:
    base, tiers = rate
    for start, tiered in reversed(tiers):
        if prompt > start:
            return tiered
    return base


def split(rates: Rates, usage: dict[str, Any]) -> dict[str, float]:
    """The cost of `usage` (the standard usage) by kind; cache reads and writes are part of prompt_tokens."""
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    read, write = cache_counts(usage)
    counts = {"input": max(prompt - read - write, 0), "cache_read": read, "cache_write": write, "output": completion}
    out = {kind: counts[kind] * _at(getattr(rates, kind), prompt) for kind in KINDS}
    details = usage.get("prompt_tokens_details")
    hour = details.get(CACHE_WRITE_1H_TOKENS) if isinstance(details, dict) else None
    if rates.cache_write_1h is not None and isinstance(hour, int) and 0 < hour <= write:
        out["cache_write"] += hour * (_at(rates.cache_write_1h, prompt) - _at(rates.cache_write, prompt))
    return {kind: round(value, 10) for kind, value in out.items()}


class PriceTable:
    """Rates for (provider, model): the rule's, or genai-prices' (looked up once per model)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Rates | None] = {}
        self._loading: threading.Thread | None = None

    def prepare(self) -> None:
        """Load genai-prices' bundled snapshot (tens of ms, about 9 MiB) on a background thread, once. Called at the
        first exchange that may need a price: a proxy whose rules set their own costs, or record no statistics,
        never loads it, and no request waits for it on the event loop."""
        if self._loading is None:
            self._loading = threading.Thread(target=_load_snapshot, name="ai-proxy-prices", daemon=True)
            self._loading.start()

    def cost_split(
        self, provider: str, model: str | None, usage: dict[str, Any] | None, options: Any = None
    ) -> dict[str, float] | None:
        """The cost by kind (KINDS), or None when there is no usage or no price for the model (never a guess)."""
        if not usage:
            return None
        rates = rule_rates(options) if options is not None else None
        if rates is None:
            rates = self._rates(provider, model) if model else None
        return None if rates is None else split(rates, usage)

    def cost(self, provider: str, model: str | None, usage: dict[str, Any] | None, options: Any = None) -> float | None:
        parts = self.cost_split(provider, model, usage, options)
        return None if parts is None else round(sum(parts.values()), 10)

    def _rates(self, provider: str, model: str) -> Rates | None:
        key = (provider, model)
        if key not in self._cache:
            if self._loading is not None:
                self._loading.join(_SNAPSHOT_WAIT_SECONDS)  # done long ago, unless this is the very first answer
            self._cache[key] = _lookup(provider, model)
        return self._cache[key]


def _load_snapshot() -> None:
    try:
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()
    except Exception:  # pragma: no cover - the table is optional
        log.debug("genai-prices unavailable", exc_info=True)


def _lookup(provider: str, model: str) -> Rates | None:
    try:
        from genai_prices import Usage, calc_price

        from .providers import REGISTRY  # the provider says its id in the price table

        known = REGISTRY.get(provider)
        provider_id = known.price_id if known is not None else None
        prices = calc_price(Usage(input_tokens=1), model, provider_id=provider_id).model_price
        given = {kind: _rate(getattr(prices, f"{kind}_mtok", None)) for kind in (*KINDS, "cache_write_1h")}
    except Exception:
        return None  # unknown model: cost stays null rather than a guess
    read, write = given["cache_read"], given["cache_write"]
    if given["input"] is None or given["output"] is None:
        return None
    return Rates(
        given["input"], read or given["input"], write or given["input"], given["output"], given["cache_write_1h"]
    )


def _rate(price: Any) -> Rate | None:
    """A genai-prices price per 1M tokens (a Decimal, or TieredPrices with `base` and `tiers`) as a Rate."""
    if price is None:
        return None
    if hasattr(price, "tiers"):
        tiers = tuple((int(t.start), float(t.price) / _PER_MILLION) for t in sorted(price.tiers, key=lambda t: t.start))
        return float(price.base) / _PER_MILLION, tiers
    return float(price) / _PER_MILLION, ()
