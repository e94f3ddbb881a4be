"""End to end: the real anthropic SDK (what Claude Code is built on) through a real mitmdump to a fake Amazon Bedrock
(Converse / ConverseStream in AWS eventstream frames, every request's SigV4 signature checked as AWS checks it):
text, streams equal to the plain answer, a two-parallel-tool-call round trip, images, thinking, stop reasons, usage
with cache counts, cache breakpoints as cachePoint blocks, errors as the SDK's own exceptions, and count_tokens
through Bedrock's CountTokens (the local estimate when it cannot count)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from tests.support.anthropic_sdk import CLIENT_KEY, anthropic_client
from tests.support.bedrock import (
    ANSWER,
    COUNTED_TOKENS,
    PIECES,
    BedrockReply,
    FakeBedrock,
    Seen,
    converse_answer,
    converse_frames,
    exception,
    proxy_for_bedrock,
)
from tests.support.mitmdump import Mitmdump, free_ports

pytestmark = pytest.mark.e2e

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SMALL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
PATH = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
KEY_ID = "AKIDE2EANTHROPICBR01"
SECRET = "e2e/anthropic-to-bedrock/secret000000001"
REGION = "eu-west-3"
MESSAGES = [{"role": "user", "content": "What is 1 + 1?"}]
TOOLS = [
    {
        "name": "add",
        "description": "Add two numbers",
        "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    }
]


def rules_yaml(fake: FakeBedrock) -> str:
    return f"""
rules:
  - name: claude-code-on-bedrock
    match: {{host: bedrock.claude.internal, path: "/v1/*"}}
    llm_format: anthropic
    model:
      provider: bedrock
      name: "{MODEL}"
      aliases: {{"claude-*haiku*": "{SMALL}", "*": "{MODEL}"}}
      options: {{upstream_url: "{fake.url}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: "${{E2E_AWS_KEY_ID}}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
    logging: {{log_payloads: true}}
  - name: claude-code-on-bedrock-unreachable
    match: {{host: bedrock-down.claude.internal, path: "/v1/*"}}
    llm_format: anthropic
    model:
      provider: bedrock
      name: "{MODEL}"
      options: {{upstream_url: "http://127.0.0.1:{free_ports(1)[0]}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: "${{E2E_AWS_KEY_ID}}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
"""


@dataclass
class Env:
    proxy: Mitmdump
    fake: FakeBedrock

    def client(self) -> anthropic.Anthropic:
        return anthropic_client(self.proxy, "bedrock.claude.internal")

    def seen(self) -> Seen:
        """The one request the fake got: signed for the rule's keys and region, without the client's key."""
        (seen,) = self.fake.requests
        assert seen.rejected is None, seen.rejected
        assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
        assert f"/{REGION}/bedrock/aws4_request" in seen.headers["authorization"]
        assert CLIENT_KEY not in json.dumps(seen.headers) and CLIENT_KEY not in seen.body.decode()
        return seen


@pytest.fixture(scope="module")
def env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fake = FakeBedrock({KEY_ID: SECRET}, REGION)
    workdir = tmp_path_factory.mktemp("e2e-anthropic-bedrock")
    with proxy_for_bedrock(workdir, rules_yaml(fake), {"E2E_AWS_KEY_ID": KEY_ID, "E2E_AWS_SECRET": SECRET}) as proxy:
        try:
            yield Env(proxy, fake)
        finally:
            fake.close()


@pytest.fixture
def env(env_module: Env) -> Env:
    env_module.fake.reset()
    return env_module


def queue(
    env: Env,
    blocks: list[tuple[Any, ...]],
    stream: bool,
    stop: str = "end_turn",
    fields: dict[str, Any] | None = None,
    **usage: int,
) -> None:
    answer, frames = converse_answer(blocks, stop, fields, **usage)
    env.fake.queue(BedrockReply(frames=frames) if stream else BedrockReply(json=answer))


def ask(env: Env, stream: bool, **kwargs: Any) -> tuple[anthropic.types.Message, dict[str, str]]:
    """The answer (the stream's accumulated message when streamed) and the response headers."""
    client = env.client()
    kwargs = {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": MESSAGES, **kwargs}
    if stream:
        with client.messages.stream(**kwargs) as s:
            return s.get_final_message(), dict(s.response.headers)
    raw = client.messages.with_raw_response.create(**kwargs)
    return raw.parse(), dict(raw.headers)


def test_text_and_the_exact_converse_request(env: Env) -> None:
    message = env.client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=300,
        system=[{"type": "text", "text": "You are a mathematician."}, {"type": "text", "text": "Be brief."}],
        messages=MESSAGES,
        extra_body={"temperature": 0.5, "top_k": 40},  # this SDK's create() has no temperature or top_k
        metadata={"user_id": "user-7"},
    )
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == ANSWER
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 12)
    assert message.model == MODEL
    seen = env.seen()
    assert seen.path == f"{PATH}/converse"
    assert seen.json == {
        "messages": [{"role": "user", "content": [{"text": "What is 1 + 1?"}]}],
        "system": [{"text": "You are a mathematician.\n\nBe brief."}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.5},
        "additionalModelRequestFields": {"top_k": 40},
        "requestMetadata": {"user": "user-7"},
    }


def test_an_alias_picks_the_small_model(env: Env) -> None:
    env.client().messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    assert env.seen().path == "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse"


def test_the_stream_accumulates_to_the_plain_answer(env: Env) -> None:
    plain, _ = ask(env, stream=False)
    env.fake.reset()
    with env.client().messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=MESSAGES) as s:
        pieces = list(s.text_stream)
        streamed = s.get_final_message()
    assert pieces == PIECES
    assert env.seen().path == f"{PATH}/converse-stream"
    assert streamed.model_dump(exclude={"id"}) == plain.model_dump(exclude={"id"})


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_two_parallel_tool_calls_round_trip(env: Env, stream: bool) -> None:
    calls = [("tooluse_A", "add", '{"a": 1,', ' "b": 1}'), ("tooluse_B", "add", '{"a": 2, "b": 2}')]
    queue(env, [("text", "Adding."), *(("tool", *c) for c in calls)], stream, stop="tool_use")
    first, _ = ask(env, stream, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use", "tool_use"]
    uses = first.content[1:]
    assert [(u.id, u.name, u.input) for u in uses] == [  # type: ignore[union-attr]
        ("tooluse_A", "add", {"a": 1, "b": 1}),
        ("tooluse_B", "add", {"a": 2, "b": 2}),
    ]
    assert env.seen().json["toolConfig"]["tools"] == [
        {
            "toolSpec": {
                "name": "add",
                "description": "Add two numbers",
                "inputSchema": {"json": TOOLS[0]["input_schema"]},
            }
        }
    ]
    env.fake.reset()
    history = [
        *MESSAGES,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tooluse_A", "content": "2"},
                {"type": "tool_result", "tool_use_id": "tooluse_B", "content": [{"type": "text", "text": "4"}]},
            ],
        },
    ]
    final, _ = ask(env, stream, tools=TOOLS, messages=history)
    assert final.content[0].text == ANSWER  # type: ignore[union-attr]
    assert env.seen().json["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"text": "Adding."},
                {"toolUse": {"toolUseId": "tooluse_A", "name": "add", "input": {"a": 1, "b": 1}}},
                {"toolUse": {"toolUseId": "tooluse_B", "name": "add", "input": {"a": 2, "b": 2}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_A", "content": [{"text": "2"}]}},
                {"toolResult": {"toolUseId": "tooluse_B", "content": [{"text": "4"}]}},
            ],
        },
    ]


def test_an_image_reaches_bedrock(env: Env) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    ask(env, False, messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}])
    assert env.seen().json["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
        {"text": "What is this?"},
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_thinking_is_claudes_own_budget_and_comes_back_as_a_thinking_block(env: Env, stream: bool) -> None:
    queue(env, [("reasoning", "c2lnbmF0dXJl", "Two ones ", "make two."), ("text", *PIECES)], stream)
    message, headers = ask(env, stream, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048})
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Two ones make two."  # type: ignore[union-attr]
    assert message.content[0].signature == "c2lnbmF0dXJl"  # type: ignore[union-attr]  # signature_delta streamed
    assert message.content[1].text == ANSWER  # type: ignore[union-attr]
    assert "thinking" not in headers.get("x-ai-proxy-dropped", "").split(",")
    body = env.seen().json
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert "reasoning_effort" not in json.dumps(body)


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
    ("bedrock", "anthropic_reason"),
    [("max_tokens", "max_tokens"), ("guardrail_intervened", "refusal"), ("end_turn", "end_turn")],
)
def test_stop_reasons(env: Env, stream: bool, bedrock: str, anthropic_reason: str) -> None:
    queue(env, [("text", *PIECES)], stream, stop=bedrock)
    message, _ = ask(env, stream)
    assert message.stop_reason == anthropic_reason and message.stop_sequence is None


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


