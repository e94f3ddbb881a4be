"""Claude's thinking on Bedrock Converse (#14): reasoning_effort -> additionalModelRequestFields.thinking through
the table, under Claude's rules (budget >= 1,024 under maxTokens, raised when needed; temperature, top_k and a
low topP dropped and reported); models without thinking (Claude 3.5 and older, Nova, Llama) drop and report it;
a forced tool or a tool loop without its signed reasoning makes thinking give way, reported. End to end with the
openai SDK through mitmdump to the fake Bedrock, plain and streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from addon.exchange import build_upstream
from addon.formats import ANTHROPIC
from addon.providers import REGISTRY, Call
from addon.spec import ModelOptions
from addon.stream_bridge import client_translator
from tests.providers.bedrock.test_provider_bedrock import make_call, make_rule
from tests.support.bedrock import BedrockReply, FakeBedrock, bedrock_behind_proxy, converse_answer, event
from tests.support.mitmdump import Mitmdump
from tests.support.pipeline import USER
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import client_through

CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def converse(model: str, **extra: Any) -> tuple[dict[str, Any], list[str]]:
    rule = make_rule(model)
    c = make_call(rule, {"messages": USER, **extra})
    up = build_upstream(rule, c)
    assert up.body is not None
    return up.body, c.dropped


@pytest.mark.parametrize(("effort", "budget", "max_tokens"), [("low", 4096, 8192), ("high", 24576, 28672)])
def test_reasoning_effort_is_claudes_budget(effort: str, budget: int, max_tokens: int) -> None:
    body, dropped = converse(CLAUDE, reasoning_effort=effort)
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": budget}}
    assert body["inferenceConfig"]["maxTokens"] == max_tokens and dropped == []


def test_room_enough_is_kept_and_what_claude_refuses_is_dropped() -> None:
    body, dropped = converse(CLAUDE, reasoning_effort="low", max_tokens=9000, temperature=0.2, top_p=0.5, top_k=3)
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 4096}}
    assert body["inferenceConfig"] == {"maxTokens": 9000}
    assert dropped == ["temperature", "top_k", "top_p"]


@pytest.mark.parametrize(
    "model", ["anthropic.claude-3-5-sonnet-20240620-v1:0", "amazon.nova-pro-v1:0", "meta.llama3-70b-instruct-v1:0"]
)
def test_models_without_thinking_report_it(model: str) -> None:
    body, dropped = converse(model, reasoning_effort="high", temperature=0.2)
    assert "thinking" not in body.get("additionalModelRequestFields", {}) and dropped == ["thinking"]
    assert body["inferenceConfig"]["temperature"] == 0.2


def test_a_forced_tool_or_a_loop_without_reasoning_makes_thinking_give_way() -> None:
    forced, dropped = converse(CLAUDE, reasoning_effort="low", tools=[WEATHER], tool_choice="required")
    assert "additionalModelRequestFields" not in forced and dropped == ["thinking"]
    call = {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    loop = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "22C"},
    ]
    body, dropped = converse(CLAUDE, messages=loop, tools=[WEATHER], reasoning_effort="low")
    assert "additionalModelRequestFields" not in body and dropped == ["thinking"]
    loop[1] = {**loop[1], "thinking_blocks": [{"type": "thinking", "thinking": "Hm.", "signature": "c2ln"}]}
    body, dropped = converse(CLAUDE, messages=loop, tools=[WEATHER], reasoning_effort="low")
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 4096 and dropped == []
    assert body["messages"][1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Hm.", "signature": "c2ln"}}
    }


# ---- end to end ---------------------------------------------------------------------------------------------------

KEY_ID, SECRET, REGION = "AKIDE2EREASONFAKE001", "e2e/reasoning+secret/000000000000000001", "us-east-1"


def _rules(fake: FakeBedrock) -> str:
    keys = {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
    options = {"upstream_url": fake.url, "bedrock": {"aws_region": REGION}}
    return rules_text(
        {**rule_spec("bedrock-reasoning", "bedrock.reasoning.internal", "bedrock", None, options), "auth": keys}
    )


@pytest.fixture(scope="module")
def bedrock_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mitmdump, FakeBedrock]]:
    with bedrock_behind_proxy(tmp_path_factory.mktemp("e2e-bedrock-reasoning"), {KEY_ID: SECRET}, REGION, _rules) as (
        proxy,
        fake,
    ):
        yield proxy, fake


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_reasoning_effort_on_bedrock_claude(bedrock_env: tuple[Mitmdump, FakeBedrock], stream: bool) -> None:
    proxy, fake = bedrock_env
    fake.reset()
    answer, frames = converse_answer([("reasoning", "c2ln", "Two ones ", "make two."), ("text", "2")])
    fake.queue(BedrockReply(frames=frames) if stream else BedrockReply(json=answer))
    client = client_through(proxy, "bedrock.reasoning.internal")
    raw = client.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=USER, reasoning_effort="medium", stream=stream
    )
    if stream:
        deltas = [c.choices[0].delta for c in raw.parse() if c.choices]
        reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
        text = "".join(d.content or "" for d in deltas)
    else:
        message = raw.parse().choices[0].message
        reasoning, text = (message.model_extra or {})["reasoning_content"], message.content
    assert (reasoning, text) == ("Two ones make two.", "2")
    sent = fake.last().json
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 16384}}
    assert sent["inferenceConfig"]["maxTokens"] == 16384 + 4096
    assert "x-ai-proxy-dropped" not in raw.headers


def test_streamed_redacted_reasoning_reaches_an_anthropic_client() -> None:
    """ConverseStream's redactedContent delta becomes a redacted_thinking block (it was dropped), at every split."""
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "b64"}}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "2"}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "end_turn"}),
        event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}}),
    ]
    raw = b"".join(frames)
    c = Call(
        "llm/v1/chat", {"messages": USER, "stream": True}, CLAUDE, ModelOptions(), stream=True, writer=ANTHROPIC.writer
    )
    for cut in range(0, len(raw), 5):
        translator = client_translator(REGISTRY["bedrock"], c, False, True)
        out = translator.feed(raw[:cut]) + translator.feed(raw[cut:]) + translator.finish()
        events = [json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: ")]
        starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
        assert starts == [{"type": "redacted_thinking", "data": "b64"}, {"type": "text", "text": ""}], cut
