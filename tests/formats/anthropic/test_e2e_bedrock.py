"""End to end: the real anthropic SDK (what Claude Code is built on) through a real mitmdump to a fake Amazon Bedrock
(Converse / ConverseStream in AWS eventstream frames, every request's SigV4 signature checked as AWS checks it):
text, aliases, streams equal to the plain answer, a two-parallel-tool-call round trip, images, thinking, stop
reasons, errors as the SDK's own exceptions."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.support.anthropic_bedrock import MESSAGES, MODEL, PATH, TOOLS, Env, ask, queue
from tests.support.bedrock import (
    ANSWER,
    PIECES,
    BedrockReply,
    converse_frames,
    exception,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(bedrock_env: Env) -> Env:
    return bedrock_env


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
@pytest.mark.parametrize(
    ("bedrock", "anthropic_reason"),
    [("max_tokens", "max_tokens"), ("guardrail_intervened", "refusal"), ("end_turn", "end_turn")],
)
def test_stop_reasons(env: Env, stream: bool, bedrock: str, anthropic_reason: str) -> None:
    queue(env, [("text", *PIECES)], stream, stop=bedrock)
    message, _ = ask(env, stream)
    assert message.stop_reason == anthropic_reason and message.stop_sequence is None


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
