"""Tool calls on Mistral, Ollama (llama2/mistral `ollama` formats) and Hugging Face chat (TGI Messages API), plus
the refusal of the raw llama format: pure request/response/stream tests (streams split at every byte offset),
then the multi-turn round trip end to end with the openai SDK through a real mitmdump, streamed and not.

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

import httpx
import openai
import pytest
import yaml

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call, UpstreamRequest
from addon.providers.mistral import mistral_id
from addon.rules import Rule, load_rules_text
from tests.support.fakes import FakeUpstream, Reply
from tests.support.mitmdump import Mitmdump

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


# ==============================================================================================================
# Pure helpers
# ==============================================================================================================


def make_rule(provider: str, name: str | None, **options: Any) -> Rule:
    spec = {
        "name": "r",
        "match": {"host": "llm.internal"},
        "route_type": CHAT,
        "model": {"provider": provider, "name": name, "options": options},
    }
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={})
    return rule


def mistral_rule() -> Rule:
    return make_rule("mistral", "mistral-small-latest")


def ollama_rule(provider: str = "llama2") -> Rule:
    key = "llama2_format" if provider == "llama2" else "mistral_format"
    return make_rule(provider, "llama3.2", **{key: "ollama", "upstream_url": OLLAMA})


def hf_rule() -> Rule:
    return make_rule("huggingface", "tgi", upstream_url=TGI)


def raw_rule() -> Rule:
    return make_rule("llama2", None, llama2_format="raw", upstream_url=f"{TGI}/generate")


def call(rule: Rule, body: Any) -> Call:
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", json.dumps(body).encode()))


def upstream(rule: Rule, body: Any) -> UpstreamRequest:
    return build_upstream(rule, call(rule, body))


def up_body(rule: Rule, body: Any) -> dict[str, Any]:
    up = upstream(rule, body)
    assert up.body is not None
    return up.body


def refused(rule: Rule, body: Any) -> ProxyError:
    with pytest.raises(ProxyError) as e:
        upstream(rule, body)
    assert e.value.status == 400, e.value.message
    return e.value


def ok(rule: Rule, data: Any, body: Any = None) -> dict[str, Any]:
    c = call(rule, body or {"messages": [QUESTION], "tools": TOOLS})
    status, out = translate_response(provider_for(rule), c, 200, json.dumps(data).encode(), "application/json")
    assert status == 200, out
    return out


def splits(raw: bytes) -> Iterator[list[bytes]]:
    """The whole body, 1-byte pieces, and two pieces split at every offset."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]


def events(out: bytes) -> list[Any]:
    """The client-side SSE events; ids, timestamps and synthesised tool-call ids (random per stream) normalised."""
    assert out.endswith(b"\n\n"), out[-200:]
    parsed: list[Any] = []
    for block in out.decode().split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        if data == "[DONE]":
            parsed.append(data)
            continue
        obj = json.loads(data)
        obj.pop("id", None)
        obj.pop("created", None)
        for choice in obj.get("choices") or ():
            for tc in (choice.get("delta") or {}).get("tool_calls") or ():
                if isinstance(tc.get("id"), str) and re.fullmatch(r"call_[0-9a-f]{24}", tc["id"]):
                    tc["id"] = "call_SYNTH"
        parsed.append(obj)
    return parsed


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
    return {
        "id": "cmpl-e58cc69e",
        "object": "chat.completion",
        "created": 1732548656,
        "model": "mistral-small-latest",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 30, "total_tokens": 110},
    }


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
    return {
        "id": "",
        "object": "chat.completion",
        "created": 1732548656,
        "model": "tgi",
        "system_fingerprint": "3.0.1-native",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "logprobs": None, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 80, "completion_tokens": 30, "total_tokens": 110},
    }


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


# ==============================================================================================================
# Mistral (OpenAI-shaped): 9-character ids, last-role rule, renumbered stream indexes
# ==============================================================================================================


