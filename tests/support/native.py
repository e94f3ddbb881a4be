"""Builders and checks for the native-format (llm_format passthrough) tests: a client's native request, the
upstream request built from it, the record of a whole answer, and a stream recorder fed the raw bytes cut at every
offset and in 1-byte pieces (the bytes must come out unchanged and the record must be the same)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from addon import native
from addon.providers import REGISTRY
from addon.spec import AuthSpec, ModelOptions

KONG = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "kong"


def kong(rel: str) -> Path:
    path = KONG / rel
    if not path.exists():
        pytest.skip(f"Kong fixtures not found at {path}")
    return path


def req(
    path: str = "/v1/messages",
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
    method: str = "POST",
) -> native.NativeRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    return native.NativeRequest(method, path, query or [], headers or {}, raw)


def build(
    fmt: str, request: native.NativeRequest, *, auth: AuthSpec | None = None, model: str | None = None, **options: Any
) -> native.NativeUpstream:
    return native.build_request(
        native.adapter(REGISTRY[fmt]),
        request,
        route_type="llm/v1/chat",
        options=ModelOptions(**options),
        auth=auth,
        configured_model=model,
        max_body=1000,
    )


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
