"""Tool calls, images and JSON output for Anthropic (OpenAI and Azure alongside, as the baseline), streamed and not.

Pure tests drive the Anthropic translation (request mapping, response mapping, the stream translator fed at every
byte offset); end-to-end tests run the multi-turn tool conversation (user; assistant with two parallel tool calls;
two tool results; final answer) with the `openai` SDK through a real mitmdump against fake providers that check the
native request of each turn.

Peer bugs guarded against (named in the tests below):
* Kong could not stream Anthropic tool calls at all -> the streamed round trip through the Anthropic translator.
* LiteLLM's streamed tool-call index/id bugs -> `index` counts tool calls only (Anthropic block indexes renumbered,
  text and thinking blocks before the calls never shift it), id and name in the first delta of each call, argument
  fragments after; a call without arguments still accumulates to JSON ("{}"), never "".
* Kong kept only the last Bedrock tool call -> two parallel calls survive in both directions (the same failure mode,
  checked here for Anthropic and the OpenAI/Azure passthrough).
* Kong hard-coded the Gemini tool-result name -> deprecated `role: function` results are matched to the call they
  answer by name, and refused when they answer nothing.
Pitfalls of docs/providers.md §12 concerning tools: arguments are a JSON string in OpenAI and an object in Anthropic
(re-encoded both ways, invalid JSON refused); tool results go first in one user turn; empty text blocks are never
sent; tool ids are kept (and made valid for Anthropic) so the next turn matches; streaming tool index renumbered.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers.anthropic.request import JSON_OBJECT_INSTRUCTION
from addon.rules import Rule
from tests.support.e2e_env import Env
from tests.support.fakes import Reply, sse
from tests.support.rules import one_rule

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time of a time zone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
TOOLS = [WEATHER, TIME]
QUESTION = {"role": "user", "content": "Weather in Paris and the time in Tokyo?"}
PREAMBLE = "Let me check both."
FINAL = "It is 22C in Paris and 09:00 in Tokyo."
CALLS = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Asia/Tokyo"})]
RESULTS = ["22C, sunny", "09:00"]
ANTHROPIC_IDS = ["toolu_01A", "toolu_01B"]
OPENAI_IDS = ["call_abc", "call_def"]


# ==============================================================================================================
# Pure helpers
# ==============================================================================================================


def make_rule(route: str = CHAT, upstream_url: str | None = None) -> Rule:
    return one_rule("anthropic", "claude-test", route, {"upstream_url": upstream_url} if upstream_url else {})


def _call(rule: Rule, body: dict[str, Any]):
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", json.dumps(body).encode()))


def up_body(body: dict[str, Any], rule: Rule | None = None) -> dict[str, Any]:
    rule = rule or make_rule()
    up = build_upstream(rule, _call(rule, body))
    assert up.body is not None
    return up.body


def refused(body: dict[str, Any], rule: Rule | None = None) -> ProxyError:
    rule = rule or make_rule()
    with pytest.raises(ProxyError) as e:
        build_upstream(rule, _call(rule, body))
    assert e.value.status == 400
    assert e.value.envelope()["error"]["message"]
    return e.value


def respond(body: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    rule = make_rule()
    status, out = translate_response(
        provider_for(rule), _call(rule, body), 200, json.dumps(data).encode(), "application/json"
    )
    assert status == 200, out
    return out


def stream_translate(body: dict[str, Any], raw: bytes, pieces: list[bytes], include_usage: bool = False) -> bytes:
    rule = make_rule()
    call = _call(rule, {**body, "stream": True})
    translator = provider_for(rule).stream_translator(call, include_usage, keep_payload=True)
    out = b"".join(translator.feed(p) for p in pieces) + translator.finish()
    assert translator.result.completed and translator.result.error is None
    return out


def events_of(out: bytes) -> list[dict[str, Any]]:
    datas = [line[6:] for line in out.decode().split("\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    return [json.loads(d) for d in datas[:-1]]


def normalised(out: bytes) -> list[dict[str, Any]]:
    """Stream events without the per-stream id and timestamp, to compare two translations."""
    return [{k: v for k, v in e.items() if k not in ("id", "created")} for e in events_of(out)]


def accumulate_tool_calls(deltas: list[Any]) -> dict[int, dict[str, Any]]:
    """Accumulate `delta.tool_calls` by index the way the openai SDK's stream helpers do, checking the shape:
    id, type and name only in the first delta of each call, argument fragments after."""
    calls: dict[int, dict[str, Any]] = {}
    for d in deltas:
        d = d if isinstance(d, dict) else d.model_dump(exclude_none=True)
        fn = d.get("function") or {}
        if d["index"] not in calls:
            assert d.get("id") and d.get("type") == "function" and fn.get("name"), f"first delta lacks id/name: {d}"
            calls[d["index"]] = {"id": d["id"], "name": fn["name"], "arguments": fn.get("arguments") or ""}
        else:
            assert "id" not in d and "name" not in fn, f"a later delta repeats id/name: {d}"
            calls[d["index"]]["arguments"] += fn.get("arguments") or ""
    assert sorted(calls) == list(range(len(calls))), "tool-call indexes must count tool calls only: 0, 1, ..."
    return calls


# ---- Anthropic native fixtures --------------------------------------------------------------------------------


def anthropic_tool_message(ids: list[str] = ANTHROPIC_IDS) -> dict[str, Any]:
    """Turn 1 answer: a thinking block, text before the calls, two parallel tool_use blocks."""
    return {
        "id": "msg_tools01",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": [
            {"type": "thinking", "thinking": "Two lookups.", "signature": "sig"},
            {"type": "text", "text": PREAMBLE},
            *({"type": "tool_use", "id": i, "name": n, "input": a} for i, (n, a) in zip(ids, CALLS, strict=True)),
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 30},
    }


def anthropic_tool_stream(ids: list[str] = ANTHROPIC_IDS, calls: list[tuple[str, dict]] = CALLS) -> list[bytes]:
    """The same answer streamed: thinking at block 0 and text at block 1, so the tool blocks are 2 and 3 and must
    become OpenAI tool indexes 0 and 1. Arguments arrive in several fragments, the first one empty as the API does."""

    def ev(obj: dict[str, Any]) -> bytes:
        return sse(obj, obj["type"])

    start = {"id": "msg_tools01", "type": "message", "role": "assistant", "model": "claude-fake-1", "content": []}
    events = [
        ev({"type": "message_start", "message": {**start, "usage": {"input_tokens": 40, "output_tokens": 1}}}),
        ev({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ev(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Two lookups."}}
        ),
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
        ev({"type": "content_block_stop", "index": 0}),
        ev({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        sse({"type": "ping"}, "ping"),
        ev({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": PREAMBLE[:9]}}),
        ev({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": PREAMBLE[9:]}}),
        ev({"type": "content_block_stop", "index": 1}),
    ]
    for block, (call_id, (name, args)) in enumerate(zip(ids, calls, strict=True), 2):
        tool = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        events.append(ev({"type": "content_block_start", "index": block, "content_block": tool}))
        text = json.dumps(args)
        for part in ["", *(text[k : k + 7] for k in range(0, len(text), 7))] if args else [""]:
            delta = {"type": "input_json_delta", "partial_json": part}
            events.append(ev({"type": "content_block_delta", "index": block, "delta": delta}))
        events.append(ev({"type": "content_block_stop", "index": block}))
    events += [
        ev({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
        ev({"type": "message_stop"}),
    ]
    return events


def anthropic_text_stream(text: str = FINAL) -> list[bytes]:
    start = {"id": "msg_final01", "type": "message", "role": "assistant", "model": "claude-fake-1", "content": []}
    return [
        sse({"type": "message_start", "message": {**start, "usage": {"input_tokens": 60, "output_tokens": 1}}}),
        sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        sse({"type": "content_block_stop", "index": 0}),
        sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        sse({"type": "message_stop"}),
    ]


def anthropic_text_message(text: str = FINAL) -> dict[str, Any]:
    return {
        "id": "msg_final01",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 60, "output_tokens": 9},
    }


def openai_history(ids: list[str], content: str | None = PREAMBLE) -> list[dict[str, Any]]:
    """Turn 2 as an agent sends it: the question, the assistant turn with both calls, both results."""
    calls = [
        {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a) in zip(ids, CALLS, strict=True)
    ]
    results = [{"role": "tool", "tool_call_id": i, "content": r} for i, r in zip(ids, RESULTS, strict=True)]
    return [QUESTION, {"role": "assistant", "content": content, "tool_calls": calls}, *results]


def anthropic_turn2_messages(ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": QUESTION["content"]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": PREAMBLE},
                *({"type": "tool_use", "id": i, "name": n, "input": a} for i, (n, a) in zip(ids, CALLS, strict=True)),
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": i, "content": r} for i, r in zip(ids, RESULTS, strict=True)
            ],
        },
    ]


ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather of a city",
        "input_schema": WEATHER["function"]["parameters"],
    },
    {"name": "get_time", "description": "Local time of a time zone", "input_schema": TIME["function"]["parameters"]},
]


# ==============================================================================================================
# Anthropic, pure: requests
# ==============================================================================================================


def test_turn2_history_maps_to_tool_use_and_one_user_turn_of_tool_results():
    """§12: arguments string -> object, both calls kept (Kong kept only the last Bedrock one), both results in ONE
    user turn, first, matched by id."""
    body = up_body({"messages": openai_history(OPENAI_IDS), "tools": TOOLS})
    assert body["messages"] == anthropic_turn2_messages(OPENAI_IDS)
    assert body["tools"] == ANTHROPIC_TOOLS
    assert "tool_choice" not in body


def test_foreign_tool_ids_are_made_valid_consistently():
    """Anthropic ids must match [a-zA-Z0-9_-]+: ids minted elsewhere are mapped the same way in tool_use and
    tool_result, so the pair still matches."""
    ids = ["call:1.x", "tooluse/2"]
    body = up_body({"messages": openai_history(ids), "tools": TOOLS})
    assert body["messages"] == anthropic_turn2_messages(["call_1_x", "tooluse_2"])


def test_no_empty_text_block_next_to_tool_calls_and_empty_tool_result():
    """§12: empty text blocks are rejected by Anthropic; an empty tool result goes without content."""
    messages = openai_history(OPENAI_IDS, content="")
    messages[2] = {"role": "tool", "tool_call_id": OPENAI_IDS[0], "content": ""}
    body = up_body({"messages": messages, "tools": TOOLS})
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use", "tool_use"]
    assert body["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": OPENAI_IDS[0]}


@pytest.mark.parametrize(
    ("mutate", "param"),
    [
        (lambda m: m[2].pop("tool_call_id"), "messages[2].tool_call_id"),
        (lambda m: m[1]["tool_calls"][1].pop("id"), "messages[1].tool_calls[1]"),
        (lambda m: m[1]["tool_calls"][0]["function"].pop("name"), "messages[1].tool_calls[0]"),
        (lambda m: m[1]["tool_calls"][0]["function"].update(arguments="[1, 2]"), "messages[1].tool_calls[0]"),
        (lambda m: m[1]["tool_calls"][0]["function"].update(arguments="{oops"), "messages[1].tool_calls[0]"),
        (lambda m: m[3].update(content=[{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]), None),
    ],
    ids=["no-tool-call-id", "no-call-id", "no-name", "arguments-not-object", "arguments-not-json", "image-result"],
)
def test_malformed_tool_history_is_refused(mutate, param):
    messages = openai_history(OPENAI_IDS)
    mutate(messages)
    err = refused({"messages": messages, "tools": TOOLS})
    assert err.param == (param or "messages[3].content")


def test_empty_arguments_mean_no_arguments():
    messages = openai_history(OPENAI_IDS)
    messages[1]["tool_calls"][0]["function"]["arguments"] = ""
    assert up_body({"messages": messages, "tools": TOOLS})["messages"][1]["content"][1]["input"] == {}


def test_strict_tools_keep_strict_and_other_tool_types_are_refused():
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    assert up_body({"messages": [QUESTION], "tools": [strict]})["tools"][0]["strict"] is True
    custom = {"type": "custom", "custom": {"name": "grammar"}}
    assert refused({"messages": [QUESTION], "tools": [WEATHER, custom]}).param == "tools[1]"


def test_named_tool_choice_must_name_a_tool():
    choice = {"type": "function", "function": {"name": "get_stock"}}
    assert refused({"messages": [QUESTION], "tools": TOOLS, "tool_choice": choice}).param == "tool_choice"


# ---- deprecated functions / function_call ---------------------------------------------------------------------


FUNCTIONS = [t["function"] for t in TOOLS]


@pytest.mark.parametrize(
    ("function_call", "choice"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", {"type": "none"}),
        ({"name": "get_time"}, {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}),
    ],
)
def test_functions_map_like_tools(function_call, choice):
    """The deprecated API answers with one function_call per turn: parallel tool use is disabled."""
    extra = {"function_call": function_call} if function_call is not None else {}
    body = up_body({"messages": [QUESTION], "functions": FUNCTIONS, **extra})
    assert body["tools"] == ANTHROPIC_TOOLS
    assert body["tool_choice"] == choice


def test_function_messages_become_tool_results_matched_by_name():
    """Not a hard-coded name (Kong's Gemini bug): the result answers the call of the same name."""
    messages = [
        QUESTION,
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"role": "function", "name": "get_weather", "content": "22C"},
    ]
    body = up_body({"messages": messages, "functions": FUNCTIONS})
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_fn_1", "name": "get_weather", "input": {"city": "Paris"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_fn_1", "content": "22C"}]},
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([QUESTION, {"role": "function", "name": "get_weather", "content": "22C"}], "messages[1].role"),
        (
            [
                QUESTION,
                {"role": "assistant", "content": None, "function_call": {"name": "get_time", "arguments": "{}"}},
                {"role": "function", "name": "get_weather", "content": "22C"},
            ],
            "messages[2].name",
        ),
    ],
    ids=["no-call", "other-name"],
)
def test_unmatched_function_messages_are_refused(messages, param):
    assert refused({"messages": messages, "functions": FUNCTIONS}).param == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"functions": FUNCTIONS, "tools": TOOLS}, "functions"),
        ({"function_call": "auto", "tool_choice": "auto", "tools": TOOLS}, "function_call"),
        ({"functions": FUNCTIONS, "function_call": "always"}, "function_call"),
        ({"functions": FUNCTIONS, "function_call": {"name": "nope"}}, "function_call"),
        ({"function_call": {"name": "get_time"}}, "function_call"),
        ({"functions": {"name": "get_time"}}, "functions"),
    ],
)
def test_bad_functions_requests_are_refused(extra, param):
    assert refused({"messages": [QUESTION], **extra}).param == param


