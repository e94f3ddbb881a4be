"""`llm_format: huggingface`: the usage of a whole TGI answer and the stream recorder, for TGI's native stream and
the OpenAI-style Messages API stream (moved from tests/test_native.py)."""

from __future__ import annotations

from tests.support.fakes import sse
from tests.support.native import assert_recorded, record, run


def test_huggingface_tgi_usage() -> None:
    data = {"generated_text": "x", "details": {"generated_tokens": 3, "prefill": [{}, {}]}}
    assert record("huggingface", data)["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    headers = {"x-prompt-tokens": "9", "x-generated-tokens": "4"}
    assert record("huggingface", [{"generated_text": "x"}], headers=headers)["usage"]["prompt_tokens"] == 9
    assert record("huggingface", [{"generated_text": "x"}])["usage"] is None  # no made-up zero


def test_huggingface_tgi_stream() -> None:
    events = [
        sse({"index": 1, "token": {"id": 1, "text": "a"}, "generated_text": None, "details": None}),
        sse(
            {
                "index": 2,
                "token": {"id": 2, "text": "b"},
                "generated_text": "ab",
                "details": {"finish_reason": "length", "generated_tokens": 2, "input_length": 7},
            }
        ),
    ]
    rec = assert_recorded("huggingface", b"".join(events))
    assert rec.usage == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert rec.result.completed


def test_huggingface_openai_style_stream() -> None:
    base = {"object": "chat.completion.chunk", "model": "meta/llama"}
    events = [
        sse({**base, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}),
        sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        sse({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}),
        b"data: [DONE]\n\n",
    ]
    rec = assert_recorded("huggingface", b"".join(events))
    assert rec.usage is not None and rec.usage["prompt_tokens"] == 5
    assert rec.model == "meta/llama" and rec.result.completed and rec.result.finish_reason == "stop"
    _, rec = run("huggingface", [sse({"error": "Model is overloaded", "error_type": "overloaded"})])
    assert rec.result.error is not None and rec.result.error.message == "Model is overloaded"