def test_mistral_id_keeps_valid_ids_and_hashes_others_deterministically():
    """providers.md §7.1/§12: Mistral refuses any tool-call id that is not [a-zA-Z0-9]{9} (e.g. call_0fypS1hVX)."""
    assert mistral_id("D681PevKs") == "D681PevKs"
    foreign = ["call_0fypS1hVX", "call_abc123def456", "toolu_01A09q90qw90lq917835lq9", "0", "", "x" * 9 + "-"]
    mapped = [mistral_id(i) for i in foreign]
    assert all(MISTRAL_ID.fullmatch(m) for m in mapped), mapped
    assert mapped == [mistral_id(i) for i in foreign]  # deterministic: a call and its result still match
    assert len(set(mapped)) == len(mapped)


def test_mistral_request_maps_foreign_ids_in_calls_and_results_alike_and_names_results():
    ids = ["call_0fypS1hVX", "toolu_01A09q90qw90lq917835lq9"]
    body = up_body(mistral_rule(), {"messages": history(ids), "tools": TOOLS, "tool_choice": "auto"})
    assistant, r1, r2 = body["messages"][1:]
    got = [c["id"] for c in assistant["tool_calls"]]
    assert got == [mistral_id(i) for i in ids] and all(MISTRAL_ID.fullmatch(i) for i in got)
    assert [r1["tool_call_id"], r2["tool_call_id"]] == got
    assert [r1["name"], r2["name"]] == NAMES  # some Mistral models need the function name on tool messages
    assert [c["function"] for c in assistant["tool_calls"]] == [
        {"name": n, "arguments": json.dumps(a)} for n, a in zip(NAMES, ARGS, strict=True)
    ]
    assert (body["tools"], body["tool_choice"]) == (TOOLS, "auto")


def test_mistral_request_keeps_mistral_ids_unchanged():
    body = up_body(mistral_rule(), {"messages": history(MISTRAL_IDS), "tools": TOOLS})
    assert [c["id"] for c in body["messages"][1]["tool_calls"]] == MISTRAL_IDS
    assert [m["tool_call_id"] for m in body["messages"][2:]] == MISTRAL_IDS


@pytest.mark.parametrize(
    "choice", ["none", "auto", "required", "any", {"type": "function", "function": {"name": "get_time"}}]
)
def test_mistral_tool_choice_passes_through(choice):
    body = up_body(mistral_rule(), {"messages": [QUESTION], "tools": TOOLS, "tool_choice": choice})
    assert body["tool_choice"] == choice


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([QUESTION, {"role": "assistant", "content": "Let me see."}], "messages[1].role"),
        ([QUESTION, {"role": "system", "content": "Be terse."}], "messages[1].role"),
        ([QUESTION, {"role": "function", "name": "get_time", "content": "14:05"}], "messages[1].role"),
        ([{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}, QUESTION], "messages[0].tool_calls"),
    ],
)
def test_mistral_refuses_what_it_would_answer_400_to(messages, param):
    """providers.md §7.1/§12: the last message must be user or tool (Mistral: 'Expected last role User or Tool')."""
    err = refused(mistral_rule(), {"messages": messages})
    assert err.param == param


def test_mistral_assistant_prefix_may_end_the_conversation():
    messages = [QUESTION, {"role": "assistant", "content": "The weather", "prefix": True}]
    assert up_body(mistral_rule(), {"messages": messages})["messages"][-1]["prefix"] is True


def test_mistral_refuses_the_deprecated_functions_fields():
    fn = TOOLS[0]["function"]
    assert refused(mistral_rule(), {"messages": [QUESTION], "functions": [fn]}).param == "functions"
    assert refused(mistral_rule(), {"messages": [QUESTION], "function_call": {"name": "x"}}).param == "function_call"


def test_mistral_response_both_parallel_calls_in_openai_shape():
    """Kong kept only the last tool call of a turn: both are here, with ids, type and string arguments."""
    calls = mistral_calls()
    calls[1]["function"]["arguments"] = ARGS[1]  # an object: made a JSON string
    out = ok(mistral_rule(), mistral_reply({"content": "", "tool_calls": calls}, "tool_calls"))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    got = choice["message"]["tool_calls"]
    assert [c["id"] for c in got] == MISTRAL_IDS and all(c["type"] == "function" for c in got)
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in got] == list(
        zip(NAMES, ARGS, strict=True)
    )


