"""End to end: a cached conversation (system prompt, tools, a history growing over three turns with a tool round trip)
from each client format's official SDK through a real mitmdump to a fake Anthropic and a fake Bedrock that check the
cache breakpoints as the real APIs do and count cache reads and writes with a simulated cache
(tests/support/prompt_cache.py). Checked: where the breakpoints arrive (the client's own, or the rule's automatic
ones), that each turn reads what the turn before wrote, the usage in the client's own format, and the audit record's
cached and cache-write tokens and its cost split."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
from google import genai
from google.genai import types

from tests.support.anthropic_sdk import anthropic_client
from tests.support.bedrock import FakeBedrock, proxy_for_bedrock
from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import Mitmdump
from tests.support.prompt_cache import (
    ANSWER,
    PromptCache,
    anthropic_responder,
    anthropic_units,
    bedrock_responder,
    bedrock_units,
)
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

KEY_ID, SECRET, REGION = "AKIDE2ECACHING000001", "e2e/caching/fake-secret-0000000000001", "us-west-2"
PROVIDER_KEY = "sk-ant-provider-fake-caching"
MODELS = {"anthropic": "claude-sonnet-4-5", "bedrock": "anthropic.claude-sonnet-4-5-20250929-v1:0"}
FORMATS = ("openai", "anthropic", "responses", "gemini")
# USD per 1M tokens: input, output, cache read, cache write (the record's cost split is checked against them).
COSTS = {"input_cost": 3.0, "output_cost": 15.0, "cache_read_cost": 0.3, "cache_write_cost": 3.75}
EPHEMERAL = {"type": "ephemeral"}
SYSTEM = "You are a careful assistant who answers in one short sentence. " * 40
TOOL = {"name": "lookup", "description": "Look a word up in the dictionary.", "parameters": {"type": "object"}}
QUESTIONS = ("What does 'cache' mean?", "And 'breakpoint'?")


def rules_yaml(anthropic_url: str, bedrock_url: str) -> str:
    rules = []
    for fmt in FORMATS:
        for provider in ("anthropic", "bedrock"):
            for mode in ("own", "auto"):
                options: dict[str, Any] = {"upstream_url": anthropic_url if provider == "anthropic" else bedrock_url}
                options.update(COSTS)
                if provider == "bedrock":
                    options["bedrock"] = {"aws_region": REGION}
                if mode == "auto":
                    options["cache_breakpoints"] = "auto"
                auth = (
                    {"header_name": "x-api-key", "header_value": PROVIDER_KEY}
                    if provider == "anthropic"
                    else {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
                )
                rule: dict[str, Any] = {
                    "name": f"{fmt}-{provider}-{mode}",
                    "match": {"host": f"{fmt}-{provider}-{mode}.cache.internal"},
                    "model": {"provider": provider, "name": MODELS[provider], "aliases": {"*": MODELS[provider]},
                              "options": options},
                    "auth": auth,
                    "logging": {"log_payloads": True},
                }  # fmt: skip
                if fmt == "responses":
                    rule["route_type"] = "llm/v1/responses"
                elif fmt != "openai":
                    rule["llm_format"] = fmt
                rules.append(rule)
    return json.dumps({"rules": rules})


@dataclass
class Env:
    proxy: Mitmdump
    anthropic: FakeUpstream
    bedrock: FakeBedrock
    caches: dict[str, PromptCache]

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port('regular')}"

    def host(self, fmt: str, provider: str, mode: str) -> str:
        return f"{fmt}-{provider}-{mode}.cache.internal"

    def records(self, marker: str, count: int) -> list[dict[str, Any]]:
        """The `count` audit records whose client request holds `marker`, in order (written by a background thread)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                found = [r for r in self.proxy.records() if marker in json.dumps(r["payload"]["client_request"])]
            except ValueError:  # a line the writer thread has not finished yet: read again
                found = []
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


