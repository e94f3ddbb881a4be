"""`llm_format: bedrock`: a Bedrock client's own requests re-signed (SigV4 over the exact bytes) or sent with an
API key, and usage decoded on the side from Converse, InvokeModel and their eventstreams. The shared builders and
checks are in tests/support/native.py; the generic passthrough core's tests are in tests/test_native.py."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

from addon.spec import AuthSpec
from tests.support.bedrock import event, exception, frame, verify_sigv4
from tests.support.native import assert_recorded, build, kong, record, req, run

KEY_ID = "AKIDNATIVEUNITFAKE01"
SECRET = "native/unit+secret/000000000000000000001"
REGION = "eu-west-1"


def test_bedrock_request_is_resigned_over_the_exact_bytes() -> None:
    raw = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    client_headers = {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20250101/eu-west-1/bedrock/aws4_request, x",
        "x-amz-date": "20250101T000000Z",
        "x-amz-security-token": "client-token",
        "x-amz-content-sha256": "abc",
        "content-type": "application/json",
        "amz-sdk-invocation-id": "id-1",
        "user-agent": "Boto3/1",
    }
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    up = build(
        "bedrock",
        req(path, raw, client_headers),
        auth=AuthSpec(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET),
        bedrock={"aws_region": REGION},
    )
    assert up.body == raw
    assert up.url == f"https://bedrock-runtime.{REGION}.amazonaws.com{path}"
    assert up.model == model
    assert "client-token" not in json.dumps(up.headers) and "AKIDCLIENT" not in json.dumps(up.headers)
    assert up.headers["amz-sdk-invocation-id"] == "id-1"
    headers = {k.lower(): v for k, v in up.headers.items()}
    headers["host"] = urlsplit(up.url).netloc
    assert verify_sigv4("POST", path, headers, raw, {KEY_ID: SECRET}, REGION) is None
    assert verify_sigv4("POST", path, headers, raw + b" ", {KEY_ID: SECRET}, REGION) is not None


def test_bedrock_api_key_rule_is_not_signed() -> None:
    up = build(
        "bedrock",
        req("/model/m/converse", headers={"authorization": "client"}),
        auth=AuthSpec(header_name="Authorization", header_value="Bearer bedrock-api-key"),
        bedrock={"aws_region": REGION},
    )
    assert up.headers["authorization"] == "Bearer bedrock-api-key"
    assert "x-amz-date" not in up.headers


def test_bedrock_converse_and_invoke_usage() -> None:
    out = record("bedrock", {"usage": {"inputTokens": 3, "outputTokens": 4, "cacheReadInputTokens": 2}})
    assert out["usage"]["prompt_tokens"] == 5 and out["usage"]["completion_tokens"] == 4
    headers = {"x-amzn-bedrock-input-token-count": "11", "x-amzn-bedrock-output-token-count": "7"}
    out = record("bedrock", {"content": [{"text": "hi"}]}, headers=headers)
    assert out["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def test_kong_bedrock_eventstream() -> None:
    rec = assert_recorded("bedrock", kong("ai-proxy/unit/streaming-chunk-formats/aws/input.bin").read_bytes())
    assert rec.usage is not None and (rec.usage["prompt_tokens"], rec.usage["completion_tokens"]) == (9, 97)
    assert rec.result.completed and rec.result.finish_reason == "stop"


def test_bedrock_converse_stream_and_exception() -> None:
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}),
        event("messageStop", {"stopReason": "max_tokens"}),
        event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}}),
    ]
    rec = assert_recorded("bedrock", b"".join(frames))
    assert rec.usage == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    assert rec.result.finish_reason == "length"
    _, rec = run("bedrock", [frames[0], exception("throttlingException", "too fast")])
    assert rec.result.error is not None and "too fast" in rec.result.error.message


def test_bedrock_invoke_with_response_stream() -> None:
    def chunk(obj: dict[str, Any]) -> bytes:
        payload = json.dumps({"bytes": base64.b64encode(json.dumps(obj).encode()).decode(), "p": "abc"}).encode()
        return frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)

    data = chunk({"type": "content_block_delta", "delta": {"text": "x"}}) + chunk(
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 3}}
    )
    rec = assert_recorded("bedrock", data)
    assert rec.usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert rec.result.completed


def test_corrupt_eventstream_keeps_the_bytes_and_notes_it() -> None:
    data = bytearray(event("messageStart", {"role": "assistant"}))
    data[-1] ^= 0xFF  # bad CRC
    out, rec = run("bedrock", [bytes(data), b"more"])
    assert out == bytes(data) + b"more"
    assert rec.result.error is not None and "could not be decoded" in rec.result.error.message
