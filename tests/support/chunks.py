"""OpenAI chunks out of a stream translator: fed at every split offset and byte by byte (the output must be the
same), then accumulated as a client would (content, tool calls, finish reason, usage)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any


def sse_events(
    out: bytes,
    *,
    keep_ids: bool = False,
    allow_empty: bool = False,
    synthesised: Callable[[str], Any] | None = None,
    synth_as: str = "",
) -> list[Any]:
    """The client's view of a translated stream: every event `data: <json>` or `data: [DONE]`, the output ending
    with a blank line (or empty, with allow_empty). What differs from response to response is left out: the id
    and creation time (unless keep_ids), and tool-call ids the proxy made up (`synthesised`), shown as `synth_as`."""
    assert out.endswith(b"\n\n") or (allow_empty and not out), out[-200:]
    events: list[Any] = []
    for block in out.decode().split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        if data == "[DONE]":
            events.append(data)
            continue
        obj = json.loads(data)
        if not keep_ids:
            obj.pop("id", None)
            obj.pop("created", None)
        for choice in obj.get("choices") or () if synthesised else ():
            for call in (choice.get("delta") or {}).get("tool_calls") or ():
                if isinstance(call.get("id"), str) and synthesised(call["id"]):
                    call["id"] = synth_as
        events.append(obj)
    return events


def splits(raw: bytes) -> Iterator[list[bytes]]:
    """The whole body, 1-byte pieces, and two pieces split at every offset."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]


def _events(out: bytes) -> list[Any]:
    return sse_events(out, allow_empty=True)


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


def every_split(translator_factory: Callable[[], Any], raw: bytes) -> list[bytes]:
    """The output for the stream fed whole, in 1-byte pieces and split at every offset: all must agree."""
    outs = []
    t = translator_factory()
    outs.append(t.feed(raw) + t.finish())
    t = translator_factory()
    outs.append(b"".join(t.feed(raw[i : i + 1]) for i in range(len(raw))) + t.finish())
    for cut in range(1, len(raw)):
        t = translator_factory()
        outs.append(t.feed(raw[:cut]) + t.feed(raw[cut:]) + t.finish())
    return outs


def assert_error_null_is_no_error(translator_factory: Callable[[], Any]) -> None:
    """`"error": null` in an OpenAI-format chunk is no error (the OpenAI SDK raises only on a truthy one)."""
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
        "error": None,
    }
    raw = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    for out in every_split(translator_factory, raw):
        assert b'"Hi"' in out and out.endswith(b"data: [DONE]\n\n")
    t = translator_factory()
    t.feed(raw)
    t.finish()
    assert t.result.error is None and t.result.completed and t.result.text == ["Hi"]


def collect(stream: Any) -> tuple[str, list[str], list[Any]]:
    """An openai SDK stream read to its end: the text (chat or completions), the finish reasons, the chunks."""
    chunks = list(stream)
    text = "".join(
        (c.choices[0].delta.content if hasattr(c.choices[0], "delta") else c.choices[0].text) or ""
        for c in chunks
        if c.choices
    )
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return text, finish, chunks