@pytest.fixture(scope="module")
def env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fake_anthropic, fake_bedrock = FakeUpstream("anthropic"), FakeBedrock({KEY_ID: SECRET}, REGION)
    workdir = tmp_path_factory.mktemp("e2e-caching")
    try:
        with proxy_for_bedrock(workdir, rules_yaml(fake_anthropic.url, fake_bedrock.url), {}) as proxy:
            yield Env(proxy, fake_anthropic, fake_bedrock, {"anthropic": PromptCache(), "bedrock": PromptCache()})
    finally:
        fake_anthropic.close()
        fake_bedrock.close()


@pytest.fixture
def env(env_module: Env) -> Env:
    for fake, name, responder in (
        (env_module.anthropic, "anthropic", anthropic_responder),
        (env_module.bedrock, "bedrock", bedrock_responder),
    ):
        fake.reset()
        env_module.caches[name].clear()
        fake.responder = responder(env_module.caches[name])
    return env_module


# ---- the conversation in each client format: turn n (0, 1, 2) -> the client's usage as a dict ------------------


def openai_turn(env: Env, host: str, n: int, marker: str, own: bool, stream: bool) -> dict[str, Any]:
    def part(text: str, mark: bool) -> list[dict[str, Any]]:
        return [{"type": "text", "text": text, **({"cache_control": EPHEMERAL} if mark and own else {})}]

    call = [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"word": "cache"}'}}]
    messages: list[dict[str, Any]] = [{"role": "system", "content": part(SYSTEM, True)}]
    turns = [
        {"role": "user", "content": f"{marker} {QUESTIONS[0]}"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": QUESTIONS[1]},
        {"role": "assistant", "content": None, "tool_calls": call},
        {"role": "tool", "tool_call_id": "call_1", "content": "a store of things kept for later"},
    ][: 2 * n + 1]
    last = turns[-1]
    messages += [*turns[:-1], {**last, "content": part(last["content"], True)}]
    ask: dict[str, Any] = {"model": "claude", "messages": messages, "tools": [{"type": "function", "function": TOOL}]}
    client = client_through(env.proxy, host)
    if stream:
        chunks = list(client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
        text, usage = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[-1].usage
    else:
        answer = client.chat.completions.create(**ask)
        text, usage = answer.choices[0].message.content, answer.usage
    assert text == ANSWER and usage is not None and usage.prompt_tokens_details is not None
    details = usage.prompt_tokens_details
    return {"prompt": usage.prompt_tokens, "read": details.cached_tokens, "write": details.cache_write_tokens}


def anthropic_turn(env: Env, host: str, n: int, marker: str, own: bool, stream: bool) -> dict[str, Any]:
    mark = {"cache_control": EPHEMERAL} if own else {}
    tool = {"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"], **mark}
    use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"word": "cache"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a store of things kept for later"}
    turns: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": f"{marker} {QUESTIONS[0]}"}]},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": [{"type": "text", "text": QUESTIONS[1]}]},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ][: 2 * n + 1]
    turns[-1] = {**turns[-1], "content": [{**turns[-1]["content"][0], **mark}]}
    client: anthropic.Anthropic = anthropic_client(env.proxy, host)
    system = [{"type": "text", "text": SYSTEM, **mark}]
    ask: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": system, "tools": [tool]}
    if stream:
        with client.messages.stream(**ask, messages=turns) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**ask, messages=turns)
    assert message.content[0].text == ANSWER  # type: ignore[union-attr]
    usage = message.usage
    prompt = usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return {"prompt": prompt, "read": usage.cache_read_input_tokens, "write": usage.cache_creation_input_tokens}


def responses_turn(env: Env, host: str, n: int, marker: str, own: bool, stream: bool) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": f"{marker} {QUESTIONS[0]}"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": ANSWER}]},
        {"role": "user", "content": QUESTIONS[1]},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"word": "cache"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "a store of things kept for later"},
    ][: 2 * n + 1]
    client = client_through(env.proxy, host)
    ask: dict[str, Any] = {"model": "gpt-5", "instructions": SYSTEM, "input": items,
                           "tools": [{"type": "function", "strict": False, **TOOL}]}  # fmt: skip
    if stream:
        events = list(client.responses.create(**ask, stream=True))
        response = next(e.response for e in events if e.type == "response.completed")
    else:
        response = client.responses.create(**ask)
    assert response.output_text == ANSWER and response.usage is not None
    details = response.usage.input_tokens_details
    return {"prompt": response.usage.input_tokens, "read": details.cached_tokens, "write": details.cache_write_tokens}


