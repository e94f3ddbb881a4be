"""Prompt caching as the fake Anthropic and fake Bedrock do it: requests checked for their cache breakpoints the way
the real APIs check them (refused with the real error where they refuse), and usage counted by a simulated cache.

The cache keeps each prefix a breakpoint closed (tools, then system, then messages, block by block, the breakpoints
themselves left out, so a prefix is the same whether or not this request marks it); a request reads the longest
prefix it shares with an earlier one up to its last breakpoint, and writes the rest up to that breakpoint. So a
conversation whose breakpoints are stable from turn to turn reads on each turn what the turn before wrote, and one
whose prefix changed reads nothing. A block counts len(its JSON) // 4 + 1 tokens.

Rules checked, after Anthropic's prompt-caching docs and the APIs' answers: Anthropic takes at most 4 blocks with
`cache_control` ("A maximum of 4 blocks with cache_control may be provided. Found 5."), never on thinking blocks nor on
empty text blocks, `{"type": "ephemeral", "ttl"?: "5m" | "1h"}` only, and no one-hour breakpoint after a five-minute
one; Bedrock takes at most 4 `cachePoint` blocks, each `{"type": "default"}` after a content block (never first).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from tests.support.bedrock import BedrockReply, Seen, converse_answer
from tests.support.fakes import Recorded, Reply, anthropic_message, anthropic_stream

MAX_BREAKPOINTS = 4
ANSWER = "Noted."
EPHEMERAL = {"type": "ephemeral"}
# An Anthropic Messages request's system, tools and messages with a breakpoint on each kind of block that takes one.
CACHED_BLOCKS: dict[str, Any] = {
    "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B", "cache_control": EPHEMERAL}],
    "tools": [
        {"name": "f", "input_schema": {"type": "object"}},
        {"name": "g", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL},
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPHEMERAL}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "cache_control": EPHEMERAL},
                {"type": "text", "text": "go on"},
            ],
        },
    ],
}

Unit = tuple[Any, bool]  # a block as it counts for the cache (no breakpoint in it), and whether a breakpoint ends it


class PromptCache:
    """The simulated cache of one fake provider (thread-safe: the fakes serve requests on threads)."""

    def __init__(self) -> None:
        self._prefixes: set[str] = set()
        self._lock = threading.Lock()
        self.breakpoints: list[list[str]] = []  # per request, where its breakpoints were (the provider's terms)
        self.counts: list[tuple[int, int, int]] = []  # per request, what `count` answered

    def clear(self) -> None:
        with self._lock:
            self._prefixes.clear()
            self.breakpoints.clear()
            self.counts.clear()

    def count(self, units: list[Unit], where: list[str]) -> tuple[int, int, int]:
        """(uncached input, cache read, cache write) tokens of a request made of `units`."""
        digest, tokens, read, closed, keys = hashlib.sha256(), 0, 0, 0, []
        with self._lock:
            self.breakpoints.append(where)
            for block, breakpoint in units:
                digest.update(json.dumps(block, sort_keys=True).encode())
                tokens += len(json.dumps(block)) // 4 + 1
                key = digest.hexdigest()
                if key in self._prefixes:
                    read = tokens
                if breakpoint:
                    closed = tokens
                    keys.append(key)
            read = min(read, closed)
            self._prefixes.update(keys)
            self.counts.append((tokens - closed, read, closed - read))
        return self.counts[-1]


# ---- Anthropic -----------------------------------------------------------------------------------------------


def _anthropic_error(message: str) -> Reply:
    return Reply(400, json={"type": "error", "error": {"type": "invalid_request_error", "message": message}})


def anthropic_units(body: dict[str, Any]) -> tuple[list[Unit], list[dict[str, Any]], list[str]]:
    """The request's blocks in the cache's order, its cache_control objects in order and where they are; raises
    ValueError with Anthropic's message where Anthropic refuses a breakpoint."""
    units: list[Unit] = []
    controls: list[dict[str, Any]] = []
    where: list[str] = []

    def add(block: dict[str, Any], place: str, role: str | None = None) -> None:
        control = block.get("cache_control")
        if control is not None:
            if block.get("type") in ("thinking", "redacted_thinking"):
                raise ValueError(f"{place}.cache_control: Extra inputs are not permitted")
            if block.get("type") == "text" and not block.get("text"):
                raise ValueError(f"{place}: cache_control cannot be set for empty text blocks")
            if not isinstance(control, dict) or control.get("type") != "ephemeral" or set(control) - {"type", "ttl"}:
                raise ValueError(f"{place}.cache_control: Input tag does not match the expected tag 'ephemeral'")
            if control.get("ttl", "5m") not in ("5m", "1h"):
                raise ValueError(f"{place}.cache_control.ttl: Input should be '5m' or '1h'")
            controls.append(control)
            where.append(place)
        plain = {k: v for k, v in block.items() if k != "cache_control"}
        units.append(({"role": role, **plain} if role else plain, control is not None))

    for k, tool in enumerate(body.get("tools") or ()):
        add(tool, f"tools[{k}]")
    system = body.get("system")
    for k, block in enumerate([{"type": "text", "text": system}] if isinstance(system, str) else system or ()):
        add(block, f"system[{k}]")
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        for j, block in enumerate([{"type": "text", "text": content}] if isinstance(content, str) else content):
            add(block, f"messages[{i}].content[{j}]", message["role"])
    if len(controls) > MAX_BREAKPOINTS:
        found = len(controls)
        raise ValueError(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}.")
    ttls = [c.get("ttl", "5m") for c in controls]
    if "5m" in ttls and "1h" in ttls[ttls.index("5m") :]:
        raise ValueError("a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block")
    return units, controls, where


