"""Mistral's reasoning control: `reasoning_effort` (none or high) on the adjustable models."""

from __future__ import annotations

from typing import Any

from ...reasoning import requested_budget, without_control

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
