"""Tool calls, images and JSON output for Amazon Bedrock (Converse) and Cohere (v2 and v1), streamed and not.

Pure tests of the mapping first, then the multi-turn round trip end to end: the `openai` SDK through a real
mitmdump to fake providers (the fake Bedrock verifies every request's SigV4 signature). Turn 1: the user asks; the
provider answers, natively, with TWO parallel tool calls; the SDK's own types parse them. Turn 2: the client sends
the history back (user, assistant with both tool calls, two `tool` results); the native request of that turn is
checked (tool-use blocks, ids, names, results matched to them); the final answer comes back. Streamed, the
`delta.tool_calls` are accumulated by the SDK's own stream helper (`ChatCompletionStreamState`, by `index`) and
must equal the non-streamed tool calls.

Peer bugs guarded against (named in the tests):
* Kong kept only the LAST Bedrock tool call of a turn (several toolUse blocks -> one OpenAI tool call).
* LiteLLM's streamed tool-call index/id bugs: indexes that count content blocks instead of tool calls, ids missing
  from the first delta of a call or repeated on later ones, calls merged across indexes.
docs/providers.md §12 pitfalls about tools covered here: arguments are a JSON string in OpenAI but an object in
Bedrock and Cohere v1; Cohere v1 has no tool-call ids (synthesised and resolved back on the next turn); Bedrock's
toolUseId charset `[a-zA-Z0-9_.:-]{1,64}`; Bedrock `contentBlockIndex` counts every block (renumbered); Bedrock
needs `toolConfig` whenever the history holds tool blocks; tool results fold into one user turn for Bedrock;
Cohere v2 `tool_plan`, `tool_choice` REQUIRED/NONE, `tool-call-*` stream events.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from addon.errors import ProxyError
from addon.exchange import build_upstream, provider_for, translate_response
from addon.providers.bedrock import BEDROCK, decode_tool_id, encode_tool_id
from addon.providers.cohere import COHERE
from tests.providers.bedrock.test_e2e_bedrock import BedrockReply, FakeBedrock
from tests.providers.bedrock.test_provider_bedrock import event
from tests.providers.bedrock.test_provider_bedrock import make_call as bedrock_call
from tests.providers.bedrock.test_provider_bedrock import make_rule as bedrock_rule
from tests.providers.cohere.test_provider_cohere import call as cohere_call
from tests.providers.cohere.test_provider_cohere import make_rule as cohere_rule
from tests.support.fakes import FakeUpstream, Recorded, Reply
from tests.support.mitmdump import Mitmdump

BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
COHERE_MODEL = "command-a-03-2025"
KEY_ID = "AKIDTOOLSBEDROCKFAKE"
SECRET = "tools/bedrock+secret/00000000000000000001"
REGION = "us-east-1"
COHERE_KEY = "co-tools-fake-key-0005"

QUESTION = "What is the weather in Paris and in Oslo?"
PLAN = "Let me check both cities."
FINAL = "Paris: 22C and sunny. Oslo: 9C and rainy."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    },
}
CALLS = [("get_weather", {"city": "Paris", "unit": "C"}), ("get_weather", {"city": "Oslo"})]
RESULTS = ['{"temp": 22, "sky": "sunny"}', "9C, rainy"]
USER = [{"role": "user", "content": QUESTION}]


def history(tool_calls: list[dict[str, Any]], content: str | None = PLAN) -> list[dict[str, Any]]:
    """Turn 2's messages: the question, the assistant's tool calls, one tool message per call."""
    return [
        *USER,
        {"role": "assistant", "content": content, "tool_calls": tool_calls},
        *({"role": "tool", "tool_call_id": c["id"], "content": r} for c, r in zip(tool_calls, RESULTS, strict=True)),
    ]


def openai_calls(ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"id": i, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in zip(ids, CALLS, strict=True)
    ]


def meaning(tool_calls: Any) -> list[tuple[str, Any]]:
    """Names and parsed arguments: what must be equal streamed and not."""
    out = []
    for c in tool_calls:
        fn = c["function"] if isinstance(c, dict) else c.function
        name, arguments = (fn["name"], fn["arguments"]) if isinstance(fn, dict) else (fn.name, fn.arguments)
        assert isinstance(arguments, str)  # a JSON string, as OpenAI sends it (providers.md §12)
        out.append((name, json.loads(arguments)))
    return out


# --------------------------------------------------------------------------------------------------------------
# Stream helpers: raw bytes split every way, SSE parsed, accumulated by the openai SDK's own stream state
# --------------------------------------------------------------------------------------------------------------


def splits(data: bytes) -> Iterator[list[bytes]]:
    """The body whole, cut at every offset, and in 1-byte pieces."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def sse_events(out: bytes) -> list[Any]:
    events: list[Any] = []
    for block in out.decode().split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