def anthropic_responder(cache: PromptCache) -> Any:
    """A FakeUpstream responder for /v1/messages that refuses what Anthropic refuses and counts cache usage."""

    def respond(req: Recorded) -> Reply | None:
        if not req.path.endswith("/v1/messages"):
            return None
        try:
            units, _, where = anthropic_units(req.json)
        except ValueError as e:
            return _anthropic_error(str(e))
        uncached, read, written = cache.count(units, where)
        usage = {"input_tokens": uncached, "cache_read_input_tokens": read, "cache_creation_input_tokens": written}
        if req.json.get("stream"):
            return Reply(chunks=anthropic_stream([ANSWER], **usage))
        return Reply(json=anthropic_message(ANSWER, **usage))

    return respond


# ---- Bedrock -------------------------------------------------------------------------------------------------


def bedrock_units(body: dict[str, Any]) -> tuple[list[Unit], list[str]]:
    """The Converse request's blocks in the cache's order and where its cache points are; raises ValueError with
    Bedrock's message where Bedrock refuses one."""
    units: list[Unit] = []
    where: list[str] = []

    def add(blocks: list[dict[str, Any]], place: str, role: str | None = None) -> None:
        for k, block in enumerate(blocks):
            if "cachePoint" not in block:
                units.append(({"role": role, **block} if role else block, False))
                continue
            if block["cachePoint"] != {"type": "default"}:
                raise ValueError(f"{place}[{k}].cachePoint.type: must be 'default'")
            if k == 0 or "cachePoint" in blocks[k - 1]:
                raise ValueError(f"{place}[{k}]: a cache point must follow a content block")
            units[-1] = (units[-1][0], True)
            where.append(f"{place}[{k - 1}]")

    add((body.get("toolConfig") or {}).get("tools") or [], "toolConfig.tools")
    add(body.get("system") or [], "system")
    for i, message in enumerate(body["messages"]):
        add(message["content"], f"messages[{i}].content", message["role"])
    if len(where) > MAX_BREAKPOINTS:
        raise ValueError(f"The number of cache points ({len(where)}) exceeds the maximum of {MAX_BREAKPOINTS}")
    return units, where


def bedrock_responder(cache: PromptCache) -> Any:
    """A FakeBedrock responder for Converse that refuses what Bedrock refuses and counts cache usage."""

    def respond(seen: Seen) -> BedrockReply | None:
        if not seen.path.endswith(("/converse", "/converse-stream")):
            return None
        try:
            units, where = bedrock_units(seen.json)
        except ValueError as e:
            return BedrockReply(400, {"message": str(e)}, {"x-amzn-ErrorType": "ValidationException"})
        uncached, read, written = cache.count(units, where)
        answer, frames = converse_answer(
            [("text", ANSWER)], inputTokens=uncached, cacheReadInputTokens=read, cacheWriteInputTokens=written
        )
        return BedrockReply(frames=frames) if seen.path.endswith("-stream") else BedrockReply(json=answer)

    return respond
