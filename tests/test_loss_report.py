"""The loss report (x-ai-proxy-dropped, the record's meta.dropped) through the real translation of each client format,
its safe and bounded form, and `on_unsupported: refuse` turning a non-empty report into the client's 400."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon import loss
from addon.errors import ProxyError
from addon.matrix.probe import COLUMNS, Column, Translation, rule_for, translate

COLUMN = {c.provider: c for c in COLUMNS}
OPENAI_BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "What is 1 + 1?"}]}
ANTHROPIC_BODY: dict[str, Any] = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}


def through(client: str, provider: str, body: dict[str, Any], on_unsupported: str = "drop") -> Translation:
    column = COLUMN[provider]
    return translate(rule_for(client, column, on_unsupported), client, column, body)


def sent(t: Translation) -> dict[str, Any]:
    assert t.refused is None, t.refused
    return t.upstream["body"]


# ---- what used to be lost silently ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["gemini", "cohere", "mistral", "llama2", "anthropic", "openai"])
def test_an_openai_clients_cache_breakpoint_is_reported_where_the_provider_has_none(provider: str) -> None:
    system = {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "x"}}]}
    t = through("openai", provider, {**OPENAI_BODY, "messages": [system, *OPENAI_BODY["messages"]]})
    assert "cache_control" not in json.dumps(sent(t))
    assert t.dropped == ["cache_control"]


def test_an_openai_clients_cache_breakpoint_reaches_bedrock_unreported() -> None:
    system = {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "x"}}]}
    t = through("openai", "bedrock", {**OPENAI_BODY, "messages": [system, *OPENAI_BODY["messages"]]})
    assert {"cachePoint": {"type": "default"}} in sent(t)["system"] and t.dropped == []


def test_an_openai_clients_signed_reasoning_is_reported_where_the_provider_cannot_take_it_back() -> None:
    blocks = [{"type": "thinking", "thinking": "t", "signature": "c2ln"}, {"type": "redacted_thinking", "data": "x"}]
    history = [*OPENAI_BODY["messages"], {"role": "assistant", "content": "2", "thinking_blocks": blocks}]
    body = {**OPENAI_BODY, "messages": [*history, {"role": "user", "content": "And 2 + 2?"}]}
    t = through("openai", "openai", body)
    assert "thinking_blocks" not in json.dumps(sent(t)) and t.dropped == ["thinking", "redacted_thinking"]
    t = through("openai", "bedrock", body)
    assert "c2ln" in json.dumps(sent(t)) and t.dropped == []


@pytest.mark.parametrize("provider", ["gemini", "cohere", "mistral", "llama2"])
def test_account_fields_are_reported_where_the_provider_has_none(provider: str) -> None:
    body = {**OPENAI_BODY, "user": "u-1", "service_tier": "flex", "prompt_cache_key": "k", "safety_identifier": "s"}
    t = through("openai", provider, body)
    assert not {"user", "service_tier", "prompt_cache_key", "safety_identifier"} & set(sent(t))
    assert t.dropped == ["user", "safety_identifier", "service_tier", "prompt_cache_key"]


def test_neutral_account_fields_are_not_reported() -> None:
    t = through("openai", "gemini", {**OPENAI_BODY, "store": False, "service_tier": "auto", "metadata": {}})
    assert t.dropped == [] and "store" not in sent(t)


@pytest.mark.parametrize(("provider", "where"), [("openai", ["user"]), ("huggingface", ["user"]),
                                                 ("anthropic", ["metadata", "user_id"]),
                                                 ("bedrock", ["requestMetadata", "user"])])  # fmt: skip
def test_account_fields_reach_the_providers_that_take_them(provider: str, where: list[str]) -> None:
    t = through("openai", provider, {**OPENAI_BODY, "user": "u-1"})
    value: Any = sent(t)
    for key in where:
        value = value[key]
    assert value == "u-1" and t.dropped == []


def test_the_loss_report_names_a_field_in_the_clients_own_terms() -> None:
    t = through("anthropic", "mistral", {**ANTHROPIC_BODY, "metadata": {"user_id": "u-1"}})
    assert t.dropped == ["metadata.user_id"] and "user" not in sent(t)
    t = through("anthropic", "anthropic", {**ANTHROPIC_BODY, "metadata": {"user_id": "u-1"}})
    assert t.upstream is None or t.dropped == []  # native: passed through


# ---- safe and bounded ----------------------------------------------------------------------------------------


def test_client_chosen_names_are_cut_and_cleaned() -> None:
    weird = {f"x{i}\r\nSet-Cookie: a=b é" + "y" * 200: 1 for i in range(60)}
    t = through("anthropic", "openai", {**ANTHROPIC_BODY, **weird})
    assert len(t.dropped) == loss.COUNT_LIMIT and t.dropped[-1] == f"+{60 - loss.COUNT_LIMIT + 1}-more"
    for name in t.dropped:
        assert len(name) <= loss.NAME_LIMIT and name.isascii() and " " not in name and "\n" not in name
    value = loss.header_value(t.dropped)
    assert len(value) <= loss.HEADER_LIMIT and value.endswith("-more") and value.isprintable()


def test_the_header_value_keeps_whole_names() -> None:
    names = [f"field_{i:02d}_" + "n" * 40 for i in range(30)]
    value = loss.header_value(names)
    kept = value.split(",")
    assert len(value) <= loss.HEADER_LIMIT and kept[-1] == f"+{30 - len(kept) + 1}-more"
    assert kept[:-1] == names[: len(kept) - 1]
    assert loss.header_value(["top_k", "cache_control"]) == "top_k,cache_control"


# ---- on_unsupported: refuse -----------------------------------------------------------------------------------


def test_refuse_answers_400_naming_what_would_be_dropped() -> None:
    body = {**ANTHROPIC_BODY, "top_k": 5, "service_tier": "auto"}
    t = through("anthropic", "openai", body, "refuse")
    assert isinstance(t.refused, ProxyError) and t.refused.status == 400
    assert t.refused.code == "unsupported_field" and t.refused.param == "service_tier"
    assert "service_tier, top_k cannot be sent to provider openai" in t.refused.message
    assert "on_unsupported: refuse" in t.refused.message
    assert through("anthropic", "openai", body).dropped == ["service_tier", "top_k"]  # the default: dropped


def test_refuse_lets_whole_translations_through() -> None:
    t = through("anthropic", "bedrock", {**ANTHROPIC_BODY, "top_k": 5}, "refuse")
    assert sent(t)["additionalModelRequestFields"] == {"top_k": 5}


def test_refuse_covers_what_the_providers_builder_drops() -> None:
    """Bedrock drops a thinking budget for a model without one while it builds the request."""
    column = Column("bedrock", "bedrock", "amazon.nova-probe-v1:0", COLUMN["bedrock"].options, COLUMN["bedrock"].auth)
    body = {**ANTHROPIC_BODY, "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert translate(rule_for("anthropic", column), "anthropic", column, body).dropped == ["thinking"]
    refused = translate(rule_for("anthropic", column, "refuse"), "anthropic", column, body).refused
    assert refused is not None and refused.param == "thinking"


def test_refuse_is_a_rule_setting_checked_at_load() -> None:
    from addon.rules import load_rules_text

    spec = {"name": "r", "match": {"host": "h"}, "on_unsupported": "fail", "model": {"provider": "openai"}}
    with pytest.raises(ValueError, match="on_unsupported"):
        load_rules_text(json.dumps({"rules": [spec]}), environ={})
