"""End to end: streams through a real mitmdump, with the openai SDK (stream=True) as the client."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import uuid

import httpx
import openai
import pytest

from tests.support.chunks import collect
from tests.support.e2e_env import MESSAGES, MODELS, Env
from tests.support.fakes import ANSWER, STREAM_PIECES, Reply, anthropic_stream, openai_stream, sse

pytestmark = pytest.mark.e2e
PROVIDERS = ["openai", "azure", "anthropic"]


@pytest.mark.parametrize("via", ["proxy", "reverse"])
@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_chat(e: Env, provider: str, include_usage: bool, via: str) -> None:
    client = e.client(provider, via)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(model=MODELS[provider], messages=MESSAGES, stream=True, **extra)
    text, finish, chunks = collect(stream)
    plain = client.chat.completions.create(model=MODELS[provider], messages=MESSAGES)
    assert text == plain.choices[0].message.content == ANSWER
    assert finish == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        [usage_chunk] = usage_chunks
        assert usage_chunk.choices == [] and usage_chunk is chunks[-1]
        assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (25, 12)
    else:
        assert usage_chunks == []  # the proxy asked upstream for usage; the client did not ask to see it
    seen = e.fake(provider).requests[0].json
    assert seen["stream"] is True
    if provider != "anthropic":
        assert seen["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_completions(e: Env, provider: str) -> None:
    model = {"openai": "gpt-fake-instruct", "azure": "gpt-35-instruct", "anthropic": "claude-fake-1"}[provider]
    chunks = list(e.client(provider).completions.create(model=model, prompt="What are you?", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert all(c.object == "text_completion" for c in chunks)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_is_not_buffered(e: Env, provider: str) -> None:
    """The fake holds the rest of the stream until the client has the first content delta: a buffering
    proxy would deliver nothing before the fake's wait runs out."""
    gate = threading.Event()
    released: list[bool] = []
    events = anthropic_stream() if provider == "anthropic" else openai_stream(include_usage=True)
    first_delta = 4 if provider == "anthropic" else 2  # events up to and including the first text delta
    chunks = [*events[:first_delta], lambda: released.append(gate.wait(20)), *events[first_delta:]]
    e.fake(provider).queue(Reply(chunks=chunks))
    stream = e.client(provider).chat.completions.create(model=MODELS[provider], messages=MESSAGES, stream=True)
    text = ""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if not gate.is_set():
                assert chunk.choices[0].delta.content == STREAM_PIECES[0]
                gate.set()
            text += chunk.choices[0].delta.content
    assert released == [True], "the client got no content before the upstream sent the rest: the proxy buffered"
    assert text == ANSWER


