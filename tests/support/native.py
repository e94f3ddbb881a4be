"""Builders for the native-format (llm_format) tests: a whole response's record, and a stream recorder fed the raw
bytes whole, cut at every offset and in 1-byte pieces (the bytes must come out unchanged and the record must be
the same)."""

from __future__ import annotations

import json
from typing import Any

from addon import native
from addon.providers import REGISTRY


def record(fmt: str, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    out, _ = native.response_record(native.adapter(REGISTRY[fmt]), status, raw, headers or {})
    return out


def splits(data: bytes) -> list[list[bytes]]:
    """The body whole, cut at every offset, and in 1-byte pieces."""
    cuts = [[data[:i], data[i:]] for i in range(1, len(data))]
    return [[data], *cuts, [data[i : i + 1] for i in range(len(data))]]


def summary(rec: native.NativeRecorder) -> tuple[Any, ...]:
    r = rec.result
    return (r.model, r.usage, r.finish_reason, r.completed, r.error.message if r.error else None)


def run(fmt: str, pieces: list[bytes]) -> tuple[bytes, native.NativeRecorder]:
    rec = native.adapter(REGISTRY[fmt]).recorder(keep_payload=False)
    out = b"".join(rec.feed(p) for p in pieces) + rec.finish()
    return out, rec


def assert_recorded(fmt: str, data: bytes) -> native.NativeRecorder:
    """Every cut gives the bytes back unchanged and the same record; returns the recorder of the whole body."""
    out, whole = run(fmt, [data])
    assert out == data
    reference = summary(whole)
    for pieces in splits(data):
        out, rec = run(fmt, pieces)
        assert out == data
        assert summary(rec) == reference
    return whole
