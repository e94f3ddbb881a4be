"""`llm_format: gemini`: a Gemini client's own requests passed through (the key and the service-account token the
rule's), and usage decoded on the side from JSON, JSON-array and SSE answers. The shared builders and checks are
in tests/support/native.py; the generic passthrough core's tests are in tests/test_native.py."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from addon import native
from addon.providers import REGISTRY
from addon.spec import AuthSpec, ModelOptions
from tests.support.fakes import sse
from tests.support.native import assert_recorded, build, kong, record, req, run


def test_gemini_client_key_param_is_replaced_by_the_rules() -> None:
    up = build(
        "gemini",
        req(
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            headers={"x-goog-api-key": "client"},
            query=[("alt", "sse"), ("key", "client")],
        ),
        auth=AuthSpec(param_name="key", param_value="rule-key", param_location="query"),
    )
    assert parse_qsl(urlsplit(up.url).query) == [("alt", "sse"), ("key", "rule-key")]
    assert "x-goog-api-key" not in up.headers
    assert up.model == "gemini-2.0-flash" and up.stream


def test_gemini_service_account_token() -> None:
    up = native.build_request(
        native.adapter(REGISTRY["gemini"]),
        req("/v1beta/models/g:generateContent", headers={"authorization": "Bearer client"}),
        route_type="llm/v1/chat",
        options=ModelOptions(),
        auth=AuthSpec(gcp_use_service_account=True),
        configured_model=None,
        access_token="ya29.token",
    )
    assert up.headers["authorization"] == "Bearer ya29.token"
    assert "ya29.token" in up.secrets


def test_gemini_json_array_response_usage() -> None:
    objs = [{"candidates": []}, {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}]
    assert record("gemini", objs)["usage"]["completion_tokens"] == 2


def test_kong_gemini_json_array_stream() -> None:
    data = kong("extracted-from-spec/09-streaming/gemini_llm_v1_chat_functions_good.wire.txt").read_bytes()
    rec = assert_recorded("gemini", data)
    assert rec.usage is not None and (rec.usage["prompt_tokens"], rec.usage["completion_tokens"]) == (47, 3)
    assert rec.model == "gemini-1.5-pro-001"
    assert rec.result.completed


def test_gemini_sse_stream() -> None:
    objs = [
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "modelVersion": "gemini-x"},
        {
            "candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 4},
        },
    ]
    rec = assert_recorded("gemini", b"".join(sse(o) for o in objs))
    assert rec.usage is not None and (rec.usage["prompt_tokens"], rec.usage["completion_tokens"]) == (3, 6)
    assert rec.result.finish_reason == "length" and rec.model == "gemini-x"


def test_gemini_error_in_stream() -> None:
    _, rec = run("gemini", [sse({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})])
    assert rec.result.error is not None and rec.result.error.message == "quota" and rec.result.error.status == 429
