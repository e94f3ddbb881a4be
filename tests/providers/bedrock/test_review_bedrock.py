"""Adversarial review of the Bedrock translation: one regression test per bug found.

Pure tests (no process, no network). Streams are fed at every split offset and byte by byte, and must give the
same OpenAI output, and the same answer as the non-streamed response for the same content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from addon.providers.bedrock import BEDROCK
from tests.providers.bedrock.test_provider_bedrock import make_call as bedrock_call
from tests.providers.bedrock.test_provider_bedrock import make_rule as bedrock_rule
from tests.support.bedrock import event as bedrock_event
from tests.support.chunks import accumulate, translate
from tests.support.pipeline import PREFILL

USER = [{"role": "user", "content": "Hi"}]
NO_ARGS_TOOL = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}


def bedrock_stream(body: dict[str, Any]) -> Callable[[], Any]:
    c = bedrock_call(bedrock_rule(), body)
    return lambda: BEDROCK.stream_translator(c, include_usage=True, keep_payload=False)


def _no_args_frames(with_empty_delta: bool, with_block_stop: bool) -> bytes:
    frames = [
        bedrock_event("messageStart", {"role": "assistant"}),
        bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
        bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
        bedrock_event(
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_abc", "name": "now"}}},
        ),
    ]
    if with_empty_delta:
        frames.append(bedrock_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ""}}}))
    if with_block_stop:
        frames.append(bedrock_event("contentBlockStop", {"contentBlockIndex": 1}))
    frames.append(bedrock_event("messageStop", {"stopReason": "tool_use"}))
    frames.append(bedrock_event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}}))
    return b"".join(frames)


@pytest.mark.parametrize("with_empty_delta", [True, False])
@pytest.mark.parametrize("with_block_stop", [True, False])
def test_bedrock_stream_tool_call_without_arguments_matches_the_non_streamed_answer(
    with_empty_delta: bool, with_block_stop: bool
):
    """A tool without parameters streams no input fragment (or an empty one). The non-streamed answer's
    `input: {}` gives arguments "{}"; the stream gave "" (not JSON: `json.loads` in the client's tool loop
    fails). Now "{}" is sent when the block stops (or at messageStop), like the Anthropic translator does."""
    body = {"messages": USER, "tools": [NO_ARGS_TOOL], "stream": True, "stream_options": {"include_usage": True}}
    got = accumulate(translate(bedrock_stream(body), _no_args_frames(with_empty_delta, with_block_stop)))
    assert got["tool_calls"] == [{"id": "tooluse_abc", "name": "now", "arguments": "{}"}]
    assert got["finish"] == "tool_calls" and got["content"] == "Checking."

    rule = bedrock_rule()
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "tooluse_abc", "name": "now", "input": {}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
    }
    message = BEDROCK.parse_response(bedrock_call(rule, {"messages": USER, "tools": [NO_ARGS_TOOL]}), answer)
    streamed = got["tool_calls"][0]
    assert message["choices"][0]["message"]["tool_calls"][0]["function"] == {
        "name": streamed["name"],
        "arguments": streamed["arguments"],
    }


def test_bedrock_stream_arguments_are_not_doubled_when_fragments_came():
    """The "{}" fallback must not be added to a call whose input did stream."""
    frames = [
        bedrock_event("messageStart", {"role": "assistant"}),
        bedrock_event(
            "contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "now"}}}
        ),
        bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"tz":'}}}),
        bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '"UTC"}'}}}),
        bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
        bedrock_event("messageStop", {"stopReason": "tool_use"}),
        bedrock_event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}}),
    ]
    got = accumulate(
        translate(bedrock_stream({"messages": USER, "tools": [NO_ARGS_TOOL], "stream": True}), b"".join(frames))
    )
    assert got["tool_calls"] == [{"id": "t1", "name": "now", "arguments": '{"tz":"UTC"}'}]


def test_bedrock_maps_reasoning_effort():
    """Converse has no reasoning_effort (thinking is model-native, additionalModelRequestFields): it was dropped
    silently, then refused; now it is Claude's thinking budget (tests/providers/bedrock/test_thinking_bedrock.py)
    and `none` asks for no thinking."""
    assert "additionalModelRequestFields" not in BEDROCK._body(
        bedrock_call(bedrock_rule(), {"messages": USER, "reasoning_effort": "none"})
    )


def test_bedrock_assistant_tool_call_arguments_as_an_object_are_taken():
    """`json.loads(<dict>)` raised a TypeError (not a ValueError): an assistant tool call whose arguments some
    clients send as an object (Gemini and Cohere take it) crashed the translation instead of being sent; a
    non-JSON value must be a 400, not a crash."""
    history = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": {"tz": "UTC"}}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
    ]
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": history, "tools": [NO_ARGS_TOOL]}))
    assert body["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "call_1", "name": "now", "input": {"tz": "UTC"}}}
    ]
    history[1]["tool_calls"][0]["function"]["arguments"] = 5
    from tests.providers.bedrock.test_provider_bedrock import refused as bedrock_refused

    err = bedrock_refused({"messages": history, "tools": [NO_ARGS_TOOL]})
    assert err.param == "messages[1].tool_calls[0]"


# ---- a final assistant message (prefill) ending in whitespace --------------------------------------------------


def test_bedrock_prefill_trailing_whitespace_is_trimmed():
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": PREFILL}))
    assert body["messages"][-1] == {"role": "assistant", "content": [{"text": "Sure, here it is:"}]}
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": [*USER, {"role": "assistant", "content": " "}]}))
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]


# ---- temperature with top_p 1 ------------------------------------------------------------------------------------


def test_bedrock_top_p_1_is_not_sent_next_to_temperature():
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": USER, "temperature": 0.2, "top_p": 1.0}))
    assert body["inferenceConfig"] == {"temperature": 0.2}
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": USER, "top_p": 0.9}))
    assert body["inferenceConfig"] == {"topP": 0.9}