def test_functions_answer_in_the_deprecated_shape():
    message = anthropic_tool_message()
    message["content"] = message["content"][:3]  # one call: the deprecated API has no parallel calls
    out = respond({"messages": [QUESTION], "functions": FUNCTIONS}, message)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert "tool_calls" not in choice["message"]


def test_functions_answer_streamed_in_the_deprecated_shape():
    events = anthropic_tool_stream(ANTHROPIC_IDS[:1], CALLS[:1])
    out = events_of(stream_translate({"messages": [QUESTION], "functions": FUNCTIONS}, b"".join(events), events))
    deltas = [e["choices"][0]["delta"] for e in out if e["choices"]]
    fc = [d["function_call"] for d in deltas if "function_call" in d]
    assert fc[0] == {"name": "get_weather", "arguments": ""} and all(set(f) == {"arguments"} for f in fc[1:])
    assert json.loads("".join(f["arguments"] for f in fc)) == {"city": "Paris"}
    assert not any("tool_calls" in d for d in deltas)
    assert out[-1]["choices"][0]["finish_reason"] == "function_call"


# ---- response_format ------------------------------------------------------------------------------------------


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def test_json_schema_maps_to_structured_outputs():
    fmt = {"type": "json_schema", "json_schema": {"name": "sum", "schema": SCHEMA, "strict": True}}
    body = up_body({"messages": [{"role": "user", "content": "1+1?"}], "response_format": fmt})
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "response_format" not in body and "system" not in body


