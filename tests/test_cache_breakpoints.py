"""Prompt caching in the core: automatic cache breakpoints (model.options.cache_breakpoints: auto), the providers'
limit, and prompt_cache_key kept or dropped and reported; the Anthropic provider's placement of the breakpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.cache_breakpoints import controls, with_auto_breakpoints
from addon.errors import ProxyError
from addon.exchange import ClientRequest, prepare_call
from addon.formats import ANTHROPIC, OPENAI, ClientFormat
from addon.providers import REGISTRY, Call
from tests.support.prompt_cache import CACHED_BLOCKS, EPHEMERAL
from tests.support.rules import make_rule

HOUR = {"type": "ephemeral", "ttl": "1h"}
HOUR_PART = {"cache_control": HOUR}
TOOLS = [
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}},
]
CALL_F = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
# Three turns: system, tools and a growing history with a tool round trip.
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "first"},
    {"role": "assistant", "content": "ok"},
    {"role": "user", "content": "second"},
    {"role": "assistant", "content": None, "tool_calls": CALL_F},
    {"role": "tool", "tool_call_id": "c1", "content": "42"},
]


def call(
    provider: str, body: dict[str, Any], fmt: ClientFormat = OPENAI, auto: bool = False, model: str = "claude-x"
) -> Call:
    options = {"cache_breakpoints": "auto"} if auto else {}
    rule = make_rule(provider, model, options=options, llm_format=fmt.name)
    raw = json.dumps({"model": model, **body}).encode()
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw), fmt)


def anthropic_body(c: Call) -> dict[str, Any]:
    body = REGISTRY["anthropic"].build_request(c).body
    assert body is not None
    return body


def marked(body: dict[str, Any]) -> list[str]:
    return [param.removesuffix(".cache_control") for param, _ in controls(body)]


def test_auto_breakpoints_close_the_system_prompt_the_last_turn_and_the_turn_before() -> None:
    body = with_auto_breakpoints({"messages": HISTORY, "tools": TOOLS}, 4)
    assert marked(body) == ["messages[0].content[0]", "messages[3].content[0]", "messages[5].content[0]"]
    assert body["messages"][5]["content"] == [{"type": "text", "text": "42", "cache_control": EPHEMERAL}]
    assert "cache_control" not in json.dumps(HISTORY)  # the client's body is not changed
    # Without a system prompt, the last tool closes the static prefix; one turn: no turn before.
    alone = with_auto_breakpoints({"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}, 4)
    assert marked(alone) == ["tools[1]", "messages[0].content[0]"]


def test_auto_breakpoints_never_move_the_clients_nor_exceed_the_limit() -> None:
    own = [
        {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": HOUR}]},
        {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": EPHEMERAL}]},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": ""}]},
    ]
    body = with_auto_breakpoints({"messages": own, "tools": [{**TOOLS[0], "cache_control": EPHEMERAL}]}, 4)
    assert marked(body) == ["tools[0]", "messages[0].content[0]", "messages[1].content[0]", "messages[3].content[0]"]
    assert body["messages"][0]["content"][0]["cache_control"] is HOUR  # the client's, untouched
    full = {"messages": HISTORY, "tools": [{**t, "cache_control": EPHEMERAL} for t in TOOLS * 2]}
    assert with_auto_breakpoints(full, 4) is full


def test_an_added_breakpoint_before_a_clients_hour_long_one_lasts_an_hour() -> None:
    messages = [*HISTORY[:5], {**HISTORY[5], "content": [{"type": "text", "text": "42", "cache_control": HOUR}]}]
    body = with_auto_breakpoints({"messages": messages}, 4)
    assert [c for _, c in controls(body)] == [HOUR, HOUR, HOUR]


def test_more_breakpoints_than_the_provider_takes_are_refused_naming_the_first_too_many() -> None:
    parts = [{"type": "text", "text": str(n), "cache_control": EPHEMERAL} for n in range(5)]
    with pytest.raises(ProxyError) as err:
        call("anthropic", {"messages": [{"role": "user", "content": parts}]})
    assert err.value.status == 400 and err.value.param == "messages[0].content[4].cache_control"
    bad = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]
    with pytest.raises(ProxyError) as err:
        call("bedrock", {"messages": [{"role": "user", "content": bad}]}, model="anthropic.claude-x")
    assert err.value.param == "messages[0].content[0].cache_control.ttl"


def test_auto_breakpoints_reach_anthropic_and_bedrock_only() -> None:
    body = {"messages": HISTORY, "tools": TOOLS}
    up = anthropic_body(call("anthropic", body, auto=True))
    assert up["system"] == [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}]
    assert up["messages"][2]["content"] == [{"type": "text", "text": "second", "cache_control": EPHEMERAL}]
    assert up["messages"][4]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "42", "cache_control": EPHEMERAL}
    ]
    bedrock = call("bedrock", body, auto=True, model="anthropic.claude-x")
    converse = REGISTRY["bedrock"].build_request(bedrock).body
    assert converse is not None and json.dumps(converse).count("cachePoint") == 3
    mistral = call("mistral", body, auto=True, model="mistral-x")
    assert "cache_control" not in json.dumps(mistral.body) and mistral.dropped == []
    # Bedrock models without prompt caching get none (Converse refuses their cache points); the client's are reported.
    llama = call("bedrock", body, auto=True, model="meta.llama3-x")
    assert "cache_control" not in json.dumps(llama.body) and llama.dropped == []
    marked = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]}]}
    assert call("bedrock", marked, model="meta.llama3-x").dropped == ["cache_control"]
    assert call("bedrock", marked, model="arn:aws:bedrock:us-east-1:1:application-inference-profile/x").dropped == []


def test_the_anthropic_provider_places_the_clients_breakpoints_with_their_ttl() -> None:
    system = [CACHED_BLOCKS["system"][0], {**CACHED_BLOCKS["system"][1], **HOUR_PART}]
    c = call("anthropic", {**CACHED_BLOCKS, "max_tokens": 50, "system": system}, fmt=ANTHROPIC)
    up = anthropic_body(c)
    assert c.dropped == []
    assert up["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "\n\nB", "cache_control": HOUR}]
    assert [t.get("cache_control") for t in up["tools"]] == [None, EPHEMERAL]
    assert up["messages"][0]["content"] == [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]
    assert up["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "cache_control": EPHEMERAL},
        {"type": "text", "text": "go on"},
    ]


def test_openai_clients_mark_parts_tools_and_assistant_turns_for_anthropic() -> None:
    body = {
        "response_format": {"type": "json_object"},
        "tools": [{**TOOLS[0], "cache_control": EPHEMERAL}, TOOLS[1]],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "", **HOUR_PART}]},
            {"role": "assistant", "content": [{"type": "text", "text": "b", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": "c"},
        ],
    }
    up = anthropic_body(call("anthropic", body))
    assert up["system"][0] == {"type": "text", "text": "S", "cache_control": EPHEMERAL}
    assert up["system"][1]["text"].startswith("Respond only with a single valid JSON object")
    assert [t.get("cache_control") for t in up["tools"]] == [EPHEMERAL, None]
    # The empty part's breakpoint closes the same prefix on the block before it (Anthropic refuses empty text).
    assert up["messages"][0]["content"] == [{"type": "text", "text": "a", "cache_control": HOUR}]
    assert up["messages"][1]["content"] == [{"type": "text", "text": "b", "cache_control": EPHEMERAL}]
    assert up["messages"][2]["content"] == "c"


def test_cache_breakpoints_and_cache_keys_are_dropped_and_reported_where_the_provider_has_none() -> None:
    body = {"prompt_cache_key": "team-a", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    body["messages"][0]["content"][0]["cache_control"] = EPHEMERAL
    # An OpenAI client's body reaches OpenAI as sent (Provider.forwards_body); an Anthropic client's breakpoints do not.
    openai = call("openai", body, model="gpt-x")
    assert openai.body["prompt_cache_key"] == "team-a" and openai.dropped == []
    assert REGISTRY["openai"].build_request(openai).body["prompt_cache_key"] == "team-a"  # type: ignore[index]
    ask = {"max_tokens": 9, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", **HOUR_PART}]}]}
    from_anthropic = call("openai", ask, fmt=ANTHROPIC, model="gpt-x")
    assert from_anthropic.dropped == ["cache_control"] and "cache_control" not in json.dumps(from_anthropic.body)
    azure = call("azure", body, model="gpt-x")
    assert azure.body["prompt_cache_key"] == "team-a"
    anthropic = call("anthropic", body)
    assert "prompt_cache_key" not in anthropic.body and anthropic.dropped == ["prompt_cache_key"]
    gemini = call("gemini", body, model="gemini-x")
    assert gemini.dropped == ["cache_control", "prompt_cache_key"]


def test_anthropics_top_level_cache_control_marks_the_last_block_the_client_wrote() -> None:
    ask = {
        "max_tokens": 50,
        "cache_control": HOUR,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ],
    }
    c = call("bedrock", ask, fmt=ANTHROPIC, model="anthropic.claude-x")
    assert c.dropped == [] and marked(c.body) == ["messages[2].content[1]"]
    up = anthropic_body(call("anthropic", ask, fmt=ANTHROPIC))
    assert up["messages"][2]["content"][1] == {"type": "text", "text": "b", "cache_control": HOUR}
    assert call("mistral", ask, fmt=ANTHROPIC, model="mistral-x").dropped == ["cache_control"]


def test_anthropics_legacy_text_completions_report_the_breakpoints_they_cannot_carry() -> None:
    rule = make_rule("anthropic", "claude-2.1", options={"upstream_path": "/v1/complete"})
    marked = [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]
    raw = json.dumps({"model": "claude-2.1", "messages": [{"role": "user", "content": marked}]}).encode()
    c = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw))
    up = REGISTRY["anthropic"].build_request(c).body
    assert up is not None and "cache_control" not in json.dumps(up) and c.dropped == ["cache_control"]
