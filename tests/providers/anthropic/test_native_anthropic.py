"""`llm_format: anthropic`: the upstream request built from an Anthropic SDK's request, the usage of a whole answer,
and the stream recorder (moved from tests/test_native.py)."""

from __future__ import annotations

import json

from addon.spec import AuthSpec
from tests.support.fakes import anthropic_message, anthropic_stream, sse
from tests.support.native import assert_recorded, build, kong, record, req, run


def test_anthropic_request_swaps_the_key_and_keeps_path_query_body_and_headers() -> None:
    body = {"model": "claude-x", "max_tokens": 5, "messages": []}
    raw = json.dumps(body, indent=1).encode()
    headers = {
        "x-api-key": "sk-client",
        "authorization": "Bearer client",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "tools-2024",
        "content-type": "application/json",
        "host": "anthropic.internal",
        "content-length": "99",
        "connection": "keep-alive",
        "proxy-authorization": "Basic x",
        "cookie": "a=b",
        "accept-encoding": "gzip",
    }
    up = build(
        "anthropic",
        req("/v1/messages", raw, headers, [("beta", "true")]),
        auth=AuthSpec(header_name="x-api-key", header_value="sk-rule"),
    )
    assert up.url == "https://api.anthropic.com/v1/messages?beta=true"
    assert up.body == raw  # byte for byte
    assert up.headers == {
        "x-api-key": "sk-rule",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "tools-2024",
        "content-type": "application/json",
        "accept-encoding": "identity",
    }
    assert up.secrets == ["sk-rule"]
    assert (up.model, up.stream, up.method) == ("claude-x", False, "POST")
    assert up.call.model == "claude-x" and up.request_json == body


def test_anthropic_response_usage() -> None:
    out = record("anthropic", anthropic_message(cache_read_input_tokens=5))
    assert out["model"] == "claude-fake-1"
    assert out["usage"]["prompt_tokens"] == 30 and out["usage"]["completion_tokens"] == 12
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 5}


def test_anthropic_stream() -> None:
    rec = assert_recorded("anthropic", b"".join(anthropic_stream()))
    assert rec.model == "claude-fake-1"
    assert rec.usage is not None and rec.usage["prompt_tokens"] == 25 and rec.usage["completion_tokens"] == 12
    assert rec.result.completed and rec.result.error is None
    assert rec.result.finish_reason == "stop"
    assert rec.result.first_token_at is not None


def test_anthropic_stream_with_cumulative_input_usage_in_message_delta() -> None:
    events = anthropic_stream()
    events[-2] = sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"input_tokens": 30, "cache_read_input_tokens": 10, "output_tokens": 20},
        },
        "message_delta",
    )
    _, rec = run("anthropic", [b"".join(events)])
    assert rec.usage is not None
    assert rec.usage["prompt_tokens"] == 40 and rec.usage["completion_tokens"] == 20
    assert rec.result.finish_reason == "length"


def test_anthropic_stream_error_event_and_cut_stream() -> None:
    events = anthropic_stream(complete=False)
    err = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    _, rec = run("anthropic", [b"".join(events) + err])
    assert rec.result.error is not None and rec.result.error.message == "Overloaded"
    assert rec.result.error.status == 503
    _, rec = run("anthropic", [b"".join(events)])
    assert not rec.result.completed  # the glue records a stream that never reached message_stop as interrupted


def test_kong_anthropic_stream() -> None:
    rec = assert_recorded(
        "anthropic", kong("extracted-from-spec/09-streaming/anthropic_llm_v1_chat_good.wire.txt").read_bytes()
    )
    assert rec.model == "claude-2.1"
    assert rec.usage is not None and (rec.usage["prompt_tokens"], rec.usage["completion_tokens"]) == (15, 9)
    assert rec.result.completed