@pytest.mark.parametrize("system", [None, "Be terse."])
def test_json_object_falls_back_to_a_system_instruction(system):
    """No native JSON mode: the documented fallback is a system instruction (appended to the client's system)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": "1+1?"}]
    body = up_body({"messages": messages, "response_format": {"type": "json_object"}})
    assert body["system"] == (f"{system}\n\n{JSON_OBJECT_INSTRUCTION}" if system else JSON_OBJECT_INSTRUCTION)
    assert "output_config" not in body


def test_json_object_on_the_completions_route():
    body = up_body({"prompt": "1+1?", "response_format": {"type": "json_object"}}, make_rule(COMPLETIONS))
    assert body["system"] == JSON_OBJECT_INSTRUCTION


@pytest.mark.parametrize(
    "fmt",
    [{"type": "json_schema"}, {"type": "json_schema", "json_schema": {"name": "x"}}, {"type": "yaml"}, "json"],
)
def test_bad_response_formats_are_refused(fmt):
    assert refused({"messages": [QUESTION], "response_format": fmt}).param == "response_format"


# ---- the legacy /v1/complete API cannot take any of it --------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": TOOLS}, "tools"),
        ({"functions": FUNCTIONS}, "functions"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": openai_history(OPENAI_IDS)}, "messages[1]"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}
                ]
            },
            "messages[0]",
        ),
    ],
)
def test_legacy_complete_refuses_what_it_would_lose(extra, param):
    rule = make_rule(upstream_url="http://127.0.0.1:9/v1/complete")
    assert refused({"messages": [QUESTION], **extra}, rule).param == param


# ==============================================================================================================
# Anthropic, pure: responses and streams
# ==============================================================================================================


def test_parallel_tool_calls_response():
    out = respond({"messages": [QUESTION], "tools": TOOLS}, anthropic_tool_message())
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == PREAMBLE and message["reasoning_content"] == "Two lookups."
    assert [(c["id"], c["type"], c["function"]["name"]) for c in message["tool_calls"]] == [
        (ANTHROPIC_IDS[0], "function", "get_weather"),
        (ANTHROPIC_IDS[1], "function", "get_time"),
    ]
    assert [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]] == [a for _, a in CALLS]


def test_stream_split_at_every_byte_offset_gives_the_same_output():
    """Text and thinking before the calls; the translation is the same however the bytes are cut."""
    body = {"messages": [QUESTION], "tools": TOOLS}
    raw = b"".join(anthropic_tool_stream())
    reference = normalised(stream_translate(body, raw, [raw], include_usage=True))
    for cut in range(1, len(raw)):
        assert normalised(stream_translate(body, raw, [raw[:cut], raw[cut:]], include_usage=True)) == reference
    one_byte = [raw[k : k + 1] for k in range(len(raw))]
    assert normalised(stream_translate(body, raw, one_byte, include_usage=True)) == reference
    assert reference[-1]["usage"] == {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70}


def test_streamed_tool_calls_equal_the_non_streamed_ones():
    """LiteLLM's streamed index/id bugs: thinking (block 0) and text (block 1) must not shift the tool indexes."""
    body = {"messages": [QUESTION], "tools": TOOLS}
    raw = b"".join(anthropic_tool_stream())
    events = events_of(stream_translate(body, raw, [raw]))
    deltas = [d for e in events if e["choices"] for d in e["choices"][0]["delta"].get("tool_calls") or []]
    streamed = accumulate_tool_calls(deltas)
    plain = respond(body, anthropic_tool_message())["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in streamed.values()] == [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in plain
    ]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == PREAMBLE
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "tool_calls"


