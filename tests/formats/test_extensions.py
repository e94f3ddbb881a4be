"""The standard request's and response's extensions (what OpenAI's Chat format has no place for, which other client
formats need): a matched stop sequence, thinking budgets, cache breakpoints and cache counts. Providers fill them
without knowing the client's format; the OpenAI client format leaves out what OpenAI clients never get."""

from __future__ import annotations

import json
from typing import Any

import yaml

from addon.exchange import ClientRequest, prepare_call, translate_response
from addon.formats import ANTHROPIC, OPENAI
from addon.providers import REGISTRY, Call
from addon.rules import load_rules_text
from tests.support.bedrock import converse_answer
from tests.support.prompt_cache import CACHED_BLOCKS, EPHEMERAL

CHAT = "llm/v1/chat"
OPTIONS = {"bedrock": {"aws_region": "us-east-1"}}
AUTH = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake"}


def call_for(provider: str, body: dict[str, Any], fmt: Any = ANTHROPIC, model: str = "anthropic.claude-x") -> Any:
    spec = {
        "name": "r",
        "match": {"host": "x.internal"},
        "llm_format": fmt.name,
        "model": {"provider": provider, "name": model, "options": OPTIONS if provider == "bedrock" else {}},
    }
    if provider == "bedrock":
        spec["auth"] = AUTH
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={})
    raw = json.dumps({**body, "model": model}).encode()
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw), fmt)


ANTHROPIC_ASK = {"model": "anthropic.claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def test_a_matched_stop_sequence_is_an_extension_openai_clients_never_see() -> None:
    answer, _ = converse_answer([("text", "x")], stop="stop_sequence")
    call = call_for("bedrock", {**ANTHROPIC_ASK, "stop_sequences": ["END"]})
    status, standard = translate_response(REGISTRY["bedrock"], call, 200, json.dumps(answer).encode(), "")
    assert status == 200 and standard["choices"][0]["stop_sequence"] == "END"
    assert standard["choices"][0]["finish_reason"] == "stop"
    message = ANTHROPIC.encode(CHAT, standard)
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")
    assert "stop_sequence" not in OPENAI.encode(CHAT, standard)["choices"][0]


def test_a_thinking_budget_goes_where_the_provider_takes_it() -> None:
    ask = {**ANTHROPIC_ASK, "thinking": {"type": "enabled", "budget_tokens": 3000}}
    bedrock = call_for("bedrock", ask)
    assert bedrock.body["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    converse = REGISTRY["bedrock"].build_request(bedrock).body or {}
    assert converse["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert converse["inferenceConfig"]["maxTokens"] == 3050 and bedrock.dropped == []  # raised above the budget
    openai = call_for("openai", ask, model="gpt-x")
    assert openai.body["reasoning_effort"] == "low" and "thinking" not in openai.body and openai.dropped == []
    gemini = call_for("gemini", ask, model="gemini-x")
    assert gemini.dropped == []  # Gemini takes both; the exact budget wins (addon/reasoning.py)
    config = REGISTRY["gemini"].build_request(gemini).body["generationConfig"]  # type: ignore[index]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 3000}
    mistral = call_for("mistral", ask, model="mistral-x")  # a Mistral model without a reasoning control
    sent = REGISTRY["mistral"].build_request(mistral).body or {}
    assert "thinking" not in sent and "reasoning_effort" not in sent
    assert mistral.dropped == ["thinking"]
    llama = call_for("bedrock", ask, model="meta.llama3-x")
    assert "additionalModelRequestFields" not in REGISTRY["bedrock"].build_request(llama).body  # type: ignore[operator]
    assert llama.dropped == ["thinking"]


CACHED_ASK = {**ANTHROPIC_ASK, **CACHED_BLOCKS}
POINT = {"cachePoint": {"type": "default"}}


def test_cache_breakpoints_are_bedrock_cache_points() -> None:
    call = call_for("bedrock", CACHED_ASK)
    body = REGISTRY["bedrock"].build_request(call).body
    assert call.dropped == [] and body is not None
    assert body["system"] == [{"text": "A"}, {"text": "\n\nB"}, POINT]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "hi"}, POINT]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]},
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}]}}, POINT, {"text": "go on"}],
        },
    ]
    assert [next(iter(t)) for t in body["toolConfig"]["tools"]] == ["toolSpec", "toolSpec", "cachePoint"]


