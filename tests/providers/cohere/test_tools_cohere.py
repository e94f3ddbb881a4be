"""Tool calls, images and JSON output for Cohere (v2 and v1), streamed and not.

Pure tests of the mapping first, then the multi-turn round trip end to end: the `openai` SDK through a real
mitmdump to a fake Cohere (tests/support/tools.py: the conversation and its two turns). Turn 2's native request is
checked (tool calls, ids, names, results matched to them).

Peer bugs guarded against: LiteLLM's streamed tool-call index/id bugs (indexes that count content blocks instead of
tool calls, ids missing from the first delta of a call or repeated on later ones, calls merged across indexes).
docs/providers.md §12 pitfalls about tools covered here: arguments are a JSON string in OpenAI but an object in
Cohere v1; Cohere v1 has no tool-call ids (synthesised and resolved back on the next turn); Cohere v2 `tool_plan`,
`tool_choice` REQUIRED/NONE, `tool-call-*` stream events.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from addon.errors import ProxyError
from addon.exchange import build_upstream, provider_for, translate_response
from addon.providers.cohere import COHERE
from tests.providers.cohere.test_provider_cohere import call as cohere_call
from tests.providers.cohere.test_provider_cohere import make_rule as cohere_rule
from tests.support.fakes import FakeUpstream, Recorded, Reply
from tests.support.mitmdump import Mitmdump, running
from tests.support.tools import (
    CALLS,
    FINAL,
    PLAN,
    QUESTION,
    RANDOM_CALL_ID,
    RESULTS,
    USER,
    WEATHER,
    as_history,
    assert_split_invariant,
    assert_tool_deltas_well_formed,
    client_through,
    history,
    meaning,
    openai_calls,
    sdk_accumulate,
    turn1,
    turn2,
)

COHERE_MODEL = "command-a-03-2025"
COHERE_KEY = "co-tools-fake-key-0005"

# ==============================================================================================================
# Cohere v2
# ==============================================================================================================

COHERE_IDS = ["get_weather_1byjy32y4hvq", "get_weather_9xk2m4p7q1zs"]


def cohere_body(rule: Any, body: dict[str, Any]) -> dict[str, Any]:
    up = build_upstream(rule, cohere_call(rule, body))
    assert up.body is not None
    return up.body


def cohere_refused(rule: Any, body: dict[str, Any]) -> ProxyError:
    with pytest.raises(ProxyError) as e:
        build_upstream(rule, cohere_call(rule, body))
    assert e.value.status == 400, e.value.message
    return e.value


def cohere_v2_turn2(ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "tool_calls": openai_calls(ids), "tool_plan": PLAN},
        *({"role": "tool", "tool_call_id": i, "content": r} for i, r in zip(ids, RESULTS, strict=True)),
    ]


def test_cohere_v2_tool_history_maps_to_tool_plan_and_tool_messages() -> None:
    body = cohere_body(cohere_rule(), {"messages": history(openai_calls(COHERE_IDS)), "tools": [WEATHER]})
    assert body["messages"] == cohere_v2_turn2(COHERE_IDS)
    assert body["tools"] == [WEATHER]
    assert "tool_choice" not in body  # auto is Cohere's default


@pytest.mark.parametrize(("choice", "expected"), [("required", "REQUIRED"), ("none", "NONE"), ("auto", None)])
def test_cohere_v2_tool_choice(choice: str, expected: str | None) -> None:
    body = cohere_body(cohere_rule(), {"messages": USER, "tools": [WEATHER], "tool_choice": choice})
    assert body.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [*USER, {"role": "tool", "content": "x"}], "tools": [WEATHER]}, "messages[1].tool_call_id"),
        (
            {"messages": [*USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
            "messages[1].tool_calls[0]",
        ),
        ({"messages": USER, "tools": [WEATHER], "parallel_tool_calls": False}, "parallel_tool_calls"),
        (
            {"messages": USER, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
    ],
)
def test_cohere_v2_tool_refusals(body: dict[str, Any], param: str) -> None:
    assert cohere_refused(cohere_rule(), body).param == param


def test_cohere_v2_response_format() -> None:
    """providers.md §11.1: json_object as is; json_schema as `{type: json_object, json_schema: <schema>}`."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    rf = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    assert cohere_body(cohere_rule(), {"messages": USER, "response_format": rf})["response_format"] == {
        "type": "json_object",
        "json_schema": schema,
    }
    body = cohere_body(cohere_rule(), {"messages": USER, "response_format": {"type": "json_object"}})
    assert body["response_format"] == {"type": "json_object"}