def test_streamed_call_without_arguments_accumulates_to_an_empty_object():
    """The API streams only an empty partial_json for a function without arguments: the client must still
    accumulate valid JSON ("{}", as the non-streamed answer has), not ""."""
    calls = [("get_weather", {"city": "Paris"}), ("list_cities", {})]
    raw = b"".join(anthropic_tool_stream(ANTHROPIC_IDS, calls))
    events = events_of(stream_translate({"messages": [QUESTION], "tools": TOOLS}, raw, [raw]))
    deltas = [d for e in events if e["choices"] for d in e["choices"][0]["delta"].get("tool_calls") or []]
    streamed = accumulate_tool_calls(deltas)
    assert [json.loads(c["arguments"]) for c in streamed.values()] == [{"city": "Paris"}, {}]


# ==============================================================================================================
# End to end: the multi-turn tool conversation through a real mitmdump, streamed and not
# ==============================================================================================================


def openai_tool_completion(ids: list[str]) -> dict[str, Any]:
    calls = [
        {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a) in zip(ids, CALLS, strict=True)
    ]
    message = {"role": "assistant", "content": PREAMBLE, "tool_calls": calls, "refusal": None}
    return {
        "id": "chatcmpl-tools01",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-fake-1",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70},
    }


def openai_tool_stream(ids: list[str], azure: bool) -> list[bytes]:
    base = {"id": "chatcmpl-tools01", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-fake-1"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    events = []
    if azure:  # Azure's first chunk: no choices, blank id/model, only prompt filter results
        events.append(
            sse({"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": []})
        )
    events += [chunk({"role": "assistant", "content": ""}), chunk({"content": PREAMBLE})]
    for index, (call_id, (name, args)) in enumerate(zip(ids, CALLS, strict=True)):
        first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(chunk({"tool_calls": [first]}))
        text = json.dumps(args)
        for k in range(0, len(text), 6):
            events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": text[k : k + 6]}}]}))
    events.append(chunk({}, "tool_calls"))
    events.append(
        sse({**base, "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70}})
    )
    return [*events, b"data: [DONE]\n\n"]


def openai_text_stream() -> list[bytes]:
    base = {"id": "chatcmpl-final01", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-fake-1"}
    chunks = [({"role": "assistant", "content": ""}, None), ({"content": FINAL}, None), ({}, "stop")]
    return [
        *(
            sse({**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}]})
            for d, f in chunks
        ),
        b"data: [DONE]\n\n",
    ]


def openai_text_completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-final01",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-fake-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": FINAL}, "logprobs": None, "finish_reason": "stop"}
        ],
    }


