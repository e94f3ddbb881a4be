"""Cache breakpoints on the Messages API: the standard extension `cache_control` (on content parts and tools) placed
where Anthropic takes it (messages/create, and the anthropic SDK's TextBlockParam, ImageBlockParam,
ToolUseBlockParam, ToolResultBlockParam and ToolParam): `system` as text blocks, user text and image blocks,
`tool_result` blocks, assistant `text` and `tool_use` blocks, and tool definitions. Never on thinking blocks or empty
text blocks (Anthropic refuses both); at most MAX_BREAKPOINTS per request (more is a 400 upstream, so a local one
here). The client's `ttl` (5m or 1h) is kept."""

from __future__ import annotations

from typing import Any

from ...extensions import CACHE_CONTROL
from ...openai_format import text_of

MAX_BREAKPOINTS = 4
_CACHEABLE_ASSISTANT = ("text", "tool_use")


def control_of(item: Any) -> dict[str, Any] | None:
    """Anthropic's cache_control for a part or tool that carries the extension (type and ttl only), else None."""
    control = item.get(CACHE_CONTROL) if isinstance(item, dict) else None
    if not isinstance(control, dict):
        return None
    ttl = control.get("ttl")
    return {"type": "ephemeral", "ttl": ttl} if isinstance(ttl, str) else {"type": "ephemeral"}


def content_control(content: Any) -> dict[str, Any] | None:
    """The breakpoint of a content that becomes one block (a tool result, an assistant turn): its last part's."""
    controls = [c for c in (control_of(p) for p in content) if c] if isinstance(content, list) else []
    return controls[-1] if controls else None


def mark_last(blocks: list[dict[str, Any]], control: dict[str, Any] | None) -> None:
    """Put `control` on the last block (the breakpoint of a part that became no block of its own moves to the
    block before it: the prefix it closes is the same)."""
    if control is not None and blocks and CACHE_CONTROL not in blocks[-1]:
        blocks[-1][CACHE_CONTROL] = control


def mark_assistant(blocks: list[dict[str, Any]], message: dict[str, Any]) -> None:
    """An assistant message's breakpoint on its last text or tool_use block (never a thinking block)."""
    control = content_control(message.get("content"))
    if control is None:
        return
    for block in reversed(blocks):
        if block.get("type") in _CACHEABLE_ASSISTANT:
            block.setdefault(CACHE_CONTROL, control)
            return


def system_blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """`system` as text blocks with their breakpoints when a system or developer part carries one, else None (the
    joined string says the same)."""
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    if not any(content_control(m.get("content")) for m in system):
        return None
    blocks: list[dict[str, Any]] = []
    for m in system:
        content = m.get("content")
        for part in content if isinstance(content, list) else [{"type": "text", "text": text_of(content)}]:
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
            mark_last(blocks, control_of(part))
    return blocks


def mark_tools(openai_tools: Any, tools: list[dict[str, Any]] | None) -> None:
    """Tool definitions with the client's breakpoints (tools maps them one to one, in order)."""
    if not tools or not isinstance(openai_tools, list):
        return
    for source, tool in zip(openai_tools, tools, strict=True):
        control = control_of(source)
        if control is not None:
            tool[CACHE_CONTROL] = control
