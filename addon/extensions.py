"""The standard request's extensions that not every provider takes, removed here for those that do not list them
among their optional fields (the loss report names them). Pure code.

- cache breakpoints: `cache_control` on a content part or a tool (the OpenAI-format extension LiteLLM and Kong
  take, which client formats with explicit caching write from their own blocks); a provider that caches explicitly
  places them where its API does;
- earlier turns' signed reasoning: `thinking_blocks` on assistant messages (LiteLLM's name and shape, see
  openai_format.THINKING_BLOCKS); a provider whose reasoning is signed takes them back in its own blocks;
- OpenAI's account-side fields and soft hints (BOOKKEEPING: the end user, the service tier, the prompt cache key,
  stored completions, verbosity): no effect on the answer's meaning, sent to the providers that list them, dropped
  and reported for the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .openai_format import THINKING_BLOCKS

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


def without_thinking_blocks(body: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    """The body without assistant turns' signed reasoning; the kinds of blocks removed go to `dropped`."""
    if not any(isinstance(m, dict) and THINKING_BLOCKS in m for m in body.get("messages") or ()):
        return body
    messages = []
    for message in body["messages"]:
        if isinstance(message, dict) and THINKING_BLOCKS in message:
            for block in message[THINKING_BLOCKS] or ():
                kind = block.get("type") if isinstance(block, dict) else None
                if isinstance(kind, str) and kind not in dropped:
                    dropped.append(kind)
            message = {k: v for k, v in message.items() if k != THINKING_BLOCKS}
        messages.append(message)
    return {**body, "messages": messages}


# OpenAI's account-side request fields and soft hints -> their neutral values (what asks for nothing, never
# reported). A provider that takes them lists them among its optional fields; for the others they are dropped and
# reported.
BOOKKEEPING: dict[str, tuple[Any, ...]] = {
    "user": (),
    "safety_identifier": (),
    "service_tier": ("auto", "default"),
    "prompt_cache_key": (),
    "prompt_cache_retention": (),
    "store": (False,),
    "metadata": ({},),
    "verbosity": ("medium",),  # a hint at the answer's length
}


def without_bookkeeping(
    body: dict[str, Any], taken: frozenset[str], dropped: list[str], names: Mapping[str, str]
) -> dict[str, Any]:
    """The body without the BOOKKEEPING fields the provider does not take (`taken`); those set to something other
    than their neutral value go to `dropped`, by their name in the client's terms (`names`)."""
    unsent = [k for k in BOOKKEEPING if k in body and k not in taken]
    if not unsent:
        return body
    for key in unsent:
        value = body[key]
        name = names.get(key, key)
        if value is not None and value not in BOOKKEEPING[key] and name not in dropped:
            dropped.append(name)
    return {k: v for k, v in body.items() if k not in unsent}
