"""`llm_format: cohere` (providers/cohere/native.py): the usage of Cohere's whole v2 and v1 responses, and its
stream recorder (v2 SSE, v1 NDJSON) fed the raw bytes cut at every offset and in 1-byte pieces (the bytes must come
out unchanged and the record must be the same). The passthrough itself: tests/test_native.py."""

from __future__ import annotations

from tests.support.fakes import sse
from tests.support.native import assert_recorded, kong, record, run


def test_cohere_v2_and_v1_usage() -> None:
    v2 = {
        "usage": {
            "billed_units": {"input_tokens": 1, "output_tokens": 2},
            "tokens": {"input_tokens": 8, "output_tokens": 2},
        }
    }
    assert record("cohere", v2)["usage"]["prompt_tokens"] == 8
    v1 = {"text": "x", "meta": {"billed_units": {"input_tokens": 3, "output_tokens": 4}}}
    assert record("cohere", v1)["usage"]["prompt_tokens"] == 3


def test_kong_cohere_v1_ndjson_stream() -> None:
    data = kong("extracted-from-spec/09-streaming/cohere_llm_v1_chat_good.wire.txt").read_bytes()
    rec = assert_recorded("cohere", data)
    assert rec.usage is not None and (rec.usage["prompt_tokens"], rec.usage["completion_tokens"]) == (68, 123)
    assert rec.result.completed and rec.result.finish_reason == "stop"


def test_cohere_v2_sse_stream() -> None:
    events = [
        sse({"type": "message-start", "id": "x"}, "message-start"),
        sse({"type": "content-delta", "delta": {"message": {"content": {"text": "hi"}}}}, "content-delta"),
        sse(
            {
                "type": "message-end",
                "delta": {
                    "finish_reason": "MAX_TOKENS",
                    "usage": {"billed_units": {"input_tokens": 2, "output_tokens": 1}},
                },
            },
            "message-end",
        ),
        b"data: [DONE]\n\n",
    ]
    rec = assert_recorded("cohere", b"".join(events))
    assert rec.usage is not None and (rec.usage["prompt_tokens"], rec.usage["completion_tokens"]) == (2, 1)
    assert rec.result.finish_reason == "length" and rec.result.completed


def test_cohere_failed_generation_is_an_error() -> None:
    end = sse({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "boom"}}, "message-end")
    _, rec = run("cohere", [end])
    assert rec.result.error is not None