MODEL = {"openai": "gpt-fake-1", "azure": "gpt-4o", "anthropic": "claude-fake-1"}
NATIVE_IDS = {"openai": OPENAI_IDS, "azure": OPENAI_IDS, "anthropic": ANTHROPIC_IDS}


def turn1_reply(provider: str, stream: bool) -> Reply:
    ids = NATIVE_IDS[provider]
    if provider == "anthropic":
        return Reply(chunks=anthropic_tool_stream(ids)) if stream else Reply(json=anthropic_tool_message(ids))
    return (
        Reply(chunks=openai_tool_stream(ids, provider == "azure"))
        if stream
        else Reply(json=openai_tool_completion(ids))
    )


def turn2_reply(provider: str, stream: bool) -> Reply:
    if provider == "anthropic":
        return Reply(chunks=anthropic_text_stream()) if stream else Reply(json=anthropic_text_message())
    return Reply(chunks=openai_text_stream()) if stream else Reply(json=openai_text_completion())


def ask(client: openai.OpenAI, provider: str, messages: list[dict[str, Any]], stream: bool):
    """One turn; streamed turns are accumulated by the SDK's own ChatCompletionStreamState (its stream helpers'
    accumulator), after the delta shape is checked. Returns (message, finish_reason)."""
    if not stream:
        resp = client.chat.completions.create(model=MODEL[provider], messages=messages, tools=TOOLS)
        return resp.choices[0].message, resp.choices[0].finish_reason
    state = ChatCompletionStreamState()
    deltas = []
    for chunk in client.chat.completions.create(model=MODEL[provider], messages=messages, tools=TOOLS, stream=True):
        state.handle_chunk(chunk)
        if chunk.choices:
            deltas += chunk.choices[0].delta.tool_calls or []
    accumulate_tool_calls(deltas)  # the delta-shape checks
    final = state.get_final_completion()
    return final.choices[0].message, final.choices[0].finish_reason