_RANDOM_CALL_ID = re.compile(r"call_[0-9a-f]{24}")


def normalised(events: list[Any]) -> list[Any]:
    """Without the per-response id and timestamp, and synthesised tool-call ids numbered in order."""
    out = []
    ids: dict[str, str] = {}
    for e in events:
        if isinstance(e, dict):
            e = {k: v for k, v in e.items() if k not in ("id", "created")}
            text = _RANDOM_CALL_ID.sub(lambda m: ids.setdefault(m[0], f"call_{len(ids)}"), json.dumps(e))
            e = json.loads(text)
        out.append(e)
    return out


def translate(translator_of: Any, pieces: list[bytes]) -> list[Any]:
    t = translator_of()
    return sse_events(b"".join(t.feed(p) for p in pieces) + t.finish())


def assert_split_invariant(translator_of: Any, data: bytes) -> list[Any]:
    reference = normalised(translate(translator_of, [data]))
    for pieces in splits(data):
        got = normalised(translate(translator_of, pieces))
        assert got == reference, f"split {[len(p) for p in pieces][:3]}"
    return translate(translator_of, [data])


def sdk_accumulate(events: list[Any]) -> ChatCompletion:
    """What `client.chat.completions.stream()` builds from the chunks: accumulation by `index`."""
    assert events[-1] == "[DONE]"
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState(input_tools=[WEATHER])
    for e in events[:-1]:
        assert "error" not in e, e
        state.handle_chunk(ChatCompletionChunk.model_validate(e))
    return state.get_final_completion()


def assert_tool_deltas_well_formed(events: list[Any], count: int) -> None:
    """OpenAI's stream shape (LiteLLM's index/id bugs): `index` counts tool calls only, from 0; each call's id,
    type and name come once, in its first delta; later deltas carry only argument fragments."""
    seen: list[int] = []
    for e in events[:-1]:
        for choice in e["choices"]:
            for tc in choice["delta"].get("tool_calls") or []:
                index = tc["index"]
                if index not in seen:
                    assert index == len(seen), f"tool-call index {index} after {seen}"
                    seen.append(index)
                    assert tc["id"] and tc["type"] == "function" and tc["function"]["name"]
                else:
                    assert set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"}, tc
    assert seen == list(range(count))


# ==============================================================================================================
# Bedrock: requests
# ==============================================================================================================


def bedrock_body(body: dict[str, Any]) -> dict[str, Any]:
    rule = bedrock_rule()
    up = build_upstream(rule, bedrock_call(rule, body))
    assert up.body is not None
    return up.body


def bedrock_refused(body: dict[str, Any]) -> ProxyError:
    rule = bedrock_rule()
    with pytest.raises(ProxyError) as e:
        build_upstream(rule, bedrock_call(rule, body))
    assert e.value.status == 400, e.value.message
    return e.value