def test_mistral_response_call_without_id_gets_a_valid_one_and_stop_becomes_tool_calls():
    calls = [{"function": {"name": "get_time", "arguments": "{}"}}]
    out = ok(mistral_rule(), mistral_reply({"content": None, "tool_calls": calls}, "stop"))
    (tc,) = out["choices"][0]["message"]["tool_calls"]
    assert MISTRAL_ID.fullmatch(tc["id"]) and out["choices"][0]["finish_reason"] == "tool_calls"


def test_mistral_stream_calls_sharing_one_index_are_renumbered_litellm_index_bug():
    """LiteLLM's streamed tool-call index bug: two calls sent with the same index were merged into one. Each call
    gets its own OpenAI index, id and name in its first delta; the text before the calls is kept."""
    evs = translate_stream(mistral_rule(), mistral_tool_stream(shared_index=True))
    text, calls, finish = accumulate([e for e in evs if isinstance(e, dict)])
    assert (text, finish) == ("Checking.", "tool_calls")
    assert [c["id"] for c in calls] == MISTRAL_IDS
    expected = ok(mistral_rule(), mistral_reply({"content": "", "tool_calls": mistral_calls()}, "tool_calls"))
    assert same_calls(calls, expected["choices"][0]["message"]["tool_calls"])
    assert evs[-1] == "[DONE]"


def test_mistral_stream_with_distinct_indexes_and_usage_chunk():
    evs = translate_stream(mistral_rule(), mistral_tool_stream(shared_index=False), include_usage=True)
    _, calls, _ = accumulate([e for e in evs if isinstance(e, dict)])
    assert [c["function"]["name"] for c in calls] == NAMES
    assert evs[-2]["choices"] == [] and evs[-2]["usage"]["total_tokens"] == 110


def test_mistral_stream_arguments_in_fragments_and_missing_index():
    """A call whose arguments come in several deltas (no id, no index after the first) stays one call."""
    raw = (
        sse(mistral_chunk({"tool_calls": [{"id": "D681PevKs", "function": {"name": "get_weather", "arguments": "{"}}]}))
        + sse(mistral_chunk({"tool_calls": [{"function": {"arguments": '"city": "Paris"}'}}]}))
        + sse(mistral_chunk({}, "stop"))
        + sse("[DONE]")
    )
    _, calls, finish = accumulate([e for e in translate_stream(mistral_rule(), raw) if isinstance(e, dict)])
    assert finish == "tool_calls"
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in calls] == [("D681PevKs", ARGS[0])]


# ==============================================================================================================
# Ollama native: object arguments, tool_name, synthesised ids, done_reason stop -> tool_calls
# ==============================================================================================================


@pytest.mark.parametrize("provider", ["llama2", "mistral"])
def test_ollama_request_tools_calls_and_results(provider):
    ids = ["call_abc", "call_def"]
    body = up_body(ollama_rule(provider), {"messages": history(ids), "tools": TOOLS, "tool_choice": "auto"})
    assert body["tools"] == TOOLS
    assert "tool_choice" not in body
    assert body["messages"] == [
        {"role": "user", "content": QUESTION["content"]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"index": 0, "name": NAMES[0], "arguments": ARGS[0]}, "id": ids[0]},
                {"function": {"index": 1, "name": NAMES[1], "arguments": ARGS[1]}, "id": ids[1]},
            ],
        },
        {"role": "tool", "content": RESULTS[0], "tool_name": NAMES[0], "tool_call_id": ids[0]},
        {"role": "tool", "content": RESULTS[1], "tool_name": NAMES[1], "tool_call_id": ids[1]},
    ]