def check_native_turn2(provider: str, e: Env, history: list[dict[str, Any]]) -> None:
    """What the fake provider received for turn 2: the native tool-use blocks/ids/names and the results
    matched to them (Anthropic), or the history passed through unchanged (OpenAI, Azure)."""
    seen = e.fake(provider).last()
    body = seen.json
    if provider == "anthropic":
        assert seen.path == "/v1/messages"
        assert body["messages"] == anthropic_turn2_messages(ANTHROPIC_IDS)
        assert body["tools"] == ANTHROPIC_TOOLS
        return
    assert seen.path == (
        "/v1/chat/completions" if provider == "openai" else "/openai/deployments/dep-e2e/chat/completions"
    )
    assert body["messages"] == history
    assert body["tools"] == TOOLS


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
def test_multi_turn_tool_round_trip(e: Env, provider: str) -> None:
    """user -> two parallel tool calls -> two tool results -> final answer, non-streamed then streamed, through a
    real mitmdump. The streamed calls (accumulated as the SDK does) equal the non-streamed ones. Guards: Kong could
    not stream Anthropic tool calls; LiteLLM's streamed index/id bugs (thinking + text before the calls here);
    Kong's last-tool-call-only bug (both parallel calls must survive)."""
    client = e.client(provider)
    got: dict[bool, list[tuple[str, str, Any]]] = {}
    for stream in (False, True):
        e.reset()
        e.fake(provider).queue(turn1_reply(provider, stream), turn2_reply(provider, stream))
        message, finish = ask(client, provider, [QUESTION], stream)
        assert finish == "tool_calls"
        assert message.content == PREAMBLE
        calls = message.tool_calls
        assert len(calls) == 2
        got[stream] = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls]
        assert all(isinstance(c.function.arguments, str) for c in calls)
        assert [(i, n, a) for i, n, a in got[stream]] == [
            (i, n, a) for i, (n, a) in zip(NATIVE_IDS[provider], CALLS, strict=True)
        ]
        first = e.fake(provider).last().json
        if provider == "anthropic":
            assert first["tools"] == ANTHROPIC_TOOLS and first["stream"] is stream
        else:
            assert first["tools"] == TOOLS
        # Turn 2: the history as an agent sends it, with the ids the client got.
        history = [
            QUESTION,
            {"role": "assistant", "content": message.content, "tool_calls": [c.model_dump() for c in calls]},
            *({"role": "tool", "tool_call_id": c.id, "content": r} for c, r in zip(calls, RESULTS, strict=True)),
        ]
        answer, finish = ask(client, provider, history, stream)
        assert (answer.content, finish) == (FINAL, "stop")
        check_native_turn2(provider, e, history)
    assert got[True] == got[False]


