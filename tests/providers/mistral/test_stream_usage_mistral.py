"""Usage that arrived before a Mistral stream was cut off is in the record (DESIGN.md: record what had arrived); the
shared builders and the reasoning are in tests/support/stream_usage.py and tests/test_stream_usage.py."""

from __future__ import annotations

from tests.support.stream_usage import (
    COMPLETIONS,
    _mistral_chunk,
    cut,
    no_usage_chunk,
    translator,
    usage,
)


def test_mistral_completions_usage_on_the_last_chunk_before_done() -> None:
    t = translator("mistral", COMPLETIONS)
    out = cut(t, _mistral_chunk("Hel"), _mistral_chunk("lo", "stop", usage=usage(5, 2)))
    assert t.result.usage == usage(5, 2)
    no_usage_chunk(out)


def test_mistral_completions_usage_of_an_error_finish_is_kept() -> None:
    t = translator("mistral", COMPLETIONS)
    cut(t, _mistral_chunk("Hel", "error", usage=usage(5, 1)))
    assert t.result.error is not None and t.result.usage == usage(5, 1)
