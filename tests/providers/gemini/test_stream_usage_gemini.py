"""Usage that arrived before a Gemini stream was cut off is in the record (DESIGN.md: record what had arrived); the
shared builders and the reasoning are in tests/support/stream_usage.py and tests/test_stream_usage.py."""

from __future__ import annotations

import json

from tests.support.fakes import sse
from tests.support.stream_usage import (
    cut,
    no_usage_chunk,
    recorded,
    translator,
    usage,
)


def test_gemini_usage_metadata_of_each_chunk_is_recorded_at_once() -> None:
    t = translator("gemini")
    first = {
        "candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5},
    }
    out = cut(t, sse(first))
    assert t.result.usage == usage(4, 1)
    second = {**first, "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "thoughtsTokenCount": 2}}
    out += cut(t, sse(second))
    assert t.result.usage == {**usage(4, 5), "completion_tokens_details": {"reasoning_tokens": 2}}
    no_usage_chunk(out)


def test_gemini_json_array_form_too() -> None:
    t = translator("gemini")
    obj = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "usageMetadata": {"promptTokenCount": 6}}
    cut(t, b"[" + json.dumps(obj).encode() + b",\n")
    assert t.result.usage == usage(6, 0)  # proto3 JSON omits a zero candidatesTokenCount


def test_native_gemini_usage_of_an_intermediate_chunk() -> None:
    obj = {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": {"promptTokenCount": 3}}
    assert recorded("gemini", sse(obj)).usage == usage(3, 0)