def test_cohere_v2_images_pass_through() -> None:
    parts = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png", "detail": "low"}},
    ]
    body = cohere_body(cohere_rule(), {"messages": [{"role": "user", "content": parts}]})
    assert body["messages"][0]["content"] == parts


def cohere_v2_tool_answer() -> dict[str, Any]:
    return {
        "id": "c14c80c3",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": PLAN,
            "tool_calls": openai_calls(COHERE_IDS),
            "content": [],
            "citations": [],
        },
        "usage": {"tokens": {"input_tokens": 50, "output_tokens": 20}},
    }


def cohere_sse(e: dict[str, Any]) -> bytes:
    return f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()


def cohere_v2_tool_stream() -> list[bytes]:
    events: list[dict[str, Any]] = [
        {"id": "a8fc", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": PLAN[:9]}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": PLAN[9:]}}},
    ]
    for n, (tool_id, (name, args)) in enumerate(zip(COHERE_IDS, CALLS, strict=True)):
        start = {"id": tool_id, "type": "function", "function": {"name": name, "arguments": ""}}
        events.append({"type": "tool-call-start", "index": n, "delta": {"message": {"tool_calls": start}}})
        raw = json.dumps(args)
        for piece in (raw[:5], raw[5:]):
            delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
            events.append({"type": "tool-call-delta", "index": n, "delta": delta})
        events.append({"type": "tool-call-end", "index": n})
    usage = {"tokens": {"input_tokens": 50, "output_tokens": 20}}
    events.append({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": usage}})
    return [cohere_sse(e) for e in events]


def test_cohere_v2_streamed_tool_calls_equal_the_non_streamed_ones() -> None:
    rule = cohere_rule(name=COHERE_MODEL)
    status, out = translate_response(
        provider_for(rule),
        cohere_call(rule, {"messages": USER}),
        200,
        json.dumps(cohere_v2_tool_answer()).encode(),
        "application/json",
    )
    assert status == 200
    whole = ChatCompletion.model_validate(out).choices[0]
    assert whole.finish_reason == "tool_calls" and whole.message.content == PLAN
    assert [c.id for c in whole.message.tool_calls or []] == COHERE_IDS

    call = cohere_call(rule, {"messages": USER, "stream": True})
    events = assert_split_invariant(
        lambda: COHERE.stream_translator(call, False, True), b"".join(cohere_v2_tool_stream())
    )
    assert_tool_deltas_well_formed(events, 2)
    final = sdk_accumulate(events).choices[0]
    assert final.finish_reason == "tool_calls" and final.message.content == PLAN
    assert [c.id for c in final.message.tool_calls or []] == COHERE_IDS
    assert meaning(final.message.tool_calls) == meaning(whole.message.tool_calls) == [(n, a) for n, a in CALLS]


# ==============================================================================================================
# Cohere v1: id-less tool calls, parameter_definitions, tool_results
# ==============================================================================================================

V1_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameter_definitions": {
        "city": {"type": "str", "description": "City name", "required": True},
        "unit": {"type": "str", "required": False},
    },
}
V1_CALLS = [{"name": n, "parameters": a} for n, a in CALLS]


