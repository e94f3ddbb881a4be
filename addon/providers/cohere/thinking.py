"""Cohere's reasoning control: v2's `thinking` for its reasoning models."""

from __future__ import annotations

from typing import Any

from ...reasoning import requested_budget, without_control


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
