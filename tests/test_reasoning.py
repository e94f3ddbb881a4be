"""The reasoning mapping table (addon/reasoning.py): effort <-> budget, and Claude's budget rules."""

from __future__ import annotations

import pytest

from addon.errors import ProxyError
from addon.reasoning import (
    BUDGETS,
    CLAUDE_MIN_BUDGET,
    CLAUDE_RAISED_MAX_TOKENS,
    budget_for_effort,
    claude_budget,
    claude_thinks,
    effort_for_budget,
    requested_budget,
)


@pytest.mark.parametrize(
    ("effort", "budget", "back"),
    [("none", None, None), ("minimal", 1024, "low"), ("low", 4096, "low"), ("medium", 16384, "medium"),
     ("high", 24576, "high"), ("xhigh", 32768, "high"), ("extreme", None, None), (3, None, None)],
)  # fmt: skip
def test_the_table_both_ways(effort: object, budget: int | None, back: str | None) -> None:
    assert budget_for_effort(effort) == budget
    if budget is not None:
        assert effort_for_budget(budget) == back


@pytest.mark.parametrize(
    ("budget", "effort"), [(None, "medium"), (1, "low"), (4096, "low"), (4097, "medium"), (16385, "high")]
)
def test_budget_bands(budget: int | None, effort: str) -> None:
    assert effort_for_budget(budget) == effort


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, (False, None)),
        ({"reasoning_effort": "none"}, (False, None)),
        ({"reasoning_effort": "low"}, (True, 4096)),
        ({"reasoning_effort": "low", "thinking": {"type": "enabled", "budget_tokens": 2000}}, (True, 2000)),
        ({"reasoning_effort": "low", "thinking": {"type": "disabled"}}, (False, None)),
        ({"thinking": {"type": "adaptive"}}, (True, None)),
        ({"thinking": {"type": "enabled"}}, (True, None)),
    ],
)
def test_what_a_request_asks_for(body: dict, expected: tuple[bool, int | None]) -> None:
    assert requested_budget(body) == expected


def test_claude_budgets_follow_anthropics_rules() -> None:
    for effort, budget in BUDGETS.items():
        for max_tokens in (1, 256, 4096, budget, budget + 1, 40000):
            got_budget, got_max = claude_budget(budget, max_tokens)
            assert got_budget >= CLAUDE_MIN_BUDGET and got_max > got_budget, (effort, max_tokens)
            assert got_max >= max_tokens  # never lowered
            assert got_max <= max(max_tokens, CLAUDE_RAISED_MAX_TOKENS)  # raised only up to the safe limit
    assert claude_budget(2048, 8000) == (2048, 8000)  # room enough: unchanged
    assert claude_budget(None, 4096) == (16384, 20480)


@pytest.mark.parametrize(
    ("model", "thinks"),
    [("claude-sonnet-4-5", True), ("claude-3-7-sonnet-latest", True), ("claude-opus-4-1-20250805", True),
     ("claude-3-5-sonnet-20241022", False), ("claude-3-haiku-20240307", False), ("claude-2.1", False),
     ("anthropic.claude-3-5-haiku-20241022-v1:0", False), ("us.anthropic.claude-sonnet-4-20250514-v1:0", True),
     ("claude-fake-1", True), (None, True)],
)  # fmt: skip
def test_which_claudes_think(model: str | None, thinks: bool) -> None:
    assert claude_thinks(model) is thinks


@pytest.mark.parametrize("effort", ["extreme", 3, ""])
def test_an_unknown_effort_is_a_400_naming_it(effort: object) -> None:
    with pytest.raises(ProxyError) as e:
        requested_budget({"reasoning_effort": effort})
    assert e.value.status == 400 and e.value.param == "reasoning_effort"
