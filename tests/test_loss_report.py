"""The loss report (x-ai-proxy-dropped, the record's meta.dropped) through the real translation of each client format,
its safe and bounded form, and `on_unsupported: refuse` turning a non-empty report into the client's 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
import yaml

from addon import loss
from addon.errors import ProxyError
from addon.matrix.probe import COLUMNS, Column, Translation, rule_for, translate
from tests.support import format_e2e
from tests.support.anthropic_sdk import MESSAGES, anthropic_client
from tests.support.fakes import ANSWER, FakeUpstream
from tests.support.mitmdump import Mitmdump
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import client_through

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


@pytest.mark.parametrize("provider", ["cohere", "mistral", "llama2", "huggingface"])
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
    t = through("openai", "mistral", body)
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


@pytest.mark.parametrize(("provider", "forwarded"), [("anthropic", False), ("gemini", False), ("cohere", False),
                                                     ("openai", True), ("mistral", True)])  # fmt: skip
def test_a_field_the_proxy_does_not_know_is_reported_where_the_provider_does_not_forward_it(
    provider: str, forwarded: bool
) -> None:
    t = through("openai", provider, {**OPENAI_BODY, "x_vendor_option": 1})
    assert ("x_vendor_option" in sent(t)) is forwarded
    assert t.dropped == ([] if forwarded else ["x_vendor_option"])


def test_openai_and_azure_get_an_openai_clients_extensions_as_sent() -> None:
    """OpenAI-compatible APIs that take the client's body as it is (Provider.forwards_body): its extensions are left
    to them, and an agent's whole history is not walked on the proxy's hottest path."""
    part = {"type": "text", "text": "Be brief.", "cache_control": {"type": "x"}}
    body = {**OPENAI_BODY, "messages": [{"role": "system", "content": [part]}, *OPENAI_BODY["messages"]]}
    for provider in ("openai", "azure"):
        t = through("openai", provider, body)
        assert sent(t)["messages"][0]["content"] == [part] and t.dropped == []
    t = through("anthropic", "openai", {**ANTHROPIC_BODY, "system": [part]})  # another format: the core decides
    assert "cache_control" not in json.dumps(sent(t)) and t.dropped == ["cache_control"]


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


# ---- end to end: the openai and anthropic SDKs through a real mitmdump ---------------------------------------

CLIENT_KEY = "sk-client-loss-report-0000"


def _rules(fakes: dict[str, FakeUpstream]) -> str:
    """OpenAI clients to a fake Anthropic, Anthropic clients to a fake OpenAI, each with the default (drop) and with
    on_unsupported: refuse (host `<refuse|drop>.<client format>.internal`)."""
    specs = []
    for client, provider, model in (("openai", "anthropic", "claude-fake-1"), ("anthropic", "openai", "gpt-fake-1")):
        for mode in ("drop", "refuse"):
            spec = rule_spec(f"{client}-{mode}", f"{mode}.{client}.internal", provider, model, {})
            spec["match"] = {"host": f"{mode}.{client}.internal"}
            spec["model"]["options"] = {"upstream_url": fakes[provider].url}
            spec.update(on_unsupported=mode, logging={"log_payloads": True})
            spec["auth"] = yaml.safe_load(format_e2e.auth(provider))
            if client == "anthropic":
                spec["llm_format"] = "anthropic"
            specs.append(spec)
    spec = rule_spec("responses-refuse", "refuse.responses.internal", "anthropic", "claude-fake-1", {})
    spec["match"] = {"host": "refuse.responses.internal"}
    spec["model"]["options"] = {"upstream_url": fakes["anthropic"].url, "hosted_tools": "drop"}
    spec.update(
        route_type="llm/v1/responses", on_unsupported="refuse", auth=yaml.safe_load(format_e2e.auth("anthropic"))
    )
    return rules_text(*specs, spec)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mitmdump, dict[str, FakeUpstream]]]:
    with format_e2e.format_env(tmp_path_factory.mktemp("loss"), ["anthropic", "openai"], _rules, CLIENT_KEY) as env:
        yield env.proxy, env.fakes


@pytest.fixture
def e2e(proxy: tuple[Mitmdump, dict[str, FakeUpstream]]) -> tuple[Mitmdump, dict[str, FakeUpstream]]:
    for fake in proxy[1].values():
        fake.reset()
    return proxy


@pytest.mark.e2e
def test_e2e_an_openai_client_sees_the_loss_report(e2e: tuple[Mitmdump, dict[str, FakeUpstream]]) -> None:
    proxy, fakes = e2e
    client = client_through(proxy, "drop.openai.internal", CLIENT_KEY)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-fake-1", messages=MESSAGES, extra_body={"prompt_cache_key": "loss-e2e-1", "verbosity": "low"}
    )
    assert sorted(raw.headers["x-ai-proxy-dropped"].split(",")) == ["prompt_cache_key", "verbosity"]
    assert raw.parse().choices[0].message.content == ANSWER
    sent = fakes["anthropic"].requests[-1].json
    assert "prompt_cache_key" not in sent and "verbosity" not in sent
    record = proxy.record_with("loss-e2e-1")
    assert sorted(record["meta"]["dropped"]) == ["prompt_cache_key", "verbosity"]


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_refuse_answers_an_openai_client_400(e2e: tuple[Mitmdump, dict[str, FakeUpstream]], stream: bool) -> None:
    proxy, fakes = e2e
    client = client_through(proxy, "refuse.openai.internal", CLIENT_KEY)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="claude-fake-1", messages=MESSAGES, stream=stream, extra_body={"prompt_cache_key": "k"}
        )
    assert e.value.status_code == 400 and e.value.code == "unsupported_field" and e.value.param == "prompt_cache_key"
    assert "prompt_cache_key cannot be sent to provider anthropic" in e.value.message
    assert fakes["anthropic"].requests == []  # nothing went upstream
    answer = client.chat.completions.create(model="claude-fake-1", messages=MESSAGES)  # a whole one goes through
    assert answer.choices[0].message.content == ANSWER and len(fakes["anthropic"].requests) == 1


@pytest.mark.e2e
def test_e2e_an_anthropic_client_sees_the_loss_report(e2e: tuple[Mitmdump, dict[str, FakeUpstream]]) -> None:
    proxy, fakes = e2e
    client = anthropic_client(proxy, "drop.anthropic.internal", CLIENT_KEY)
    raw = client.messages.with_raw_response.create(
        model="gpt-fake-1", max_tokens=64, messages=MESSAGES, extra_body={"top_k": 5}
    )
    assert raw.headers["x-ai-proxy-dropped"] == "top_k"
    assert raw.parse().content[0].text == ANSWER  # type: ignore[union-attr]
    assert "top_k" not in fakes["openai"].requests[-1].json


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_refuse_answers_an_anthropic_client_in_its_own_envelope(
    e2e: tuple[Mitmdump, dict[str, FakeUpstream]], stream: bool
) -> None:
    proxy, fakes = e2e
    client = anthropic_client(proxy, "refuse.anthropic.internal", CLIENT_KEY)
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    ask: dict[str, Any] = {"model": "gpt-fake-1", "max_tokens": 64, "messages": MESSAGES, "system": system}
    with pytest.raises(anthropic.BadRequestError) as e:
        if stream:
            with client.messages.stream(**ask, extra_body={"top_k": 5}) as s:
                s.get_final_message()
        else:
            client.messages.create(**ask, extra_body={"top_k": 5})
    assert e.value.status_code == 400
    error = e.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert "cache_control, top_k cannot be sent to provider openai" in error["message"]
    assert fakes["openai"].requests == []


@pytest.mark.e2e
def test_e2e_refuse_covers_hosted_tools_a_responses_rule_drops(e2e: tuple[Mitmdump, dict[str, FakeUpstream]]) -> None:
    proxy, fakes = e2e
    client = client_through(proxy, "refuse.responses.internal", CLIENT_KEY)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="claude-fake-1", input="What is 1 + 1?", tools=[{"type": "web_search"}])
    assert e.value.status_code == 400 and e.value.code == "unsupported_field" and e.value.param == "tools.web_search"
    assert fakes["anthropic"].requests == []