def gemini_turn(env: Env, host: str, n: int, marker: str, own: bool, stream: bool) -> dict[str, Any]:
    call = types.Part(function_call=types.FunctionCall(name="lookup", args={"word": "cache"}))
    result = types.Part(
        function_response=types.FunctionResponse(name="lookup", response={"result": "a store of things kept for later"})
    )
    contents = [
        types.Content(role="user", parts=[types.Part(text=f"{marker} {QUESTIONS[0]}")]),
        types.Content(role="model", parts=[types.Part(text=ANSWER)]),
        types.Content(role="user", parts=[types.Part(text=QUESTIONS[1])]),
        types.Content(role="model", parts=[call]),
        types.Content(role="user", parts=[result]),
    ][: 2 * n + 1]
    options = types.HttpOptions(
        base_url=f"http://{host}", httpx_client=httpx.Client(proxy=env.proxy_url, trust_env=False, timeout=20)
    )
    client = genai.Client(api_key="AIza-client-fake-key", http_options=options)
    declaration = types.FunctionDeclaration(
        name=TOOL["name"], description=TOOL["description"], parameters_json_schema=TOOL["parameters"]
    )
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM, tools=[types.Tool(function_declarations=[declaration])]
    )
    if stream:
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-pro", contents=contents, config=config))
        text, usage = "".join(c.text or "" for c in chunks), chunks[-1].usage_metadata
    else:
        out = client.models.generate_content(model="gemini-2.5-pro", contents=contents, config=config)
        text, usage = out.text, out.usage_metadata
    assert text == ANSWER and usage is not None
    return {"prompt": usage.prompt_token_count, "read": usage.cached_content_token_count or 0, "write": None}


TURNS = {"openai": openai_turn, "anthropic": anthropic_turn, "responses": responses_turn, "gemini": gemini_turn}
# (client format, whose breakpoints, provider). An Anthropic client's requests to Anthropic pass through natively
# (llm_format anthropic, provider anthropic): its own breakpoints arrive as sent, and automatic ones are not added.
CASES = [
    (fmt, mode, provider)
    for fmt, mode in [("openai", "own"), ("openai", "auto"), ("anthropic", "own"), ("anthropic", "auto"),
                      ("responses", "auto"), ("gemini", "auto")]
    for provider in ("anthropic", "bedrock")
    if (fmt, mode, provider) != ("anthropic", "auto", "anthropic")
]  # fmt: skip


def expected(fmt: str, mode: str, provider: str, n: int) -> list[str]:
    """Where turn n's breakpoints arrive: the client's (system, its last message, and the tool with an Anthropic
    client), or the automatic ones (system, the last message, the last message of the turn before)."""
    tools = "tools[0]" if provider == "anthropic" else "toolConfig.tools[0]"
    last = [f"messages[{2 * n}].content[0]"]
    if mode == "own":
        return [*([tools] if fmt == "anthropic" else []), "system[0]", *last]
    return ["system[0]", *([f"messages[{2 * n - 2}].content[0]"] if n else []), *last]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("fmt", "mode", "provider"), CASES)
def test_a_cached_conversation_reads_each_turn_what_the_turn_before_wrote(
    env: Env, fmt: str, mode: str, provider: str, stream: bool
) -> None:
    marker = f"[{fmt}-{mode}-{provider}-{stream}]"
    host = env.host(fmt, provider, mode)
    usages = [TURNS[fmt](env, host, n, marker, mode == "own", stream) for n in range(3)]
    cache = env.caches[provider]
    assert cache.breakpoints == [expected(fmt, mode, provider, n) for n in range(3)]
    counts = cache.counts  # (uncached, read, written) per turn, as the fake answered
    assert counts[0][1] == 0 and counts[0][2] > 0
    for before, now in itertools.pairwise(counts):
        assert now[1] == before[1] + before[2] and now[2] > 0  # the whole prompt before, read; the new turn, written
    for usage, (uncached, read, written) in zip(usages, counts, strict=True):
        assert usage["prompt"] == uncached + read + written and (usage["read"] or 0) == read
        if usage["write"] is not None:  # Gemini's format has no count of cache writes
            assert usage["write"] == written
    records = env.records(marker, 3)
    assert len(records) == 3
    for record, (uncached, read, written) in zip(records, counts, strict=True):
        usage = record["usage"]
        assert (usage["cached_tokens"] or 0, usage["cache_write_tokens"]) == (read, written)
        assert usage["cost_details"] == pytest.approx(
            {
                "input": uncached * 3e-6,
                "cache_read": read * 0.3e-6,
                "cache_write": written * 3.75e-6,
                "output": 12 * 15e-6,
            }
        )
        assert usage["cost"] == pytest.approx(sum(usage["cost_details"].values()))
        assert "dropped" not in record["meta"]


