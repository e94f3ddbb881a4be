"""Cost by kind of token: the uncached prompt, cache reads, cache writes and the completion at their own rates, from
the rule or the genai-prices table (with its long-context tiers); the audit record's usage shows them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from addon import record
from addon.pricing import PriceTable
from addon.providers import REGISTRY
from tests.support.rules import make_rule

# 1,000 prompt tokens: 600 read from the cache, 300 written to it, 100 uncached; 50 completion tokens.
USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 50,
    "total_tokens": 1050,
    "prompt_tokens_details": {"cached_tokens": 600, "cache_creation_tokens": 300},
}


def options(**costs: float) -> Any:
    return make_rule("anthropic", "claude-x", options=costs).spec.model.options


def test_the_rules_cache_rates_price_reads_and_writes_apart() -> None:
    split = PriceTable().cost_split("anthropic", "claude-x", USAGE, options(
        input_cost=3.0, output_cost=15.0, cache_read_cost=0.3, cache_write_cost=3.75
    ))  # fmt: skip
    assert split == pytest.approx(
        {"input": 100 * 3e-6, "cache_read": 600 * 0.3e-6, "cache_write": 300 * 3.75e-6, "output": 50 * 15e-6}
    )
    # Without rates of their own, cache reads and writes cost input_cost (as before cache rates existed).
    plain = PriceTable().cost("anthropic", "claude-x", USAGE, options(input_cost=3.0, output_cost=15.0))
    assert plain == pytest.approx((1000 * 3.0 + 50 * 15.0) / 1e6)


def test_the_price_table_prices_cache_writes_and_reads_at_their_own_rates_and_tiers() -> None:
    prices = PriceTable()
    split = prices.cost_split("anthropic", "claude-sonnet-4-5", USAGE, options())
    # Claude Sonnet 4.5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per 1M tokens under 200k.
    assert split == pytest.approx(
        {"input": 100 * 3e-6, "cache_read": 600 * 0.3e-6, "cache_write": 300 * 3.75e-6, "output": 50 * 15e-6}
    )
    # Past 200k prompt tokens every token of the request costs the long-context rate (not only those above).
    long = {"prompt_tokens": 300_000, "completion_tokens": 10}
    assert prices.cost("anthropic", "claude-sonnet-4-5", long) == pytest.approx(300_000 * 6e-6 + 10 * 22.5e-6)
    # OpenAI's own name for cache writes (cache_write_tokens), as an OpenAI upstream reports them, counts too.
    openai = {**USAGE, "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300}}
    assert prices.cost_split("anthropic", "claude-sonnet-4-5", openai) == split
    assert prices.cost("anthropic", "no-such-model-xyz", USAGE) is None


def test_the_audit_record_shows_cache_reads_writes_and_the_cost_split() -> None:
    rule = make_rule(
        "anthropic", "claude-x", options={"input_cost": 3.0, "output_cost": 15.0, "cache_write_cost": 3.75}
    )
    ex = record.Exchange(rule, REGISTRY["anthropic"], "http://llm.internal/v1/chat/completions", b"{}")
    ex.status, ex.finished, ex.client_response = 200, time.time(), {"model": "claude-x", "usage": USAGE}
    usage = record.build("flow-1", ex, PriceTable())["usage"]
    assert (usage["cached_tokens"], usage["cache_write_tokens"]) == (600, 300)
    assert usage["cost_details"] == pytest.approx(
        {"input": 100 * 3e-6, "cache_read": 600 * 3e-6, "cache_write": 300 * 3.75e-6, "output": 50 * 15e-6}
    )
    assert usage["cost"] == pytest.approx(sum(usage["cost_details"].values()))
    ex.summary, ex.client_response = None, {"model": "claude-x", "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    plain = record.build("flow-2", ex, PriceTable())["usage"]
    assert plain["cached_tokens"] is None and plain["cache_write_tokens"] is None and "cost_details" not in plain


def test_anthropics_one_hour_cache_writes_are_told_apart_and_priced_at_their_rate() -> None:
    from addon.providers.anthropic import usage_of

    raw = {
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_read_input_tokens": 600,
        "cache_creation_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    }
    usage = usage_of(raw)
    assert usage is not None and usage["prompt_tokens"] == 1000
    assert usage["prompt_tokens_details"]["cache_creation_1h_tokens"] == 200
    split = PriceTable().cost_split("anthropic", "claude-sonnet-4-5", usage)
    # Claude Sonnet 4.5: five-minute writes $3.75, one-hour writes $6 per 1M tokens.
    assert split is not None and split["cache_write"] == pytest.approx(100 * 3.75e-6 + 200 * 6e-6)
    # A rule's cache_write_cost prices both (it names one rate).
    ruled = PriceTable().cost_split("anthropic", "x", usage, options(input_cost=3.0, cache_write_cost=3.75))
    assert ruled is not None and ruled["cache_write"] == pytest.approx(300 * 3.75e-6)


def test_cache_writes_reach_the_flow_summary_metrics_and_spans() -> None:
    from addon import metrics, otel, webview

    rule = make_rule("anthropic", "claude-x", options={"input_cost": 3.0, "output_cost": 15.0})
    ex = record.Exchange(rule, REGISTRY["anthropic"], "http://llm.internal/v1/chat/completions", b"{}")
    ex.status, ex.finished, ex.client_response = 200, time.time(), {"model": "claude-x", "usage": USAGE}
    summary = webview.summary(ex, record.usage_summary(ex, PriceTable()), True, "POST")
    assert summary["usage"]["cached_tokens"] == 600 and summary["usage"]["cache_write_tokens"] == 300
    _, measured = metrics.measurements(summary)
    assert ("tokens", 300, ("cache_write_input",)) in measured
    assert otel.span_attributes(summary)["ai_proxy.usage.cache_write_input_tokens"] == 300