def test_ollama_tool_result_name_is_resolved_by_id_not_by_position():
    """Results may come in any order: each gets the name of the call with its id (Kong hard-coded the Gemini
    tool-result name; Ollama matches results by name the same way)."""
    messages = history(["c1", "c2"])
    messages[2], messages[3] = messages[3], messages[2]
    body = up_body(ollama_rule(), {"messages": messages, "tools": TOOLS})
    assert [(m["tool_call_id"], m["tool_name"]) for m in body["messages"][2:]] == [("c2", NAMES[1]), ("c1", NAMES[0])]


def test_ollama_tool_result_without_a_matching_call_may_name_its_function():
    messages = [QUESTION, {"role": "tool", "tool_call_id": "elsewhere", "name": "get_time", "content": "14:05"}]
    body = up_body(ollama_rule(), {"messages": messages, "tools": TOOLS})
    assert body["messages"][1] == {
        "role": "tool",
        "content": "14:05",
        "tool_name": "get_time",
        "tool_call_id": "elsewhere",
    }


def test_ollama_tools_with_images_and_json_format():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What city?"}, image]}]
    body = up_body(ollama_rule(), {"messages": messages, "tools": TOOLS, "response_format": {"type": "json_object"}})
    assert body["messages"][0] == {"role": "user", "content": "What city?", "images": ["iVBORw0KGgo="]}
    assert (body["format"], body["tools"]) == ("json", TOOLS)


def test_ollama_tool_choice_none_sends_no_tools_but_keeps_the_history():
    body = up_body(ollama_rule(), {"messages": history(["a", "b"]), "tools": TOOLS, "tool_choice": "none"})
    assert "tools" not in body and body["messages"][2]["tool_name"] == NAMES[0]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "get_time"}}}, "tool_choice"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
        ({"functions": [TOOLS[0]["function"]]}, "functions"),
        ({"messages": [QUESTION, {"role": "tool", "tool_call_id": "no", "content": "x"}]}, "messages[1].tool_call_id"),
        ({"messages": [QUESTION, {"role": "function", "name": "f", "content": "x"}]}, "messages[1].role"),
        ({"messages": history(["a", "b"], ['{"city": "Par', "{}"])}, "messages[1].tool_calls[0].function.arguments"),
        ({"messages": history(["a", "b"], ["[1, 2]", "{}"])}, "messages[1].tool_calls[0].function.arguments"),
        ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}]}, "messages[0].tool_calls"),
    ],
)  # fmt: skip
def test_ollama_refuses_what_it_cannot_map(fields, param):
    assert refused(ollama_rule(), {"messages": [QUESTION], "tools": TOOLS, **fields}).param == param


def test_ollama_response_object_arguments_synthesised_ids_and_tool_calls_finish():
    """providers.md §12: Ollama's arguments are objects (-> JSON strings), older builds give no ids (-> stable
    synthesised ones), and it says done_reason "stop" when it called tools (-> "tool_calls")."""
    data = ollama_line({"tool_calls": ollama_calls()}, done=True)
    out = ok(ollama_rule(), data)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", c["id"]) and c["type"] == "function" for c in calls)
    assert len({c["id"] for c in calls}) == 2
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == list(
        zip(NAMES, ARGS, strict=True)
    )
    assert out["usage"] == {"prompt_tokens": 122, "completion_tokens": 33, "total_tokens": 155}


def test_ollama_response_keeps_its_ids_and_a_length_finish():
    data = ollama_line({"tool_calls": ollama_calls(with_ids=True)}, done=True, done_reason="length")
    choice = ok(ollama_rule(), data)["choices"][0]
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["call_ollama0", "call_ollama1"]
    assert choice["finish_reason"] == "length"


def test_ollama_response_without_tool_calls_is_unchanged():
    choice = ok(ollama_rule(), ollama_line({"content": "Hi"}, done=True))["choices"][0]
    assert (choice["message"], choice["finish_reason"]) == ({"role": "assistant", "content": "Hi"}, "stop")


