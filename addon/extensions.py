"""The standard request's extensions that not every provider takes, removed here for those that do not list them
among their optional fields (the loss report names them). Pure code.

- cache breakpoints: `cache_control` on a content part or a tool (the OpenAI-format extension LiteLLM and Kong
  take, which client formats with explicit caching write from their own blocks); a provider that caches explicitly
  places them where its API does;
- earlier turns' signed reasoning: `thinking_blocks` on assistant messages (LiteLLM's name and shape, see
  openai_format.THINKING_BLOCKS); a provider whose reasoning is signed takes them back in its own blocks;
- OpenAI's account-side fields and soft hints (BOOKKEEPING: the end user, the service tier, the prompt cache key,
  stored completions, verbosity): no effect on the answer's meaning, sent to the providers that list them, dropped
  and reported for the others;
- participant names (`name` on system, user and assistant messages) and image `detail`: hints as well, sent to the
  providers that list `name` and `image_detail`, dropped and reported for the others."""

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


def without_thinking_blocks(body: dict[str, Any], dropped: list[str], name: str | None = None) -> dict[str, Any]:
    """The body without assistant turns' signed reasoning; the kinds of blocks removed go to `dropped`, or `name`
    (what the client format calls them, where it is not the blocks' own kinds: a Responses reasoning item)."""
    if not any(isinstance(m, dict) and THINKING_BLOCKS in m for m in body.get("messages") or ()):
        return body
    messages = []
    for message in body["messages"]:
        if isinstance(message, dict) and THINKING_BLOCKS in message:
            for block in message[THINKING_BLOCKS] or ():
                kind = name or (block.get("type") if isinstance(block, dict) else None)
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


NAME, IMAGE_DETAIL = "name", "image_detail"  # as providers list them among their optional fields
_NAMED_ROLES = frozenset({"system", "developer", "user", "assistant"})  # a tool or function message's name is its own


def without_names_and_details(
    body: dict[str, Any], taken: frozenset[str], dropped: list[str], names: Mapping[str, str]
) -> dict[str, Any]:
    """The body without participant names and image `detail` where the provider takes neither (`taken`); those
    removed go to `dropped` (a detail of "auto", the default, is removed unreported)."""
    names_out, details_out = NAME not in taken, IMAGE_DETAIL not in taken
    if not (names_out or details_out):
        return body
    changed = False
    messages = []
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            if names_out and NAME in message and message.get("role") in _NAMED_ROLES:
                message = {k: v for k, v in message.items() if k != NAME}
                _report(dropped, names.get(NAME, NAME))
                changed = True
            content = message.get("content")
            if details_out and isinstance(content, list) and any(_detailed(p) for p in content):
                message = {**message, "content": [_undetailed(p, dropped, names) for p in content]}
                changed = True
        messages.append(message)
    return {**body, "messages": messages} if changed else body


def _detailed(part: Any) -> bool:
    return isinstance(part, dict) and isinstance(part.get("image_url"), dict) and "detail" in part["image_url"]


def _undetailed(part: Any, dropped: list[str], names: Mapping[str, str]) -> Any:
    if not _detailed(part):
        return part
    image = part["image_url"]
    if image["detail"] not in (None, "auto"):
        _report(dropped, names.get(IMAGE_DETAIL, "image_url.detail"))
    return {**part, "image_url": {k: v for k, v in image.items() if k != "detail"}}


def _report(dropped: list[str], name: str) -> None:
    if name not in dropped:
        dropped.append(name)


# Every top-level field of the standard request (OpenAI's Chat Completions and legacy Completions bodies, after
# openai-python's completion_create_params, and the extensions above): a field of another name from an OpenAI
# client that the provider's request does not carry either is reported as dropped (exchange.build_upstream).
REQUEST_FIELDS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
        "prompt", "best_of", "echo", "suffix", "top_k", "thinking",
    }
)  # fmt: skip


def unsent_fields(body: dict[str, Any], sent: Any) -> list[str]:
    """The fields of `body` outside the standard request that the provider's request (`sent`) does not carry
    either: fields no translation reads, which only a provider that forwards the body as it is would pass on."""
    return [k for k in body if k not in REQUEST_FIELDS and not (isinstance(sent, dict) and k in sent)]
