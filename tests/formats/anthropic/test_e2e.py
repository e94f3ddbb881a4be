"""End to end: the real anthropic SDK (what Claude Code is built on) through a real mitmdump to fake OpenAI, Azure,
Gemini, Cohere, Mistral, Ollama and TGI servers: messages.create and messages.stream, tools round trip, images,
errors as the SDK's own exceptions, count_tokens, models, aliases and the loss report."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import anthropic
import pytest

from tests.support import format_e2e, replies
from tests.support.anthropic_sdk import MESSAGES, PROVIDER_KEY, PROVIDERS, Env, first_tool_fragment
from tests.support.fakes import ANSWER, GEMINI_COUNTED_TOKENS, STREAM_PIECES, Recorded, Reply

pytestmark = pytest.mark.e2e


def provider_messages(provider: str, req: Recorded) -> Any:
    body = req.json
    if provider == "gemini":
        return body["systemInstruction"], body["contents"]
    return body["messages"]


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_text_not_streamed(env: Env, provider: str) -> None:
    env.queue_answer(provider, stream=False)
    message = env.client(provider).messages.create(
        model="claude-sonnet-4-5", max_tokens=256, system="You are a mathematician.", messages=MESSAGES
    )
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == ANSWER
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 25 and message.usage.output_tokens == 12
    req = env.seen(provider)
    assert "What is 1 + 1?" in json.dumps(provider_messages(provider, req))
    assert "You are a mathematician." in json.dumps(provider_messages(provider, req))


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_streamed_equals_not_streamed(env: Env, provider: str) -> None:
    env.queue_answer(provider, stream=True)
    with env.client(provider).messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=MESSAGES) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert "".join(pieces) == "".join(STREAM_PIECES)
    assert final.content[0].text == "".join(STREAM_PIECES) and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12 and final.usage.input_tokens == 25
    assert env.seen(provider).json.get("stream", True) is not False


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_matched_stop_sequence_from_cohere(env: Env, stream: bool) -> None:
    env.fakes["cohere"].queue(replies.cohere_reply(stream, finish="STOP_SEQUENCE"))
    client, ask = env.client("cohere"), {"model": "m", "max_tokens": 9, "messages": MESSAGES, "stop_sequences": ["Z"]}
    if stream:
        with client.messages.stream(**ask) as s:  # type: ignore[arg-type]
            message = s.get_final_message()
    else:
        message = client.messages.create(**ask)  # type: ignore[arg-type]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "Z")
    assert env.seen("cohere").json["stop_sequences"] == ["Z"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_thinking_on_gemini(env: Env, stream: bool) -> None:
    parts = [{"text": "Two ones.", "thought": True}, {"text": ANSWER}]
    env.fakes["gemini"].queue(replies.gemini_reply(stream, parts))
    client = env.client("gemini")
    ask: dict[str, Any] = {"model": "m", "max_tokens": 4096, "messages": MESSAGES}
    ask["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    if stream:
        with client.messages.stream(**ask) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**ask)
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", "Two ones."),
        ("text", ANSWER),
    ]
    config = env.seen("gemini").json["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}


def test_the_provider_request_is_exactly_the_translation(env: Env) -> None:
    env.client("openai").messages.create(
        model="claude-sonnet-4-5",
        max_tokens=300,
        system=[{"type": "text", "text": "Be brief."}],
        messages=MESSAGES,
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
        extra_body={"temperature": 0.5},
    )
    req = env.seen("openai")
    assert req.path == "/v1/chat/completions" and req.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert req.json == {
        "model": "gpt-fake-1",
        "max_tokens": 300,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1 + 1?"}],
        "temperature": 0.5,
        "stop": ["END"],
        "user": "user-7",
        "stream": False,
    }


TOOLS = [
    {
        "name": "add",
        "description": "Add two numbers",
        "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    }
]


def test_two_parallel_tool_calls_round_trip(env: Env) -> None:
    fake = env.fakes["openai"]
    fake.queue(
        Reply(json=replies.openai_tool_calls([("call_1", "add", '{"a":1,"b":1}'), ("call_2", "add", '{"a":2,"b":2}')]))
    )
    client = env.client("openai")
    first = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=TOOLS, messages=MESSAGES)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [
        ("call_1", "add", {"a": 1, "b": 1}),
        ("call_2", "add", {"a": 2, "b": 2}),
    ]
    fake.reset()
    history = [
        *MESSAGES,
        {"role": "assistant", "content": [u.model_dump(exclude_none=True) for u in uses]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "2"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "4"}]},
            ],
        },
    ]
    final = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=TOOLS, messages=history)
    assert final.content[0].text == ANSWER
    format_e2e.assert_tool_results_sent(env.seen("openai").json["messages"], "4")
    assert env.seen("openai").json["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]


def test_streamed_tool_arguments_reach_the_client_before_the_stream_ends(env: Env) -> None:
    seen_first_piece = threading.Event()
    fake = env.fakes["openai"]
    calls = [("call_1", "add", ['{"a":', "1,", '"b":1}']), ("call_2", "add", ['{"a":2,"b":2}'])]
    fake.queue(Reply(chunks=replies.openai_tool_calls_stream(calls, hold=lambda: seen_first_piece.wait(10))))
    client = env.client("openai")
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256, tools=TOOLS, messages=MESSAGES) as s:
        assert first_tool_fragment(s) == '{"a":'
        seen_first_piece.set()  # the fake holds the rest of its stream until now
        final = s.get_final_message()
    assert seen_first_piece.is_set()
    assert [(b.id, b.input) for b in final.content] == [("call_1", {"a": 1, "b": 1}), ("call_2", {"a": 2, "b": 2})]
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 20


def test_an_image_reaches_the_provider(env: Env) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    env.client("openai").messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}],
    )
    content = env.seen("openai").json["messages"][0]["content"]
    assert content == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": "What is this?"},
    ]


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (429, anthropic.RateLimitError),
        (401, anthropic.AuthenticationError),
        (500, anthropic.InternalServerError),
        (503, anthropic.OverloadedError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_provider_errors_are_the_sdks_exceptions(env: Env, status: int, exc: type, stream: bool) -> None:
    env.fakes["openai"].queue(Reply(status=status, json={"error": {"message": "nope", "type": "x", "code": None}}))
    client = env.client("openai")
    with pytest.raises(exc) as e:
        if stream:
            with client.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as s:
                s.get_final_message()
        else:
            client.messages.create(model="m", max_tokens=10, messages=MESSAGES)
    body = e.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["message"] == "nope"


def test_a_malformed_request_is_a_400_in_anthropics_envelope(env: Env) -> None:
    with pytest.raises(anthropic.BadRequestError) as e:
        env.client("openai").messages.create(
            model="m",
            max_tokens=10,
            messages=[{"role": "robot", "content": "hi"}],  # type: ignore[typeddict-item]
        )
    assert e.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "messages[0].role: must be 'user' or 'assistant'"},
    }
    assert env.fakes["openai"].requests == []


def test_mid_stream_error_is_an_error_event(env: Env) -> None:
    chunks = [
        *replies.openai_tool_calls_stream([])[:1],
        b'data: {"error": {"message": "melted", "type": "server_error"}}\n\n',
    ]
    env.fakes["openai"].queue(Reply(chunks=chunks))
    client = env.client("openai")
    with (
        pytest.raises(anthropic.APIStatusError, match="melted"),
        client.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as s,
    ):
        s.get_final_message()


def test_count_tokens_through_geminis_counter(env: Env) -> None:
    client = env.client("gemini")
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-sonnet-4-5",
        system="Be brief.",
        messages=MESSAGES,
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert raw.parse().input_tokens == GEMINI_COUNTED_TOKENS and raw.headers["x-ai-proxy-token-count"] == "provider"
    seen = env.seen("gemini")
    assert seen.path == "/v1beta/models/gemini-fake-1:countTokens"
    assert seen.headers["x-goog-api-key"] == PROVIDER_KEY
    counted = seen.json["generateContentRequest"]  # the Gemini API counts system instruction and tools this way
    assert counted["model"] == "models/gemini-fake-1"
    assert counted["contents"] == [{"role": "user", "parts": [{"text": "What is 1 + 1?"}]}]
    assert counted["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert counted["tools"][0]["functionDeclarations"][0]["name"] == "add"


@pytest.mark.parametrize("failure", [Reply(status=500, json={"error": {"message": "no"}}), Reply(json={"x": 1})])
def test_count_tokens_is_the_estimate_when_the_counter_fails(env: Env, failure: Reply) -> None:
    env.fakes["gemini"].queue(failure)
    raw = env.client("gemini").messages.with_raw_response.count_tokens(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-ai-proxy-token-count"] == "estimate" and 1 <= raw.parse().input_tokens < 20


def test_count_tokens_and_models_are_answered_by_the_proxy(env: Env) -> None:
    client = env.client("openai")  # OpenAI has no token counter: a local estimate
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=MESSAGES, tools=TOOLS)  # type: ignore[arg-type]
    assert counted.input_tokens > 10
    assert env.fakes["openai"].requests == []
    client = env.client("gemini")
    models = client.models.list()
    assert [m.id for m in models.data] == ["gemini-fake-1"]
    assert client.models.retrieve("gemini-fake-1").id == "gemini-fake-1"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-opus-4")
    assert env.fakes["gemini"].requests == []


def test_aliases_pick_the_provider_model_and_the_record_keeps_both(env: Env) -> None:
    client = env.client("openai")
    client.messages.create(
        model="claude-3-5-haiku-latest", max_tokens=10, messages=[{"role": "user", "content": "alias-probe"}]
    )
    assert env.seen("openai").json["model"] == "gpt-fake-1-small"
    records = wait_record(env, "alias-probe")
    meta = records[-1]["meta"]
    assert meta["client_format"] == "anthropic" and meta["client_model"] == "claude-3-5-haiku-latest"
    assert meta["request_model"] == "gpt-fake-1-small"
    assert records[-1]["payload"]["client_response"]["type"] == "message"


def wait_record(env: Env, marker: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in env.proxy.records() if marker in json.dumps(r.get("payload"))]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no record holds {marker!r}")


CLAUDE_CODE_TOOLS = [
    {
        "name": name,
        "description": f"The {name} tool",
        "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
    }
    for name in ("Bash", "Read", "Edit", "Write", "Glob", "Grep", "Task", "TodoWrite", "WebFetch", "LS")
]


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_claude_code_request_streams(env: Env, provider: str) -> None:
    """What Claude Code sends: ?beta=true, anthropic-beta, system blocks with cache_control, many tools,
    metadata.user_id, thinking; streamed."""
    env.queue_answer(provider, stream=True)
    client = env.client(provider)
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "x" * 30_000, "cache_control": {"type": "ephemeral"}},
    ]
    with client.beta.messages.stream(
        model="claude-sonnet-4-5-20250929",
        max_tokens=32000,
        system=system,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        tools=CLAUDE_CODE_TOOLS,  # type: ignore[arg-type]
        metadata={"user_id": "user_abc_account_def_session_123"},
        thinking={"type": "enabled", "budget_tokens": 8000},
        betas=["claude-code-20250219", "interleaved-thinking-2025-05-14"],
    ) as s:
        final = s.get_final_message()
        dropped = s.response.headers.get("x-ai-proxy-dropped", "")
    assert final.content[0].text == "".join(STREAM_PIECES)
    assert "cache_control" in dropped.split(",")
    req = env.seen(provider)
    assert req.query.get("beta") is None  # the client's ?beta=true stays with the client
    assert len(req.json["tools"] if provider == "openai" else req.json["tools"][0]["functionDeclarations"]) == 10
    if provider == "openai":
        assert req.json["reasoning_effort"] == "medium"
    else:
        assert req.json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 8000}
    assert "thinking" not in dropped.split(",")