def bedrock_turn2(ids: list[str]) -> list[dict[str, Any]]:
    """The native messages Converse must get for turn 2."""
    return [
        {"role": "user", "content": [{"text": QUESTION}]},
        {
            "role": "assistant",
            "content": [
                {"text": PLAN},
                *({"toolUse": {"toolUseId": i, "name": n, "input": a}} for i, (n, a) in zip(ids, CALLS, strict=True)),
            ],
        },
        {  # all tool results of the turn in ONE user message, in call order
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": i, "content": [{"text": r}]}} for i, r in zip(ids, RESULTS, strict=True)
            ],
        },
    ]


BEDROCK_TOOL_CONFIG = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather of a city",
                "inputSchema": {"json": WEATHER["function"]["parameters"]},
            }
        }
    ]
}


def test_bedrock_two_parallel_tool_calls_and_their_results_map_to_converse() -> None:
    """Both toolUse blocks and both toolResults, matched by id; arguments (an OpenAI JSON string) become the
    `input` object; toolConfig is present because the history holds tool blocks (providers.md §5.3, §12)."""
    ids = ["tooluse_paris01", "tooluse_oslo02"]
    body = bedrock_body({"messages": history(openai_calls(ids)), "tools": [WEATHER]})
    assert body["messages"] == bedrock_turn2(ids)
    assert body["toolConfig"] == BEDROCK_TOOL_CONFIG


@pytest.mark.parametrize(
    "client_ids",
    [
        ["call_abc/1", "call abc#2"],  # characters Converse refuses
        ["call_" + "x" * 70, "call_" + "y" * 70],  # too long (64 at most)
        ["b64.forged", "sha.forged"],  # look like encoded ids: encoded too, so decoding never misreads them
    ],
)
def test_bedrock_tool_use_ids_that_do_not_fit_are_mapped_and_match(client_ids: list[str]) -> None:
    """toolUseId is `[a-zA-Z0-9_.:-]{1,64}` (providers.md §5.3, §12): other OpenAI ids are mapped the same way in
    the toolUse block and in its toolResult, so they still match; encodable ids come back as the client sent
    them."""
    body = bedrock_body({"messages": history(openai_calls(client_ids)), "tools": [WEATHER]})
    uses = [b["toolUse"]["toolUseId"] for b in body["messages"][1]["content"] if "toolUse" in b]
    results = [b["toolResult"]["toolUseId"] for b in body["messages"][2]["content"]]
    assert uses == results and len(set(uses)) == 2
    assert all(re.fullmatch(r"[a-zA-Z0-9_.:-]{1,64}", i) for i in uses)
    for client_id, mapped in zip(client_ids, uses, strict=True):
        assert mapped == encode_tool_id(client_id)
        if len(client_id) <= 40:
            assert decode_tool_id(mapped) == client_id


def test_bedrock_valid_tool_ids_are_sent_unchanged() -> None:
    for tool_id in ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "call_abc123", "a:b.c-d_e", "x" * 64):
        assert encode_tool_id(tool_id) == tool_id == decode_tool_id(tool_id)


def test_bedrock_mapped_ids_come_back_as_the_client_sent_them() -> None:
    """A toolUseId this proxy encoded, echoed by Bedrock, is decoded to the client's id (stream and not)."""
    encoded = encode_tool_id("call/1")
    data = {
        "output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": encoded, "name": "f"}}]}},
        "stopReason": "tool_use",
    }
    rule = bedrock_rule()
    out = BEDROCK.parse_response(bedrock_call(rule, {"messages": USER}), data)
    assert out["choices"][0]["message"]["tool_calls"][0]["id"] == "call/1"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        # toolConfig must be present whenever the history holds tool blocks: without the request's tools it
        # cannot be built, and with tool_choice none it would let the model call a tool: both refused.
        ({"messages": history(openai_calls(["t1", "t2"]))}, "tools"),
        ({"messages": history(openai_calls(["t1", "t2"])), "tools": [WEATHER], "tool_choice": "none"}, "tool_choice"),
        ({"messages": USER, "tools": [{"type": "function", "function": {"name": "get weather!"}}]}, "tools[0]"),
        (
            {"messages": [*USER, {"role": "assistant", "tool_calls": openai_calls(["t1", "t2"])[:1]}]},
            "tools",
        ),
        (
            {
                "messages": [
                    *USER,
                    {"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "[1]"}}]},
                    {"role": "tool", "tool_call_id": "t", "content": "x"},
                ],
                "tools": [WEATHER],
            },
            "messages[1].tool_calls[0]",
        ),  # Converse's input is an object
    ],
)
def test_bedrock_tool_refusals(body: dict[str, Any], param: str) -> None:
    assert bedrock_refused(body).param.startswith(param)