def test_the_fakes_refuse_what_the_real_apis_refuse() -> None:
    """The fakes' checks, so that the conversations above would fail if the proxy sent what the real APIs refuse."""

    def user(*blocks: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": list(blocks)}]}

    marked = [{"type": "text", "text": str(n), "cache_control": EPHEMERAL} for n in range(5)]
    with pytest.raises(ValueError, match=r"A maximum of 4 blocks with cache_control may be provided\. Found 5\."):
        anthropic_units(user(*marked))
    with pytest.raises(ValueError, match="empty text blocks"):
        anthropic_units(user({"type": "text", "text": "", "cache_control": EPHEMERAL}))
    with pytest.raises(ValueError, match="Extra inputs"):
        anthropic_units(user({"type": "thinking", "thinking": "t", "signature": "s", "cache_control": EPHEMERAL}))
    with pytest.raises(ValueError, match="must not come after"):
        anthropic_units(user(marked[0], {**marked[1], "cache_control": {"type": "ephemeral", "ttl": "1h"}}))
    point = {"cachePoint": {"type": "default"}}
    with pytest.raises(ValueError, match="exceeds the maximum of 4"):
        bedrock_units({"messages": [{"role": "user", "content": [{"text": "x"}, point] * 5}]})
    with pytest.raises(ValueError, match="must follow a content block"):
        bedrock_units({"messages": [{"role": "user", "content": [point, {"text": "x"}]}]})


def test_more_breakpoints_than_the_provider_takes_are_refused_before_they_leave(env: Env) -> None:
    client = anthropic_client(env.proxy, env.host("anthropic", "bedrock", "own"))
    blocks = [{"type": "text", "text": f"part {n}", "cache_control": EPHEMERAL} for n in range(5)]
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model="claude", max_tokens=10, messages=[{"role": "user", "content": blocks}])  # type: ignore[list-item]
    assert "at most 4 cache breakpoints" in str(err.value) and env.bedrock.requests == []


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_automatic_breakpoints_leave_the_clients_own_in_place_and_stay_within_the_limit(
    env: Env, provider: str
) -> None:
    own = {"cache_control": {"type": "ephemeral", "ttl": "1h"}}
    client_through(env.proxy, env.host("openai", provider, "auto")).chat.completions.create(
        model="claude",
        tools=[{"type": "function", "function": TOOL, **own}],  # type: ignore[list-item]
        messages=[
            {"role": "system", "content": [{"type": "text", "text": SYSTEM, **own}]},  # type: ignore[list-item]
            {"role": "user", "content": [{"type": "text", "text": QUESTIONS[0], **own}]},  # type: ignore[list-item]
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": QUESTIONS[1]},
        ],
    )
    # The client's three where it put them, and one more (the last message) within Anthropic's and Bedrock's 4.
    tools = "tools[0]" if provider == "anthropic" else "toolConfig.tools[0]"
    assert env.caches[provider].breakpoints == [
        [tools, "system[0]", "messages[0].content[0]", "messages[2].content[0]"]
    ]
    if provider == "anthropic":  # the client's ttl kept; the one added after them lasts the default five minutes
        sent = env.anthropic.requests[-1].json
        assert sent["system"][0]["cache_control"] == sent["tools"][0]["cache_control"] == own["cache_control"]
        assert sent["messages"][2]["content"][0]["cache_control"] == EPHEMERAL
