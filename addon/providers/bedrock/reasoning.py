"""Claude's reasoning on Converse: the thinking budget (reasoning_effort or the standard extension `thinking`) and
earlier turns' signed reasoning (the extension `thinking_blocks`), for the models that take them."""

from __future__ import annotations

from typing import Any

from ...openai_format import THINKING_BLOCKS
from ...reasoning import (
    CLAUDE_DEFAULT_MAX_TOKENS,
    claude_budget,
    claude_refused_sampling,
    claude_thinks,
    requested_budget,
)
from ..base import Call


def reasons(model: str | None) -> bool:
    """Whether the model takes Claude's thinking budget and signed reasoning blocks (Claude models with extended
    thinking: 3.7 and later)."""
    model = model or ""
    return ("anthropic." in model or "claude" in model) and claude_thinks(model)


def drop(call: Call, what: str) -> None:
    if what not in call.dropped:
        call.dropped.append(what)


def thinking(call: Call, out: dict[str, Any]) -> None:
    """reasoning_effort (through addon/reasoning.py's table) or the standard extension `thinking` as Claude's own
    request field, which Converse passes to the model in additionalModelRequestFields, under Claude's rules (as on
    Anthropic's API: budget at least 1,024 and under maxTokens, raised when needed; temperature other than 1,
    top_k and a topP under 0.95 dropped and reported). Thinking gives way, reported, to a forced tool and to a tool
    loop whose calling turn lacks its signed reasoning; other models have no thinking budget: dropped and
    reported. `out`: the Converse body, inference, toolConfig and messages set."""
    wanted, budget = requested_budget(call.body)
    if not wanted:
        return
    if not reasons(call.model) or _refused_here(out):
        drop(call, "thinking")
        return
    extra = out.setdefault("additionalModelRequestFields", {})
    asked = call.body.get("thinking")
    if isinstance(asked, dict) and asked.get("type") == "adaptive" and budget is None:
        extra["thinking"] = {"type": "adaptive"}
    else:
        inference = out.setdefault("inferenceConfig", {})
        budget, inference["maxTokens"] = claude_budget(budget, inference.get("maxTokens") or CLAUDE_DEFAULT_MAX_TOKENS)
        extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
    inference = out.get("inferenceConfig") or {}
    for name in claude_refused_sampling(inference.get("temperature"), extra.get("top_k"), inference.get("topP")):
        if name == "top_k":
            del extra["top_k"]
        else:
            del inference["temperature" if name == "temperature" else "topP"]
        drop(call, name)


def _refused_here(out: dict[str, Any]) -> bool:
    """A forced tool (toolChoice any/tool), a final assistant turn (prefill), or a tool loop whose calling assistant
    turn does not start with its reasoning: Claude refuses thinking there."""
    choice = (out.get("toolConfig") or {}).get("toolChoice") or {}
    if "any" in choice or "tool" in choice:
        return True
    messages = out.get("messages") or []
    if not messages:
        return False
    if messages[-1]["role"] == "assistant":
        return True
    if len(messages) < 2 or not any("toolResult" in b for b in messages[-1]["content"]):
        return False
    calling = messages[-2]["content"]
    return any("toolUse" in b for b in calling) and "reasoningContent" not in calling[0]


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
