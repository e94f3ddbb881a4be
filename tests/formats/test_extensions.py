"""The standard request's and response's extensions (what OpenAI's Chat format has no place for, which other client
formats need): a matched stop sequence, thinking budgets, cache breakpoints and cache counts. Providers fill them
without knowing the client's format; the OpenAI client format leaves out what OpenAI clients never get."""

from __future__ import annotations

import json
from typing import Any

import yaml

from addon.exchange import ClientRequest, prepare_call, translate_response
from addon.formats import ANTHROPIC, OPENAI
from addon.providers import REGISTRY
from addon.rules import load_rules_text
from tests.support.bedrock import converse_answer

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
    assert "reasoning_effort" not in bedrock.body and bedrock.dropped == []
    openai = call_for("openai", ask, model="gpt-x")
    assert openai.body["reasoning_effort"] == "low" and "thinking" not in openai.body and openai.dropped == []
    gemini = call_for("gemini", ask, model="gemini-x")
    assert "thinking" not in gemini.body and "reasoning_effort" not in gemini.body and gemini.dropped == ["thinking"]
    llama = call_for("bedrock", ask, model="meta.llama3-x")
    assert "additionalModelRequestFields" not in REGISTRY["bedrock"].build_request(llama).body  # type: ignore[operator]
    assert llama.dropped == ["thinking"]
