"""Gemini's reasoning control: the reasoning table (addon/reasoning.py) as generationConfig.thinkingConfig, per
model generation (2.5: a thinkingBudget within the model's range; 3: a thinkingLevel)."""

from __future__ import annotations

from typing import Any

from ...reasoning import effort_for_budget, requested_budget

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