def test_cohere_v1_tools_are_parameter_definitions() -> None:
    rich = copy.deepcopy(WEATHER)
    rich["function"]["parameters"]["properties"].update(
        {
            "days": {"type": "integer"},
            "hourly": {"type": "boolean"},
            "lat": {"type": ["number", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "extra": {"type": "object"},
        }
    )
    body = cohere_body(cohere_rule(cohere_api="v1"), {"messages": USER, "tools": [rich]})
    assert body["tools"][0]["name"] == "get_weather"
    assert body["tools"][0]["description"] == "Current weather of a city"
    assert {k: v["type"] for k, v in body["tools"][0]["parameter_definitions"].items()} == {
        "city": "str",
        "unit": "str",
        "days": "int",
        "hourly": "bool",
        "lat": "float",
        "tags": "List[str]",
        "extra": "Dict",
    }
    assert body["message"] == QUESTION and "tool_results" not in body


def test_cohere_v1_tool_results_resolve_the_synthesised_ids() -> None:
    """Cohere v1 tool calls have no ids (providers.md §12): the ids the proxy synthesised come back in the tool
    messages and are resolved through the assistant's tool calls; the results repeat each `call`; the turn ending
    with tool results is sent as `tool_results` with an empty `message`, as Cohere's own loop does."""
    ids = ["call_aaaaaaaaaaaaaaaaaaaaaaaa", "call_bbbbbbbbbbbbbbbbbbbbbbbb"]
    body = cohere_body(cohere_rule(cohere_api="v1"), {"messages": history(openai_calls(ids)), "tools": [WEATHER]})
    assert body["tools"] == [V1_WEATHER_TOOL]
    assert body["chat_history"] == [
        {"role": "USER", "message": QUESTION},
        {"role": "CHATBOT", "message": PLAN, "tool_calls": V1_CALLS},
    ]
    assert body["message"] == ""
    assert body["tool_results"] == [
        {"call": V1_CALLS[0], "outputs": [{"temp": 22, "sky": "sunny"}]},  # a JSON object result is the output
        {"call": V1_CALLS[1], "outputs": [{"result": "9C, rainy"}]},  # other text is wrapped
    ]


def test_cohere_v1_earlier_tool_turns_are_tool_history() -> None:
    ids = ["c1", "c2"]
    messages = [*history(openai_calls(ids), content=None), {"role": "assistant", "content": FINAL}]
    messages.append({"role": "user", "content": "And tomorrow?"})
    body = cohere_body(cohere_rule(cohere_api="v1"), {"messages": messages, "tools": [WEATHER]})
    assert body["chat_history"] == [
        {"role": "USER", "message": QUESTION},
        {"role": "CHATBOT", "message": "", "tool_calls": V1_CALLS},
        {
            "role": "TOOL",
            "tool_results": [
                {"call": V1_CALLS[0], "outputs": [{"temp": 22, "sky": "sunny"}]},
                {"call": V1_CALLS[1], "outputs": [{"result": "9C, rainy"}]},
            ],
        },
        {"role": "CHATBOT", "message": FINAL},
    ]
    assert body["message"] == "And tomorrow?" and "tool_results" not in body


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": USER, "tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),
        (
            {"messages": USER, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "g"}}},
            "tool_choice",
        ),
        ({"messages": history(openai_calls(["a", "b"]))}, "tools"),  # tool turns need the tools
        ({"messages": history(openai_calls(["a", "b"])), "tools": [WEATHER], "tool_choice": "none"}, "tool_choice"),
        ({"messages": history(openai_calls(["a", "b"]))[:-1], "tools": [WEATHER]}, "messages[1].tool_calls"),
        (
            {
                "messages": [
                    *history(openai_calls(["a", "b"]))[:2],
                    {"role": "tool", "tool_call_id": "zz", "content": "x"},
                ],
                "tools": [WEATHER],
            },
            "messages[2].role",
        ),
        (
            {
                "messages": USER,
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"anyOf": []}}}},
                    }
                ],
            },
            "tools[0].function.parameters.properties.x",
        ),
    ],
)
def test_cohere_v1_tool_refusals(body: dict[str, Any], param: str) -> None:
    assert cohere_refused(cohere_rule(cohere_api="v1"), body).param == param


def test_cohere_v1_tool_choice_none_without_tool_turns_drops_the_tools() -> None:
    body = cohere_body(cohere_rule(cohere_api="v1"), {"messages": USER, "tools": [WEATHER], "tool_choice": "none"})
    assert "tools" not in body


def cohere_v1_tool_answer() -> dict[str, Any]:
    return {
        "response_id": "r1",
        "generation_id": "g1",
        "text": PLAN,
        "finish_reason": "COMPLETE",  # v1 says COMPLETE: the tool calls make it tool_calls
        "tool_calls": V1_CALLS,
        "meta": {"tokens": {"input_tokens": 60, "output_tokens": 25}},
    }


