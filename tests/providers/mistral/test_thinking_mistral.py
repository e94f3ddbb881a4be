"""Mistral reasoning (#14): reasoning_effort on the adjustable models (Mistral Small 4, Medium 3.5, Large 4) is
`high` or `none`; Magistral always reasons (`none` reported); other models drop and report it; thinking chunks come
back as reasoning_content, plain and streamed, end to end with the openai SDK through mitmdump."""

from __future__ import annotations

from typing import Any

import pytest

from addon.exchange import build_upstream
from tests.support import reasoning_e2e
from tests.support.fakes import ANSWER, Reply, openai_chat, sse
from tests.support.pipeline import USER, call, make_rule
from tests.support.reasoning_e2e import ReasoningEnv

renv_module, renv = reasoning_e2e.renv_module, reasoning_e2e.renv  # the e2e fixtures
THOUGHT = "Two ones make two."


def sent(model: str, **extra: Any) -> tuple[dict[str, Any], list[str]]:
    rule = make_rule("mistral", name=model)
    c = call(rule, {"messages": USER, **extra})
    return build_upstream(rule, c).body or {}, c.dropped


@pytest.mark.parametrize(
    ("model", "extra", "effort", "dropped"),
    [
        ("mistral-small-latest", {"reasoning_effort": "low"}, "high", []),
        ("mistral-small-2603", {"reasoning_effort": "none"}, "none", []),
        ("mistral-medium-3-5", {"reasoning_effort": "minimal"}, "none", []),
        ("mistral-large-4-0", {"thinking": {"type": "enabled", "budget_tokens": 2000}}, "high", []),
        ("magistral-medium-latest", {"reasoning_effort": "high"}, None, []),  # always reasons
        ("magistral-small-latest", {"reasoning_effort": "none"}, None, ["reasoning_effort"]),
        ("mistral-large-2411", {"reasoning_effort": "high"}, None, ["thinking"]),
        ("codestral-latest", {"reasoning_effort": "none"}, None, []),
    ],
)
def test_reasoning_effort_per_model(model: str, extra: dict[str, Any], effort: Any, dropped: list[str]) -> None:
    body, got = sent(model, **extra)
    assert body.get("reasoning_effort") == effort and "thinking" not in body and got == dropped


def _reply(stream: bool) -> Reply:
    chunks = [{"type": "thinking", "thinking": [{"type": "text", "text": THOUGHT}]}, {"type": "text", "text": ANSWER}]
    if not stream:
        return Reply(
            json=openai_chat(model="mistral-small-latest")
            | {"choices": [{"index": 0, "message": {"role": "assistant", "content": chunks}, "finish_reason": "stop"}]}
        )
    base = {"id": "m1", "object": "chat.completion.chunk", "created": 1, "model": "mistral-small-latest"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": [c]}}]} for c in chunks]
    usage = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    events.append(
        {**base, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}], "usage": usage}
    )
    return Reply(chunks=[*(sse(e) for e in events), b"data: [DONE]\n\n"])


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_reasoning_effort_on_mistral(renv: ReasoningEnv, stream: bool) -> None:
    reply = _reply(stream)
    sent = renv.reasoning_reaches_the_client(
        "mistral", stream, reply, "mistral-small-latest", "medium", ANSWER, THOUGHT
    )
    assert sent["reasoning_effort"] == "high"
