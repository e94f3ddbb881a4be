"""Cohere v2 thinking (#14): reasoning_effort / the extension `thinking` -> `thinking: {type, token_budget}` on its
reasoning models (`none` turns it off), other models and the v1 APIs drop and report it; thinking blocks come back
as reasoning_content, plain and streamed, end to end with the openai SDK through mitmdump."""

from __future__ import annotations

from typing import Any

import pytest

from addon.exchange import build_upstream
from tests.support import reasoning_e2e
from tests.support.fakes import ANSWER, Reply, sse
from tests.support.pipeline import USER, call, make_rule
from tests.support.reasoning_e2e import ReasoningEnv
from tests.support.replies import COHERE_USAGE

renv_module, renv = reasoning_e2e.renv_module, reasoning_e2e.renv  # the e2e fixtures
MODEL = "command-a-reasoning-08-2025"
THOUGHT = "Two ones make two."


def sent(model: str, api: str | None = None, **extra: Any) -> tuple[dict[str, Any], list[str]]:
    rule = make_rule("cohere", name=model, options={"cohere_api": api} if api else {})
    c = call(rule, {"messages": USER, **extra})
    return build_upstream(rule, c).body or {}, c.dropped


@pytest.mark.parametrize(
    ("extra", "thinking"),
    [
        ({"reasoning_effort": "low"}, {"type": "enabled", "token_budget": 4096}),
        ({"reasoning_effort": "none"}, {"type": "disabled"}),
        ({"thinking": {"type": "enabled", "budget_tokens": 3000}}, {"type": "enabled", "token_budget": 3000}),
        ({"thinking": {"type": "adaptive"}}, {"type": "enabled"}),
        ({}, None),
    ],
)
def test_reasoning_models_take_a_token_budget(extra: dict[str, Any], thinking: Any) -> None:
    body, dropped = sent(MODEL, **extra)
    assert body.get("thinking") == thinking and dropped == []
    assert "reasoning_effort" not in body


@pytest.mark.parametrize(("model", "api"), [("command-r-plus", None), (MODEL, "v1")])
def test_no_control_drops_and_reports(model: str, api: str | None) -> None:
    body, dropped = sent(model, api, reasoning_effort="high")
    assert "thinking" not in body and "reasoning_effort" not in body and dropped == ["thinking"]


def _reply(stream: bool) -> Reply:
    if not stream:
        content = [{"type": "thinking", "thinking": THOUGHT}, {"type": "text", "text": ANSWER}]
        message = {"role": "assistant", "content": content}
        return Reply(json={"id": "c1", "finish_reason": "COMPLETE", "message": message, "usage": COHERE_USAGE})
    events = [{"id": "c1", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}}]
    for i, block in enumerate(({"thinking": THOUGHT[:8]}, {"thinking": THOUGHT[8:]}, {"text": ANSWER})):
        events.append({"type": "content-delta", "index": i, "delta": {"message": {"content": block}}})
    events.append({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": COHERE_USAGE}})
    return Reply(chunks=[sse(e, e["type"]) for e in events])


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_e2e_reasoning_effort_on_cohere(renv: ReasoningEnv, stream: bool) -> None:
    sent = renv.reasoning_reaches_the_client("cohere", stream, _reply(stream), MODEL, "medium", ANSWER, THOUGHT)
    assert sent["thinking"] == {"type": "enabled", "token_budget": 16384} and "reasoning_effort" not in sent