def ndjson(e: dict[str, Any]) -> bytes:
    return json.dumps(e).encode() + b"\n"


def cohere_v1_tool_stream() -> list[bytes]:
    chunks = [{"is_finished": False, "event_type": "tool-calls-chunk", "text": p} for p in (PLAN[:9], PLAN[9:])]
    chunks += [
        {
            "is_finished": False,
            "event_type": "tool-calls-chunk",
            "tool_call_delta": {"index": 0, "name": "get_weather"},
        },
        {"is_finished": False, "event_type": "tool-calls-chunk", "tool_call_delta": {"index": 0, "parameters": '{"ci'}},
    ]
    return [
        ndjson({"is_finished": False, "event_type": "stream-start", "generation_id": "g1"}),
        *(ndjson(c) for c in chunks),
        ndjson({"is_finished": False, "event_type": "tool-calls-generation", "text": PLAN, "tool_calls": V1_CALLS}),
        ndjson(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "finish_reason": "COMPLETE",
                "response": cohere_v1_tool_answer(),
            }
        ),
    ]


def test_cohere_v1_tool_calls_get_ids_streamed_and_not() -> None:
    rule = cohere_rule(cohere_api="v1")
    status, out = translate_response(
        provider_for(rule),
        cohere_call(rule, {"messages": USER}),
        200,
        json.dumps(cohere_v1_tool_answer()).encode(),
        "application/json",
    )
    assert status == 200
    whole = ChatCompletion.model_validate(out).choices[0]
    assert whole.finish_reason == "tool_calls" and whole.message.content == PLAN
    ids = [c.id for c in whole.message.tool_calls or []]
    assert len(set(ids)) == 2 and all(RANDOM_CALL_ID.fullmatch(i) for i in ids)

    call = cohere_call(rule, {"messages": USER, "stream": True})
    events = assert_split_invariant(
        lambda: COHERE.stream_translator(call, True, True), b"".join(cohere_v1_tool_stream())
    )
    assert_tool_deltas_well_formed(events, 2)
    final = sdk_accumulate(events).choices[0]
    assert final.finish_reason == "tool_calls" and final.message.content == PLAN  # the plan once, not twice
    assert meaning(final.message.tool_calls) == meaning(whole.message.tool_calls) == [(n, a) for n, a in CALLS]
    assert events[-2]["usage"] == {"prompt_tokens": 60, "completion_tokens": 25, "total_tokens": 85}


def test_cohere_v1_stream_end_alone_still_carries_the_tool_calls() -> None:
    """No tool-calls-generation event: the calls of stream-end's response are sent."""
    rule = cohere_rule(cohere_api="v1")
    call = cohere_call(rule, {"messages": USER, "stream": True})
    data = cohere_v1_tool_stream()
    data = b"".join(d for d in data if b"tool-calls-generation" not in d)
    final = sdk_accumulate(assert_split_invariant(lambda: COHERE.stream_translator(call, False, True), data))
    assert final.choices[0].finish_reason == "tool_calls"
    assert meaning(final.choices[0].message.tool_calls) == [(n, a) for n, a in CALLS]


# ==============================================================================================================
# End to end: the openai SDK -> mitmdump -> fake Cohere, the multi-turn round trip
# ==============================================================================================================


def rules_yaml(cohere_url: str) -> str:
    cohere_auth = '{header_name: Authorization, header_value: "Bearer ${E2E_COHERE_KEY}"}'
    return f"""
rules:
  - name: cohere-v2-tools
    match: {{host: cohere.internal, path: /v1/chat/completions}}
    model: {{provider: cohere, name: {COHERE_MODEL}, options: {{upstream_url: "{cohere_url}"}}}}
    auth: {cohere_auth}
  - name: cohere-v1-tools
    match: {{host: cohere-v1.internal, path: /v1/chat/completions}}
    model: {{provider: cohere, name: command-r-plus, options: {{upstream_url: "{cohere_url}", cohere_api: v1}}}}
    auth: {cohere_auth}
"""


