"""Usage that arrived before a Bedrock stream was cut off is in the record (DESIGN.md: record what had arrived); the
shared builders and the reasoning are in tests/support/stream_usage.py and tests/test_stream_usage.py."""

from __future__ import annotations

from tests.support.bedrock import event
from tests.support.stream_usage import (
    _invoke_chunk,
    cut,
    no_usage_chunk,
    recorded,
    translator,
    usage,
)


def test_bedrock_sends_usage_only_in_metadata() -> None:
    """ConverseStream counts tokens only in `metadata`, after messageStop: a cut before it leaves null."""
    t = translator("bedrock")
    cut(t, event("messageStart", {"role": "assistant"}), event("contentBlockDelta", {"delta": {"text": "hi"}}))
    cut(t, event("messageStop", {"stopReason": "end_turn"}))
    assert t.result.usage is None


def test_bedrock_metadata_before_message_stop_is_recorded_at_once() -> None:
    t = translator("bedrock")
    out = cut(
        t,
        event("messageStart", {"role": "assistant"}),
        event("metadata", {"usage": {"inputTokens": 8, "outputTokens": 2, "totalTokens": 10}}),
    )
    assert t.result.usage == usage(8, 2)
    no_usage_chunk(out)


def test_native_bedrock_invoke_stream_of_an_anthropic_model() -> None:
    """InvokeModelWithResponseStream wraps the model's own events: Claude's message_start counts the input."""
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 14, "output_tokens": 1}}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
    rec = recorded("bedrock", _invoke_chunk(start), _invoke_chunk(delta))
    assert rec.usage == usage(14, 1)
    rec.feed(_invoke_chunk({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 6}}))
    assert rec.usage == usage(14, 6)
    metrics = {"inputTokenCount": 14, "outputTokenCount": 7}  # Bedrock's own count wins at the end
    rec.feed(_invoke_chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}))
    assert rec.usage == usage(14, 7) and rec.result.completed


def test_native_bedrock_invoke_stream_of_a_llama_model() -> None:
    first = {"generation": "Hel", "prompt_token_count": 12, "generation_token_count": 1, "stop_reason": None}
    rec = recorded("bedrock", _invoke_chunk(first))
    assert rec.usage == usage(12, 1)
    rec.feed(_invoke_chunk({"generation": "lo", "prompt_token_count": None, "generation_token_count": 2}))
    assert rec.usage == usage(12, 2)
    rec.feed(_invoke_chunk({"generation": "!"}))  # a chunk without counts loses none of those that came
    assert rec.usage == usage(12, 2)
