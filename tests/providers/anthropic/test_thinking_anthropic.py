"""Claude's extended thinking through the Anthropic provider, both ways (issue #14).

Pure tests: reasoning_effort / the extension `thinking` -> `thinking.budget_tokens` under Anthropic's rules, what
Anthropic refuses next to thinking dropped and reported (never a 400 from upstream), earlier turns' signed blocks
first in their assistant turn, the answer's thinking and redacted_thinking blocks -> reasoning_content and
thinking_blocks, and the stream (at every byte offset) carrying thinking text and signature to the OpenAI writer and
to the Anthropic format's (signature_delta). Every upstream body built here is also checked against the fake
Anthropic (tests/support/anthropic_thinking.py), which refuses what the real API refuses.

End to end: the openai SDK through mitmdump to that fake: reasoning_effort reaches it as a budget, the answer's
reasoning reaches the client plain and streamed, and a tool loop with and without the LiteLLM-style thinking_blocks
in the history is accepted (thinking kept with the blocks, dropped and reported without them)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState

from addon.exchange import build_upstream
from addon.formats import ANTHROPIC, GEMINI, RESPONSES
from addon.providers import REGISTRY, Call
from addon.spec import ModelOptions
from addon.stream_bridge import client_translator
from addon.streams import SSEDecoder
from tests.support.anthropic_thinking import CALL_ID, FINAL, THOUGHT, ThinkingAnthropic
from tests.support.chunks import sse_events, translate
from tests.support.e2e_env import Env
from tests.support.fakes import Recorded
from tests.support.pipeline import USER, call, make_rule, respond

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def built(body: dict[str, Any], model: str = "claude-test") -> tuple[dict[str, Any], list[str]]:
    """The Messages body built for `body`, and the loss report; the fake Anthropic must accept the body."""
    rule = make_rule(name=model)
    c = call(rule, body)
    up = build_upstream(rule, c)
    assert up.body is not None
    fake = ThinkingAnthropic()
    fake.issued += ["sig-signed", "redacted-data"]
    assert fake.refusal(up.body) is None, fake.refusal(up.body)
    return up.body, c.dropped


@pytest.mark.parametrize(
    ("effort", "budget", "max_tokens"),
    [
        ("minimal", 1024, 4096),
        ("low", 4096, 8192),
        ("medium", 16384, 20480),
        ("high", 24576, 28672),
        ("xhigh", 27904, 32000),
    ],
)
def test_reasoning_effort_is_a_thinking_budget(effort: str, budget: int, max_tokens: int) -> None:
    """The table (addon/reasoning.py): max_tokens (the default 4,096) at or under the budget is raised by it, so
    the answer keeps its room, up to 32,000 (Opus 4's output limit), where the budget gives way."""
    body, dropped = built({"messages": USER, "reasoning_effort": effort})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == max_tokens and dropped == []
    assert "reasoning_effort" not in body


def test_no_thinking_for_none_or_nothing() -> None:
    for extra in ({}, {"reasoning_effort": "none"}, {"thinking": {"type": "disabled"}}):
        body, dropped = built({"messages": USER, **extra})
        assert "thinking" not in body and dropped == []


def test_the_thinking_extension_is_exact_and_wins_over_the_effort() -> None:
    body, _ = built(
        {
            "messages": USER,
            "max_tokens": 9000,
            "reasoning_effort": "low",
            "thinking": {"type": "enabled", "budget_tokens": 5000},
        }
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 5000} and body["max_tokens"] == 9000
    small, _ = built({"messages": USER, "max_tokens": 100, "thinking": {"type": "enabled", "budget_tokens": 10}})
    assert small["thinking"]["budget_tokens"] == 1024 and small["max_tokens"] == 1124  # Claude's least budget
    adaptive, _ = built({"messages": USER, "thinking": {"type": "adaptive"}})
    assert adaptive["thinking"] == {"type": "adaptive"} and adaptive["max_tokens"] == 4096


def test_what_anthropic_refuses_with_thinking_is_dropped_and_reported() -> None:
    body, dropped = built({"messages": USER, "reasoning_effort": "low", "temperature": 0.2, "top_k": 5, "top_p": 0.5})
    assert body["thinking"]["budget_tokens"] == 4096
    assert not {"temperature", "top_k", "top_p"} & set(body)
    assert dropped == ["temperature", "top_k", "top_p"]
    kept, dropped = built({"messages": USER, "reasoning_effort": "low", "temperature": 1, "top_p": 0.97})
    assert kept["temperature"] == 1 and kept["top_p"] == 0.97 and dropped == []


def test_a_forced_tool_keeps_its_meaning_and_thinking_gives_way() -> None:
    body, dropped = built({"messages": USER, "reasoning_effort": "high", "tools": [WEATHER], "tool_choice": "required"})
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"} and dropped == ["thinking"]


@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest", "claude-3-opus-20240229", "claude-2.1"])
def test_claudes_without_thinking_get_none_reported(model: str) -> None:
    body, dropped = built({"messages": USER, "reasoning_effort": "high", "temperature": 0.3}, model)
    assert "thinking" not in body and body["temperature"] == 0.3 and dropped == ["thinking"]


def test_legacy_complete_reports_thinking() -> None:
    rule = make_rule(options={"upstream_url": "https://api.anthropic.com/v1/complete"})
    c = call(rule, {"messages": USER, "reasoning_effort": "high"})
    up = build_upstream(rule, c)
    assert up.body is not None and "thinking" not in up.body and c.dropped == ["thinking"]


def _loop(thinking_blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
    }
    if thinking_blocks is not None:
        assistant["thinking_blocks"] = thinking_blocks
    return [*USER, assistant, {"role": "tool", "tool_call_id": CALL_ID, "content": "22C"}]


def test_signed_blocks_go_back_first_in_their_turn_and_keep_thinking_on() -> None:
    blocks = [
        {"type": "thinking", "thinking": "Hm.", "signature": "sig-signed"},
        {"type": "redacted_thinking", "data": "redacted-data"},
    ]
    body, dropped = built({"messages": _loop(blocks), "tools": [WEATHER], "reasoning_effort": "low"})
    assert body["messages"][1]["content"] == [
        *blocks,
        {"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": {}},
    ]
    assert body["thinking"]["type"] == "enabled" and dropped == []


def test_a_tool_loop_without_its_reasoning_drops_thinking_instead_of_a_400() -> None:
    """An OpenAI client that kept no thinking_blocks: Anthropic would refuse the turn with thinking on."""
    body, dropped = built({"messages": _loop(None), "tools": [WEATHER], "reasoning_effort": "low"})
    assert "thinking" not in body and dropped == ["thinking"]


def test_unsigned_reasoning_is_not_sent_and_reported() -> None:
    body, dropped = built({"messages": _loop([{"type": "thinking", "thinking": "x", "signature": ""}])})
    assert body["messages"][1]["content"][0]["type"] == "tool_use"
    assert dropped == ["thinking_blocks"]


def test_the_fake_refuses_what_the_real_api_refuses() -> None:
    fake = ThinkingAnthropic()
    on = {"type": "enabled", "budget_tokens": 2048}
    user = [{"role": "user", "content": "Hi"}]
    loop = [
        *user,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    ]
    cases = {
        "greater than or equal to 1024": {"thinking": {"type": "enabled", "budget_tokens": 10}},
        "`max_tokens` must be greater": {"thinking": on, "max_tokens": 2048},
        "`temperature`": {"thinking": on, "temperature": 0.5},
        "`top_k`": {"thinking": on, "top_k": 3},
        "forces tool use": {"thinking": on, "tool_choice": {"type": "any"}},
        "but found `tool_use`": {"thinking": on, "messages": loop},
        "Invalid `signature`": {
            "messages": [
                *user,
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "forged"}]},
                *user,
            ]
        },
    }
    for expected, extra in cases.items():
        problem = fake.refusal({"max_tokens": 4096, "messages": user, **extra})
        assert problem is not None and expected in problem, (expected, problem)
    assert fake.refusal({"max_tokens": 4096, "messages": loop}) is None  # without thinking the loop is fine