@dataclass
class Env:
    proxy: Mitmdump
    cohere: FakeUpstream

    def client(self, host: str) -> openai.OpenAI:
        return client_through(self.proxy, host)


@pytest.fixture(scope="module")
def tools_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    cohere = FakeUpstream("cohere")
    workdir = tmp_path_factory.mktemp("e2e-tools-cohere")
    proxy = Mitmdump(workdir, rules_yaml(cohere.url), env={"E2E_COHERE_KEY": COHERE_KEY})
    with running(proxy, cohere):
        yield Env(proxy, cohere)


@pytest.fixture
def env(tools_env: Env) -> Env:
    tools_env.cohere.reset()
    return tools_env


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_e2e_cohere_v2_tool_round_trip(env: Env, stream: bool) -> None:
    final = {
        "id": "f1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": FINAL}]},
        "usage": {"tokens": {"input_tokens": 90, "output_tokens": 12}},
    }
    final_stream = [
        cohere_sse({"id": "f1", "type": "message-start", "delta": {"message": {"role": "assistant"}}}),
        cohere_sse(
            {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}
        ),
        cohere_sse({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": FINAL}}}}),
        cohere_sse({"type": "content-end", "index": 0}),
        cohere_sse({"type": "message-end", "delta": {"finish_reason": "COMPLETE"}}),
    ]
    if stream:
        env.cohere.queue(Reply(chunks=cohere_v2_tool_stream()), Reply(chunks=final_stream))
    else:
        env.cohere.queue(Reply(json=cohere_v2_tool_answer()), Reply(json=final))
    client = env.client("cohere.internal")
    message = turn1(client, COHERE_MODEL, stream)
    assert [c.id for c in message.tool_calls] == COHERE_IDS
    assert message.content == PLAN
    assert turn2(client, COHERE_MODEL, stream, as_history(message)) == FINAL

    first, second = (cohere_native(r, "/v2/chat", stream) for r in env.cohere.requests)
    assert first["messages"] == [{"role": "user", "content": QUESTION}] and first["tools"] == [WEATHER]
    assert second["messages"] == cohere_v2_turn2(COHERE_IDS) and second["tools"] == [WEATHER]


def cohere_native(req: Recorded, path: str, stream: bool) -> dict[str, Any]:
    assert (req.method, req.path) == ("POST", path)
    assert req.headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert req.json["stream"] is stream
    return req.json


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_e2e_cohere_v1_tool_round_trip(env: Env, stream: bool) -> None:
    """Cohere v1's id-less tool calls get ids; turn 2 resolves them back to the `call`s of tool_results."""
    final = {"response_id": "r2", "generation_id": "g2", "text": FINAL, "finish_reason": "COMPLETE"}
    final_stream = [
        ndjson({"is_finished": False, "event_type": "stream-start", "generation_id": "g2"}),
        ndjson({"is_finished": False, "event_type": "text-generation", "text": FINAL}),
        ndjson({"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE", "response": final}),
    ]
    ctype = {"content-type": "application/stream+json"}
    if stream:
        env.cohere.queue(
            Reply(chunks=cohere_v1_tool_stream(), headers=ctype), Reply(chunks=final_stream, headers=ctype)
        )
    else:
        env.cohere.queue(Reply(json=cohere_v1_tool_answer()), Reply(json=final))
    client = env.client("cohere-v1.internal")
    message = turn1(client, "command-r-plus", stream)
    assert message.content == PLAN
    assert turn2(client, "command-r-plus", stream, as_history(message)) == FINAL

    first, second = (cohere_native(r, "/v1/chat", stream) for r in env.cohere.requests)
    assert first["message"] == QUESTION and first["tools"] == [V1_WEATHER_TOOL]
    assert second["tools"] == [V1_WEATHER_TOOL]
    assert second["chat_history"] == [
        {"role": "USER", "message": QUESTION},
        {"role": "CHATBOT", "message": PLAN, "tool_calls": V1_CALLS},
    ]
    assert second["message"] == ""
    assert second["tool_results"] == [
        {"call": V1_CALLS[0], "outputs": [{"temp": 22, "sky": "sunny"}]},
        {"call": V1_CALLS[1], "outputs": [{"result": "9C, rainy"}]},
    ]
