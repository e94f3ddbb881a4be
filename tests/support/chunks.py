"""OpenAI chunks out of a stream translator: fed at every split offset and byte by byte (the output must be the
same), then accumulated as a client would (content, tool calls, finish reason, usage)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _events(out: bytes) -> list[Any]:
    events: list[Any] = []
    for block in out.decode().split("\n\n")[:-1]:
        assert block.startswith("data: ")
        data = block[len("data: ") :]
        if data == "[DONE]":
            events.append(data)
            continue
        obj = json.loads(data)
        obj.pop("id", None)
        obj.pop("created", None)
        events.append(obj)
    return events


def translate(make: Callable[[], Any], raw: bytes) -> list[Any]:
    """The OpenAI events a translator makes of `raw`, checked identical at every split and byte by byte."""
    t = make()
    whole = _events(t.feed(raw) + t.finish())
    for cut in range(1, len(raw)):
        t = make()
        assert _events(t.feed(raw[:cut]) + t.feed(raw[cut:]) + t.finish()) == whole, cut
    t = make()
    assert _events(b"".join(t.feed(raw[i : i + 1]) for i in range(len(raw))) + t.finish()) == whole
    return whole


def accumulate(events: list[Any]) -> dict[str, Any]:
    """Content, tool calls, finish reason and usage, accumulated from OpenAI chunks."""
    content, calls, finish, found_usage = "", {}, None, None
    for e in events:
        if e == "[DONE]":
            continue
        assert "error" not in e, e
        if e.get("usage"):
            found_usage = e["usage"]
        for choice in e["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or ():
                slot = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                slot["name"] += (tc.get("function") or {}).get("name") or ""
                slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": found_usage}