# ---- the answer ------------------------------------------------------------------------------------------------


def _answer(stream: bool, redacted: bool = True, tools: bool = False) -> tuple[Any, list[str]]:
    fake = ThinkingAnthropic(redacted=redacted)
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "max_tokens": 2048,
        "stream": stream,
        **({"tools": [{"name": "get_weather"}]} if tools else {}),
    }
    reply = fake(Recorded("POST", "/v1/messages", {}, {}, json.dumps(body).encode()))
    return (b"".join(reply.chunks) if stream else reply.json), fake.issued


def test_thinking_blocks_come_back_with_their_signatures() -> None:
    data, issued = _answer(False)
    status, out = respond(make_rule(), data)
    message = out["choices"][0]["message"]
    assert status == 200 and message["content"] == FINAL
    assert message["reasoning_content"] == "".join(THOUGHT)
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "".join(THOUGHT), "signature": issued[0]},
        {"type": "redacted_thinking", "data": issued[1]},
    ]


def _stream_call(writer: Any = None) -> Call:
    options = ModelOptions()
    extra = {"writer": writer} if writer else {}
    return Call("llm/v1/chat", {"messages": USER, "stream": True}, "claude-test", options, stream=True, **extra)


def test_the_stream_carries_reasoning_as_it_arrives_at_every_split() -> None:
    raw, _ = _answer(True, redacted=False, tools=True)
    events = translate(lambda: REGISTRY["anthropic"].stream_translator(_stream_call(), False, True), raw)
    deltas = [e["choices"][0]["delta"] for e in events if e != "[DONE]" and e["choices"]]
    assert [d["reasoning_content"] for d in deltas if "reasoning_content" in d] == THOUGHT
    first_call = next(i for i, d in enumerate(deltas) if d.get("tool_calls"))
    assert max(i for i, d in enumerate(deltas) if "reasoning_content" in d) < first_call
    assert deltas[first_call]["tool_calls"][0]["id"] == CALL_ID


