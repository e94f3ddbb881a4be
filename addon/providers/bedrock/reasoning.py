"""Claude's reasoning on Converse: the thinking budget (the standard extension `thinking`) and earlier turns' signed
reasoning (the extension `thinking_blocks`), for the models that take them."""

from __future__ import annotations

from typing import Any

from ...openai_format import THINKING_BLOCKS
from ..base import Call


def reasons(model: str | None) -> bool:
    """Whether the model takes Claude's thinking budget and signed reasoning blocks (Claude models)."""
    model = model or ""
    return "anthropic." in model or "claude" in model


def drop(call: Call, what: str) -> None:
    if what not in call.dropped:
        call.dropped.append(what)


def thinking(call: Call, out: dict[str, Any]) -> None:
    """The standard extension `thinking` (`{"type": "enabled", "budget_tokens": n}`) as Claude's own request field,
    which Converse passes to the model in additionalModelRequestFields; other models have no thinking budget there:
    dropped and reported."""
    thinking = call.body.get("thinking")
    if not isinstance(thinking, dict):
        return
    if reasons(call.model):
        out.setdefault("additionalModelRequestFields", {})["thinking"] = thinking
    else:
        drop(call, "thinking")


def reasoning_blocks(m: dict[str, Any]) -> list[dict[str, Any]]:
    """An assistant turn's signed reasoning (the extension thinking_blocks) as reasoningContent blocks, first."""
    blocks = []
    for block in m.get(THINKING_BLOCKS) or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            text = {"text": block["thinking"]}
            if isinstance(block.get("signature"), str) and block["signature"]:
                text["signature"] = block["signature"]
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            blocks.append({"reasoningContent": {"redactedContent": block["data"]}})
    return blocks
