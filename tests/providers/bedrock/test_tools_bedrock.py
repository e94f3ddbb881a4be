"""Tool calls, images and JSON output for Amazon Bedrock (Converse), streamed and not.

Pure tests of the mapping first, then the multi-turn round trip end to end: the `openai` SDK through a real
mitmdump to a fake Bedrock that verifies every request's SigV4 signature (tests/support/tools.py: the
conversation and its two turns). Turn 2's native request is checked (toolUse blocks, ids, names, results matched
to them).

Peer bugs guarded against (named in the tests):
* Kong kept only the LAST Bedrock tool call of a turn (several toolUse blocks -> one OpenAI tool call).
* LiteLLM's streamed tool-call index/id bugs: indexes that count content blocks instead of tool calls, ids missing
  from the first delta of a call or repeated on later ones, calls merged across indexes.
docs/providers.md §12 pitfalls about tools covered here: arguments are a JSON string in OpenAI but an object in
Bedrock; Bedrock's toolUseId charset `[a-zA-Z0-9_.:-]{1,64}`; Bedrock `contentBlockIndex` counts every block
(renumbered); Bedrock needs `toolConfig` whenever the history holds tool blocks; tool results fold into one user
turn for Bedrock.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from addon.errors import ProxyError
from addon.exchange import build_upstream
from addon.providers.bedrock import BEDROCK, decode_tool_id, encode_tool_id
from tests.providers.bedrock.test_provider_bedrock import make_call as bedrock_call
from tests.providers.bedrock.test_provider_bedrock import make_rule as bedrock_rule
from tests.support.bedrock import BedrockReply, FakeBedrock, bedrock_behind_proxy, event
from tests.support.mitmdump import Mitmdump
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import (
    CALLS,
    FINAL,
    PLAN,
    QUESTION,
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

BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
KEY_ID = "AKIDTOOLSBEDROCKFAKE"
SECRET = "tools/bedrock+secret/00000000000000000001"
REGION = "us-east-1"

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
    # Bedrock needs every object closed (json_schema.py's closed_grammar): the one change to this schema
    assert isinstance(definition["schema"], str) and json.loads(definition["schema"]) == {
        **schema,
        "additionalProperties": False,
    }
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
# End to end: the openai SDK -> mitmdump -> fake Bedrock, the multi-turn round trip
# ==============================================================================================================


def rules_yaml(bedrock_url: str) -> str:
    keys = {"aws_access_key_id": "${E2E_AWS_KEY_ID}", "aws_secret_access_key": "${E2E_AWS_SECRET}"}
    options = {"upstream_url": bedrock_url, "bedrock": {"aws_region": REGION}}
    return rules_text(rule_spec("bedrock-tools", "bedrock.internal", "bedrock", BEDROCK_MODEL, options, auth=keys))


@dataclass
class Env:
    proxy: Mitmdump
    bedrock: FakeBedrock

    def client(self, host: str) -> openai.OpenAI:
        return client_through(self.proxy, host)


@pytest.fixture(scope="module")
def tools_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("e2e-tools-bedrock")
    env = {"E2E_AWS_KEY_ID": KEY_ID, "E2E_AWS_SECRET": SECRET}
    with bedrock_behind_proxy(workdir, {KEY_ID: SECRET}, REGION, lambda fake: rules_yaml(fake.url), env) as shared:
        yield Env(*shared)


@pytest.fixture
def env(tools_env: Env) -> Env:
    tools_env.bedrock.reset()
    return tools_env


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
