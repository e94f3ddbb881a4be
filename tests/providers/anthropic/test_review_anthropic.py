"""Adversarial review of the Anthropic translation: one regression test per bug found (moved from
tests/test_review_providers_a.py).

Pure tests (no process, no network). Streams are fed at every split offset and byte by byte, and must give the
same OpenAI output, and the same answer as the non-streamed response for the same content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from addon.providers import Call
from addon.providers.anthropic import ANTHROPIC
from tests.support.chunks import accumulate, translate
from tests.support.pipeline import PREFILL, USER, call, image_messages, make_rule, refused, up_body


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_stream(call_: Call) -> Callable[[], Any]:
    return lambda: ANTHROPIC.stream_translator(call_, include_usage=True, keep_payload=False)


def test_anthropic_stream_usage_keeps_input_tokens_when_message_delta_sends_null():
    """MessageDeltaUsage types input_tokens and the cache counts as Optional (anthropic-sdk-python
    `types/message_delta_usage.py`); the SDK's accumulator keeps message_start's values when they are null. The
    translator overwrote them with null, and the client got `usage: null` for a perfectly good stream."""
    start_usage = {"input_tokens": 40, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 100}
    raw = b"".join(
        [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "model": "claude-x",
                        "content": [],
                        "usage": {**start_usage, "output_tokens": 1},
                    },
                },
            ),
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {
                        "input_tokens": None,
                        "cache_creation_input_tokens": None,
                        "cache_read_input_tokens": None,
                        "output_tokens": 7,
                    },
                },
            ),
            sse("message_stop", {"type": "message_stop"}),
        ]
    )
    c = call(make_rule(), {"messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    got = accumulate(translate(anthropic_stream(c), raw))
    assert got["content"] == "Hello" and got["finish"] == "stop"
    assert got["usage"] == {
        "prompt_tokens": 142,
        "completion_tokens": 7,
        "total_tokens": 149,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 2, "cache_write_tokens": 2},
    }


def test_anthropic_refuses_what_it_would_silently_drop():
    """providers.md §3.2: "Not supported: n, seed, ..."; it was dropped without a word, so a client asking for
    determinism silently got none. (reasoning_effort, refused here before, is Claude's thinking budget now:
    tests/providers/anthropic/test_thinking_anthropic.py.)"""
    err = refused(up_body, make_rule(), {"messages": USER, "seed": 42})
    assert err.param == "seed"
    assert "stop_sequences" not in up_body(make_rule(), {"messages": USER, "seed": None})
    assert "thinking" not in up_body(make_rule(), {"messages": USER, "reasoning_effort": "none"})


def test_anthropic_image_jpg_label_is_sent_as_jpeg():
    """Anthropic accepts only image/jpeg|png|gif|webp (providers.md §3.2, image_block_param.py) and answers 400
    "media_type: Input should be 'image/jpeg', ..." to the common `data:image/jpg` label, which was forwarded
    verbatim."""
    body = up_body(make_rule(), {"messages": image_messages("data:image/jpg;base64,/9j/4AAQ")})
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
    }
    body = up_body(make_rule(), {"messages": image_messages("data:image/PNG;base64,iVBORw0K")})
    assert body["messages"][0]["content"][1]["source"]["media_type"] == "image/png"


def test_anthropic_refuses_image_types_it_does_not_take():
    """An SVG or BMP data URL was sent upstream to be refused there; now a clear 400 names the types Anthropic
    takes."""
    err = refused(up_body, make_rule(), {"messages": image_messages("data:image/svg+xml;base64,PHN2Zz4=")})
    assert err.param == "messages[0].content[1]" and "jpeg, png, gif and webp" in err.message


def test_anthropic_prefill_trailing_whitespace_is_trimmed():
    """Anthropic answers 400 "messages: final assistant content cannot end with trailing whitespace" (the same
    from Claude on Bedrock); a client's prefill like "Answer: " was forwarded verbatim. Earlier assistant turns keep
    their text as it is."""
    body = up_body(make_rule(), {"messages": PREFILL})
    assert body["messages"][-1] == {"role": "assistant", "content": "Sure, here it is:"}
    body = up_body(make_rule(), {"messages": [*PREFILL, {"role": "user", "content": "Go on"}]})
    assert body["messages"][1] == {"role": "assistant", "content": "Sure, here it is:\n "}
    body = up_body(make_rule(), {"messages": [*USER, {"role": "assistant", "content": "  \n"}]})
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_anthropic_top_p_1_is_not_sent_next_to_temperature():
    """Claude Sonnet/Haiku 4.5, Opus 4.1 and later answer 400 "`temperature` and `top_p` cannot both be specified
    for this model" (Anthropic: "alter temperature or top_p, but not both"). OpenAI clients commonly send
    `top_p: 1` (no nucleus filtering, Anthropic's default) with a temperature: it is no longer sent. A real top_p is
    still sent."""
    body = up_body(make_rule(), {"messages": USER, "temperature": 0.2, "top_p": 1})
    assert body["temperature"] == 0.2 and "top_p" not in body
    assert up_body(make_rule(), {"messages": USER, "top_p": 0.9})["top_p"] == 0.9