@pytest.mark.parametrize("with_ids", [False, True])
def test_ollama_stream_tool_calls_equal_the_non_streamed_ones(with_ids):
    """Streamed NDJSON lines carrying tool_calls: one OpenAI call per Ollama call, index counting calls only, id
    and name first then the arguments; finish "tool_calls"; the same calls as the non-streamed answer."""
    evs = translate_stream(ollama_rule(), ollama_tool_stream(with_ids))
    text, calls, finish = accumulate([e for e in evs if isinstance(e, dict)])
    assert (text, finish) == ("Checking.", "tool_calls")
    if with_ids:
        assert [c["id"] for c in calls] == ["call_ollama0", "call_ollama1"]
    whole = ok(ollama_rule(), ollama_line({"tool_calls": ollama_calls(with_ids)}, done=True))
    assert same_calls(calls, whole["choices"][0]["message"]["tool_calls"])


def test_ollama_stream_synthesised_ids_are_distinct_and_stable_within_the_stream():
    rule = ollama_rule()
    c = call(rule, {"messages": [QUESTION], "tools": TOOLS, "stream": True})
    t = provider_for(rule).stream_translator(c, False, True)
    out = t.feed(ollama_tool_stream()) + t.finish()
    chunks = [json.loads(b[6:]) for b in out.split(b"\n\n") if b.startswith(b"data: {")]
    _, calls, _ = accumulate(chunks)
    assert len({c["id"] for c in calls}) == 2
    assert t.result.tool_calls == calls  # the audit record has the same calls
    assert t.result.finish_reason == "tool_calls"


def test_ollama_stream_bad_tool_calls_end_with_an_error_event():
    raw = ndjson(ollama_line({"tool_calls": [{"function": {"arguments": {}}}]}), ollama_line(done=True))
    evs = translate_stream(ollama_rule(), raw)
    assert set(evs[-1]) == {"error"} and "[DONE]" not in evs


# ==============================================================================================================
# Hugging Face chat (TGI Messages API): passthrough, with TGI's quirks fixed
# ==============================================================================================================


def test_hf_request_passes_tools_calls_and_results_through():
    body = {"messages": history(["0", "1"]), "tools": TOOLS, "tool_choice": "required"}
    out = up_body(hf_rule(), body)
    assert (out["messages"], out["tools"], out["tool_choice"]) == (body["messages"], TOOLS, "required")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"functions": [TOOLS[0]["function"]]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"messages": [QUESTION, {"role": "function", "name": "get_time", "content": "14:05"}]}, "messages[1]"),
    ],
)
def test_hf_refuses_the_deprecated_function_fields_tgi_would_ignore(fields, param):
    assert refused(hf_rule(), {"messages": [QUESTION], **fields}).param == param


