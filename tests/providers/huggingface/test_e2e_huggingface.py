"""End to end: the openai SDK through a real mitmdump to a fake TGI / Hugging Face server.

The fake speaks TGI's wire formats as they are: the Messages API stream writes `data:` without a space and empty
ids; /generate_stream has no [DONE] and ends when the body ends; the serverless API answers arrays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.e2e_env import CLIENT_KEY, MESSAGES
from tests.support.fakes import FakeUpstream, Recorded, Reply
from tests.support.mitmdump import Mitmdump, running
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

HF_TOKEN = "hf_fake_e2e_token_0009"
MODEL = "mistralai/Mistral-7B-Instruct-v0.2"
PIECES = ["The sum ", "of 1 + 1 ", "is 2."]
ANSWER = "".join(PIECES)


def rules(fake: FakeUpstream) -> str:
    auth = {"header_name": "Authorization", "header_value": "Bearer ${E2E_HF_TOKEN}"}
    logged = {"log_payloads": True}

    def rule(name: str, host: str, model: str | None, route: str, **options: Any) -> dict[str, Any]:
        return rule_spec(name, host, "huggingface", model, {"upstream_url": fake.url, **options}, route, auth=auth)

    cache = {"wait_for_model": True, "use_cache": False}
    return rules_text(
        {**rule("hf-chat", "hf.internal", MODEL, "chat"), "logging": logged},
        {**rule("hf-tgi-completions", "hf.internal", None, "completions", max_tokens=64), "logging": logged},
        rule("hf-tgi-whole-url", "tgi-url.internal", None, "completions", upstream_url=f"{fake.url}/tgi/generate"),
        rule(
            "hf-serverless",
            "serverless.internal",
            MODEL,
            "completions",
            upstream_url=f"{fake.url}/models/{MODEL}",
            huggingface=cache,
        ),
    )


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mitmdump, FakeUpstream]]:
    fake = FakeUpstream("huggingface")
    with running(
        Mitmdump(tmp_path_factory.mktemp("e2e-hf"), rules(fake), env={"E2E_HF_TOKEN": HF_TOKEN}), fake
    ) as proxy:
        yield proxy, fake


@pytest.fixture
def fake(hf: tuple[Mitmdump, FakeUpstream]) -> FakeUpstream:
    hf[1].reset()
    return hf[1]


@pytest.fixture
def proxy(hf: tuple[Mitmdump, FakeUpstream]) -> Mitmdump:
    return hf[0]


def client(proxy: Mitmdump, host: str = "hf.internal") -> openai.OpenAI:
    return client_through(proxy, host, CLIENT_KEY)


def assert_credentials(seen: Recorded) -> None:
    assert seen.headers["authorization"] == f"Bearer {HF_TOKEN}"
    assert CLIENT_KEY not in json.dumps(seen.headers) and CLIENT_KEY.encode() not in seen.body


# ---- TGI wire formats -----------------------------------------------------------------------------------------


def tgi_sse(obj: dict[str, Any]) -> bytes:
    return b"data:" + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def tgi_chat(finish_reason: str = "eos_token") -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "id": "",
        "created": 1722866733,
        "model": MODEL,
        "system_fingerprint": "3.0.0-native",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 26, "completion_tokens": 12, "total_tokens": 38},
    }


def tgi_chat_stream(finish_reason: str = "eos_token") -> list[bytes]:
    base = {"object": "chat.completion.chunk", "id": "", "created": 1722866733, "model": MODEL}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        return tgi_sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]})

    events = [chunk({"role": "assistant", "content": ""}), b": keep-alive\n\n"]
    events += [chunk({"role": "assistant", "content": p}) for p in PIECES]
    events.append(chunk({"role": "assistant", "content": ""}, finish_reason))
    events.append(
        tgi_sse({**base, "choices": [], "usage": {"prompt_tokens": 26, "completion_tokens": 4, "total_tokens": 30}})
    )
    return [*events, b"data: [DONE]\n\n"]


def generate_stream(finish_reason: str = "eos_token", error: str | None = None) -> list[bytes]:
    """TGI /generate_stream: one event per token, the last with generated_text and details; no [DONE]."""
    events = []
    for i, piece in enumerate(PIECES, 1):
        token = {"id": 100 + i, "text": piece, "logprob": -0.1, "special": False}
        events.append(tgi_sse({"index": i, "token": token, "generated_text": None, "details": None}))
    if error:
        return [events[0], tgi_sse({"error": error, "error_type": "generation"})]
    eos = {"id": 128009, "text": "<|eot_id|>", "logprob": -0.01, "special": True}
    details = {"finish_reason": finish_reason, "generated_tokens": 4, "seed": None, "input_length": 12}
    events.append(tgi_sse({"index": 4, "token": eos, "generated_text": ANSWER, "details": details}))
    return events


def generate_json(finish_reason: str = "length") -> dict[str, Any]:
    details = {"finish_reason": finish_reason, "generated_tokens": 4, "seed": None, "prefill": [], "tokens": []}
    return {"generated_text": ANSWER, "details": details}


# ---- chat: the Messages API ------------------------------------------------------------------------------------


def test_chat(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(json=tgi_chat("stop_sequence")))
    out = client(proxy).chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, stop="\n\n")
    assert out.choices[0].message.content == ANSWER
    assert out.choices[0].finish_reason == "stop"  # TGI's stop_sequence
    assert out.id.startswith("chatcmpl-")  # TGI's id is ""
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (26, 12)
    seen = fake.last()
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert_credentials(seen)
    assert seen.json == {"model": MODEL, "messages": MESSAGES, "temperature": 0, "stop": ["\n\n"], "stream": False}


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_chat_stream(fake: FakeUpstream, proxy: Mitmdump, include_usage: bool) -> None:
    fake.queue(Reply(chunks=tgi_chat_stream()))
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(client(proxy).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **extra))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert [(u.usage.prompt_tokens, u.usage.completion_tokens) for u in usage_chunks] == [(26, 4)]
    else:
        assert usage_chunks == []
    seen = fake.last()
    assert seen.path == "/v1/chat/completions"
    assert seen.json["stream"] is True and seen.json["stream_options"] == {"include_usage": True}


# ---- completions: native text generation ----------------------------------------------------------------------


def test_completions_on_generate(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(json=generate_json("length")))
    out = client(proxy).completions.create(model="tgi", prompt="What is 1 + 1?", temperature=0.5, stop=["\n"])
    assert out.choices[0].text == ANSWER
    assert out.choices[0].finish_reason == "length"
    assert out.object == "text_completion"
    seen = fake.last()
    assert seen.path == "/generate"
    assert_credentials(seen)
    assert seen.json == {
        "inputs": "What is 1 + 1?",
        "parameters": {
            "max_new_tokens": 64,
            "do_sample": True,
            "temperature": 0.5,
            "stop": ["\n"],
            "return_full_text": False,
            "details": True,
        },
    }


@pytest.mark.parametrize(
    ("host", "path"), [("hf.internal", "/generate_stream"), ("tgi-url.internal", "/tgi/generate_stream")]
)
def test_completions_stream_on_generate_stream(fake: FakeUpstream, proxy: Mitmdump, host: str, path: str) -> None:
    fake.queue(Reply(chunks=generate_stream()))
    stream = client(proxy, host).completions.create(
        model="tgi", prompt="What is 1 + 1?", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 4)
    seen = fake.last()
    assert seen.path == path  # the whole URL's /generate is switched to /generate_stream (Kong #14680)
    assert "stream" not in seen.json


def test_completions_stream_error_mid_stream(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(chunks=generate_stream(error="Request failed during generation: CUDA out of memory")))
    stream = client(proxy).completions.create(model="tgi", prompt="Hi", stream=True)
    texts = []
    with pytest.raises(openai.APIError, match="CUDA out of memory"):
        for chunk in stream:
            texts.append(chunk.choices[0].text)
    assert texts == [PIECES[0]]


def test_serverless(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(json=[{"generated_text": ANSWER}]))
    out = client(proxy, "serverless.internal").completions.create(model=MODEL, prompt="What is 1 + 1?")
    assert out.choices[0].text == ANSWER and out.choices[0].finish_reason == "stop"
    seen = fake.last()
    assert seen.path == f"/models/{MODEL}"
    assert seen.json["options"] == {"use_cache": False, "wait_for_model": True}
    assert seen.json["stream"] is False


def test_serverless_stream(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(chunks=generate_stream("stop_sequence")))
    chunks = list(client(proxy, "serverless.internal").completions.create(model=MODEL, prompt="Hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    seen = fake.last()
    assert seen.path == f"/models/{MODEL}" and seen.json["stream"] is True


# ---- errors ----------------------------------------------------------------------------------------------------


def test_model_loading_is_a_503(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(status=503, json={"error": f"Model {MODEL} is currently loading", "estimated_time": 20.0}))
    with pytest.raises(openai.InternalServerError) as e:
        client(proxy, "serverless.internal").completions.create(model=MODEL, prompt="Hi")
    assert e.value.status_code == 503
    assert "currently loading (estimated time 20 s)" in e.value.message
    assert e.value.code == "model_loading"


def test_validation_error_is_a_422(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(
        Reply(
            status=422,
            json={
                "error": "Input validation error: `inputs` must have less than 4096 tokens",
                "error_type": "validation",
            },
        )
    )
    with pytest.raises(openai.UnprocessableEntityError) as e:
        client(proxy).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert "less than 4096 tokens" in e.value.message and e.value.code == "validation"


def test_refused_locally_nothing_sent(fake: FakeUpstream, proxy: Mitmdump) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client(proxy).chat.completions.create(model=MODEL, messages=MESSAGES, n=2)
    assert e.value.param == "n"
    assert fake.requests == []


# ---- audit -----------------------------------------------------------------------------------------------------


def test_stream_record_has_usage(fake: FakeUpstream, proxy: Mitmdump) -> None:
    fake.queue(Reply(chunks=generate_stream()))
    prompt = "record me please"
    list(client(proxy).completions.create(model="tgi", prompt=prompt, stream=True))
    deadline = time.monotonic() + 10  # records are written by a background thread
    records: list[dict[str, Any]] = []
    while not records and time.monotonic() < deadline:
        records = [r for r in proxy.records() if prompt in json.dumps(r.get("payload", {}))]
        time.sleep(0.02)
    [record] = records
    assert record["meta"]["provider_name"] == "huggingface"
    assert record["meta"]["upstream_url"].endswith("/generate_stream")
    assert record["usage"]["prompt_tokens"] == 12 and record["usage"]["completion_tokens"] == 4
    assert HF_TOKEN not in json.dumps(record)
    assert Path(proxy.log_path).read_text().count(HF_TOKEN) == 0
