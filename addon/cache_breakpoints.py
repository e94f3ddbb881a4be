"""Cache breakpoints in the standard request: the extension `cache_control` on content parts and tools (see
extensions.py), counted and checked, and added automatically where a rule asks for it (`model.options.
cache_breakpoints: auto`) for providers that cache only where told (Provider.cache_breakpoints). Pure code.

Automatic breakpoints go, in this order of priority and within the provider's limit less the client's own:
1. the end of the static prefix: the last part of the leading system messages, or the last tool when there is no
   system prompt (a provider reads tools, then system, then messages: one breakpoint after the system covers both);
2. the last message the client wrote (a user message or a tool result): this turn's whole prompt is written to the
   cache, and the next turn reads it;
3. the client's previous turn (its last message before the last assistant turn): the prefix the previous request
   wrote, so a turn that adds many blocks still finds it (providers look back only a few blocks for a hit).
A position the client marked already is its own and is never moved or marked again; an added breakpoint placed
before a client's one-hour breakpoint takes its `ttl` too (Anthropic refuses a longer TTL after a shorter one).
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request
from .extensions import CACHE_CONTROL

TTLS = ("5m", "1h")
_CLIENT_ROLES = ("user", "tool")


def controls(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every breakpoint of the body as (param, cache_control), in the order the provider reads them (tools, then
    messages); a malformed one is a 400 naming it (`messages[2].content[0].cache_control`)."""
    out: list[tuple[str, dict[str, Any]]] = []
    tools = body.get("tools")
    for k, tool in enumerate(tools if isinstance(tools, list) else ()):
        if isinstance(tool, dict) and tool.get(CACHE_CONTROL) is not None:
            out.append(_checked(tool[CACHE_CONTROL], f"tools[{k}].{CACHE_CONTROL}"))
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get(CACHE_CONTROL) is not None:
                out.append(_checked(part[CACHE_CONTROL], f"messages[{i}].content[{j}].{CACHE_CONTROL}"))
    return out


def _checked(control: Any, param: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(control, dict):  # its type is Anthropic's "ephemeral", the only kind there is: not checked
        raise bad_request(f'\'{param}\' must be an object such as {{"type": "ephemeral"}}', param=param)
    ttl = control.get("ttl")
    if ttl is not None and ttl not in TTLS:
        raise bad_request(f"'{param}.ttl' must be one of {', '.join(TTLS)}", param=f"{param}.ttl")
    return param, control


def check_limit(body: dict[str, Any], limit: int) -> None:
    """A 400 when the body carries more breakpoints than the provider takes (Anthropic and Bedrock: 4), naming the
    first one too many: the provider would refuse the whole request."""
    found = controls(body)
    if len(found) > limit:
        raise bad_request(
            f"at most {limit} cache breakpoints (cache_control) may be sent to this provider; found {len(found)}",
            param=found[limit][0],
        )


def with_auto_breakpoints(body: dict[str, Any], limit: int) -> dict[str, Any]:
    """The body with breakpoints added where the module's docstring says, never more than `limit` in all; the
    body itself is not changed."""
    messages = body.get("messages")
    budget = limit - len(controls(body))
    if budget <= 0 or not isinstance(messages, list):
        return body
    messages = list(messages)
    tools = body.get("tools")
    tools = list(tools) if isinstance(tools, list) else []
    added: list[dict[str, Any]] = []
    for target in _targets(messages, tools):
        if len(added) == budget:
            break
        control: dict[str, Any] = {"type": "ephemeral"}
        if target[0] == "tool":
            tool = tools[target[1]]
            if _marked(tool):
                continue
            tools[target[1]] = {**tool, CACHE_CONTROL: control}
        else:
            marked = _marked_message(messages[target[1]], control)
            if marked is None:
                continue
            messages[target[1]] = marked
        added.append(control)
    if not added:
        return body
    out = {**body, "messages": messages}
    if tools:
        out["tools"] = tools
    _align_ttls(out, added)
    return out


def mark_last_turn(messages: list[Any], control: dict[str, Any]) -> list[Any]:
    """The messages with `control` on the client's last message (Anthropic's top-level cache_control, which marks
    the last cacheable block), unless the client marked it already."""
    last = _last_client_message(messages, len(messages))
    marked = _marked_message(messages[last], control) if last is not None else None
    if last is None or marked is None:
        return messages
    return [*messages[:last], marked, *messages[last + 1 :]]


def _targets(messages: list[Any], tools: list[Any]) -> list[tuple[str, int]]:
    """Where automatic breakpoints may go, best first: ("tool", k) or ("message", i)."""
    out: list[tuple[str, int]] = []
    system = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "developer"):
            break
        system = i
    if system is not None:
        out.append(("message", system))
    elif tools and isinstance(tools[-1], dict):
        out.append(("tool", len(tools) - 1))
    last = _last_client_message(messages, len(messages))
    if last is not None:
        out.append(("message", last))
        assistant = next((i for i in range(last - 1, -1, -1) if _role(messages[i]) == "assistant"), None)
        previous = _last_client_message(messages, assistant) if assistant is not None else None
        if previous is not None:
            out.append(("message", previous))
    return out


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, dict) else None


def _last_client_message(messages: list[Any], before: int) -> int | None:
    return next((i for i in range(before - 1, -1, -1) if _role(messages[i]) in _CLIENT_ROLES), None)


def _marked(item: Any) -> bool:
    return isinstance(item, dict) and item.get(CACHE_CONTROL) is not None


def _marked_message(message: dict[str, Any], control: dict[str, Any]) -> dict[str, Any] | None:
    """The message with `control` on its last non-empty part (a string content becomes one text part), or None
    when it has no such part or the client marked one of its parts already."""
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": [{"type": "text", "text": content, CACHE_CONTROL: control}]} if content else None
    if not isinstance(content, list) or any(_marked(p) for p in content):
        return None
    for j in range(len(content) - 1, -1, -1):
        part = content[j]
        if isinstance(part, dict) and not (part.get("type") == "text" and not part.get("text")):
            parts = list(content)
            parts[j] = {**part, CACHE_CONTROL: control}
            return {**message, "content": parts}
    return None


def _align_ttls(body: dict[str, Any], added: list[dict[str, Any]]) -> None:
    """An added breakpoint before a client's one-hour one lasts an hour too (in place: the controls are new)."""
    ours = {id(c) for c in added}
    later_hour = False
    for _, control in reversed(controls(body)):
        if id(control) in ours:
            if later_hour:
                control["ttl"] = "1h"
        elif control.get("ttl") == "1h":
            later_hour = True
