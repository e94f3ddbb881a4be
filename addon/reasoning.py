"""The reasoning mapping table: OpenAI's `reasoning_effort` <-> a thinking budget in tokens, and the per-family
rules of the providers that take a budget or a level instead (Claude's budget_tokens, Gemini 2.5's thinkingBudget,
Gemini 3's thinkingLevel). Pure code; every provider and client format reads its numbers here, so the README's
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


# ---- Claude (Anthropic Messages, Bedrock Converse) ------------------------------------------------------------

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


# ---- Gemini (generationConfig.thinkingConfig) -----------------------------------------------------------------

# Gemini 2.5's thinkingBudget ranges (Gemini API "Thinking" guide): Pro 128-32,768 and never off, Flash 0-24,576,
# Flash-Lite 512-24,576 or 0 (off). -1 is dynamic thinking (the model decides).
_GEMINI_BUDGETS = {"pro": (128, 32768, False), "flash-lite": (512, 24576, True), "flash": (1, 24576, True)}
# Gemini 3's thinkingLevel per effort: Pro takes low and high, the Flash models minimal, low, medium and high; none
# is the least level (Gemini 3 cannot turn thinking off), reported.
# Sent upper-case, as the google-genai SDK sends its ThinkingLevel enum.
_GEMINI_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                  "xhigh": "HIGH"}  # fmt: skip
_GEMINI_PRO_LEVELS = {"MINIMAL": "LOW", "MEDIUM": "HIGH"}


def _gemini_generation(model: str | None) -> tuple[int, int]:
    """(major, minor) of a Gemini model's version (gemini-2.5-flash -> (2, 5)); (0, 0) for other names."""
    name = (model or "").rsplit("/", 1)[-1]
    if not name.startswith("gemini-"):
        return 0, 0
    version = name[len("gemini-") :].split("-", 1)[0]
    major, _, minor = version.partition(".")
    if not major.isdigit():
        return 0, 0
    return int(major), int(minor) if minor.isdigit() else 0


def gemini_thinks(model: str | None) -> bool:
    """Whether a Gemini model takes a thinkingConfig: not Gemini 1.x and 2.0 (other names are taken to)."""
    major, minor = _gemini_generation(model)
    return not (major == 1 or (major, minor) == (2, 0)) or "thinking" in (model or "")


def gemini_thinking(model: str | None, body: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """(thinkingConfig, what it relaxed) for a standard request: Gemini 3 models take a thinkingLevel (the effort,
    or the effort of the extension's budget), the others a thinkingBudget within their range (the extension's own
    budget, or the table's for the effort; -1, dynamic, for a request without one). includeThoughts is always set,
    so the thoughts reach the client as reasoning. `none` turns thinking off where the model can (thinkingBudget
    0); where it cannot, the least thinking is asked and `reasoning_effort` reported. A model without thinking
    (Gemini 1.x, 2.0) gets none, `thinking` reported. None: nothing to send."""
    wanted, budget = requested_budget(body)
    effort = body.get("reasoning_effort")
    major, _ = _gemini_generation(model)
    name = (model or "").rsplit("/", 1)[-1]
    if not gemini_thinks(model):
        return None, ["thinking"] if wanted else []
    if not wanted:
        if effort != "none":
            return None, []
        if major >= 3:
            level = "LOW" if "-pro" in name else "MINIMAL"
            return {"thinkingLevel": level}, ["reasoning_effort"]
        low, _, can_stop = _gemini_range(name)
        return ({"thinkingBudget": 0}, []) if can_stop else ({"thinkingBudget": low}, ["reasoning_effort"])
    config: dict[str, Any] = {"includeThoughts": True}
    if major >= 3:
        thinking = body.get("thinking")
        exact = isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int)
        if exact or effort in _GEMINI_LEVELS:
            level = _GEMINI_LEVELS[effort_for_budget(budget) if exact else effort]
            config["thinkingLevel"] = _GEMINI_PRO_LEVELS.get(level, level) if "-pro" in name else level
        return config, []  # no budget and no effort (adaptive): the model's own dynamic level
    if budget is None:
        config["thinkingBudget"] = -1
    else:
        low, high, _ = _gemini_range(name)
        config["thinkingBudget"] = min(max(budget, low), high)
    return config, []


