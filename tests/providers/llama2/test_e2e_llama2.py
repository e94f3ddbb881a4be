"""End to end for llama2: a real mitmdump with the addon, fake Ollama (NDJSON), raw text-generation (TGI) and
OpenAI-compatible servers, and the openai SDK as the client, streamed and not.

The SDK talks plain HTTP to virtual hosts through the proxy (`http://ollama.internal/v1`); each test checks what
the client got and what the fake upstream received. The environment: tests/support/selfhosted_e2e.py.
"""

from __future__ import annotations

import uuid

import openai
import pytest

from tests.support.fakes import Reply
from tests.support.selfhosted_e2e import (
    ANSWER,
    LLAMA2_PROMPT,
    MESSAGES,
    NDJSON,
    PIECES,
    Env,
    assert_refused_without_upstream_url,
    collect,
    ollama_reply,
    ollama_stream,
    sse,
    tgi_stream,
    usage_of,
)

pytestmark = pytest.mark.e2e


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


@pytest.mark.parametrize(("provider", "options"), [("llama2", {"llama2_format": "ollama"})])
def test_missing_upstream_url_is_refused_at_load(provider: str, options: dict) -> None:
    assert_refused_without_upstream_url(provider, options)


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
