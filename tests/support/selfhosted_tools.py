"""Builders for the tool-calling tests of the self-hosted providers (tests/providers/mistral, llama2, huggingface):
the two-tool conversation, requests, answers and streams (split at every byte offset) through the pure core, the
SDK's accumulation of streamed tool calls, each upstream's native replies, and the end-to-end multi-turn round
trip with the openai SDK through a real mitmdump.

Peer bugs guarded against (named in the tests that guard them):
- LiteLLM, streamed tool-call index/id bugs: two calls sharing one upstream `index` (Mistral sends several whole
  calls in one delta) were merged by the SDK's accumulator; ids repeated in later deltas were concatenated.
  Here `index` counts tool calls only, id and name come in the first delta of each call only.
- Kong kept only the last tool call of a turn (Bedrock): every provider here must return both parallel calls.
docs/providers.md §12 pitfalls that concern tools, for these providers: arguments are a JSON string for OpenAI,
Mistral and TGI but an object for Ollama; Ollama (older) has no tool-call ids (synthesised, resolved back by name
on the next turn); Mistral needs `[a-zA-Z0-9]{9}` ids and a last message of role user/tool; Ollama says
`done_reason: stop` when it called tools.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from addon.exchange import build_upstream, provider_for, translate_response
from addon.rules import Rule
from tests.support.chunks import splits as splits
from tests.support.chunks import sse_events
from tests.support.fakes import FakeUpstream, Reply, chat_completion
from tests.support.mitmdump import Mitmdump, running
from tests.support.pipeline import call as call
from tests.support.pipeline import refused_request as refused_request
from tests.support.pipeline import up_body as up_body
from tests.support.pipeline import upstream as upstream
from tests.support.rules import one_rule
from tests.support.tools import client_through

refused = refused_request  # the builder tests name it so

CHAT = "llm/v1/chat"
OLLAMA = "http://127.0.0.1:11434"
TGI = "http://127.0.0.1:8080"
MISTRAL_ID = re.compile(r"[a-zA-Z0-9]{9}")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a time zone",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
        },
    },
]
QUESTION = {"role": "user", "content": "Weather and time in Paris?"}
ARGS = [{"city": "Paris"}, {"tz": "Europe/Paris"}]
NAMES = ["get_weather", "get_time"]
RESULTS = ["22C and sunny", "14:05"]
FINAL = "It is 22C and sunny in Paris, and 14:05."


def history(ids: list[str], args: list[str] | None = None) -> list[dict[str, Any]]:
    """Turn 2 as the client sends it: the question, the assistant's two calls, the two results."""
    args = args or [json.dumps(a) for a in ARGS]
    calls = [
        {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
        for i, n, a in zip(ids, NAMES, args, strict=True)
    ]
    return [
        QUESTION,
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": i, "content": r} for i, r in zip(ids, RESULTS, strict=True)),
    ]


def make_rule(provider: str, name: str | None, **options: Any) -> Rule:
    return one_rule(provider, name, CHAT, options)


def mistral_rule() -> Rule:
    return make_rule("mistral", "mistral-small-latest")


def ollama_rule(provider: str = "llama2") -> Rule:
    key = "llama2_format" if provider == "llama2" else "mistral_format"
    return make_rule(provider, "llama3.2", **{key: "ollama", "upstream_url": OLLAMA})


def hf_rule() -> Rule:
    return make_rule("huggingface", "tgi", upstream_url=TGI)


def raw_rule() -> Rule:
    return make_rule("llama2", None, llama2_format="raw", upstream_url=f"{TGI}/generate")


def ok(rule: Rule, data: Any, body: Any = None) -> dict[str, Any]:
    c = call(rule, body or {"messages": [QUESTION], "tools": TOOLS})
    status, out = translate_response(provider_for(rule), c, 200, json.dumps(data).encode(), "application/json")
    assert status == 200, out
    return out


def events(out: bytes) -> list[Any]:
    """The client-side SSE events; ids, timestamps and synthesised tool-call ids (random per stream) normalised."""
    return sse_events(out, synthesised=re.compile(r"call_[0-9a-f]{24}").fullmatch, synth_as="call_SYNTH")


def translate_stream(rule: Rule, raw: bytes, include_usage: bool = False) -> list[Any]:
    """The stream through the translator at every split: every split must give the same events."""
    c = call(rule, {"messages": [QUESTION], "tools": TOOLS, "stream": True})
    provider = provider_for(rule)
    build_upstream(rule, c)
    expected = None
    for pieces in splits(raw):
        t = provider.stream_translator(c, include_usage, True)
        got = events(b"".join(t.feed(p) for p in pieces) + t.finish())
        if expected is None:
            expected = got
        else:
            assert got == expected, f"different output for pieces of sizes {[len(p) for p in pieces][:5]}"
    assert expected is not None
    return expected


def accumulate(chunks: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]], str | None]:
    """Streamed chat chunks accumulated as the openai SDK's stream helpers do: tool calls by `index`, the id and
    the name in the first delta of each call only (a repeated id would be concatenated), argument fragments
    after. Returns (text, tool calls, finish reason)."""
    text, calls, finish = "", {}, None
    for ch in chunks:
        for choice in ch.get("choices") or ():
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or ():
                fn = tc.get("function") or {}
                slot = calls.get(tc["index"])
                if slot is None:
                    assert tc.get("id") and fn.get("name"), f"first delta of call {tc['index']} lacks id/name: {tc}"
                    slot = calls[tc["index"]] = {"id": tc["id"], "type": tc.get("type"), "name": fn["name"], "args": ""}
                else:
                    assert not tc.get("id") and not fn.get("name"), f"id/name repeated in a later delta: {tc}"
                slot["args"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    assert sorted(calls) == list(range(len(calls))), "tool-call indexes must count 0, 1, ..."
    out = [
        {"id": c["id"], "type": c["type"], "function": {"name": c["name"], "arguments": c["args"]}}
        for _, c in sorted(calls.items())
    ]
    return text, out, finish


def same_calls(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Names and JSON-equal arguments, in order."""
    key = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in a]
    return key == [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in b]


def sse(obj: dict[str, Any] | str, space: bool = True) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"data:{' ' if space else ''}{data}\n\n".encode()


def ndjson(*objs: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


# ---- native replies ------------------------------------------------------------------------------------------

MISTRAL_IDS = ["D681PevKs", "Q2w3E4r5T"]


def mistral_calls() -> list[dict[str, Any]]:
    return [
        {"id": i, "function": {"name": n, "arguments": json.dumps(a)}, "index": k}
        for k, (i, n, a) in enumerate(zip(MISTRAL_IDS, NAMES, ARGS, strict=True))
    ]


def mistral_reply(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return chat_completion(
        message, finish, id="cmpl-e58cc69e", created=1732548656, model="mistral-small-latest", usage=_TOOL_USAGE
    )


def mistral_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-e58cc69e",
        "object": "chat.completion.chunk",
        "created": 1732548656,
        "model": "mistral-small-latest",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def mistral_tool_stream(shared_index: bool = True) -> bytes:
    """Mistral streams whole calls, several in one delta; here both with index 0 (LiteLLM merged such calls)."""
    calls = mistral_calls()
    if shared_index:
        for c in calls:
            c["index"] = 0
    usage = {"prompt_tokens": 80, "completion_tokens": 30, "total_tokens": 110}
    return (
        sse(mistral_chunk({"role": "assistant", "content": ""}))
        + sse(mistral_chunk({"content": "Checking."}))
        + sse(mistral_chunk({"tool_calls": calls}, "tool_calls", usage=usage))
        + sse("[DONE]")
    )


def mistral_text_stream(text: str) -> bytes:
    usage = {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}
    half = len(text) // 2
    return (
        sse(mistral_chunk({"role": "assistant", "content": ""}))
        + sse(mistral_chunk({"content": text[:half]}))
        + sse(mistral_chunk({"content": text[half:]}, "stop", usage=usage))
        + sse("[DONE]")
    )


def ollama_calls(with_ids: bool = False) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = [
        {"function": {"index": k, "name": n, "arguments": a}} for k, (n, a) in enumerate(zip(NAMES, ARGS, strict=True))
    ]
    if with_ids:
        for k, c in enumerate(calls):
            c["id"] = f"call_ollama{k}"
    return calls


def ollama_line(message: dict[str, Any] | None = None, done: bool = False, **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "model": "llama3.2",
        "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {"role": "assistant", "content": "", **(message or {})},
        "done": done,
    }
    if done:
        line.update(done_reason="stop", prompt_eval_count=122, eval_count=33)
    return {**line, **extra}


def ollama_tool_stream(with_ids: bool = False) -> bytes:
    """Text, then both calls whole in one line, then the final line with done_reason "stop" (not "tool_calls")."""
    return ndjson(
        ollama_line({"content": "Checking."}),
        ollama_line({"tool_calls": ollama_calls(with_ids)}),
        ollama_line(done=True),
    )


def ollama_text_stream(text: str) -> bytes:
    half = len(text) // 2
    return ndjson(ollama_line({"content": text[:half]}), ollama_line({"content": text[half:]}), ollama_line(done=True))


def tgi_reply(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return chat_completion(
        message,
        finish,
        id="",
        created=1732548656,
        model="tgi",
        usage=_TOOL_USAGE,
        with_logprobs=True,
        system_fingerprint="3.0.1-native",
    )


_TOOL_USAGE = {"prompt_tokens": 80, "completion_tokens": 30, "total_tokens": 110}


def tgi_calls() -> list[dict[str, Any]]:
    """TGI (older) sends arguments as an object and "0" ids; newer ones a string: one of each."""
    return [
        {"id": "0", "type": "function", "function": {"description": None, "name": NAMES[0], "arguments": ARGS[0]}},
        {"id": "1", "type": "function", "function": {"name": NAMES[1], "arguments": json.dumps(ARGS[1])}},
    ]


def tgi_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "",
        "object": "chat.completion.chunk",
        "created": 1732548656,
        "model": "tgi",
        "system_fingerprint": "3.0.1-native",
        "choices": [{"index": 0, "delta": {"role": "assistant", **delta}, "logprobs": None, "finish_reason": finish}],
    }


def tgi_tool_stream() -> bytes:
    """TGI streams a call's arguments in fragments. The first call in older TGI's shape: `tool_calls` one object,
    an empty id in every delta and a null name after the first; the second in the newer shape (an array)."""
    first = [
        {"index": 0, "id": "", "type": "function", "function": {"name": NAMES[0], "arguments": ""}},
        {"index": 0, "id": "", "type": "function", "function": {"name": None, "arguments": '{"city": '}},
        {"index": 0, "id": "", "type": "function", "function": {"name": None, "arguments": '"Paris"}'}},
    ]
    second = [
        [{"index": 1, "id": "call_tgi1", "type": "function", "function": {"name": NAMES[1], "arguments": '{"tz"'}}],
        [{"index": 1, "function": {"arguments": ': "Europe/Paris"}'}}],
    ]
    return (
        b"".join(sse(tgi_chunk({"tool_calls": d}), space=False) for d in first)
        + b"".join(sse(tgi_chunk({"tool_calls": d}), space=False) for d in second)
        + sse(tgi_chunk({}, "eos_token"), space=False)
        + sse("[DONE]", space=False)
    )


def tgi_text_stream(text: str) -> bytes:
    half = len(text) // 2
    return (
        sse(tgi_chunk({"content": text[:half]}), space=False)
        + sse(tgi_chunk({"content": text[half:]}), space=False)
        + sse(tgi_chunk({}, "eos_token"), space=False)
        + sse("[DONE]", space=False)
    )


# ---- end to end: the multi-turn round trip with the openai SDK through a real mitmdump -------------------------

MISTRAL_KEY = "e2e-mistral-tools-secret-0005"
CLIENT_KEY = "sk-client-key-must-not-travel"


@pytest.fixture(scope="module")
def tools_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The fakes and the proxy, stopped after the module (a provider folder's conftest imports the fixtures)."""
    fakes = {"mistral": FakeUpstream("mistral"), "ollama": FakeUpstream("ollama"), "tgi": FakeUpstream("tgi")}

    def rule(name: str, host: str, provider: str, model: str | None, options: dict[str, Any], **extra: Any) -> dict:
        return {
            "name": name,
            "match": {"host": host, "path": "/v1/chat/completions"},
            "route_type": CHAT,
            "model": {"provider": provider, "name": model, "options": options},
            "logging": {"log_statistics": True, "log_payloads": True},
            **extra,
        }

    auth = {"header_name": "Authorization", "header_value": "Bearer ${E2E_MISTRAL_KEY}"}
    spec = [
        rule("mistral", "mistral.internal", "mistral", "mistral-small-latest",
             {"upstream_url": fakes["mistral"].url}, auth=auth),
        rule("ollama", "ollama.internal", "llama2", "llama3.2",
             {"llama2_format": "ollama", "upstream_url": fakes["ollama"].url}),
        rule("mistral-ollama", "mistral-ollama.internal", "mistral", "mistral:7b",
             {"mistral_format": "ollama", "upstream_url": fakes["ollama"].url}),
        rule("hf", "hf.internal", "huggingface", "tgi", {"upstream_url": fakes["tgi"].url}),
        rule("llama-raw", "llama-raw.internal", "llama2", None,
             {"llama2_format": "raw", "upstream_url": f"{fakes['tgi'].url}/generate"}),
    ]  # fmt: skip
    proxy = Mitmdump(
        Path(tmp_path_factory.mktemp("e2e-tools-selfhosted")),
        json.dumps({"rules": spec}),
        env={"E2E_MISTRAL_KEY": MISTRAL_KEY},
    )
    with running(proxy, *fakes.values()):
        yield {"proxy": proxy, **fakes}


@pytest.fixture
def tools(tools_env: dict[str, Any]) -> dict[str, Any]:
    """The shared environment, its fakes reset: the fakes and the proxy by name."""
    for name in ("mistral", "ollama", "tgi"):
        tools_env[name].reset()
    return tools_env


def sdk(env: dict[str, Any], host: str) -> openai.OpenAI:
    return client_through(env["proxy"], host, CLIENT_KEY)


# Per provider: host, fake, (turn-1 reply, turn-1 stream, turn-2 reply, turn-2 stream) factories, and the check
# of the native turn-2 request.
def _replies(kind: str) -> tuple[Any, Any, Any, Any]:
    if kind == "mistral":
        return (
            lambda: Reply(json=mistral_reply({"content": "Checking.", "tool_calls": mistral_calls()}, "tool_calls")),
            lambda: Reply(chunks=[mistral_tool_stream()], headers={"content-type": "text/event-stream"}),
            lambda: Reply(json=mistral_reply({"content": FINAL}, "stop")),
            lambda: Reply(chunks=[mistral_text_stream(FINAL)], headers={"content-type": "text/event-stream"}),
        )
    if kind == "ollama":
        nd = {"content-type": "application/x-ndjson"}
        return (
            lambda: Reply(json=ollama_line({"content": "Checking.", "tool_calls": ollama_calls()}, done=True)),
            lambda: Reply(chunks=ollama_tool_stream().splitlines(keepends=True), headers=nd),
            lambda: Reply(json=ollama_line({"content": FINAL}, done=True)),
            lambda: Reply(chunks=ollama_text_stream(FINAL).splitlines(keepends=True), headers=nd),
        )
    return (
        lambda: Reply(json=tgi_reply({"content": None, "tool_calls": tgi_calls()}, "eos_token")),
        lambda: Reply(chunks=[tgi_tool_stream()], headers={"content-type": "text/event-stream"}),
        lambda: Reply(json=tgi_reply({"content": FINAL}, "eos_token")),
        lambda: Reply(chunks=[tgi_text_stream(FINAL)], headers={"content-type": "text/event-stream"}),
    )


def check_turn2(kind: str, native: dict[str, Any], ids: list[str], stream: bool) -> None:
    """The native request of turn 2: the calls with their ids/names, each result matched to its call."""
    assert native["stream"] is stream
    msgs = native["messages"]
    if kind == "mistral":
        assert [c["id"] for c in msgs[1]["tool_calls"]] == ids == MISTRAL_IDS  # Mistral's own ids, unchanged
        assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in msgs[1]["tool_calls"]] == [
            *zip(NAMES, ARGS, strict=True)
        ]
        assert [(m["role"], m["tool_call_id"], m["name"], m["content"]) for m in msgs[2:]] == [
            ("tool", i, n, r) for i, n, r in zip(ids, NAMES, RESULTS, strict=True)
        ]
        assert native["tools"] == TOOLS and msgs[-1]["role"] == "tool"
    elif kind == "ollama":
        assert msgs[1]["tool_calls"] == [
            {"function": {"index": k, "name": n, "arguments": a}, "id": i}
            for k, (i, n, a) in enumerate(zip(ids, NAMES, ARGS, strict=True))
        ]
        assert msgs[2:] == [
            {"role": "tool", "content": r, "tool_name": n, "tool_call_id": i}
            for i, n, r in zip(ids, NAMES, RESULTS, strict=True)
        ]
        assert native["tools"] == TOOLS
    else:
        assert [c["id"] for c in msgs[1]["tool_calls"]] == ids
        assert [(m["role"], m["tool_call_id"], m["content"]) for m in msgs[2:]] == [
            ("tool", i, r) for i, r in zip(ids, RESULTS, strict=True)
        ]
        assert native["tools"] == TOOLS


CASES = {
    "mistral": ("mistral.internal", "mistral"),
    "ollama": ("ollama.internal", "ollama"),
    "mistral-ollama": ("mistral-ollama.internal", "ollama"),
    "hf": ("hf.internal", "tgi"),
}
MODELS = {
    "mistral.internal": "mistral-small-latest",
    "ollama.internal": "llama3.2",
    "mistral-ollama.internal": "mistral:7b",
    "hf.internal": "tgi",
    "llama-raw.internal": "llama",
}


def check_round_trip(e: dict[str, Any], case: str) -> None:
    """User; assistant with two parallel tool calls (Kong kept only the last one); two tool results matched by
    id; final answer. Non-streamed, then streamed (accumulated as the SDK does: LiteLLM's index/id bugs), then
    the SDK's own stream helper: the streamed calls equal the non-streamed ones."""
    host, fake_name = CASES[case]
    kind = "ollama" if fake_name == "ollama" else ("mistral" if case == "mistral" else "hf")
    fake: FakeUpstream = e[fake_name]
    turn1, turn1_stream, turn2, turn2_stream = _replies(kind)
    client = sdk(e, host)
    model = MODELS[host]

    # ---- not streamed
    fake.queue(turn1(), turn2())
    first = client.chat.completions.create(model=model, messages=[QUESTION], tools=TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 2
    assert [c.function.name for c in calls] == NAMES and all(c.type == "function" and c.id for c in calls)
    assert [json.loads(c.function.arguments) for c in calls] == ARGS  # a JSON string, per the SDK's types
    ids = [c.id for c in calls]
    assert len(set(ids)) == 2
    messages = [QUESTION, first.choices[0].message.model_dump(exclude_none=True)] + [
        {"role": "tool", "tool_call_id": i, "content": r} for i, r in zip(ids, RESULTS, strict=True)
    ]
    final = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert (final.choices[0].message.content, final.choices[0].finish_reason) == (FINAL, "stop")
    assert [r.method for r in fake.requests] == ["POST", "POST"]
    check_turn2(kind, fake.requests[1].json, ids, stream=False)
    assert "tool_calls" not in json.dumps(fake.requests[0].json["messages"])
    if kind == "mistral":
        assert fake.requests[1].headers["authorization"] == f"Bearer {MISTRAL_KEY}"
    non_streamed = [c.model_dump() for c in calls]

    # ---- streamed, accumulated by index as the SDK's helpers do
    fake.reset()
    fake.queue(turn1_stream(), turn2_stream())
    chunks = [ch.model_dump() for ch in client.chat.completions.create(
        model=model, messages=[QUESTION], tools=TOOLS, stream=True
    )]  # fmt: skip
    _, streamed, finish = accumulate(chunks)
    assert finish == "tool_calls"
    assert same_calls(streamed, non_streamed)
    if kind == "mistral":
        assert [c["id"] for c in streamed] == MISTRAL_IDS
    sids = [c["id"] for c in streamed]
    assistant = {"role": "assistant", "tool_calls": streamed}
    messages = [QUESTION, assistant] + [
        {"role": "tool", "tool_call_id": i, "content": r} for i, r in zip(sids, RESULTS, strict=True)
    ]
    text = "".join(
        ch.choices[0].delta.content or ""
        for ch in client.chat.completions.create(model=model, messages=messages, tools=TOOLS, stream=True)
        if ch.choices
    )
    assert text == FINAL
    check_turn2(kind, fake.requests[1].json, sids, stream=True)

    # ---- the SDK's own stream helper accumulates the same calls
    fake.reset()
    fake.queue(turn1_stream())
    with client.chat.completions.stream(model=model, messages=[QUESTION], tools=TOOLS) as s:
        done = s.get_final_completion()
    helper_calls = [c.model_dump() for c in done.choices[0].message.tool_calls or []]
    assert done.choices[0].finish_reason == "tool_calls"
    assert same_calls(helper_calls, non_streamed)


def assert_refused_before_sending(tools: dict[str, Any], host: str, fields: dict[str, Any], param: str) -> None:
    """The SDK's request through the proxy is a clear 400 naming `param`, and no fake upstream saw anything."""
    with pytest.raises(openai.BadRequestError) as err:
        sdk(tools, host).chat.completions.create(model=MODELS[host], **fields)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param  # type: ignore[index]
    assert not tools["mistral"].requests and not tools["ollama"].requests and not tools["tgi"].requests
