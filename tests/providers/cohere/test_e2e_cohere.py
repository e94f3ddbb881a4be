"""End to end: the openai SDK through a real mitmdump to a fake Cohere server, v2 (SSE) and v1 (NDJSON), streamed
and not, chat and completions, and Cohere's errors in the OpenAI envelope."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.chunks import collect as read_stream
from tests.support.e2e_env import CLIENT_KEY, MESSAGES
from tests.support.fakes import FakeUpstream, Recorded, Reply
from tests.support.mitmdump import Mitmdump, running
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

COHERE_KEY = "co-e2e-fake-key-0004"
PIECES = ["The sum ", "of 1 + 1 ", "is 2 ✓."]
ANSWER = "".join(PIECES)
USAGE = {
    "tokens": {"input_tokens": 186, "output_tokens": 12},
    "billed_units": {"input_tokens": 21, "output_tokens": 12},
}
V1_USAGE = {
    "tokens": {"input_tokens": 68, "output_tokens": 9},
    "billed_units": {"input_tokens": 57, "output_tokens": 9},
}


def rules(fake: FakeUpstream) -> str:
    auth = {"header_name": "Authorization", "header_value": "Bearer ${E2E_COHERE_KEY}"}

    def rule(name: str, host: str, model: str, route: str = "chat", **options: Any) -> dict[str, Any]:
        return rule_spec(name, host, "cohere", model, {"upstream_url": fake.url, **options}, route, auth=auth)

    chat = rule("cohere-chat", "cohere.internal", "command-a-03-2025", input_cost=2.5, output_cost=10.0)
    return rules_text(
        {**chat, "logging": {"log_payloads": True}},
        rule("cohere-completions", "cohere.internal", "command-a-03-2025", "completions"),
        rule("cohere-kong-v1-chat", "cohere-v1.internal", "command-r", upstream_path="/v1/chat", max_tokens=256),
        rule(
            "cohere-v1-generate", "cohere-v1.internal", "command", "completions", upstream_url=f"{fake.url}/v1/generate"
        ),
    )


class Env:
    def __init__(self, proxy: Mitmdump, fake: FakeUpstream) -> None:
        self.proxy = proxy
        self.fake = fake

    def client(self, host: str = "cohere.internal") -> openai.OpenAI:
        return client_through(self.proxy, host, CLIENT_KEY)

    def seen(self) -> Recorded:
        (req,) = self.fake.requests
        return req


@pytest.fixture(scope="module")
def cohere_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fake = FakeUpstream("cohere")
    with running(
        Mitmdump(tmp_path_factory.mktemp("e2e-cohere"), rules(fake), env={"E2E_COHERE_KEY": COHERE_KEY}), fake
    ) as proxy:
        yield Env(proxy, fake)


@pytest.fixture
def env(cohere_env: Env) -> Env:
    cohere_env.fake.reset()
    return cohere_env


def assert_native_request(req: Recorded, path: str) -> dict[str, Any]:
    assert (req.method, req.path) == ("POST", path)
    assert req.headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert CLIENT_KEY not in json.dumps(req.headers) and CLIENT_KEY not in req.body.decode()
    return req.json


# ---- fake Cohere bodies ---------------------------------------------------------------------------------------


def v2_message(text: str = ANSWER, finish: str = "COMPLETE") -> dict[str, Any]:
    return {
        "id": "c14c80c3-18eb",
        "finish_reason": finish,
        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        "usage": USAGE,
    }


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def v2_stream(finish: str = "COMPLETE", pieces: list[str] = PIECES) -> list[bytes]:
    events = [
        {"id": "a8fc", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
        *({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}} for p in pieces),
        {"type": "content-end", "index": 0},
        {"type": "message-end", "delta": {"finish_reason": finish, "usage": USAGE}},
    ]
    return [sse(e) for e in events]


def ndjson(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


def v1_stream(pieces: list[str] = PIECES) -> list[bytes]:
    end = {
        "is_finished": True,
        "event_type": "stream-end",
        "finish_reason": "COMPLETE",
        "response": {"response_id": "r", "text": "".join(pieces), "generation_id": "g", "meta": V1_USAGE},
    }
    return [
        ndjson({"is_finished": False, "event_type": "stream-start", "generation_id": "g"}),
        *(ndjson({"is_finished": False, "event_type": "text-generation", "text": p}) for p in pieces),
        ndjson(end),
    ]


def generate_stream() -> list[bytes]:
    end = {
        "is_finished": True,
        "event_type": "stream-end",
        "finish_reason": "MAX_TOKENS",
        "response": {
            "id": "gen",
            "generations": [{"id": "a", "text": ANSWER, "finish_reason": "MAX_TOKENS"}],
            "meta": {"billed_units": {"input_tokens": 4, "output_tokens": 16}},
        },
    }
    return [*(ndjson({"is_finished": False, "event_type": "text-generation", "text": p}) for p in PIECES), ndjson(end)]


NDJSON = {"content-type": "application/stream+json"}


def collect(stream: Any) -> tuple[str, list[str], list[Any]]:
    text, finish, chunks = read_stream(stream)
    return text, finish, [c.usage for c in chunks if c.usage is not None]


# ---- chat -----------------------------------------------------------------------------------------------------


def test_v2_chat(env: Env) -> None:
    env.fake.queue(Reply(json=v2_message()))
    out = env.client().chat.completions.create(
        model="command-a-03-2025", messages=MESSAGES, max_tokens=100, top_p=0.9, stop=["END"], seed=3
    )
    assert out.choices[0].message.content == ANSWER
    assert out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (186, 12, 198)
    assert out.model == "command-a-03-2025"
    body = assert_native_request(env.seen(), "/v2/chat")
    assert body == {
        "model": "command-a-03-2025",
        "messages": MESSAGES,
        "max_tokens": 100,
        "p": 0.9,
        "seed": 3,
        "stop_sequences": ["END"],
        "stream": False,
    }


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_v2_chat_stream(env: Env, include_usage: bool) -> None:
    env.fake.queue(Reply(chunks=v2_stream()))
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = env.client().chat.completions.create(model="command-a-03-2025", messages=MESSAGES, stream=True, **extra)
    text, finish, usages = collect(stream)
    assert (text, finish) == (ANSWER, ["stop"])
    if include_usage:
        [usage] = usages
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (186, 12, 198)
    else:
        assert usages == []
    body = assert_native_request(env.seen(), "/v2/chat")
    assert body["stream"] is True and body["messages"] == MESSAGES
    assert "stream_options" not in body


def test_v1_chat_kong_config(env: Env) -> None:
    env.fake.queue(Reply(json={"text": ANSWER, "generation_id": "g1", "finish_reason": "MAX_TOKENS", "meta": V1_USAGE}))
    history = [*MESSAGES, {"role": "assistant", "content": "2"}, {"role": "user", "content": "And 2 + 2?"}]
    out = env.client("cohere-v1.internal").chat.completions.create(model="command-r", messages=history)
    assert (out.choices[0].message.content, out.choices[0].finish_reason) == (ANSWER, "length")
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (68, 9)
    body = assert_native_request(env.seen(), "/v1/chat")
    assert body == {
        "model": "command-r",
        "preamble": "You are a mathematician.",
        "chat_history": [{"role": "USER", "message": "What is 1 + 1?"}, {"role": "CHATBOT", "message": "2"}],
        "message": "And 2 + 2?",
        "max_tokens": 256,
        "stream": False,
    }


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_v1_chat_stream(env: Env, include_usage: bool) -> None:
    env.fake.queue(Reply(chunks=v1_stream(), headers=NDJSON))
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = env.client("cohere-v1.internal").chat.completions.create(
        model="command-r", messages=MESSAGES, stream=True, **extra
    )
    text, finish, usages = collect(stream)
    assert (text, finish) == (ANSWER, ["stop"])
    assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == ([(68, 9)] if include_usage else [])
    body = assert_native_request(env.seen(), "/v1/chat")
    assert (body["stream"], body["message"], body["preamble"]) == (True, "What is 1 + 1?", "You are a mathematician.")


def test_kong_streaming_wire_is_served(env: Env) -> None:
    """Kong's recorded mock stream (JSON lines labelled text/event-stream), written as Kong's mock writes it."""
    folder = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "kong" / "extracted-from-spec"
    path = folder / "09-streaming" / "cohere_llm_v1_chat_good.chunks.json"
    if not path.is_file():
        pytest.skip(f"Kong fixtures not found at {path}")
    writes = [c.encode() for c in json.loads(path.read_text())]
    env.fake.queue(Reply(chunks=writes, headers={"content-type": "text/event-stream"}))
    stream = env.client("cohere-v1.internal").chat.completions.create(
        model="command-r", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usages = collect(stream)
    assert (text, finish) == ("1 + 1 = 2. This is the most basic example of addition.", ["stop"])
    assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [(68, 123)]


# ---- completions ----------------------------------------------------------------------------------------------


def test_v2_completions(env: Env) -> None:
    env.fake.queue(Reply(json=v2_message(finish="MAX_TOKENS")))
    out = env.client().completions.create(model="command-a-03-2025", prompt="What are you?", max_tokens=16)
    assert (out.object, out.choices[0].text, out.choices[0].finish_reason) == ("text_completion", ANSWER, "length")
    assert out.usage.prompt_tokens == 186
    body = assert_native_request(env.seen(), "/v2/chat")
    assert body["messages"] == [{"role": "user", "content": "What are you?"}] and body["max_tokens"] == 16


def test_v2_completions_stream(env: Env) -> None:
    env.fake.queue(Reply(chunks=v2_stream()))
    chunks = list(env.client().completions.create(model="command-a-03-2025", prompt="What are you?", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert assert_native_request(env.seen(), "/v2/chat")["stream"] is True


def test_v1_generate(env: Env) -> None:
    reply = {
        "id": "gen",
        "prompt": "What are you?",
        "generations": [{"id": "a", "text": ANSWER, "finish_reason": "COMPLETE"}],
        "meta": {"billed_units": {"input_tokens": 4, "output_tokens": 16}},
    }
    env.fake.queue(Reply(json=reply))
    out = env.client("cohere-v1.internal").completions.create(model="command", prompt="What are you?", top_p=0.5)
    assert (out.choices[0].text, out.choices[0].finish_reason) == (ANSWER, "stop")
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (4, 16, 20)
    body = assert_native_request(env.seen(), "/v1/generate")
    assert body == {"model": "command", "prompt": "What are you?", "p": 0.5, "stream": False}


def test_v1_generate_stream(env: Env) -> None:
    env.fake.queue(Reply(chunks=generate_stream(), headers=NDJSON))
    chunks = list(
        env.client("cohere-v1.internal").completions.create(
            model="command", prompt="What are you?", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 20
    assert assert_native_request(env.seen(), "/v1/generate")["stream"] is True


# ---- errors ---------------------------------------------------------------------------------------------------

ERRORS = [
    (400, openai.BadRequestError, 400, "invalid request: message must be at least 1 token long"),
    (401, openai.AuthenticationError, 401, "invalid api token"),
    (429, openai.RateLimitError, 429, "You are using a Trial key, which is limited to 10 API calls / minute"),
    (498, openai.AuthenticationError, 401, "invalid api token"),
    (499, openai.APIStatusError, 499, "request cancelled"),
    (500, openai.InternalServerError, 500, "internal server error, this has been reported to our developers"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("status", "exc", "client_status", "message"), ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_cohere_errors_in_the_openai_envelope(
    env: Env, stream: bool, status: int, exc: type[openai.APIStatusError], client_status: int, message: str
) -> None:
    env.fake.queue(Reply(status=status, json={"id": "err-1", "message": message}))
    with pytest.raises(exc) as info:
        env.client().chat.completions.create(model="command-a-03-2025", messages=MESSAGES, stream=stream)
    assert info.value.status_code == client_status
    body = info.value.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] == message
    assert info.value.response.headers["content-type"].startswith("application/json")


def test_v1_error_on_a_stream_request(env: Env) -> None:
    env.fake.queue(Reply(status=429, json={"message": "too many requests"}))
    with pytest.raises(openai.RateLimitError, match="too many requests"):
        env.client("cohere-v1.internal").chat.completions.create(model="command-r", messages=MESSAGES, stream=True)


def test_v2_generation_error_mid_stream(env: Env) -> None:
    env.fake.queue(Reply(chunks=v2_stream(finish="ERROR")))
    stream = env.client().chat.completions.create(model="command-a-03-2025", messages=MESSAGES, stream=True)
    received = ""
    with pytest.raises(openai.APIError, match="finish_reason ERROR"):
        for chunk in stream:
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received == ANSWER  # what arrived before the failure was delivered


def test_v1_stream_error_event_mid_stream(env: Env) -> None:
    error = ndjson({"is_finished": True, "event_type": "stream-error", "finish_reason": "ERROR", "err": "boom"})
    env.fake.queue(Reply(chunks=[*v1_stream()[:2], error], headers=NDJSON))
    stream = env.client("cohere-v1.internal").chat.completions.create(model="command-r", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        list(stream)


def test_generation_error_without_stream(env: Env) -> None:
    env.fake.queue(Reply(json=v2_message(text="partial", finish="ERROR")))
    with pytest.raises(openai.APIStatusError) as info:
        env.client().chat.completions.create(model="command-a-03-2025", messages=MESSAGES)
    assert info.value.status_code >= 502
    assert "finish_reason ERROR" in info.value.response.json()["error"]["message"]


def test_refused_request_never_reaches_cohere(env: Env) -> None:
    with pytest.raises(openai.BadRequestError, match="'n'"):
        env.client().chat.completions.create(model="command-a-03-2025", messages=MESSAGES, n=2)
    assert env.fake.requests == []


# ---- audit ----------------------------------------------------------------------------------------------------


def test_stream_audit_record(env: Env) -> None:
    marker = f"cohere-{uuid.uuid4().hex}"
    env.fake.queue(Reply(chunks=v2_stream()))
    messages = [{"role": "user", "content": marker}]
    collect(env.client().chat.completions.create(model="command-a-03-2025", messages=messages, stream=True))
    deadline = time.monotonic() + 10
    record = None
    while record is None and time.monotonic() < deadline:
        record = next((r for r in env.proxy.records() if marker in json.dumps(r.get("payload", {}))), None)
        time.sleep(0.02)
    assert record is not None, "no audit record"
    assert record["meta"]["provider_name"] == "cohere" and record["meta"]["status"] == 200
    usage = record["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (186, 12, 198)
    assert usage["cost"] > 0
    assert record["payload"]["client_response"]["choices"][0]["message"]["content"] == ANSWER
    assert COHERE_KEY not in json.dumps(record)
