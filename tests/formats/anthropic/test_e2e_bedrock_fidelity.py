"""End to end, the anthropic SDK to the fake Bedrock (see test_e2e_bedrock.py), what other gateways lose: a matched
stop sequence, prompt caching (cache breakpoints as cachePoint blocks, cache counts in usage), signed thinking sent
back in a tool loop, tool arguments streamed as they arrive, and count_tokens through Bedrock's CountTokens (the
local estimate when it cannot count)."""

from __future__ import annotations

import threading
from typing import Any

import anthropic
import pytest

from tests.support.anthropic_bedrock import MESSAGES, MODEL, PATH, TOOLS, Env, ask, queue
from tests.support.anthropic_sdk import anthropic_client, first_tool_fragment
from tests.support.bedrock import (
    COUNTED_TOKENS,
    PIECES,
    BedrockReply,
    converse_answer,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(bedrock_env: Env) -> Env:
    return bedrock_env


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_thinking_with_tools_sends_the_signed_thinking_back(env: Env, stream: bool) -> None:
    """Claude with thinking in a tool loop needs its signed thinking back before its tool calls."""
    blocks = [("reasoning", "sig-1", "I should add."), ("tool", "tooluse_A", "add", '{"a": 1, "b": 1}')]
    queue(env, blocks, stream, stop="tool_use")
    thinking = {"type": "enabled", "budget_tokens": 2048}
    first, _ = ask(env, stream, max_tokens=4096, thinking=thinking, tools=TOOLS)
    assert [(b.type, getattr(b, "signature", None)) for b in first.content] == [
        ("thinking", "sig-1"),
        ("tool_use", None),
    ]
    env.fake.reset()
    history = [
        *MESSAGES,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tooluse_A", "content": "2"}]},
    ]
    _, headers = ask(env, stream, max_tokens=4096, thinking=thinking, tools=TOOLS, messages=history)
    assert env.seen().json["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "I should add.", "signature": "sig-1"}}},
        {"toolUse": {"toolUseId": "tooluse_A", "name": "add", "input": {"a": 1, "b": 1}}},
    ]
    assert "x-ai-proxy-dropped" not in headers


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    ("stops", "fields", "matched"),
    [
        (["END"], None, "END"),  # Bedrock says a stop sequence matched: the request had only one
        (["END", "STOP"], {"stop_sequence": "STOP"}, "STOP"),  # Claude's own field names it
        (["END", "STOP"], None, None),  # one of several, unnamed: stop_sequence stays null
    ],
)
def test_a_matched_stop_sequence(
    env: Env, stream: bool, stops: list[str], fields: dict[str, Any] | None, matched: str | None
) -> None:
    queue(env, [("text", *PIECES)], stream, stop="stop_sequence", fields=fields)
    message, _ = ask(env, stream, stop_sequences=stops)
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == matched
    assert env.seen().json["inferenceConfig"]["stopSequences"] == stops


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_cache_breakpoints_are_cache_points_and_cache_counts_come_back(env: Env, stream: bool) -> None:
    """What Claude Code sends: breakpoints on the system prompt, the tools and the last user block."""
    queue(env, [("text", *PIECES)], stream, cacheReadInputTokens=3000, cacheWriteInputTokens=200)
    ephemeral = {"type": "ephemeral"}
    message, headers = ask(
        env,
        stream,
        system=[{"type": "text", "text": "You are Claude Code.", "cache_control": ephemeral}],
        tools=[{**TOOLS[0], "cache_control": ephemeral}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": ephemeral}]}],
    )
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (25, 12)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (3000, 200)
    assert "x-ai-proxy-dropped" not in headers
    point = {"cachePoint": {"type": "default"}}
    body = env.seen().json
    assert body["system"] == [{"text": "You are Claude Code."}, point]
    assert body["messages"] == [{"role": "user", "content": [{"text": "hi"}, point]}]
    assert body["toolConfig"]["tools"][1:] == [point]


def test_count_tokens_through_bedrocks_counter(env: Env) -> None:
    raw = env.client().messages.with_raw_response.count_tokens(
        model="claude-sonnet-4-5",
        system="Be brief.",
        messages=MESSAGES,
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert raw.parse().input_tokens == COUNTED_TOKENS and raw.headers["x-ai-proxy-token-count"] == "provider"
    seen = env.seen()  # signed like any Bedrock request
    assert seen.path == f"{PATH}/count-tokens"
    converse = seen.json["input"]["converse"]
    assert converse["messages"] == [{"role": "user", "content": [{"text": "What is 1 + 1?"}]}]
    assert converse["system"] == [{"text": "Be brief."}]
    assert converse["toolConfig"]["tools"][0]["toolSpec"]["name"] == "add"
    assert set(converse) == {"messages", "system", "toolConfig"}


@pytest.mark.parametrize(
    "failure",
    [
        BedrockReply(400, {"message": "The provided model doesn't support counting tokens."}),
        BedrockReply(429, {"message": "Too many requests"}, {"x-amzn-ErrorType": "ThrottlingException"}),
        BedrockReply(json={"unexpected": True}),
    ],
)
def test_count_tokens_is_the_estimate_when_bedrock_cannot_count(env: Env, failure: BedrockReply) -> None:
    env.fake.queue(failure)
    raw = env.client().messages.with_raw_response.count_tokens(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-ai-proxy-token-count"] == "estimate" and 1 <= raw.parse().input_tokens < 20
    assert env.seen().path.endswith("/count-tokens")


def test_count_tokens_is_the_estimate_when_bedrock_cannot_be_reached(env: Env) -> None:
    client = anthropic_client(env.proxy, "bedrock-down.claude.internal")
    raw = client.messages.with_raw_response.count_tokens(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-ai-proxy-token-count"] == "estimate" and 1 <= raw.parse().input_tokens < 20
    with pytest.raises(anthropic.APIStatusError) as info:  # a message to the same place is an error, as it must be
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.status_code == 502


def test_streamed_tool_arguments_reach_the_client_before_bedrocks_stream_ends(env: Env) -> None:
    seen_first_piece = threading.Event()
    _, frames = converse_answer([("tool", "tooluse_A", "add", '{"a": 1,', ' "b": 1}')], stop="tool_use")
    held = [*frames[:3], lambda: seen_first_piece.wait(10), *frames[3:]]  # start, tool start, first piece | rest
    env.fake.queue(BedrockReply(frames=held))
    with env.client().messages.stream(model=MODEL, max_tokens=256, tools=TOOLS, messages=MESSAGES) as s:  # type: ignore[arg-type]
        assert first_tool_fragment(s) == '{"a": 1,'
        seen_first_piece.set()  # the fake holds the rest of its stream until now
        final = s.get_final_message()
    assert seen_first_piece.is_set()
    assert [(b.id, b.input) for b in final.content] == [("tooluse_A", {"a": 1, "b": 1})]  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
