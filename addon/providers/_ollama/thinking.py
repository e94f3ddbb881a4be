"""Ollama's reasoning control: `think` (a level for gpt-oss, a boolean for the other thinking models)."""

from __future__ import annotations

from typing import Any

from ...reasoning import effort_for_budget, requested_budget, without_control

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
