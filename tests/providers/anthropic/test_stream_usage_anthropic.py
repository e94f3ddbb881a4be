"""Usage that arrived before an Anthropic stream was cut off is in the record (DESIGN.md: record what had arrived); the
shared builders and the reasoning are in tests/support/stream_usage.py and tests/test_stream_usage.py."""

from __future__ import annotations

import json

from tests.support.fakes import anthropic_stream, sse
from tests.support.stream_usage import (
    COMPLETIONS,
    UP,
    cut,
    no_usage_chunk,
    recorded,
    translator,
    usage,
)


def test_anthropic_input_tokens_are_recorded_from_message_start() -> None:
    t = translator("anthropic")
    out = cut(t, *anthropic_stream()[:4])  # message_start, block start, ping, the first text delta
    assert t.result.usage == usage(25, 1)
    no_usage_chunk(out)


def test_anthropic_output_tokens_so_far_from_message_delta_and_cache_counts() -> None:
    t = translator("anthropic")
    start = {"input_tokens": 10, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 2}
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}
    out = cut(t, sse({"type": "message_start", "message": {"model": "c", "usage": start}}), sse(delta))
    assert t.result.usage == usage(18, 7, cached=5, written=3)
    no_usage_chunk(out)


def test_anthropic_input_only_leaves_completion_null_and_survives_the_end() -> None:
    t = translator("anthropic")
    cut(t, sse({"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 9}}}))
    assert t.result.usage == usage(9, None)
    # The upstream ends without ever counting the output: the client's usage chunk is null, as before, and the
    # record keeps the input count that had arrived.
    out = cut(t, sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}), sse({"type": "message_stop"}))
    assert t.result.completed and t.result.usage == usage(9, None)
    usage_chunks = [json.loads(line[6:]) for line in out.decode().split("\n") if '"choices":[]' in line]
    assert [c["usage"] for c in usage_chunks] == [None]


def test_anthropic_usage_stays_when_the_upstream_breaks_off() -> None:
    t = translator("anthropic")
    cut(t, *anthropic_stream(complete=False))
    t.finish()  # the upstream ended early: an error event for the client, and the record keeps the usage
    assert t.result.error is not None and t.result.usage == usage(25, 1)


def test_anthropic_legacy_complete_sends_no_usage() -> None:
    """/v1/complete streams carry no token counts at all: null stays null."""
    t = translator("anthropic", COMPLETIONS, upstream_url=f"{UP}/v1/complete")
    cut(t, sse({"type": "completion", "completion": "Hel", "stop_reason": None}, "completion"))
    assert t.result.usage is None


def test_native_anthropic_input_only_message_start() -> None:
    rec = recorded("anthropic", sse({"type": "message_start", "message": {"usage": {"input_tokens": 9}}}))
    assert rec.usage == usage(9, None)


def test_native_anthropic_prefix() -> None:
    assert recorded("anthropic", *anthropic_stream()[:4]).usage == usage(25, 1)
