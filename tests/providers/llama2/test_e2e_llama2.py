"""End to end for mistral and llama2: a real mitmdump with the addon, fake Mistral (SSE), Ollama (NDJSON) and
raw text-generation (TGI) servers, and the openai SDK as the client, streamed and not.

The SDK talks plain HTTP to virtual hosts through the proxy (`http://mistral.internal/v1`); each test checks
what the client got and what the fake upstream received.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.fakes import FakeUpstream, Reply
from tests.support.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

MISTRAL_KEY = "e2e-mistral-secret-0004"
CLIENT_KEY = "sk-client-key-must-not-travel"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
LLAMA2_PROMPT = (
    "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. </s>"
    "<s>[INST] And of Italy? [/INST]"
)
PIECES = ["Rome", " is the", " capital é."]
ANSWER = "".join(PIECES)
USAGE = {"prompt_tokens": 34, "completion_tokens": 12, "total_tokens": 46}


def rules(mistral: FakeUpstream, ollama: FakeUpstream, tgi: FakeUpstream) -> str:
    def rule(name: str, host: str, provider: str, model: str | None, options: dict[str, Any], **extra: Any) -> dict:
        route = extra.pop("route", "chat")
        path = "/v1/chat/completions" if route == "chat" else "/v1/completions"
        return {
            "name": name,
            "match": {"host": host, "path": path},
            "route_type": f"llm/v1/{route}",
            "model": {"provider": provider, "name": model, "options": options},
            "logging": {"log_statistics": True, "log_payloads": True},
            **extra,
        }

    auth = {"header_name": "Authorization", "header_value": "Bearer ${E2E_MISTRAL_KEY}"}
    llama_raw = {"llama2_format": "raw", "upstream_url": f"{tgi.url}/generate"}
    spec = [
        rule("mistral-chat", "mistral.internal", "mistral", "mistral-small-latest", {"upstream_url": mistral.url},
             auth=auth),
        rule("mistral-completions", "mistral.internal", "mistral", "mistral-small-latest",
             {"upstream_url": mistral.url, "max_tokens": 64}, auth=auth, route="completions"),
        rule("mistral-ollama", "mistral-ollama.internal", "mistral", "mistral:7b",
             {"mistral_format": "ollama", "upstream_url": ollama.url}),
        rule("ollama-chat", "ollama.internal", "llama2", "llama3.2",
             {"llama2_format": "ollama", "upstream_url": ollama.url, "temperature": 0.2}),
        rule("ollama-completions", "ollama.internal", "llama2", "llama3.2",
             {"llama2_format": "ollama", "upstream_url": ollama.url}, route="completions"),
        rule("llama2-raw", "llama-raw.internal", "llama2", None, {**llama_raw, "max_tokens": 100}),
        rule("llama3-raw", "llama3-raw.internal", "llama2", "llama-3-8b-instruct",
             {**llama_raw, "llama_template": "llama3"}),
        rule("llama2-raw-completions", "llama-raw.internal", "llama2", None, llama_raw, route="completions"),
        rule("llama-openai", "llama-openai.internal", "llama2", "llama3.2",
             {"llama2_format": "openai", "upstream_url": ollama.url}),
    ]  # fmt: skip
    return json.dumps({"rules": spec})  # JSON is YAML


class Env:
    def __init__(self, proxy: Mitmdump, mistral: FakeUpstream, ollama: FakeUpstream, tgi: FakeUpstream) -> None:
        self.proxy, self.mistral, self.ollama, self.tgi = proxy, mistral, ollama, tgi

    def client(self, host: str) -> openai.OpenAI:
        http = httpx.Client(proxy=f"http://127.0.0.1:{self.proxy.port('regular')}", trust_env=False)
        return openai.OpenAI(base_url=f"http://{host}/v1", api_key=CLIENT_KEY, http_client=http, max_retries=0)

    def reset(self) -> None:
        for fake in (self.mistral, self.ollama, self.tgi):
            fake.reset()

    def record_with(self, marker: str) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for record in self.proxy.records():
                if marker in json.dumps(record.get("payload", {})):
                    return record
            time.sleep(0.02)
        raise AssertionError(f"no audit record holds {marker!r}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fakes = FakeUpstream("mistral"), FakeUpstream("ollama"), FakeUpstream("tgi")
    proxy = Mitmdump(
        Path(tmp_path_factory.mktemp("e2e-mistral-llama")), rules(*fakes), env={"E2E_MISTRAL_KEY": MISTRAL_KEY}
    ).start()
    try:
        yield Env(proxy, *fakes)
    finally:
        proxy.stop()
        for fake in fakes:
            fake.close()


@pytest.fixture
def e(env: Env) -> Env:
    env.reset()
    return env


def collect(stream: Any) -> tuple[str, list[str], list[Any]]:
    chunks = list(stream)
    text = "".join(
        (c.choices[0].delta.content if hasattr(c.choices[0], "delta") else c.choices[0].text) or ""
        for c in chunks
        if c.choices
    )
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return text, finish, chunks


def usage_of(chunks: list[Any]) -> list[tuple[int, int, int]]:
    return [(c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) for c in chunks if c.usage]


# ---- fake upstream bodies --------------------------------------------------------------------------------------


def sse(obj: Any, space: bool = True) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"data:{' ' if space else ''}{data}\n\n".encode()


def mistral_reply(text: str = ANSWER, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "a1b2c3d4e5f6",
        "object": "chat.completion",
        "created": 1732548656,
        "model": "mistral-small-2409",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": USAGE,
    }


def mistral_stream(finish: str = "stop") -> list[bytes]:
    head = {"id": "a1b2c3d4e5f6", "object": "chat.completion.chunk", "created": 1732548656, "model": "mistral-small"}

    def chunk(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}], **extra})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in PIECES[:-1]]
    events.append(chunk({"content": PIECES[-1]}, finish, usage=USAGE))  # usage rides on the last content chunk
    return [*events, b"data: [DONE]\n\n"]


def ollama_stream(generate: bool = False, error: str | None = None) -> list[bytes]:
    def line(obj: dict[str, Any]) -> bytes:
        return json.dumps({"model": "llama3.2", "created_at": "2024-08-04T08:52:19Z", **obj}).encode() + b"\n"

    def piece(text: str) -> dict[str, Any]:
        return {"response": text} if generate else {"message": {"role": "assistant", "content": text}}

    lines = [line({**piece(p), "done": False}) for p in PIECES]
    if error:
        return [lines[0], json.dumps({"error": error}).encode() + b"\n"]
    final = {**piece(""), "done": True, "done_reason": "stop", "prompt_eval_count": 34, "eval_count": 12}
    lines.append(line(final))
    # Lines cut at odd places, as TCP may deliver them.
    raw = b"".join(lines)
    return [raw[:7], raw[7:60], raw[60:61], raw[61:150], raw[150:]]


def ollama_reply(generate: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"response": ANSWER} if generate else {"message": {"role": "assistant", "content": ANSWER}}
    return {"model": "llama3.2", "done": True, "done_reason": "stop", "prompt_eval_count": 34, "eval_count": 12,
            **body}  # fmt: skip


NDJSON = {"content-type": "application/x-ndjson"}


def tgi_stream() -> list[bytes]:
    events = [
        sse({"index": i, "token": {"id": i, "text": p, "logprob": -0.1, "special": False}, "generated_text": None,
             "details": None}, space=False)
        for i, p in enumerate([" " + PIECES[0], *PIECES[1:]], 1)
    ]  # fmt: skip
    final = {
        "index": 4,
        "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
        "generated_text": ANSWER,
        "details": {"finish_reason": "eos_token", "generated_tokens": 12, "seed": None, "input_length": 34},
    }
    return [b":\n\n", *events, sse(final, space=False)]


# ==============================================================================================================
# Mistral
# ==============================================================================================================


def test_mistral_chat(e: Env) -> None:
    out = e.client("mistral.internal").chat.completions.create(
        model="mistral-small-latest", messages=MESSAGES, seed=7, max_completion_tokens=50, user="u-1"
    )
    assert out.choices[0].message.content == "The sum of 1 + 1 is 2."  # the fake's OpenAI-shaped default answer
    assert out.choices[0].finish_reason == "stop"
    seen = e.mistral.last()
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {MISTRAL_KEY}"
    assert seen.json == {
        "model": "mistral-small-latest",
        "messages": MESSAGES,
        "random_seed": 7,
        "max_tokens": 50,
        "stream": False,
    }


def test_mistral_model_length_and_usage(e: Env) -> None:
    e.mistral.queue(Reply(json=mistral_reply(finish="model_length")))
    out = e.client("mistral.internal").chat.completions.create(model="mistral-small-latest", messages=MESSAGES)
    assert (out.choices[0].message.content, out.choices[0].finish_reason) == (ANSWER, "length")
    assert out.usage is not None and out.usage.total_tokens == 46


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_mistral_chat_stream(e: Env, include_usage: bool) -> None:
    e.mistral.queue(Reply(chunks=mistral_stream(finish="model_length")))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = e.client("mistral.internal").chat.completions.create(
        model="mistral-small-latest", messages=MESSAGES, stream=True, **extra
    )
    text, finish, chunks = collect(stream)
    assert (text, finish) == (ANSWER, ["length"])
    if include_usage:
        assert usage_of(chunks) == [(34, 12, 46)]
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
    else:
        assert usage_of(chunks) == []
    seen = e.mistral.last().json
    assert seen["stream"] is True and "stream_options" not in seen  # Mistral sends usage unasked


@pytest.mark.parametrize("stream", [False, True])
def test_mistral_completions(e: Env, stream: bool) -> None:
    e.mistral.queue(Reply(chunks=mistral_stream()) if stream else Reply(json=mistral_reply()))
    client = e.client("mistral.internal")
    result = client.completions.create(model="mistral-small-latest", prompt="Capital of Italy?", stream=stream)
    if stream:
        text, finish, chunks = collect(result)
        assert all(c.object == "text_completion" for c in chunks)
    else:
        text, finish = result.choices[0].text, [result.choices[0].finish_reason]
        assert result.object == "text_completion" and result.usage is not None and result.usage.total_tokens == 46
    assert (text, finish) == (ANSWER, ["stop"])
    seen = e.mistral.last()
    assert seen.path == "/v1/chat/completions"
    assert seen.json["messages"] == [{"role": "user", "content": "Capital of Italy?"}]
    assert seen.json["max_tokens"] == 64


def test_mistral_errors(e: Env) -> None:
    client = e.client("mistral.internal")
    detail = {"detail": [{"type": "missing", "loc": ["body", "messages", 0, "content"], "msg": "Field required"}]}
    e.mistral.queue(Reply(status=422, json=detail))
    with pytest.raises(openai.UnprocessableEntityError, match=r"messages\.0\.content: Field required"):
        client.chat.completions.create(model="mistral-small-latest", messages=MESSAGES)
    e.mistral.queue(Reply(status=401, json={"message": "Unauthorized", "request_id": "r"}))
    with pytest.raises(openai.AuthenticationError, match="Unauthorized"):
        client.chat.completions.create(model="mistral-small-latest", messages=MESSAGES, stream=True)
    error = {"object": "error", "message": "Service unavailable", "type": "internal_server_error", "code": "1000"}
    e.mistral.queue(Reply(chunks=[*mistral_stream()[:2], sse(error)]))
    with pytest.raises(openai.APIError, match="Service unavailable"):
        collect(client.chat.completions.create(model="mistral-small-latest", messages=MESSAGES, stream=True))


def test_mistral_via_ollama(e: Env) -> None:
    e.ollama.queue(Reply(chunks=ollama_stream(), headers=NDJSON))
    stream = e.client("mistral-ollama.internal").chat.completions.create(
        model="mistral:7b", messages=MESSAGES, stream=True
    )
    assert collect(stream)[:2] == (ANSWER, ["stop"])
    seen = e.ollama.last()
    assert seen.path == "/api/chat"
    assert seen.json == {"model": "mistral:7b", "messages": MESSAGES, "stream": True}


# ==============================================================================================================
# llama2: Ollama native
# ==============================================================================================================


def test_ollama_chat(e: Env) -> None:
    e.ollama.queue(Reply(json=ollama_reply()))
    out = e.client("ollama.internal").chat.completions.create(
        model="llama3.2", messages=MESSAGES, max_tokens=20, stop=["\n"], seed=1
    )
    assert (out.choices[0].message.content, out.choices[0].finish_reason) == (ANSWER, "stop")
    assert out.usage is not None and (out.usage.prompt_tokens, out.usage.completion_tokens) == (34, 12)
    seen = e.ollama.last()
    assert seen.path == "/api/chat"
    assert seen.json == {
        "model": "llama3.2",
        "messages": MESSAGES,
        "options": {"num_predict": 20, "temperature": 0.2, "seed": 1, "stop": ["\n"]},
        "stream": False,  # explicit: Ollama streams by default
    }


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_ollama_chat_stream(e: Env, include_usage: bool) -> None:
    e.ollama.queue(Reply(chunks=ollama_stream(), headers=NDJSON))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = e.client("ollama.internal").chat.completions.create(
        model="llama3.2", messages=MESSAGES, stream=True, **extra
    )
    text, finish, chunks = collect(stream)
    assert (text, finish) == (ANSWER, ["stop"])
    assert chunks[0].choices[0].delta.role == "assistant"
    assert usage_of(chunks) == ([(34, 12, 46)] if include_usage else [])
    assert e.ollama.last().json["stream"] is True
    assert e.ollama.last().headers["accept"] == "application/x-ndjson"


@pytest.mark.parametrize("stream", [False, True])
def test_ollama_completions(e: Env, stream: bool) -> None:
    e.ollama.queue(
        Reply(chunks=ollama_stream(generate=True), headers=NDJSON) if stream else Reply(json=ollama_reply(True))
    )
    result = e.client("ollama.internal").completions.create(model="llama3.2", prompt="Capital?", stream=stream)
    if stream:
        text, finish, _ = collect(result)
    else:
        text, finish = result.choices[0].text, [result.choices[0].finish_reason]
    assert (text, finish) == (ANSWER, ["stop"])
    seen = e.ollama.last()
    assert seen.path == "/api/generate"
    assert seen.json == {"model": "llama3.2", "prompt": "Capital?", "stream": stream}


def test_ollama_errors(e: Env) -> None:
    client = e.client("ollama.internal")
    e.ollama.queue(Reply(status=404, json={"error": 'model "llama3.2" not found, try pulling it first'}))
    with pytest.raises(openai.NotFoundError, match="try pulling it first"):
        client.chat.completions.create(model="llama3.2", messages=MESSAGES)
    e.ollama.queue(
        Reply(chunks=ollama_stream(error="an error was encountered while running the model"), headers=NDJSON)
    )
    received = []
    with pytest.raises(openai.APIError, match="an error was encountered while running the model"):
        for chunk in client.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == PIECES[0]  # what arrived before the error was delivered


def test_ollama_stream_audit_record(e: Env) -> None:
    marker = f"ollama-{uuid.uuid4().hex}"
    e.ollama.queue(Reply(chunks=ollama_stream(), headers=NDJSON))
    collect(
        e.client("ollama.internal").chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": marker}], stream=True
        )
    )
    record = e.record_with(marker)
    meta, usage = record["meta"], record["usage"]
    assert (meta["rule"], meta["provider_name"], meta["stream"], meta["status"]) == ("ollama-chat", "llama2", True, 200)
    assert meta["error"] is None
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (34, 12, 46)
    assert record["payload"]["client_response"]["choices"][0]["message"]["content"] == ANSWER
    assert record["payload"]["upstream_request"]["stream"] is True


@pytest.mark.parametrize(
    ("provider", "options"), [("llama2", {"llama2_format": "ollama"}), ("mistral", {"mistral_format": "ollama"})]
)
def test_missing_upstream_url_is_refused_at_load(provider: str, options: dict) -> None:
    from addon.rules import RulesError, load_rules_text

    spec = {"name": "no-url", "match": {"host": "x.internal"}, "model": {"provider": provider, "options": options}}
    text = json.dumps({"rules": [spec]})
    with pytest.raises(RulesError, match=r"rule 'no-url': model\.options\.upstream_url is required"):
        load_rules_text(text, environ={})


# ==============================================================================================================
# llama2: raw prompt (TGI) and OpenAI-compatible servers
# ==============================================================================================================


def test_raw_llama2_chat(e: Env) -> None:
    e.tgi.queue(Reply(json=[{"generated_text": " " + ANSWER}]))
    out = e.client("llama-raw.internal").chat.completions.create(model="llama-2-7b-chat", messages=MESSAGES)
    assert (out.choices[0].message.content, out.choices[0].finish_reason) == (ANSWER, "stop")
    seen = e.tgi.last()
    assert seen.path == "/generate"
    assert seen.json == {
        "inputs": LLAMA2_PROMPT,  # every turn, the assistant's included
        "parameters": {"max_new_tokens": 100, "stop": ["</s>"], "return_full_text": False, "details": True},
    }


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_raw_llama2_chat_stream(e: Env, include_usage: bool) -> None:
    e.tgi.queue(Reply(chunks=tgi_stream()))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = e.client("llama-raw.internal").chat.completions.create(
        model="llama-2-7b-chat", messages=MESSAGES, stream=True, **extra
    )
    text, finish, chunks = collect(stream)
    assert (text, finish) == (ANSWER, ["stop"])
    assert usage_of(chunks) == ([(34, 12, 46)] if include_usage else [])
    seen = e.tgi.last()
    assert seen.path == "/generate_stream"  # the rule's /generate, switched to the streaming operation
    assert seen.json["inputs"] == LLAMA2_PROMPT and "stream" not in seen.json


def test_raw_llama3_template(e: Env) -> None:
    e.tgi.queue(Reply(json={"generated_text": ANSWER, "details": {"finish_reason": "length", "generated_tokens": 12}}))
    out = e.client("llama3-raw.internal").chat.completions.create(model="llama-3-8b-instruct", messages=MESSAGES[:2])
    assert (out.choices[0].message.content, out.choices[0].finish_reason) == (ANSWER, "length")
    assert e.tgi.last().json["inputs"] == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert e.tgi.last().json["parameters"]["stop"] == ["<|eot_id|>"]


@pytest.mark.parametrize("stream", [False, True])
def test_raw_completions(e: Env, stream: bool) -> None:
    e.tgi.queue(Reply(chunks=tgi_stream()) if stream else Reply(json=[{"generated_text": " " + ANSWER}]))
    result = e.client("llama-raw.internal").completions.create(model="x", prompt="Capital?", stream=stream)
    text = collect(result)[0] if stream else result.choices[0].text
    assert text == " " + ANSWER  # completions keep the text as generated
    assert e.tgi.last().json["inputs"] == "<s>[INST] Capital? [/INST]"


def test_raw_errors(e: Env) -> None:
    client = e.client("llama-raw.internal")
    e.tgi.queue(Reply(status=422, json={"error": "Input validation error: top_p", "error_type": "validation"}))
    with pytest.raises(openai.UnprocessableEntityError, match="Input validation error"):
        client.chat.completions.create(model="x", messages=MESSAGES)
    e.tgi.queue(Reply(chunks=[*tgi_stream()[:2], sse({"error": "Request failed", "error_type": "generation"}, False)]))
    with pytest.raises(openai.APIError, match="Request failed"):
        collect(client.chat.completions.create(model="x", messages=MESSAGES, stream=True))
    with pytest.raises(openai.BadRequestError, match="end with a user message"):
        client.chat.completions.create(model="x", messages=MESSAGES[:3])


@pytest.mark.parametrize("stream", [False, True])
def test_llama_openai_compatible_server(e: Env, stream: bool) -> None:
    # FakeUpstream's default answer on /v1/chat/completions is OpenAI's format (what Ollama /v1 and vLLM speak).
    client = e.client("llama-openai.internal")
    result = client.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=stream)
    if stream:
        text, finish, chunks = collect(result)
        assert usage_of(chunks) == []  # asked upstream for the record; the client did not ask to see it
    else:
        text, finish = result.choices[0].message.content, [result.choices[0].finish_reason]
    assert (text, finish) == ("The sum of 1 + 1 is 2.", ["stop"])
    seen = e.ollama.last()
    assert seen.path == "/v1/chat/completions"
    assert seen.json["model"] == "llama3.2" and seen.json["messages"] == MESSAGES
    assert seen.json.get("stream_options") == ({"include_usage": True} if stream else None)
