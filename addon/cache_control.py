"""The standard request's cache breakpoints: `cache_control` on a content part or a tool (the OpenAI-format
extension LiteLLM and Kong take, which the Anthropic client format writes from its own blocks). Providers that
cache explicitly (Bedrock's cachePoint) list "cache_control" among their optional fields and place them; for the
others the core removes them here, and the loss report names them. Pure code."""

from __future__ import annotations

from typing import Any

CACHE_CONTROL = "cache_control"


def without_cache_control(body: dict[str, Any]) -> dict[str, Any] | None:
    """The body without its cache breakpoints, or None when it has none (the body is not changed). A message left
    with only text parts where a plain string says the same (a system message, a tool result, a single text) gets
    that string back, so the provider sees what it would have seen had the client set no breakpoint."""
    changed = False
    messages = []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(_marked(p) for p in content):
            parts = [_unmarked(p) for p in content]
            message = {**message, "content": _plain(message.get("role"), parts)}
            changed = True
        messages.append(message)
    out = {**body, "messages": messages}
    tools = body.get("tools")
    if isinstance(tools, list) and any(_marked(t) for t in tools):
        out["tools"] = [_unmarked(t) for t in tools]
        changed = True
    return out if changed else None


def _marked(item: Any) -> bool:
    return isinstance(item, dict) and CACHE_CONTROL in item


def _unmarked(item: Any) -> Any:
    return {k: v for k, v in item.items() if k != CACHE_CONTROL} if _marked(item) else item


def _plain(role: Any, parts: list[Any]) -> Any:
    if not all(isinstance(p, dict) and p.get("type") == "text" for p in parts):
        return parts
    if role in ("system", "developer", "tool") or len(parts) == 1:
        return "".join(p.get("text", "") for p in parts)
    return parts
