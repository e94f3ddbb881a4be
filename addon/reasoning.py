"""The reasoning mapping table: OpenAI's `reasoning_effort` <-> a thinking budget in tokens, and the rules of the
Claude model family (served by more than one provider). Each provider maps the table to its own control in its own
package (`thinking.py`). Pure code; every provider and client format reads its numbers here, so the README's
"Reasoning" table describes one place.

| effort  | budget (tokens) | back to an effort |
|---------|-----------------|-------------------|
| none    | no thinking     |                   |
| minimal | 1,024           | low               |
| low     | 4,096           | low (<= 4,096)    |
| medium  | 16,384          | medium (<= 16,384)|
| high    | 24,576          | high (above)      |
| xhigh   | 32,768          | high              |
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
# Each effort's budget: the top of its band in effort_for_budget (so low/medium/high come back as themselves),
# minimal Claude's least budget, high below the 32,000 output tokens of the smallest thinking Claude (Opus 4).
BUDGETS = {"minimal": 1024, "low": 4096, "medium": 16384, "high": 24576, "xhigh": 32768}
LOW_MAX = 4096  # a budget up to this is a low effort
MEDIUM_MAX = 16384  # up to this a medium one, above a high one


def effort_for_budget(budget: int | None) -> str:
    """A thinking budget in tokens as an OpenAI reasoning effort (no budget: the model decides, medium)."""
    if budget is None:
        return "medium"
    if budget <= LOW_MAX:
        return "low"
    return "medium" if budget <= MEDIUM_MAX else "high"


def budget_for_effort(effort: Any) -> int | None:
    """An OpenAI reasoning effort as a thinking budget in tokens; None for `none` (no thinking) and for what is not
    an effort."""
    return BUDGETS.get(effort) if isinstance(effort, str) else None


def requested_budget(body: dict[str, Any]) -> tuple[bool, int | None]:
    """(thinking asked for, its budget) of a standard request: the extension `thinking` (`{"type": "enabled",
    "budget_tokens": n}`, exact) wins over `reasoning_effort` (through the table); a thinking request without a
    budget (`{"type": "adaptive"}`) is (True, None); `none`, `disabled` or nothing asked is (False, None). An effort
    the table does not know is a 400 naming reasoning_effort."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "disabled":
            return False, None
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
            return True, budget
        if kind in ("enabled", "adaptive"):
            return True, None
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return False, None
    if effort not in BUDGETS:  # what OpenAI itself refuses, rather than a guess
        raise bad_request(f"reasoning_effort must be one of {', '.join(EFFORTS)}", param="reasoning_effort")
    return True, budget_for_effort(effort)


# ---- The Claude model family, whichever provider serves it ---------------------------------------------------

CLAUDE_DEFAULT_MAX_TOKENS = 4096  # the answer's room when a request names no max_tokens (within every Claude's limit)
CLAUDE_MIN_BUDGET = 1024  # "Must be >=1024 and less than max_tokens" (ThinkingConfigEnabledParam)
# The output limit of the smallest thinking Claude (Opus 4 and 4.1: 32,000 tokens): max_tokens is never raised
# beyond it, so the raise cannot itself be refused.
CLAUDE_RAISED_MAX_TOKENS = 32000
# Claude models without extended thinking (thinking arrived with Claude 3.7 Sonnet): their names start so.
_CLAUDE_WITHOUT_THINKING = ("claude-2", "claude-instant", "claude-3-opus", "claude-3-sonnet", "claude-3-haiku",
                            "claude-3-5-")  # fmt: skip


CLAUDE_MIN_TOP_P = 0.95  # with thinking, Claude takes a top_p from 0.95 to 1 only


def claude_refused_sampling(temperature: Any, top_k: Any, top_p: Any) -> list[str]:
    """The sampling fields Claude refuses next to thinking (a temperature other than 1, any top_k, a top_p under
    0.95), by their OpenAI names: the provider drops and reports them rather than get a 400."""
    refused = []
    if temperature is not None and temperature != 1:
        refused.append("temperature")
    if top_k is not None:
        refused.append("top_k")
    if isinstance(top_p, int | float) and top_p < CLAUDE_MIN_TOP_P:
        refused.append("top_p")
    return refused


def claude_thinks(model: str | None) -> bool:
    """Whether a Claude model takes a thinking budget (unknown names are taken to: newer models all do). Bedrock
    ids (`anthropic.claude-3-haiku-...`, `us.anthropic.claude-...`) are read after their `anthropic.` prefix."""
    name = (model or "").rsplit("anthropic.", 1)[-1].rsplit("/", 1)[-1]
    return not name.startswith(_CLAUDE_WITHOUT_THINKING)


def claude_budget(budget: int | None, max_tokens: int) -> tuple[int, int]:
    """(budget_tokens, max_tokens) under Claude's rules for a requested budget (None: the medium effort's) and the
    request's max_tokens: the budget at least 1,024, and max_tokens above it. Thinking counts against max_tokens,
    so a max_tokens at or under the budget is raised by the budget (the answer keeps the room the client gave it),
    up to CLAUDE_RAISED_MAX_TOKENS, the budget shrinking to fit under that (or under the client's own larger
    max_tokens)."""
    budget = max(CLAUDE_MIN_BUDGET, BUDGETS["medium"] if budget is None else budget)
    if max_tokens > budget:
        return budget, max_tokens
    raised = max(min(budget + max_tokens, CLAUDE_RAISED_MAX_TOKENS), max_tokens)
    if raised > budget:
        return budget, raised
    room = min(max_tokens, raised // 2)  # capped: the budget gives way, the answer keeps (up to half) its room
    return max(CLAUDE_MIN_BUDGET, raised - room), max(raised, CLAUDE_MIN_BUDGET + 1)


# ---- Providers and models without a reasoning control -------------------------------------------------------


def without_control(body: dict[str, Any]) -> list[str]:
    """What to report for a provider or model with no reasoning control: `thinking` when the request asks for
    thinking (`none` asks for what such a model does anyway)."""
    return ["thinking"] if requested_budget(body)[0] else []