@pytest.mark.parametrize(
    ("status", "name", "exc", "client_status"),
    [
        (400, "ValidationException", anthropic.BadRequestError, 400),
        (403, "AccessDeniedException", anthropic.PermissionDeniedError, 403),
        (429, "ThrottlingException", anthropic.RateLimitError, 429),
        (500, "InternalServerException", anthropic.InternalServerError, 500),
        (503, "ServiceUnavailableException", anthropic.OverloadedError, 529),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_bedrock_errors_are_the_sdks_exceptions(
    env: Env, status: int, name: str, exc: type[anthropic.APIStatusError], client_status: int, stream: bool
) -> None:
    message = f"{name} from the fake"
    env.fake.queue(BedrockReply(status, {"message": message}, {"x-amzn-ErrorType": f"{name}:http://internal/"}))
    with pytest.raises(exc) as info:
        ask(env, stream)
    assert info.value.status_code == client_status
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["message"] == message


def test_an_exception_frame_mid_stream_is_an_error_event(env: Env) -> None:
    frames = converse_frames(complete=False)[:2]
    env.fake.queue(BedrockReply(frames=[*frames, exception("throttlingException", "Slow down")]))
    received = []
    with (
        pytest.raises(anthropic.APIStatusError, match="Slow down"),
        env.client().messages.stream(model="m", max_tokens=10, messages=MESSAGES) as s,
    ):
        received.extend(s.text_stream)
    assert received == PIECES[:1]  # what arrived before the failure was delivered


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