def test_cache_breakpoints_are_dropped_and_reported_where_the_provider_does_not_cache_explicitly() -> None:
    call = call_for("openai", CACHED_ASK, model="gpt-x")
    assert call.dropped == ["cache_control"]
    assert "cache_control" not in json.dumps(call.body)
    assert call.body["messages"][0] == {"role": "system", "content": "A\n\nB"}  # as without breakpoints
    assert call.body["messages"][1] == {"role": "user", "content": "hi"}
    assert call.body["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    assert call_for("openai", ANTHROPIC_ASK, model="gpt-x").dropped == []


def test_cache_reads_and_writes_reach_anthropic_usage() -> None:
    answer, _ = converse_answer([("text", "x")], cacheReadInputTokens=100, cacheWriteInputTokens=50)
    call = call_for("bedrock", ANTHROPIC_ASK)
    _, standard = translate_response(REGISTRY["bedrock"], call, 200, json.dumps(answer).encode(), "")
    assert standard["usage"]["prompt_tokens"] == 175
    assert ANTHROPIC.encode(CHAT, standard)["usage"] == {
        "input_tokens": 25,
        "output_tokens": 12,
        "cache_creation_input_tokens": 50,
        "cache_read_input_tokens": 100,
    }


def test_openai_clients_place_cache_breakpoints_on_bedrock_too() -> None:
    """The extension as LiteLLM's and Kong's OpenAI clients send it: content-part and tool cache_control."""
    body = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]},
        ]
    }
    up = REGISTRY["bedrock"].build_request(call_for("bedrock", body, fmt=OPENAI)).body
    assert up is not None and up["system"] == [{"text": "S"}, POINT]
    assert up["messages"] == [{"role": "user", "content": [{"text": "hi"}, POINT]}]


SIGNED_HISTORY = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "b64"},
            {"type": "text", "text": "hello"},
        ],
    },
    {"role": "user", "content": "more"},
]


def test_signed_reasoning_goes_back_to_claude_on_bedrock_and_is_reported_elsewhere() -> None:
    call = call_for("bedrock", {**ANTHROPIC_ASK, "messages": SIGNED_HISTORY})
    body = REGISTRY["bedrock"].build_request(call).body
    assert body is not None and call.dropped == []
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": "b64"}},
        {"text": "hello"},
    ]
    llama = call_for("bedrock", {**ANTHROPIC_ASK, "messages": SIGNED_HISTORY}, model="meta.llama3-x")
    assert "reasoningContent" not in json.dumps(REGISTRY["bedrock"].build_request(llama).body)
    assert llama.dropped == ["thinking"]
    openai = call_for("openai", {**ANTHROPIC_ASK, "messages": SIGNED_HISTORY}, model="gpt-x")
    assert "thinking_blocks" not in json.dumps(openai.body)
    assert openai.dropped == ["thinking", "redacted_thinking"]


def test_signed_reasoning_in_answers_reaches_anthropic_clients_only() -> None:
    answer, _ = converse_answer([("reasoning", "sig", "hmm"), ("text", "x")])
    answer["output"]["message"]["content"].append({"reasoningContent": {"redactedContent": "b64"}})
    call = call_for("bedrock", ANTHROPIC_ASK)
    _, standard = translate_response(REGISTRY["bedrock"], call, 200, json.dumps(answer).encode(), "")
    assert ANTHROPIC.encode(CHAT, standard)["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "b64"},
        {"type": "text", "text": "x"},
    ]
    message = OPENAI.encode(CHAT, standard)["choices"][0]["message"]
    assert message["reasoning_content"] == "hmm" and "thinking_blocks" not in message


def test_every_client_formats_writer_takes_a_reasoning_signature() -> None:
    """A Bedrock stream with signed reasoning, written for each client format's stream writer: never an error."""
    from addon.formats import FORMATS, ROUTE_FORMATS
    from addon.spec import ModelOptions
    from addon.stream_bridge import client_translator

    _, frames = converse_answer([("reasoning", "sig", "hmm"), ("text", "x")])
    for fmt in [*FORMATS.values(), *ROUTE_FORMATS.values()]:
        call = Call(CHAT, {"messages": [], "stream": True}, "m", ModelOptions(), stream=True, writer=fmt.writer)
        translator = client_translator(REGISTRY["bedrock"], call, True, True)
        out = b"".join(translator.feed(f) for f in frames) + translator.finish()
        assert translator.result.error is None and translator.result.completed, fmt
        assert b"hmm" in out


def test_what_a_provider_reports_dropped_is_named_in_the_clients_terms() -> None:
    """A model without a reasoning control reports `thinking` (a standard name): a Gemini client reads it as the
    field it sent, generationConfig.thinkingConfig (OpenAI clients read the standard names)."""
    from addon.exchange import build_upstream
    from addon.formats import GEMINI

    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 8000}},
    }
    raw = json.dumps(body).encode()
    spec = {
        "name": "r",
        "match": {"host": "x.internal"},
        "llm_format": "gemini",
        "model": {"provider": "mistral", "name": "mistral-large-2411"},
    }
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={})
    path = "/v1beta/models/mistral-large-2411:generateContent"
    call = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw, path), GEMINI)
    sent = build_upstream(rule, call, GEMINI).body or {}
    assert "reasoning_effort" not in sent and call.dropped == ["generationConfig.thinkingConfig"]