def test_hf_response_object_arguments_and_ids():
    out = ok(hf_rule(), tgi_reply({"content": None, "tool_calls": tgi_calls()}, "eos_token"))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["0", "1"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == list(
        zip(NAMES, ARGS, strict=True)
    )


def test_hf_response_empty_id_is_synthesised():
    calls = [{"id": "", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    (tc,) = ok(hf_rule(), tgi_reply({"tool_calls": calls}, "stop"))["choices"][0]["message"]["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]{24}", tc["id"])


def test_hf_stream_old_and_new_tgi_tool_deltas_litellm_id_bug():
    """LiteLLM's streamed tool-call id bug: ids repeated in every delta were concatenated by accumulators. TGI's
    object-shaped `tool_calls`, empty ids and null names are normalised; finish `eos_token` -> `tool_calls`."""
    evs = translate_stream(hf_rule(), tgi_tool_stream())
    _, calls, finish = accumulate([e for e in evs if isinstance(e, dict)])
    assert finish == "tool_calls"
    assert [c["id"] for c in calls] == ["call_SYNTH", "call_tgi1"]
    whole = ok(hf_rule(), tgi_reply({"tool_calls": tgi_calls()}, "eos_token"))
    assert same_calls(calls, whole["choices"][0]["message"]["tool_calls"])


# ==============================================================================================================
# Llama `openai` format (Ollama /v1, vLLM, llama.cpp): an OpenAI passthrough, tools included
# ==============================================================================================================


def test_llama_openai_format_passes_tools_through_both_ways():
    rule = make_rule("llama2", "llama3.2", llama2_format="openai", upstream_url=OLLAMA)
    body = {"messages": history(["call_a", "call_b"]), "tools": TOOLS, "tool_choice": "required"}
    out = up_body(rule, body)
    assert (out["messages"], out["tools"], out["tool_choice"]) == (body["messages"], TOOLS, "required")
    calls = [
        {"id": f"call_{k}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for k, (n, a) in enumerate(zip(NAMES, ARGS, strict=True))
    ]
    reply = tgi_reply({"content": None, "tool_calls": calls}, "tool_calls")
    assert ok(rule, reply)["choices"][0]["message"]["tool_calls"] == calls


# ==============================================================================================================
# Llama raw: no tools (a clear 400)
# ==============================================================================================================


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": TOOLS}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"messages": history(["a", "b"])}, "messages[1].tool_calls"),
        ({"messages": [QUESTION, {"role": "tool", "tool_call_id": "a", "content": "x"}]}, "messages[1].role"),
    ],
)
def test_llama_raw_refuses_tools(fields, param):
    err = refused(raw_rule(), {"messages": [QUESTION], **fields})
    assert err.param == param and "llama2" in err.message


# ==============================================================================================================
# End to end: the multi-turn round trip with the openai SDK through a real mitmdump
# ==============================================================================================================

MISTRAL_KEY = "e2e-mistral-tools-secret-0005"
CLIENT_KEY = "sk-client-key-must-not-travel"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
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
    ).start()
    try:
        yield {"proxy": proxy, **fakes}
    finally:
        proxy.stop()
        for fake in fakes.values():
            fake.close()


@pytest.fixture
def e(env: dict[str, Any]) -> dict[str, Any]:
    for name in ("mistral", "ollama", "tgi"):
        env[name].reset()
    return env


def sdk(env: dict[str, Any], host: str) -> openai.OpenAI:
    http = httpx.Client(proxy=f"http://127.0.0.1:{env['proxy'].port('regular')}", trust_env=False)
    return openai.OpenAI(base_url=f"http://{host}/v1", api_key=CLIENT_KEY, http_client=http, max_retries=0)


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


@pytest.mark.e2e
@pytest.mark.parametrize("case", list(CASES))
def test_e2e_multi_turn_tool_round_trip_streamed_and_not(e: dict[str, Any], case: str) -> None:
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


@pytest.mark.e2e
def test_e2e_mistral_foreign_ids_from_another_provider_are_mapped(e: dict[str, Any]) -> None:
    """A history started elsewhere (OpenAI's call_... ids) still works on Mistral: ids hashed to 9 characters, the
    same in calls and results (else Mistral answers 400 'Tool call id was call_0fypS1hVX but must be ...')."""
    e["mistral"].queue(Reply(json=mistral_reply({"content": FINAL}, "stop")))
    ids = ["call_0fypS1hVXabcdef", "call_Zz9yY8xX7wW6vV5u"]
    out = sdk(e, "mistral.internal").chat.completions.create(
        model=MODELS["mistral.internal"], messages=history(ids), tools=TOOLS
    )
    assert out.choices[0].message.content == FINAL
    msgs = e["mistral"].requests[0].json["messages"]
    sent = [c["id"] for c in msgs[1]["tool_calls"]]
    assert all(MISTRAL_ID.fullmatch(i) for i in sent) and [m["tool_call_id"] for m in msgs[2:]] == sent


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("host", "fields", "param"),
    [
        ("mistral.internal", {"messages": [QUESTION, {"role": "assistant", "content": "x"}]}, "messages[1].role"),
        ("ollama.internal", {"messages": [QUESTION], "tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
        ("llama-raw.internal", {"messages": [QUESTION], "tools": TOOLS}, "tools"),
    ],
)
def test_e2e_refusals_are_clear_400s_and_nothing_is_sent(e: dict[str, Any], host: str, fields: dict, param: str):
    with pytest.raises(openai.BadRequestError) as err:
        sdk(e, host).chat.completions.create(model=MODELS[host], **fields)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param  # type: ignore[index]
    assert not e["mistral"].requests and not e["ollama"].requests and not e["tgi"].requests