def _gemini_range(name: str) -> tuple[int, int, bool]:
    for family in ("flash-lite", "flash", "pro"):
        if f"-{family}" in name:
            return _GEMINI_BUDGETS[family]
    return _GEMINI_BUDGETS["flash"]  # other names: the widest range that can turn thinking off


# ---- Cohere, Mistral, Ollama --------------------------------------------------------------------------------------


def without_control(body: dict[str, Any]) -> list[str]:
    """What to report for a provider or model with no reasoning control: `thinking` when the request asks for
    thinking (`none` asks for what such a model does anyway)."""
    return ["thinking"] if requested_budget(body)[0] else []


def cohere_thinking(model: str | None, body: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """Cohere v2's `thinking` ({"type": "enabled", "token_budget": n} or {"type": "disabled"}) for its reasoning
    models (command-a-reasoning: reasoning is on by default, `none` turns it off); other models report a request
    for thinking."""
    if "reasoning" not in (model or ""):
        return None, without_control(body)
    wanted, budget = requested_budget(body)
    if not wanted:
        return ({"type": "disabled"}, []) if body.get("reasoning_effort") == "none" else (None, [])
    return ({"type": "enabled", "token_budget": budget} if budget else {"type": "enabled"}), []


# Mistral's adjustable reasoning (reasoning_effort "none" or "high"): Mistral Small 4 (mistral-small-latest,
# -2603), Mistral Medium 3.5, Mistral Large 4. Magistral models always reason (no control).
_MISTRAL_ADJUSTABLE = ("mistral-small-latest", "mistral-small-26", "mistral-small-4", "mistral-medium-3-5",
                       "mistral-medium-3.5", "mistral-large-4")  # fmt: skip


def mistral_effort(model: str | None, body: dict[str, Any]) -> tuple[str | None, list[str]]:
    """Mistral's reasoning_effort for a standard request: `high` for any thinking asked (`none` for none or a
    minimal effort) on the adjustable models; nothing on Magistral, which always reasons (`none` reported); other
    models report a request for thinking."""
    name = (model or "").rsplit("/", 1)[-1]
    wanted = requested_budget(body)[0]
    effort = body.get("reasoning_effort")
    if name.startswith(_MISTRAL_ADJUSTABLE):
        if not wanted:
            return ("none", []) if effort == "none" else (None, [])
        return ("none" if effort == "minimal" else "high"), []
    if name.startswith("magistral"):
        return None, ["reasoning_effort"] if effort == "none" else []
    return None, without_control(body)


# Ollama models that think (`think` in /api/chat): their names start so. gpt-oss takes a level, the others a boolean.
_OLLAMA_THINKING = ("qwen3", "deepseek-r1", "deepseek-v3.1", "gpt-oss", "magistral", "qwq", "phi4-reasoning",
                    "cogito")  # fmt: skip
_OLLAMA_LEVELS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


def ollama_think(model: str | None, body: dict[str, Any]) -> tuple[bool | str | None, list[str]]:
    """Ollama's `think` for a standard request: a level for gpt-oss (from the effort, or the budget's effort),
    true for the other thinking models, false for `none`; a model not known to think reports a request for
    thinking (Ollama refuses `think` for it)."""
    name = (model or "").rsplit("/", 1)[-1]
    if not name.startswith(_OLLAMA_THINKING):
        return None, without_control(body)
    wanted, budget = requested_budget(body)
    if not wanted:
        return (False, []) if body.get("reasoning_effort") == "none" else (None, [])
    if not name.startswith("gpt-oss"):
        return True, []
    thinking = body.get("thinking")
    exact = isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int)
    effort = body.get("reasoning_effort")
    return _OLLAMA_LEVELS.get(effort_for_budget(budget) if exact else effort, "medium"), []