def test_stream_tool_calls_renumbered(e: Env) -> None:
    """Anthropic counts text and tool blocks together; OpenAI tool-call indexes count tool calls only."""
    tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    events = [
        sse({"type": "message_start", "message": {"model": "claude-fake-1", "usage": {"input_tokens": 9}}}),
        sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Adding."}}),
        sse({"type": "content_block_stop", "index": 0}),
    ]
    for block, (call_id, args) in enumerate([("toolu_A", ['{"a": 1,', ' "b": 2}']), ("toolu_B", ['{"a": 3}'])], 1):
        events.append(
            sse(
                {
                    "type": "content_block_start",
                    "index": block,
                    "content_block": {"type": "tool_use", "id": call_id, "name": "add", "input": {}},
                }
            )
        )
        events += [
            sse(
                {
                    "type": "content_block_delta",
                    "index": block,
                    "delta": {"type": "input_json_delta", "partial_json": part},
                }
            )
            for part in args
        ]
        events.append(sse({"type": "content_block_stop", "index": block}))
    events += [
        sse({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
        sse({"type": "message_stop"}),
    ]
    e.anthropic.queue(Reply(chunks=events))
    stream = e.client("anthropic").chat.completions.create(
        model="claude-fake-1", messages=MESSAGES, tools=[tool], stream=True
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for d in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            call = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = d.id or call["id"]
            call["name"] = (d.function.name if d.function else None) or call["name"]
            call["arguments"] += (d.function.arguments or "") if d.function else ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert (calls[0]["id"], calls[1]["id"]) == ("toolu_A", "toolu_B")
    assert json.loads(calls[0]["arguments"]) == {"a": 1, "b": 2} and json.loads(calls[1]["arguments"]) == {"a": 3}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stream_audit_record(e: Env, provider: str) -> None:
    marker = f"stream-{uuid.uuid4().hex}"
    messages = [{"role": "user", "content": marker}]
    collect(e.client(provider).chat.completions.create(model=MODELS[provider], messages=messages, stream=True))
    record = e.proxy.record_with(marker)
    meta, usage = record["meta"], record["usage"]
    assert meta["stream"] is True and meta["status"] == 200 and meta["error"] is None
    assert meta["time_to_first_token"] is not None and meta["llm_latency"] >= meta["time_to_first_token"] >= 0
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (25, 12, 37)
    response = record["payload"]["client_response"]
    assert response["choices"][0]["message"]["content"] == ANSWER
    assert response["choices"][0]["finish_reason"] == "stop"


def test_upstream_dies_mid_stream(e: Env) -> None:
    marker = f"dies-{uuid.uuid4().hex}"
    e.anthropic.queue(Reply(chunks=anthropic_stream(complete=False)))
    stream = e.client("anthropic").chat.completions.create(
        model="claude-fake-1", messages=[{"role": "user", "content": marker}], stream=True
    )
    received = ""
    with pytest.raises(openai.APIError, match="ended before message_stop"):
        for chunk in stream:
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received == ANSWER  # what arrived before the failure was delivered
    record = e.proxy.record_with(marker)
    assert "ended before message_stop" in record["meta"]["error"]


def test_error_event_mid_stream(e: Env) -> None:
    error = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    events = [*anthropic_stream(complete=False)[:4], error]
    e.anthropic.queue(Reply(chunks=events))
    stream = e.client("anthropic").chat.completions.create(model="claude-fake-1", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(stream)


def test_upstream_error_status_on_stream_request(e: Env) -> None:
    e.anthropic.queue(
        Reply(status=429, json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    )
    with pytest.raises(openai.RateLimitError):
        e.client("anthropic").chat.completions.create(model="claude-fake-1", messages=MESSAGES, stream=True)


def _raw_client(e: Env) -> httpx.Client:
    return httpx.Client(
        proxy=f"http://127.0.0.1:{e.proxy.port('regular')}",
        verify=ssl.create_default_context(cafile=str(e.proxy.ca)),
        trust_env=False,
    )


def test_response_streaming_always(e: Env) -> None:
    with _raw_client(e) as client:
        response = client.post("https://always-stream.internal/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in response.headers
    assert response.text.endswith("data: [DONE]\n\n")
    assert e.anthropic.last().json["stream"] is True


def test_http2_client_streams(e: Env) -> None:
    """An HTTP/2 client gets the translated stream. curl, because httpx offers http/1.1 first in ALPN (and
    mitmproxy takes the client's first choice) or else speaks HTTP/2 to the proxy itself, which mitmproxy
    does not support."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    body = json.dumps({"model": "claude-fake-1", "messages": MESSAGES, "stream": True})
    out = subprocess.run(
        [
            curl,
            "-sS",
            "--http2",
            "--max-time",
            "20",
            "--noproxy",
            "",
            "-x",
            f"http://127.0.0.1:{e.proxy.port('regular')}",
            "--cacert",
            str(e.proxy.ca),
            "-H",
            "content-type: application/json",
            "-d",
            body,
            "-w",
            "\nHTTP_VERSION=%{http_version}",
            "https://anthropic.internal/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    data, _, version = out.rpartition("\nHTTP_VERSION=")
    assert version == "2"
    events = [line[6:] for line in data.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(x)["choices"][0]["delta"].get("content") or "" for x in events[:-1])
    assert text == ANSWER


def test_upstream_connection_lost_mid_stream(e: Env) -> None:
    """A transport-level death (no chunked terminator): mitmproxy aborts the client connection, the SDK raises,
    and the audit record says the stream was interrupted."""
    marker = f"lost-{uuid.uuid4().hex}"

    def die() -> None:
        raise ConnectionAbortedError("fake upstream dies")

    e.anthropic.queue(Reply(chunks=[*anthropic_stream(complete=False), die]))
    stream = e.client("anthropic").chat.completions.create(
        model="claude-fake-1", messages=[{"role": "user", "content": marker}], stream=True
    )
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        list(stream)
    record = e.proxy.record_with(marker)
    assert record["meta"]["error"]
    assert record["payload"]["client_response"]["choices"][0]["message"]["content"] == ANSWER


def test_client_hangs_up_mid_stream_record_has_the_input_tokens(e: Env) -> None:
    """The client reads the first delta and closes while the upstream holds the rest: the record still has the
    input tokens that message_start had brought, and says that the stream was interrupted."""
    marker = f"hangup-{uuid.uuid4().hex}"
    gate = threading.Event()
    events = anthropic_stream()
    first_delta = 4  # message_start, content_block_start, ping, the first text delta
    e.anthropic.queue(Reply(chunks=[*events[:first_delta], lambda: gate.wait(20), *events[first_delta:]]))
    body = {"model": "claude-fake-1", "messages": [{"role": "user", "content": marker}], "stream": True}
    try:
        url = "https://anthropic.internal/v1/chat/completions"
        with _raw_client(e) as client, client.stream("POST", url, json=body) as response:
            assert response.status_code == 200
            received = ""
            for line in response.iter_lines():
                received += line
                if STREAM_PIECES[0] in received:
                    break  # the first delta is here: hang up with the rest still held upstream
        record = e.proxy.record_with(marker)
    finally:
        gate.set()
    # who hung up, and mitmproxy's word for it
    assert record["meta"]["error"] == "the client hung up before the answer was complete: Client disconnected."
    usage = record["usage"]
    assert usage["prompt_tokens"] == 25  # message_start's input_tokens
    assert usage["completion_tokens"] == 1 and usage["total_tokens"] == 26  # message_start's output count so far
    assert usage["cost"] == pytest.approx((25 * 3.0 + 1 * 15.0) / 1e6)