def _anthropic_client_view(raw: bytes, cut: int | None) -> Any:
    translator = client_translator(REGISTRY["anthropic"], _stream_call(ANTHROPIC.writer), False, True)
    pieces = [raw] if cut is None else [raw[:cut], raw[cut:]]
    out = b"".join(translator.feed(p) for p in pieces) + translator.finish()
    decoder, snapshot, bufs = SSEDecoder(), None, {}
    for event in decoder.feed(out) + decoder.flush():
        snapshot = accumulate_event(event=json.loads(event.data), current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def test_the_signature_reaches_an_anthropic_format_client_as_a_signature_delta() -> None:
    raw, issued = _answer(True, redacted=True)
    whole = _anthropic_client_view(raw, None)
    assert [b.type for b in whole.content] == ["thinking", "redacted_thinking", "text"]
    assert whole.content[0].thinking == "".join(THOUGHT) and whole.content[0].signature == issued[0]
    assert whole.content[1].data == issued[1]  # redacted reasoning, whole in its block start
    for cut in range(1, len(raw)):
        assert _anthropic_client_view(raw, cut).content == whole.content, cut


@pytest.mark.parametrize("fmt", [RESPONSES, GEMINI], ids=["responses", "gemini"])
def test_reasoning_reaches_responses_and_gemini_clients_as_it_arrives(fmt: Any) -> None:
    """Responses: reasoning summary text deltas; Gemini: `thought` parts; neither format has a place for the
    signature or the redacted block (nothing of them is sent)."""
    raw, issued = _answer(True, redacted=True)
    translator = client_translator(
        REGISTRY["anthropic"],
        _stream_call(fmt.writer_for("/x:streamGenerateContent?alt=sse") if fmt is GEMINI else fmt.writer),
        False,
        True,
    )
    out = (b"".join(translator.feed(raw[i : i + 7]) for i in range(0, len(raw), 7)) + translator.finish()).decode()
    if fmt is RESPONSES:
        assert out.count("event: response.reasoning_summary_text.delta") == len(THOUGHT)
    else:
        assert out.count('"thought": true') + out.count('"thought":true') == len(THOUGHT)
    assert all(piece in out for piece in THOUGHT) and not [proof for proof in issued if proof in out]


def test_the_openai_stream_has_no_signature_but_keeps_every_event_well_formed() -> None:
    raw, issued = _answer(True, redacted=True)
    translator = REGISTRY["anthropic"].stream_translator(_stream_call(), True, True)
    events = json.dumps(sse_events(translator.feed(raw) + translator.finish()))
    assert not [proof for proof in issued if proof in events]  # no signature nor redacted data in OpenAI's format
    assert translator.result.reasoning == THOUGHT


# ---- end to end: the openai SDK through mitmdump to the fake Anthropic -------------------------------------------


@pytest.fixture
def thinking_fake(e: Env) -> Any:
    fake = ThinkingAnthropic()
    e.anthropic.responder = fake
    yield fake
    e.anthropic.responder = None


def _ask(e: Env, stream: bool, **kw: Any) -> tuple[Any, str, dict[str, str]]:
    """(the SDK's assistant message, its reasoning_content, the response headers)."""
    raw = e.client("anthropic").chat.completions.with_raw_response.create(model="claude-fake-1", stream=stream, **kw)
    if not stream:
        message = raw.parse().choices[0].message
        return message, (message.model_extra or {}).get("reasoning_content") or "", dict(raw.headers)
    state, reasoning = ChatCompletionStreamState(), ""
    for chunk in raw.parse():
        state.handle_chunk(chunk)
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
    return state.get_final_completion().choices[0].message, reasoning, dict(raw.headers)


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_reasoning_effort_thinks_and_the_reasoning_reaches_the_client(
    e: Env, thinking_fake: ThinkingAnthropic, stream: bool
) -> None:
    message, reasoning, headers = _ask(e, stream, messages=USER, reasoning_effort="high")
    assert message.content == FINAL and reasoning == "".join(THOUGHT)
    sent = e.anthropic.requests[-1].json
    # The rule's max_tokens (256) is raised above the budget, keeping the answer's 256.
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 24576} and sent["max_tokens"] == 24576 + 256
    assert "x-ai-proxy-dropped" not in headers and thinking_fake.refusals == []


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_a_tool_loop_with_thinking_over_three_turns(e: Env, thinking_fake: ThinkingAnthropic, stream: bool) -> None:
    """Turn 1 calls a tool; turn 2 sends the result back with the signed reasoning as the extension
    thinking_blocks (LiteLLM's shape): thinking stays on, the fake verifies the signature; turn 3 sends the result
    without it (an OpenAI client with nothing to send): the signature store puts it back; a call it never saw:
    thinking gives way, reported, and nothing is refused."""
    first, _, _ = _ask(e, stream, messages=USER, tools=[WEATHER], reasoning_effort="low")
    assert first.tool_calls[0].id == CALL_ID
    signature = thinking_fake.issued[0]
    loop = _loop([{"type": "thinking", "thinking": "".join(THOUGHT), "signature": signature}])
    second, _, headers = _ask(e, stream, messages=loop, tools=[WEATHER], reasoning_effort="low")
    sent = e.anthropic.requests[-1].json
    assert second.content == FINAL and sent["thinking"]["budget_tokens"] == 4096
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "".join(THOUGHT),
        "signature": signature,
    }
    assert "x-ai-proxy-dropped" not in headers
    # Without them (an OpenAI client has nothing to send), the proxy's signature store gives turn 1's back.
    third, _, headers = _ask(e, stream, messages=_loop(None), tools=[WEATHER], reasoning_effort="low")
    sent = e.anthropic.requests[-1].json
    assert third.content == FINAL and sent["messages"][1]["content"][0]["signature"] == signature
    assert "x-ai-proxy-dropped" not in headers
    # A call the store never saw: thinking gives way, reported, and nothing is refused.
    unknown = [{**m, "tool_call_id": "toolu_unseen"} if m["role"] == "tool" else m for m in _loop(None)]
    unknown[1] = {**unknown[1], "tool_calls": [{**unknown[1]["tool_calls"][0], "id": "toolu_unseen"}]}
    fourth, _, headers = _ask(e, stream, messages=unknown, tools=[WEATHER], reasoning_effort="low")
    assert fourth.content == FINAL and "thinking" not in e.anthropic.requests[-1].json
    assert headers["x-ai-proxy-dropped"] == "thinking_blocks,thinking"
    assert thinking_fake.refusals == []


@pytest.mark.e2e
def test_e2e_a_forged_signature_is_the_providers_400(e: Env, thinking_fake: ThinkingAnthropic) -> None:
    loop = _loop([{"type": "thinking", "thinking": "x", "signature": "forged"}])
    with pytest.raises(openai.BadRequestError) as err:
        _ask(e, False, messages=loop, tools=[WEATHER], reasoning_effort="low")
    assert "Invalid `signature`" in str(err.value)
