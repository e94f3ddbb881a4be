"""End to end for mistral: a real mitmdump with the addon, fake Mistral (SSE) and Ollama (NDJSON) servers, and the
openai SDK as the client, streamed and not.

The SDK talks plain HTTP to virtual hosts through the proxy (`http://mistral.internal/v1`); each test checks what
the client got and what the fake upstream received. The environment: tests/support/selfhosted_e2e.py.
"""

from __future__ import annotations

import openai
import pytest

from tests.support.fakes import Reply
from tests.support.selfhosted_e2e import (
    ANSWER,
    MESSAGES,
    MISTRAL_KEY,
    NDJSON,
    Env,
    assert_refused_without_upstream_url,
    collect,
    mistral_reply,
    mistral_stream,
    ollama_stream,
    sse,
    usage_of,
)

pytestmark = pytest.mark.e2e


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


@pytest.mark.parametrize(("provider", "options"), [("mistral", {"mistral_format": "ollama"})])
def test_missing_upstream_url_is_refused_at_load(provider: str, options: dict) -> None:
    assert_refused_without_upstream_url(provider, options)