def test_bedrock_tool_choice_none_without_tool_history_omits_the_tools() -> None:
    body = bedrock_body({"messages": USER, "tools": [WEATHER], "tool_choice": "none"})
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
    ],
)
def test_bedrock_tool_choice_with_tool_history(choice: Any, expected: Any) -> None:
    body = bedrock_body({"messages": history(openai_calls(["t1", "t2"])), "tools": [WEATHER], "tool_choice": choice})
    assert body["toolConfig"]["toolChoice"] == expected


def test_bedrock_response_format_json_schema_is_output_config() -> None:
    """providers.md §5.3/§11.1: `outputConfig.textFormat` json_schema, the schema as a JSON STRING."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    rf = {"type": "json_schema", "json_schema": {"name": "answer", "description": "The answer", "schema": schema}}
    body = bedrock_body({"messages": USER, "response_format": rf})
    text_format = body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    definition = text_format["structure"]["jsonSchema"]
    assert isinstance(definition["schema"], str) and json.loads(definition["schema"]) == schema
    assert (definition["name"], definition["description"]) == ("answer", "The answer")
    assert "outputConfig" not in bedrock_body({"messages": USER, "response_format": {"type": "text"}})


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},  # Converse takes only a schema: refused, not approximated
        {"type": "json_schema", "json_schema": {"name": "x"}},
        {"type": "json_schema"},
        {"type": "yaml"},
    ],
)
def test_bedrock_response_format_refusals(response_format: dict[str, Any]) -> None:
    err = bedrock_refused({"messages": USER, "response_format": response_format})
    assert err.param == "response_format" and err.message


def test_bedrock_images_data_urls_only() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    parts = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
    ]
    body = bedrock_body({"messages": [{"role": "user", "content": parts}]})
    assert body["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": png}}}
    url = [{"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}]
    err = bedrock_refused({"messages": [{"role": "user", "content": url}]})
    assert err.param == "messages[0].content[0]" and "data: URL" in err.message


def test_bedrock_s3_images_are_s3_locations() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "s3://my-bucket/photos/cat.JPG"}}]
    body = bedrock_body({"messages": [{"role": "user", "content": parts}]})
    assert body["messages"][0]["content"] == [
        {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://my-bucket/photos/cat.JPG"}}}}
    ]
    for bad in ("s3://my-bucket/photos/cat.bmp", "s3://my-bucket/photos/cat", "s3://"):
        parts = [{"type": "image_url", "image_url": {"url": bad}}]
        assert bedrock_refused({"messages": [{"role": "user", "content": parts}]}).param == "messages[0].content[0]"


# ==============================================================================================================
# Bedrock: responses and streams
# ==============================================================================================================

BEDROCK_IDS = ["tooluse_paris01", "tooluse_oslo02"]


def converse_tool_answer() -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": PLAN}]
    content += [
        {"toolUse": {"toolUseId": i, "name": n, "input": a}} for i, (n, a) in zip(BEDROCK_IDS, CALLS, strict=True)
    ]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 40, "outputTokens": 30, "totalTokens": 70},
    }


def converse_tool_frames() -> list[bytes]:
    """Text, a reasoning block, then two toolUse blocks (contentBlockIndex 2 and 3: renumbered to 0 and 1), the
    arguments in fragments."""
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Two cities."}}}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "c2ln"}}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": PLAN[:9]}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": PLAN[9:]}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
    ]
    for n, (tool_id, (name, args)) in enumerate(zip(BEDROCK_IDS, CALLS, strict=True)):
        block = n + 2
        start = {"toolUse": {"toolUseId": tool_id, "name": name}}
        frames.append(event("contentBlockStart", {"contentBlockIndex": block, "start": start}))
        raw = json.dumps(args)
        for piece in (raw[:7], raw[7:15], raw[15:]):
            if piece:
                delta = {"toolUse": {"input": piece}}
                frames.append(event("contentBlockDelta", {"contentBlockIndex": block, "delta": delta}))
        frames.append(event("contentBlockStop", {"contentBlockIndex": block}))
    frames.append(event("messageStop", {"stopReason": "tool_use"}))
    frames.append(event("metadata", {"usage": {"inputTokens": 40, "outputTokens": 30, "totalTokens": 70}}))
    return frames


def test_bedrock_several_tool_calls_in_one_turn_all_kept() -> None:
    """Regression: Kong kept only the last Bedrock tool call of a turn. Every toolUse block is a tool call, in
    order, with Bedrock's id, arguments as a JSON string, finish_reason tool_calls; the SDK's types accept it."""
    rule = bedrock_rule()
    out = BEDROCK.parse_response(bedrock_call(rule, {"messages": USER, "tools": [WEATHER]}), converse_tool_answer())
    completion = ChatCompletion.model_validate(out)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == PLAN
    assert [c.id for c in message.tool_calls or []] == BEDROCK_IDS
    assert meaning(message.tool_calls) == [(n, a) for n, a in CALLS]


def test_bedrock_streamed_tool_calls_equal_the_non_streamed_ones() -> None:
    """ConverseStream: contentBlockStart{toolUse{toolUseId,name}} then contentBlockDelta{toolUse{input: fragment}};
    block indexes renumbered (a reasoning and a text block come first), at every split of the eventstream bytes;
    accumulated as the SDK does, equal to the non-streamed answer (LiteLLM's index/id bugs)."""
    rule = bedrock_rule()
    call = bedrock_call(rule, {"messages": USER, "tools": [WEATHER], "stream": True})
    events = assert_split_invariant(
        lambda: BEDROCK.stream_translator(call, True, True), b"".join(converse_tool_frames())
    )
    assert_tool_deltas_well_formed(events, 2)
    final = sdk_accumulate(events)
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.content == PLAN
    assert [c.id for c in message.tool_calls or []] == BEDROCK_IDS
    assert meaning(message.tool_calls) == meaning(
        ChatCompletion.model_validate(
            BEDROCK.parse_response(bedrock_call(rule, {"messages": USER}), converse_tool_answer())
        )
        .choices[0]
        .message.tool_calls
    )
    assert events[-2]["usage"] == {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70}


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
    assert len(set(ids)) == 2 and all(_RANDOM_CALL_ID.fullmatch(i) for i in ids)

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
# End to end: the openai SDK -> mitmdump -> fake Bedrock / fake Cohere, the multi-turn round trip
# ==============================================================================================================


def rules_yaml(bedrock_url: str, cohere_url: str) -> str:
    cohere_auth = '{header_name: Authorization, header_value: "Bearer ${E2E_COHERE_KEY}"}'
    return f"""
rules:
  - name: bedrock-tools
    match: {{host: bedrock.internal, path: /v1/chat/completions}}
    model:
      provider: bedrock
      name: "{BEDROCK_MODEL}"
      options: {{upstream_url: "{bedrock_url}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: "${{E2E_AWS_KEY_ID}}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
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
    bedrock: FakeBedrock
    cohere: FakeUpstream

    def client(self, host: str) -> openai.OpenAI:
        http = httpx.Client(proxy=f"http://127.0.0.1:{self.proxy.port('regular')}", trust_env=False)
        return openai.OpenAI(base_url=f"http://{host}/v1", api_key="sk-client", http_client=http, max_retries=0)


@pytest.fixture(scope="module")
def tools_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    bedrock = FakeBedrock({KEY_ID: SECRET}, REGION)
    cohere = FakeUpstream("cohere")
    workdir = tmp_path_factory.mktemp("e2e-tools-bedrock-cohere")
    proxy = Mitmdump(
        workdir,
        rules_yaml(bedrock.url, cohere.url),
        env={
            "E2E_AWS_KEY_ID": KEY_ID,
            "E2E_AWS_SECRET": SECRET,
            "E2E_COHERE_KEY": COHERE_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
        },
    )
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):
        proxy.env.pop(var, None)
    proxy.start()
    try:
        yield Env(proxy, bedrock, cohere)
    finally:
        proxy.stop()
        bedrock.close()
        cohere.close()


@pytest.fixture
def env(tools_env: Env) -> Env:
    tools_env.bedrock.reset()
    tools_env.cohere.reset()
    return tools_env


def as_history(message: Any) -> list[dict[str, Any]]:
    """Turn 2's messages built from the SDK's own parsed assistant message."""
    calls = [c.model_dump(exclude_none=True) for c in message.tool_calls]
    assert len(calls) == 2 and len({c["id"] for c in calls}) == 2
    return history(calls, content=message.content)


def turn1(client: openai.OpenAI, model: str, stream: bool) -> Any:
    """The client asks; returns the SDK's assistant message (streamed: accumulated by the SDK's stream helper)."""
    if stream:
        with client.chat.completions.stream(model=model, messages=USER, tools=[WEATHER]) as s:
            completion = s.get_final_completion()
    else:
        completion = client.chat.completions.create(model=model, messages=USER, tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert all(c.id and c.type == "function" for c in choice.message.tool_calls or [])
    assert meaning(choice.message.tool_calls) == [(n, a) for n, a in CALLS]
    return choice.message


def turn2(client: openai.OpenAI, model: str, stream: bool, messages: list[dict[str, Any]]) -> str:
    if stream:
        with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER]) as s:
            completion = s.get_final_completion()
    else:
        completion = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert completion.choices[0].finish_reason == "stop"
    return completion.choices[0].message.content or ""


def converse_final_frames() -> list[bytes]:
    return [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": FINAL[:10]}}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": FINAL[10:]}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "end_turn"}),
        event("metadata", {"usage": {"inputTokens": 90, "outputTokens": 12, "totalTokens": 102}}),
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_e2e_bedrock_tool_round_trip(env: Env, stream: bool) -> None:
    """Two parallel toolUse blocks (Kong kept only the last), their ids back in turn 2's toolUse and toolResult
    blocks, toolConfig in both turns, every request SigV4-verified by the fake."""
    final = {
        "output": {"message": {"role": "assistant", "content": [{"text": FINAL}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 90, "outputTokens": 12, "totalTokens": 102},
    }
    if stream:
        env.bedrock.queue(BedrockReply(frames=converse_tool_frames()), BedrockReply(frames=converse_final_frames()))
    else:
        env.bedrock.queue(BedrockReply(json=converse_tool_answer()), BedrockReply(json=final))
    client = env.client("bedrock.internal")
    message = turn1(client, BEDROCK_MODEL, stream)
    assert [c.id for c in message.tool_calls] == BEDROCK_IDS
    assert message.content == PLAN
    assert turn2(client, BEDROCK_MODEL, stream, as_history(message)) == FINAL

    first, second = env.bedrock.requests
    operation = "converse-stream" if stream else "converse"
    for seen in (first, second):
        assert seen.rejected is None, seen.rejected  # SigV4 verified
        assert seen.path == f"/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/{operation}"
        assert seen.json["toolConfig"] == BEDROCK_TOOL_CONFIG
    assert first.json["messages"] == [{"role": "user", "content": [{"text": QUESTION}]}]
    assert second.json["messages"] == bedrock_turn2(BEDROCK_IDS)


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