@pytest.mark.e2e
def test_anthropic_functions_round_trip(e: Env) -> None:
    """The deprecated functions/function_call API through the Anthropic translator, streamed and not."""
    client = e.client("anthropic")
    one_call = anthropic_tool_message()
    one_call["content"] = one_call["content"][:3]
    for stream in (False, True):
        e.reset()
        first = Reply(chunks=anthropic_tool_stream(ANTHROPIC_IDS[:1], CALLS[:1])) if stream else Reply(json=one_call)
        e.anthropic.queue(first, turn2_reply("anthropic", stream=False))
        kw = {"model": "claude-fake-1", "functions": FUNCTIONS, "function_call": "auto"}
        if stream:
            name, arguments, finish = "", "", None
            for chunk in client.chat.completions.create(messages=[QUESTION], stream=True, **kw):
                fc = chunk.choices[0].delta.function_call if chunk.choices else None
                if fc:
                    name += fc.name or ""
                    arguments += fc.arguments or ""
                if chunk.choices and chunk.choices[0].finish_reason:
                    finish = chunk.choices[0].finish_reason
        else:
            resp = client.chat.completions.create(messages=[QUESTION], **kw)
            fc = resp.choices[0].message.function_call
            name, arguments, finish = fc.name, fc.arguments, resp.choices[0].finish_reason
        assert (name, json.loads(arguments), finish) == ("get_weather", {"city": "Paris"}, "function_call")
        assert e.anthropic.last().json["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
        history = [
            QUESTION,
            {"role": "assistant", "content": None, "function_call": {"name": name, "arguments": arguments}},
            {"role": "function", "name": name, "content": RESULTS[0]},
        ]
        answer = client.chat.completions.create(messages=history, stream=False, **kw)
        assert answer.choices[0].message.content == FINAL
        assert e.anthropic.last().json["messages"][1:] == [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "call_fn_1", "name": name, "input": CALLS[0][1]}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_fn_1", "content": RESULTS[0]}]},
        ]
        e.anthropic.reset()


