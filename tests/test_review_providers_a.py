"""Adversarial review of the Anthropic, Gemini and Bedrock translations: one regression test per bug found.

Pure tests (no process, no network). Streams are fed at every split offset and byte by byte, and must give the
same OpenAI output, and the same answer as the non-streamed response for the same content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from addon.providers import Call
from addon.providers.anthropic import ANTHROPIC
from addon.providers.bedrock import BEDROCK
from tests.providers.bedrock.test_provider_bedrock import event as bedrock_event
from tests.providers.bedrock.test_provider_bedrock import make_call as bedrock_call
from tests.providers.bedrock.test_provider_bedrock import make_rule as bedrock_rule
from tests.test_providers import call, make_rule, refused, up_body

USER = [{"role": "user", "content": "Hi"}]
NO_ARGS_TOOL = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}


def _events(out: bytes) -> list[Any]:
    events: list[Any] = []
    for block in out.decode().split("\n\n")[:-1]:
        assert block.startswith("data: ")
        data = block[len("data: ") :]
        if data == "[DONE]":
            events.append(data)
            continue
        obj = json.loads(data)
        obj.pop("id", None)
        obj.pop("created", None)
        events.append(obj)
    return events


def translate(make: Callable[[], Any], raw: bytes) -> list[Any]:
    """The OpenAI events a translator makes of `raw`, checked identical at every split and byte by byte."""
    t = make()
    whole = _events(t.feed(raw) + t.finish())
    for cut in range(1, len(raw)):
        t = make()
        assert _events(t.feed(raw[:cut]) + t.feed(raw[cut:]) + t.finish()) == whole, cut
    t = make()
    assert _events(b"".join(t.feed(raw[i : i + 1]) for i in range(len(raw))) + t.finish()) == whole
    return whole


def accumulate(events: list[Any]) -> dict[str, Any]:
    """Content, tool calls, finish reason and usage, accumulated from OpenAI chunks."""
    content, calls, finish, found_usage = "", {}, None, None
    for e in events:
        if e == "[DONE]":
            continue
        assert "error" not in e, e
        if e.get("usage"):
            found_usage = e["usage"]
        for choice in e["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or ():
                slot = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                slot["name"] += (tc.get("function") or {}).get("name") or ""
                slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": found_usage}


# ==============================================================================================================
# Anthropic
# ==============================================================================================================


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
        "prompt_tokens_details": {"cached_tokens": 100},
    }


@pytest.mark.parametrize("key, value", [("seed", 42), ("reasoning_effort", "high")])
def test_anthropic_refuses_what_it_would_silently_drop(key: str, value: Any):
    """providers.md §3.2: "Not supported: n, seed, ..."; `thinking` is not mapped from reasoning_effort. Both were
    dropped without a word, so a client asking for determinism or reasoning silently got neither."""
    err = refused(up_body, make_rule(), {"messages": USER, key: value})
    assert err.param == key
    assert "stop_sequences" not in up_body(make_rule(), {"messages": USER, "seed": None})
    assert "thinking" not in up_body(make_rule(), {"messages": USER, "reasoning_effort": "none"})


# ==============================================================================================================
# Bedrock
# ==============================================================================================================


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


def test_bedrock_refuses_reasoning_effort():
    """Converse has no reasoning_effort (thinking is model-native, additionalModelRequestFields): it was dropped
    silently while `seed`, `n` and the penalties are refused."""
    from tests.providers.bedrock.test_provider_bedrock import refused as bedrock_refused

    err = bedrock_refused({"messages": USER, "reasoning_effort": "low"})
    assert err.param == "reasoning_effort"
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


# ---- Anthropic images ----------------------------------------------------------------------------------------


def _image(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


def test_anthropic_image_jpg_label_is_sent_as_jpeg():
    """Anthropic accepts only image/jpeg|png|gif|webp (providers.md §3.2, image_block_param.py) and answers 400
    "media_type: Input should be 'image/jpeg', ..." to the common `data:image/jpg` label, which was forwarded
    verbatim."""
    body = up_body(make_rule(), {"messages": _image("data:image/jpg;base64,/9j/4AAQ")})
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
    }
    body = up_body(make_rule(), {"messages": _image("data:image/PNG;base64,iVBORw0K")})
    assert body["messages"][0]["content"][1]["source"]["media_type"] == "image/png"


def test_anthropic_refuses_image_types_it_does_not_take():
    """An SVG or BMP data URL was sent upstream to be refused there; now a clear 400 names the types Anthropic
    takes."""
    err = refused(up_body, make_rule(), {"messages": _image("data:image/svg+xml;base64,PHN2Zz4=")})
    assert err.param == "messages[0].content[1]" and "jpeg, png, gif and webp" in err.message


# ==============================================================================================================
# Gemini
# ==============================================================================================================


def test_gemini_image_jpg_label_is_sent_as_jpeg():
    """Gemini answers 400 "Unsupported MIME type: image/jpg" (INVALID_ARGUMENT) to the common `data:image/jpg`
    label, which was forwarded verbatim into inlineData.mimeType."""
    body = up_body(make_rule("gemini", "gemini-2.5-flash"), {"messages": _image("data:image/jpg;base64,/9j/4AAQ")})
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    body = up_body(make_rule("gemini", "gemini-2.5-flash"), {"messages": _image("data:image/WEBP;base64,UklGR")})
    assert body["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/webp"


# ---- a final assistant message (prefill) ending in whitespace --------------------------------------------------

PREFILL = [*USER, {"role": "assistant", "content": "Sure, here it is:\n "}]


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


def test_bedrock_prefill_trailing_whitespace_is_trimmed():
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": PREFILL}))
    assert body["messages"][-1] == {"role": "assistant", "content": [{"text": "Sure, here it is:"}]}
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": [*USER, {"role": "assistant", "content": " "}]}))
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]


# ---- temperature with top_p 1 ------------------------------------------------------------------------------------


def test_anthropic_top_p_1_is_not_sent_next_to_temperature():
    """Claude Sonnet/Haiku 4.5, Opus 4.1 and later answer 400 "`temperature` and `top_p` cannot both be specified
    for this model" (Anthropic: "alter temperature or top_p, but not both"). OpenAI clients commonly send
    `top_p: 1` (no nucleus filtering, Anthropic's default) with a temperature: it is no longer sent. A real top_p is
    still sent."""
    body = up_body(make_rule(), {"messages": USER, "temperature": 0.2, "top_p": 1})
    assert body["temperature"] == 0.2 and "top_p" not in body
    assert up_body(make_rule(), {"messages": USER, "top_p": 0.9})["top_p"] == 0.9


def test_bedrock_top_p_1_is_not_sent_next_to_temperature():
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": USER, "temperature": 0.2, "top_p": 1.0}))
    assert body["inferenceConfig"] == {"temperature": 0.2}
    body = BEDROCK._body(bedrock_call(bedrock_rule(), {"messages": USER, "top_p": 0.9}))
    assert body["inferenceConfig"] == {"topP": 0.9}
