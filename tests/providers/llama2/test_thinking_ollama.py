"""Ollama thinking (#14, llama2 and mistral with format ollama): reasoning_effort / the extension `thinking` ->
`think` (a level for gpt-oss, true for the other thinking models, false for none); models not known to think, the
raw format and an OpenAI-compatible server without reasoning_effort drop and report it; `message.thinking` comes
back as reasoning_content, plain and streamed, end to end with the openai SDK through mitmdump."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.exchange import build_upstream
from tests.support import reasoning_e2e
from tests.support.fakes import ANSWER, Reply
from tests.support.pipeline import USER, call, make_rule
from tests.support.reasoning_e2e import ReasoningEnv
from tests.support.replies import NDJSON

renv_module, renv = reasoning_e2e.renv_module, reasoning_e2e.renv  # the e2e fixtures
THOUGHT = "Two ones make two."
OLLAMA = {"llama2_format": "ollama", "upstream_url": "http://127.0.0.1:11434"}


def sent(model: str, options: dict[str, Any] = OLLAMA, provider: str = "llama2", **extra: Any) -> tuple[Any, Any]:
    rule = make_rule(provider, name=model, options=options)
    c = call(rule, {"messages": USER, **extra})
    return build_upstream(rule, c).body or {}, c.dropped


@pytest.mark.parametrize(
    ("model", "extra", "think", "dropped"),
    [
        ("qwen3:8b", {"reasoning_effort": "low"}, True, []),
        ("deepseek-r1", {"reasoning_effort": "none"}, False, []),
        ("gpt-oss:20b", {"reasoning_effort": "minimal"}, "low", []),
        ("gpt-oss:20b", {"thinking": {"type": "enabled", "budget_tokens": 20000}}, "high", []),
        ("llama3.2", {"reasoning_effort": "high"}, None, ["thinking"]),
        ("llama3.2", {}, None, []),
    ],
)
def test_think_per_model(model: str, extra: dict[str, Any], think: Any, dropped: list[str]) -> None:
    body, got = sent(model, **extra)
    assert body.get("think") == think and got == dropped
    assert "reasoning_effort" not in body and "thinking" not in body


def test_mistral_over_ollama_and_the_other_formats() -> None:
    body, dropped = sent(
        "magistral:24b",
        {"mistral_format": "ollama", "upstream_url": "http://127.0.0.1:11434"},
        "mistral",
        reasoning_effort="high",
    )
    assert body["think"] is True and dropped == []
    raw = {"llama2_format": "raw", "upstream_url": "http://127.0.0.1:9/generate"}
    body, dropped = sent("llama", raw, reasoning_effort="high")
    assert "reasoning_effort" not in json.dumps(body) and dropped == ["thinking"]
    compatible = {"llama2_format": "openai", "upstream_url": "http://127.0.0.1:8000"}
    body, dropped = sent("qwen3", compatible, reasoning_effort="high", thinking={"type": "enabled", "budget_tokens": 9})
    assert body["reasoning_effort"] == "high" and "thinking" not in body and dropped == []


def _reply(stream: bool) -> Reply:
    def line(message: dict[str, Any], done: bool) -> dict[str, Any]:
        extra = {"done_reason": "stop", "prompt_eval_count": 25, "eval_count": 12} if done else {}
        return {"model": "qwen3", "message": {"role": "assistant", **message}, "done": done, **extra}

    if not stream:
        return Reply(json=line({"content": ANSWER, "thinking": THOUGHT}, True), headers=NDJSON)
    lines = [
        line({"content": "", "thinking": THOUGHT[:8]}, False),
        line({"content": "", "thinking": THOUGHT[8:]}, False),
        line({"content": ANSWER}, False),
        line({"content": ""}, True),
    ]
    return Reply(chunks=[json.dumps(x).encode() + b"\n" for x in lines], headers=NDJSON)


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_reasoning_effort_on_ollama(renv: ReasoningEnv, stream: bool) -> None:
    sent = renv.reasoning_reaches_the_client("llama2", stream, _reply(stream), "qwen3:8b", "high", ANSWER, THOUGHT)
    assert sent["think"] is True
