"""Claude's extended thinking on the Messages API, both ways.

Request: `reasoning_effort` (through addon/reasoning.py's table) or the extension `thinking` (an exact budget, or
`{"type": "adaptive"}`) -> `thinking: {"type": "enabled", "budget_tokens": n}` under Anthropic's rules (budget at
least 1,024 and under max_tokens, max_tokens raised when needed). With thinking on, Anthropic refuses a temperature
other than 1, any top_k, a top_p under 0.95 and a forced tool choice: those are dropped and reported (a forced tool
keeps its meaning: thinking gives way instead). Earlier turns' signed reasoning (the extension `thinking_blocks`)
goes back first in its assistant turn, as Anthropic wants it.

Answer: thinking and redacted_thinking blocks -> `reasoning_content` (the text) and `thinking_blocks` (the blocks
with their signatures, which the client must send back)."""

from __future__ import annotations

from typing import Any

from ...openai_format import THINKING_BLOCKS
from ...reasoning import claude_budget, claude_refused_sampling, claude_thinks, requested_budget
from ..base import Call


def _drop(call: Call, what: str) -> None:
    if what not in call.dropped:
        call.dropped.append(what)


def apply(call: Call, out: dict[str, Any]) -> None:
    """Sets `thinking` on a Messages body `out` (max_tokens and sampling already in it) when the request asks for
    thinking, and removes what Anthropic refuses alongside it."""
    wanted, budget = requested_budget(call.body)
    if not wanted:
        return
    if not claude_thinks(call.model):
        _drop(call, "thinking")  # a Claude without extended thinking (3.5 and older) refuses the field
        return
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        _drop(call, "thinking")  # "Thinking may not be enabled when tool_choice forces tool use"
        return
    if _unthinkable_history(out.get("messages") or []):
        _drop(call, "thinking")
        return
    thinking = call.body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "adaptive" and budget is None:
        out["thinking"] = {"type": "adaptive"}  # the client's own terms (an Anthropic client): Claude decides
    else:
        budget, out["max_tokens"] = claude_budget(budget, out["max_tokens"])
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    for name in claude_refused_sampling(out.get("temperature"), out.get("top_k"), out.get("top_p")):
        del out[name]
        _drop(call, name)


def _unthinkable_history(messages: list[dict[str, Any]]) -> bool:
    """Whether Anthropic would refuse thinking for these turns: a final assistant turn (a prefill) or, in a tool
    loop (the last turn answers tool calls), a calling assistant turn that does not start with its signed reasoning
    ("Expected `thinking` or `redacted_thinking`, but found `tool_use`"). The reasoning of an OpenAI-format client's
    earlier turns is lost unless the client sent thinking_blocks back: thinking gives way, reported."""
    if not messages:
        return False
    last = messages[-1]
    if last["role"] == "assistant":
        return True
    content = last["content"]
    if len(messages) < 2 or isinstance(content, str) or not any(b.get("type") == "tool_result" for b in content):
        return False
    calling = messages[-2]["content"]
    if isinstance(calling, str) or not any(b.get("type") == "tool_use" for b in calling):
        return False
    return calling[0].get("type") not in ("thinking", "redacted_thinking")


def legacy(call: Call) -> None:
    """The legacy /v1/complete API has no thinking: a request for it is dropped and reported."""
    if requested_budget(call.body)[0]:
        _drop(call, "thinking")


def history_blocks(m: dict[str, Any]) -> list[dict[str, Any]]:
    """An assistant message's signed reasoning (the extension thinking_blocks) as Anthropic thinking and
    redacted_thinking blocks, unchanged, to lead that assistant turn. A thinking block without a signature (reasoning
    another provider wrote) is not sent: Anthropic refuses it (`unsigned` reports it)."""
    blocks: list[dict[str, Any]] = []
    for block in m.get(THINKING_BLOCKS) or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and isinstance(block.get("thinking"), str) and _signed(block):
            blocks.append({"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]})
        elif block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            blocks.append({"type": "redacted_thinking", "data": block["data"]})
    return blocks


def _signed(block: dict[str, Any]) -> bool:
    return isinstance(block.get("signature"), str) and bool(block["signature"])


def unsigned(call: Call) -> None:
    """Reports the thinking blocks of earlier turns that history_blocks leaves out (no signature)."""
    for m in call.body.get("messages") or ():
        for block in (m.get(THINKING_BLOCKS) or ()) if isinstance(m, dict) else ():
            if isinstance(block, dict) and block.get("type") == "thinking" and not _signed(block):
                _drop(call, "thinking_blocks")
                return


def answer_block(block: dict[str, Any], reasoning: list[str], blocks: list[dict[str, Any]]) -> bool:
    """A content block of an answer, when it is reasoning: its text to `reasoning`, the block as the client must
    send it back to `blocks`; False for other blocks."""
    kind = block.get("type")
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        reasoning.append(block["thinking"])
        signature = block["signature"] if _signed(block) else ""
        blocks.append({"type": "thinking", "thinking": block["thinking"], "signature": signature})
        return True
    if kind == "redacted_thinking" and isinstance(block.get("data"), str):
        blocks.append({"type": "redacted_thinking", "data": block["data"]})
        return True
    return False


def with_blocks(message: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer's message with its signed reasoning blocks (the extension thinking_blocks), when it has any."""
    if blocks:
        message[THINKING_BLOCKS] = blocks
    return message
