"""Gemini thinking (#14): reasoning_effort and the extension `thinking` -> thinkingConfig per model family
(thinkingBudget within Gemini 2.5's ranges, thinkingLevel for Gemini 3, `none` off where the model can turn it
off), includeThoughts so the thoughts come back as reasoning_content, thoughtsTokenCount as
completion_tokens_details.reasoning_tokens; plain and streamed (at every byte offset), and end to end with the
openai SDK through mitmdump."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.exchange import build_upstream
from addon.providers import REGISTRY, Call
from addon.spec import ModelOptions
from tests.support import reasoning_e2e
from tests.support.chunks import accumulate, translate
from tests.support.fakes import ANSWER, Reply
from tests.support.pipeline import USER, call, make_rule, respond
from tests.support.reasoning_e2e import ReasoningEnv

renv_module, renv = reasoning_e2e.renv_module, reasoning_e2e.renv  # the e2e fixtures

THOUGHT = "Two ones make two."


def config(model: str, **extra: Any) -> tuple[dict[str, Any] | None, list[str]]:
    rule = make_rule("gemini", name=model)
    c = call(rule, {"messages": USER, **extra})
    body = build_upstream(rule, c).body or {}
    return body.get("generationConfig", {}).get("thinkingConfig"), c.dropped


@pytest.mark.parametrize(
    ("model", "effort", "expected", "dropped"),
    [
        ("gemini-2.5-flash", "low", {"includeThoughts": True, "thinkingBudget": 4096}, []),
        ("gemini-2.5-flash", "xhigh", {"includeThoughts": True, "thinkingBudget": 24576}, []),  # Flash's top
        ("gemini-2.5-pro", "xhigh", {"includeThoughts": True, "thinkingBudget": 32768}, []),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}, []),
        ("gemini-2.5-flash-lite", "minimal", {"includeThoughts": True, "thinkingBudget": 1024}, []),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128}, ["reasoning_effort"]),  # Pro cannot stop thinking
        ("gemini-3-flash-preview", "medium", {"includeThoughts": True, "thinkingLevel": "MEDIUM"}, []),
        ("gemini-3-flash-preview", "none", {"thinkingLevel": "MINIMAL"}, ["reasoning_effort"]),
        ("gemini-3-pro-preview", "minimal", {"includeThoughts": True, "thinkingLevel": "LOW"}, []),
        ("gemini-3-pro-preview", "xhigh", {"includeThoughts": True, "thinkingLevel": "HIGH"}, []),
        ("gemini-2.0-flash", "high", None, ["thinking"]),  # no thinking on 2.0: dropped and reported
    ],
)
def test_reasoning_effort_per_model_family(model: str, effort: str, expected: Any, dropped: list[str]) -> None:
    assert config(model, reasoning_effort=effort) == (expected, dropped)


def test_the_extension_budget_is_exact_or_a_level() -> None:
    exact = {"thinking": {"type": "enabled", "budget_tokens": 3000}, "reasoning_effort": "low"}
    assert config("gemini-2.5-flash", **exact) == ({"includeThoughts": True, "thinkingBudget": 3000}, [])
    assert config("gemini-2.5-flash-lite", thinking={"type": "enabled", "budget_tokens": 100})[0] == {
        "includeThoughts": True,
        "thinkingBudget": 512,  # Flash-Lite's least budget
    }
    assert config("gemini-3-flash-preview", **exact)[0] == {"includeThoughts": True, "thinkingLevel": "LOW"}
    assert config("gemini-2.5-pro", thinking={"type": "adaptive"})[0] == {"includeThoughts": True, "thinkingBudget": -1}
    assert config("gemini-3-pro-preview", thinking={"type": "adaptive"})[0] == {"includeThoughts": True}
    assert config("gemini-2.5-flash") == (None, [])


def _answer(thoughts: int = 7) -> dict[str, Any]:
    parts = [{"text": THOUGHT, "thought": True}, {"text": ANSWER}]
    usage = {"promptTokenCount": 25, "candidatesTokenCount": 12, "thoughtsTokenCount": thoughts, "totalTokenCount": 44}
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}


def test_thoughts_are_reasoning_content_and_reasoning_tokens() -> None:
    status, out = respond(make_rule("gemini", name="gemini-2.5-flash"), _answer())
    message = out["choices"][0]["message"]
    assert status == 200 and message["content"] == ANSWER and message["reasoning_content"] == THOUGHT
    assert out["usage"]["completion_tokens"] == 19  # thoughts are output tokens
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 7}


def _sse(objs: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objs)


def _stream_objects() -> list[dict[str, Any]]:
    first = _answer()
    first["candidates"][0]["content"]["parts"] = [{"text": THOUGHT[:8], "thought": True}]
    del first["candidates"][0]["finishReason"]
    second = json.loads(json.dumps(first))
    second["candidates"][0]["content"]["parts"] = [{"text": THOUGHT[8:], "thought": True}]
    last = _answer()
    last["candidates"][0]["content"]["parts"] = [{"text": ANSWER}]
    return [first, second, last]


def test_streamed_thoughts_arrive_as_they_come_at_every_split() -> None:
    options = ModelOptions()
    c = Call("llm/v1/chat", {"messages": USER, "stream": True}, "gemini-2.5-flash", options, stream=True)
    events = translate(lambda: REGISTRY["gemini"].stream_translator(c, True, False), _sse(_stream_objects()))
    deltas = [e["choices"][0]["delta"] for e in events if e != "[DONE]" and e["choices"]]
    assert [d["reasoning_content"] for d in deltas if d.get("reasoning_content")] == [THOUGHT[:8], THOUGHT[8:]]
    got = accumulate(events)
    assert got["content"] == ANSWER
    assert got["usage"]["completion_tokens_details"] == {"reasoning_tokens": 7}


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_reasoning_effort_on_gemini(renv: ReasoningEnv, stream: bool) -> None:
    fake = renv.fakes["gemini"]
    fake.queue(Reply(chunks=[_sse(_stream_objects())]) if stream else Reply(json=_answer()))
    message, reasoning, usage, headers = renv.ask(
        "gemini", stream, model="gemini-2.5-flash", messages=USER, reasoning_effort="low"
    )
    assert message.content == ANSWER and reasoning == THOUGHT
    assert usage.completion_tokens_details.reasoning_tokens == 7
    assert renv.seen("gemini").json["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 4096,
    }
    assert "x-ai-proxy-dropped" not in headers


@pytest.mark.e2e
def test_e2e_gemini_3_takes_a_level_and_reports_none(renv: ReasoningEnv) -> None:
    renv.fakes["gemini"].queue(Reply(json=_answer(0)))
    _, _, _, headers = renv.ask("gemini", False, model="gemini-3-flash-preview", messages=USER, reasoning_effort="none")
    assert renv.seen("gemini").json["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MINIMAL"}
    assert headers["x-ai-proxy-dropped"] == "reasoning_effort"
