"""Usage that arrived before a Cohere stream was cut off is in the record (DESIGN.md: record what had arrived); the
shared builders and the reasoning are in tests/support/stream_usage.py and tests/test_stream_usage.py."""

from __future__ import annotations

import json

import pytest

from tests.support.stream_usage import (
    _v2,
    cut,
    translator,
    usage,
)


def test_cohere_v2_sends_usage_only_in_message_end() -> None:
    t = translator("cohere")
    text = {"message": {"content": {"text": "Hel"}}}
    cut(t, _v2("message-start", id="x"), _v2("content-delta", index=0, delta=text))
    assert t.result.usage is None


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_cohere_v2_usage_of_a_failed_generation_is_kept(reason: str) -> None:
    t = translator("cohere")
    end = {"finish_reason": reason, "usage": {"tokens": {"input_tokens": 21, "output_tokens": 3}}}
    cut(t, _v2("message-start", id="x"), _v2("message-end", delta=end))
    assert t.result.error is not None and t.result.usage == usage(21, 3)


def test_cohere_v1_usage_of_a_failed_generation_is_kept() -> None:
    t = translator("cohere", cohere_api="v1")
    end = {
        "event_type": "stream-end",
        "finish_reason": "ERROR",
        "response": {"meta": {"tokens": {"input_tokens": 11, "output_tokens": 2}}},
    }
    cut(t, b'{"event_type": "stream-start", "generation_id": "g"}\n', json.dumps(end).encode() + b"\n")
    assert t.result.error is not None and t.result.usage == usage(11, 2)