# ==============================================================================================================
# End to end: images and JSON output
# ==============================================================================================================

PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
IMAGE_MESSAGES = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare these two."},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://images.example/cat.jpg"}},
        ],
    }
]


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
def test_images_reach_the_provider(e: Env, provider: str, stream: bool) -> None:
    """data: URLs -> base64 image blocks and http(s) URLs -> url image blocks (Anthropic); unchanged (OpenAI,
    Azure)."""
    client = e.client(provider)
    resp = client.chat.completions.create(model=MODEL[provider], messages=IMAGE_MESSAGES, stream=stream)
    text = (
        "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
        if stream
        else resp.choices[0].message.content
    )
    assert text
    body = e.fake(provider).last().json
    if provider != "anthropic":
        assert body["messages"] == IMAGE_MESSAGES
        return
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these two."},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]},
                },
                {"type": "image", "source": {"type": "url", "url": "https://images.example/cat.jpg"}},
            ],
        }
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_refuses_an_unusable_image_url_with_a_400(e: Env, stream: bool) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]
    with pytest.raises(openai.BadRequestError) as err:
        e.client("anthropic").chat.completions.create(model="claude-fake-1", messages=messages, stream=stream)
    assert err.value.body["param"] == "messages[0].content[0]"
    assert e.anthropic.requests == []


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_json_output(e: Env, stream: bool) -> None:
    """json_schema -> output_config.format (structured outputs); json_object -> the system-instruction fallback.
    The JSON answer reaches the client in `content`."""
    client = e.client("anthropic")
    answer = '{"answer": 2}'
    schema_format = {"type": "json_schema", "json_schema": {"name": "sum", "schema": SCHEMA, "strict": True}}
    for response_format in (schema_format, {"type": "json_object"}):
        e.anthropic.queue(
            Reply(chunks=anthropic_text_stream(answer)) if stream else Reply(json=anthropic_text_message(answer))
        )
        messages = [{"role": "system", "content": "You add."}, {"role": "user", "content": "1+1 as JSON?"}]
        resp = client.chat.completions.create(
            model="claude-fake-1", messages=messages, response_format=response_format, stream=stream
        )
        text = (
            "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
            if stream
            else resp.choices[0].message.content
        )
        assert json.loads(text) == {"answer": 2}
        body = e.anthropic.last().json
        if response_format is schema_format:
            assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
            assert body["system"] == "You add."
        else:
            assert "output_config" not in body
            assert body["system"] == f"You add.\n\n{JSON_OBJECT_INSTRUCTION}"
        assert "response_format" not in body
