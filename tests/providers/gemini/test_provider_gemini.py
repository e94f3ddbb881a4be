"""Gemini / Vertex AI: request, response, error and stream translation (pure), Kong's Gemini fixtures in place,
and the GCP token source against a fake OAuth token endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt as google_jwt

from addon.auth import apply_auth
from addon.credentials.gcp import REFRESH_MARGIN_SECONDS, GcpTokenSource, UrllibRequest
from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, translate_response
from addon.providers.base import Call
from addon.providers.gemini import GEMINI, GeminiStream, finish_reason
from addon.rules import Rule
from addon.spec import AuthSpec
from tests.support.chunks import sse_events
from tests.support.native import kong
from tests.support.rules import one_rule

ROOT = Path(__file__).resolve().parents[3]
MESSAGES = [{"role": "user", "content": "What is 1 + 1?"}]


def make_rule(
    model: str | None = "gemini-2.5-flash",
    options: dict[str, Any] | None = None,
    route: str = "chat",
    auth: dict[str, Any] | None = None,
) -> Rule:
    extra = {} if auth is None else {"auth": auth}
    route = f"llm/v1/{route}"
    return one_rule("gemini", model, route, options or {}, rule_name="gemini-test", host="gemini.internal", **extra)


def prepare(rule: Rule, body: dict[str, Any]) -> Call:
    raw = json.dumps(body).encode()
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw))


def upstream(body: dict[str, Any], rule: Rule | None = None, access_token: str | None = None):
    rule = rule or make_rule()
    call = prepare(rule, body)
    call.access_token = access_token
    return build_upstream(rule, call)


def chat_call(stream: bool = False, route: str = "chat", **options: Any) -> Call:
    rule = make_rule(options=options, route=route)
    body: dict[str, Any] = {"prompt": "Hi"} if route == "completions" else {"messages": MESSAGES}
    return prepare(rule, {**body, "stream": stream})


# ==============================================================================================================
# Requests
# ==============================================================================================================


def test_kong_unit_request_exactly() -> None:
    """Kong's unit request and its expected Gemini body (rule tuning as in Kong's test): same body, key for key."""
    request = json.loads(kong("ai-proxy/unit/requests/llm-v1-chat.json").read_text())
    expected = json.loads(kong("ai-proxy/unit/expected-requests/gemini/llm-v1-chat.json").read_text())
    rule = make_rule("gemini-pro", {"max_tokens": 8192, "temperature": 0.8, "top_p": 0.6, "top_k": 1})
    up = upstream(request, rule)
    assert up.body == expected
    assert up.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:generateContent"
    assert up.method == "POST" and "authorization" not in up.headers


def test_request_mapping_every_parameter() -> None:
    body = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "What is 1 + 1?"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": "2"},
            {"role": "assistant", "content": [{"type": "text", "text": "Deux."}]},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "Merci", "name": "bob"},
        ],
        "max_completion_tokens": 100,
        "max_tokens": 7,  # max_completion_tokens wins
        "temperature": 1.5,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END", "STOP"],
        "n": 2,
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "response_format": {"type": "json_object"},
        "user": "user-123",
        "logprobs": False,
        "logit_bias": {},
        "tool_choice": "none",
        "parallel_tool_calls": True,
        "modalities": ["text"],
        "store": False,
        "metadata": {"k": "v"},
        "stream_options": None,
    }
    up = upstream(body)
    assert up.body == {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}, {"text": "What is 1 + 1?"}]},
            {"role": "model", "parts": [{"text": "2"}, {"text": "Deux."}]},
            {"role": "user", "parts": [{"text": "Merci"}]},
        ],
        "generationConfig": {
            "maxOutputTokens": 100,
            "temperature": 1.5,
            "topP": 0.9,
            "topK": 40,
            "stopSequences": ["END", "STOP"],
            "candidateCount": 2,
            "seed": 42,
            "presencePenalty": 0.5,
            "frequencyPenalty": -0.5,
            "responseMimeType": "application/json",
        },
    }


def test_request_minimal_has_no_generation_config() -> None:
    up = upstream({"messages": MESSAGES, "n": 1, "stop": None})
    assert up.body == {"contents": [{"role": "user", "parts": [{"text": "What is 1 + 1?"}]}]}


def test_rule_tuning_overrides_client() -> None:
    rule = make_rule(options={"temperature": 0.2, "max_tokens": 50, "top_k": 3})
    up = upstream({"messages": MESSAGES, "temperature": 1.9, "max_tokens": 4000, "top_k": 99}, rule)
    assert up.body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2, "topK": 3}


def test_completions_prompt_is_one_user_turn() -> None:
    rule = make_rule(route="completions")
    up = upstream({"prompt": ["Once upon a time"], "max_tokens": 16, "echo": False, "best_of": 1}, rule)
    assert up.body == {
        "contents": [{"role": "user", "parts": [{"text": "Once upon a time"}]}],
        "generationConfig": {"maxOutputTokens": 16},
    }
    assert up.url.endswith("/v1beta/models/gemini-2.5-flash:generateContent")


def test_image_data_url_becomes_inline_data() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    up = upstream({"messages": [{"role": "user", "content": content}]})
    assert up.body["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}],
        }
    ]


TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
REFUSED = [
    pytest.param({"tool_choice": "required"}, "tool_choice", id="tool-choice-without-tools"),
    pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
    pytest.param({"top_logprobs": 3}, "top_logprobs", id="top-logprobs"),
    pytest.param({"logit_bias": {"50256": -100}}, "logit_bias", id="logit-bias"),
    pytest.param({"audio": {"voice": "alloy"}}, "audio", id="audio"),
    pytest.param({"modalities": ["text", "audio"]}, "modalities", id="modalities"),
    pytest.param({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format", id="json-schema"),
    pytest.param({"n": 2, "stream": True}, "n", id="n-streamed"),
    pytest.param({"n": 0}, "n", id="n-zero"),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        "messages[0].content[0]",
        id="audio-part",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y"}}]}]},
        "messages[0].content[0]",
        id="image-url-of-unknown-type",
    ),
    pytest.param(
        {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]},
        "messages[0].content[0]",
        id="system-image",
    ),
    pytest.param(
        {"messages": [*MESSAGES, {"role": "tool", "tool_call_id": "c", "content": "2"}]},
        "messages[1].tool_call_id",
        id="tool-result-without-its-call",
    ),
    pytest.param({"messages": [{"role": "system", "content": "Only a system prompt"}]}, "messages", id="no-turns"),
]


@pytest.mark.parametrize(("extra", "param"), REFUSED)
def test_refused_with_400(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(ProxyError) as info:
        upstream({"messages": MESSAGES, **extra})
    assert info.value.status == 400
    assert info.value.param == param
    assert info.value.message and info.value.type == "invalid_request_error"


@pytest.mark.parametrize(
    "extra", [{"echo": True}, {"suffix": "end"}, {"best_of": 3}, {"logprobs": 2}, {"prompt": ["a", "b"]}]
)
def test_completions_refusals(extra: dict[str, Any]) -> None:
    with pytest.raises(ProxyError) as info:
        upstream({"prompt": "Hi", **extra}, make_rule(route="completions"))
    assert info.value.status == 400


# ---- URLs ----------------------------------------------------------------------------------------------------

VERTEX = {"gemini": {"project_id": "my-proj", "location_id": "us-central1"}}
URL_CASES = [
    pytest.param({}, False, "https://generativelanguage.googleapis.com/v1beta/models/M:generateContent", id="api"),
    pytest.param(
        {},
        True,
        "https://generativelanguage.googleapis.com/v1beta/models/M:streamGenerateContent?alt=sse",
        id="api-sse",
    ),
    pytest.param(
        VERTEX,
        False,
        "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1"
        "/publishers/google/models/M:generateContent",
        id="vertex",
    ),
    pytest.param(
        VERTEX,
        True,
        "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1"
        "/publishers/google/models/M:streamGenerateContent?alt=sse",
        id="vertex-sse",
    ),
    pytest.param(
        {"gemini": {"project_id": "p", "location_id": "global"}},
        False,
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/M:generateContent",
        id="vertex-global",
    ),
    pytest.param(
        {"gemini": {"project_id": "p", "location_id": "europe-west4", "api_endpoint": "vertex.example.com"}},
        True,
        "https://vertex.example.com/v1/projects/p/locations/europe-west4/publishers/google/models/M"
        ":streamGenerateContent?alt=sse",
        id="vertex-api-endpoint",
    ),
    pytest.param(
        {"gemini": {"project_id": "p", "location_id": "us-east1", "endpoint_id": "1234"}},
        False,
        "https://us-east1-aiplatform.googleapis.com/v1/projects/p/locations/us-east1/endpoints/1234:generateContent",
        id="vertex-endpoint-id",
    ),
    pytest.param(
        {"upstream_url": "http://127.0.0.1:9000"},
        True,
        "http://127.0.0.1:9000/v1beta/models/M:streamGenerateContent?alt=sse",
        id="bare-upstream-url",
    ),
    pytest.param(
        {**VERTEX, "upstream_url": "http://127.0.0.1:9000/"},
        False,
        "http://127.0.0.1:9000/v1/projects/my-proj/locations/us-central1/publishers/google/models/M:generateContent",
        id="bare-upstream-url-vertex",
    ),
    pytest.param(
        {"upstream_url": "http://gw:8000/gemini/v1beta/models/other:generateContent?key=K"},
        False,
        "http://gw:8000/gemini/v1beta/models/other:generateContent?key=K",
        id="whole-url-as-given",
    ),
    pytest.param(
        {"upstream_url": "http://gw:8000/gemini/v1beta/models/other:generateContent?key=K"},
        True,
        "http://gw:8000/gemini/v1beta/models/other:streamGenerateContent?key=K&alt=sse",
        id="whole-url-switched-to-streaming",
    ),
    pytest.param(
        {"upstream_url": "http://gw:8000/v1beta/models/other:streamGenerateContent?alt=sse"},
        False,
        "http://gw:8000/v1beta/models/other:generateContent",
        id="whole-url-streaming-switched-back",
    ),
    pytest.param(
        {"upstream_url": "http://gw:8000/v1beta/models/other:streamGenerateContent"},
        True,
        "http://gw:8000/v1beta/models/other:streamGenerateContent",
        id="whole-url-json-array-form-kept",
    ),
    pytest.param(
        {"upstream_url": "http://gw:8000/custom/generate"}, True, "http://gw:8000/custom/generate", id="custom-path"
    ),
    pytest.param(
        {"upstream_path": "/v1/models/M:generateContent"},
        True,
        "https://generativelanguage.googleapis.com/v1/models/M:streamGenerateContent?alt=sse",
        id="upstream-path",
    ),
]


@pytest.mark.parametrize(("options", "stream", "url"), URL_CASES)
def test_urls(options: dict[str, Any], stream: bool, url: str) -> None:
    up = upstream({"messages": MESSAGES, "stream": stream}, make_rule("M", options))
    assert up.url == url
    assert "stream" not in up.body and "model" not in up.body


def test_model_id_is_url_encoded_and_models_prefix_dropped() -> None:
    assert upstream({"messages": MESSAGES}, make_rule("models/gemini-2.5-flash")).url.endswith(
        "/models/gemini-2.5-flash:generateContent"
    )
    assert upstream({"messages": MESSAGES}, make_rule("a/b c?d")).url.endswith("/models/a%2Fb%20c%3Fd:generateContent")


def test_vertex_needs_project_and_location() -> None:
    with pytest.raises(ProxyError) as info:
        upstream({"messages": MESSAGES}, make_rule(options={"gemini": {"project_id": "p"}}))
    assert info.value.status == 500 and info.value.code == "proxy_misconfigured"


def test_vertex_endpoint_needs_no_model() -> None:
    options = {"gemini": {"project_id": "p", "location_id": "l", "endpoint_id": "9"}}
    up = upstream({"messages": MESSAGES}, make_rule(None, options))
    assert up.url.endswith("/endpoints/9:generateContent")
    with pytest.raises(ProxyError, match="no model"):
        upstream({"messages": MESSAGES}, make_rule(None))


def test_access_token_is_a_bearer_header() -> None:
    up = upstream({"messages": MESSAGES}, make_rule(options=VERTEX), access_token="ya29.fake-token")
    assert up.headers["authorization"] == "Bearer ya29.fake-token"


@pytest.mark.parametrize(
    ("auth", "header", "query"),
    [
        ({"header_name": "x-goog-api-key", "header_value": "AIza-fake"}, "AIza-fake", None),
        ({"param_name": "key", "param_value": "AIza-fake", "param_location": "query"}, None, "AIza-fake"),
    ],
    ids=["header", "query"],
)
def test_api_key_injection(auth: dict[str, Any], header: str | None, query: str | None) -> None:
    """The glue adds the key after build_request: with a streaming URL's ?alt=sse, both params survive."""
    rule = make_rule(auth=auth)
    up = upstream({"messages": MESSAGES, "stream": True}, rule)
    apply_auth(up, rule.spec.auth, {"authorization": "Bearer sk-client"}, {})
    params = dict(parse_qsl(urlsplit(up.url).query))
    assert up.headers.get("x-goog-api-key") == header
    assert params.get("key") == query and params["alt"] == "sse"
    assert "authorization" not in up.headers


# ==============================================================================================================
# Responses
# ==============================================================================================================


def parse(data: Any, route: str = "chat", **options: Any) -> dict[str, Any]:
    call = chat_call(route=route, **options)
    status, out = translate_response(GEMINI, call, 200, json.dumps(data).encode(), "application/json")
    assert status == 200, out
    return out


def test_kong_unit_response() -> None:
    real = json.loads(kong("ai-proxy/unit/real-responses/gemini/llm-v1-chat.json").read_text())
    expected = json.loads(kong("ai-proxy/unit/expected-responses/gemini/llm-v1-chat.json").read_text())
    out = translate_response(
        GEMINI, prepare(make_rule("gemini-pro"), {"messages": MESSAGES}), 200, json.dumps(real).encode(), ""
    )[1]
    assert out["object"] == expected["object"] and out["model"] == expected["model"]
    assert [(c["index"], c["message"], c["finish_reason"]) for c in out["choices"]] == [
        (c["index"], c["message"], c["finish_reason"]) for c in expected["choices"]
    ]
    assert out["usage"] == {"prompt_tokens": 14, "completion_tokens": 128, "total_tokens": 142}


@pytest.mark.parametrize(
    ("fixture", "content", "finish", "model", "tokens"),
    [
        (
            "ai-proxy/gemini/llm-v1-chat/responses/good.json",
            "Everything is okay.",
            "stop",
            "gemini-1.5-flash-002",
            (2, 11),
        ),
        ("ai-proxy/gemini/llm-v1-chat/responses/fails_safety.json", "", "content_filter", "gemini-2.5-flash", (319, 0)),
        (
            "ai-proxy/gemini/request-transformer/response-in-json.json",
            ' {\n    "persons": [\n      {\n        "name": "Kong A",\n        "age": 62\n      },\n      {\n'
            '        "name": "Kong B",\n        "age": 84\n      }\n    ]\n  }\n',
            "stop",
            "gemini-1.5-flash-002",
            (2, 11),
        ),
    ],
    ids=["good", "fails-safety", "response-in-json"],
)
def test_kong_llm_v1_chat_responses(fixture: str, content: str, finish: str, model: str, tokens: tuple) -> None:
    out = parse(json.loads(kong(fixture).read_text()))
    [choice] = out["choices"]
    assert choice["message"] == {"role": "assistant", "content": content}
    assert choice["finish_reason"] == finish and out["model"] == model
    assert (out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]) == tokens


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MODEL_ARMOR", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("SOMETHING_NEW", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(reason: str | None, expected: str | None) -> None:
    assert finish_reason(reason) == expected
    if reason:
        response = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
        assert parse(response)["choices"][0]["finish_reason"] == expected


def test_prompt_blocked_is_content_filter_with_empty_content() -> None:
    out = parse({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}})
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert out["usage"] == {"prompt_tokens": 8, "completion_tokens": 0, "total_tokens": 8}


def test_usage_with_thoughts_and_cache() -> None:
    meta = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 49,
        "thoughtsTokenCount": 2042,
        "cachedContentTokenCount": 64,
        "totalTokenCount": 2191,
    }
    out = parse(
        {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}], "usageMetadata": meta}
    )
    assert out["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 2091,
        "total_tokens": 2191,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 2042},
    }


def test_parts_joined_thoughts_apart_and_ids_kept() -> None:
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "thinking...", "thought": True}, {"text": "Hello, "}, {"text": "world"}],
                },
                "finishReason": "STOP",
            }
        ],
        "modelVersion": "gemini-2.5-pro",
        "responseId": "resp-123",
    }
    out = parse(response)
    assert out["id"] == "resp-123" and out["model"] == "gemini-2.5-pro" and out["object"] == "chat.completion"
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello, world",
        "reasoning_content": "thinking...",
    }
    assert "usage" not in out


def test_several_candidates_become_choices() -> None:
    response = {
        "candidates": [
            {"index": 1, "content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS"},
            {"index": 0, "content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"},
        ]
    }
    out = parse(response)
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in out["choices"]] == [
        (0, "A", "stop"),
        (1, "B", "length"),
    ]


def test_function_call_response_is_a_tool_call() -> None:
    part = {"functionCall": {"name": "add", "args": {"a": 2, "b": 12}}, "thoughtSignature": "sig"}
    out = parse({"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]})
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "add" and json.loads(call["function"]["arguments"]) == {"a": 2, "b": 12}


def test_completions_response() -> None:
    out = parse(
        {"candidates": [{"content": {"parts": [{"text": " upon a time"}]}, "finishReason": "MAX_TOKENS"}]},
        "completions",
    )
    assert out["object"] == "text_completion"
    assert out["choices"] == [{"index": 0, "text": " upon a time", "logprobs": None, "finish_reason": "length"}]


def test_one_element_array_response_accepted() -> None:
    out = parse([{"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}])
    assert out["choices"][0]["message"]["content"] == "hi"


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"text"', b'{"foo": 1}', b"not json", b'[{"a":1},{"b":2}]'],
    ids=["empty", "str", "shape", "json", "array"],
)
def test_wrong_shaped_2xx_is_502(body: bytes) -> None:
    status, out = translate_response(GEMINI, chat_call(), 200, body, "application/json")
    assert status == 502 and out["error"]["code"] == "bad_upstream_response"


# ==============================================================================================================
# Errors
# ==============================================================================================================

QUOTA = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41.5s"},
        ],
    }
}
ERROR_CASES = [
    pytest.param(429, json.dumps(QUOTA), 429, "rate_limit_error", "RESOURCE_EXHAUSTED", "exceeded", id="quota"),
    pytest.param(
        400,
        json.dumps({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}),
        400,
        "invalid_request_error",
        "INVALID_ARGUMENT",
        "API key not valid",
        id="invalid-argument",
    ),
    pytest.param(
        503,
        json.dumps([{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]),
        503,
        "server_error",
        "UNAVAILABLE",
        "overloaded",
        id="array-wrapped-unavailable",
    ),
    pytest.param(
        404,
        json.dumps({"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}),
        404,
        "not_found_error",
        "NOT_FOUND",
        "not found",
        id="not-found",
    ),
    pytest.param(
        403,
        json.dumps({"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED"}}),
        403,
        "permission_error",
        "PERMISSION_DENIED",
        "denied",
        id="permission",
    ),
    pytest.param(
        504,
        json.dumps({"error": {"code": 504, "message": "Deadline exceeded", "status": "DEADLINE_EXCEEDED"}}),
        504,
        "server_error",
        "DEADLINE_EXCEEDED",
        "Deadline",
        id="deadline",
    ),
    pytest.param(
        500,
        "<html><body><h1>Error 500 (Server Error)</h1></body></html>",
        500,
        "server_error",
        None,
        "Error 500",
        id="html",
    ),
    pytest.param(502, "", 502, "server_error", None, "empty body", id="empty"),
]


@pytest.mark.parametrize(("status", "body", "out_status", "etype", "code", "message"), ERROR_CASES)
def test_errors(status: int, body: str, out_status: int, etype: str, code: str | None, message: str) -> None:
    err = GEMINI.parse_error(status, body.encode(), "text/html" if body.startswith("<") else "application/json")
    assert (err.status, err.type, err.code) == (out_status, etype, code)
    assert message in err.message
    got_status, envelope = translate_response(GEMINI, chat_call(), status, body.encode(), "application/json")
    assert got_status == out_status and set(envelope["error"]) == {"message", "type", "param", "code"}


def test_retry_info_becomes_retry_after() -> None:
    assert GEMINI.parse_error(429, json.dumps(QUOTA).encode(), "application/json").headers == {"retry-after": "42"}


# ==============================================================================================================
# Streams
# ==============================================================================================================


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"  # Gemini's alt=sse uses CRLF line ends


def gen(text: str | None, finish: str | None = None, usage_meta: dict | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if text is not None:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r1", **extra}
    if usage_meta:
        out["usageMetadata"] = usage_meta
    return out


def usage_meta(candidates: int) -> dict[str, int]:
    return {
        "promptTokenCount": 4,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": 10,
        "totalTokenCount": 14 + candidates,
    }


STREAM_OBJECTS = [
    gen("Hello", usage_meta=usage_meta(1)),
    gen(", wörld 👋", usage_meta=usage_meta(5)),
    gen(" ✓", "STOP", usage_meta=usage_meta(7)),
]
SSE_BODY = b"".join(sse(o) for o in STREAM_OBJECTS)
# The same responses as the JSON-array form (streamGenerateContent without alt=sse), as Gemini lays it out.
ARRAY_BODY = (
    b"[" + b"\r\n,\r\n".join(json.dumps(o, indent=2, ensure_ascii=False).encode() for o in STREAM_OBJECTS) + b"]"
)


STREAM_CALL = chat_call(stream=True)
COMPLETIONS_STREAM_CALL = chat_call(stream=True, route="completions")


def run_stream(pieces: list[bytes], call: Call = STREAM_CALL, include_usage: bool = True) -> bytes:
    translator = GeminiStream(call, include_usage, keep_payload=True)
    return b"".join(translator.feed(p) for p in pieces) + translator.finish()


def events(raw: bytes) -> list[Any]:
    """The client-visible events, with what differs from response to response (the id, the creation time and
    the ids synthesised for tool calls) taken out."""
    return sse_events(raw, synthesised=lambda call_id: call_id.startswith("call_"), synth_as="call_*")


def splits(data: bytes) -> Iterator[list[bytes]]:
    """The body in 1-byte pieces, and split in two at every offset."""
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]


def assert_split_invariant(
    data: bytes, call: Call = STREAM_CALL, include_usage: bool = True, malformed: bool = False
) -> list[Any]:
    """The same client output however the body is cut. A body with broken framing always ends in the same
    error event, but how much arrived before it depends on where the cut falls: a decoder that finds the
    error drops the elements it completed in the same read."""
    reference = events(run_stream([data], call, include_usage))
    for pieces in splits(data):
        got = events(run_stream(pieces, call, include_usage))
        if malformed:
            assert got[-1] == reference[-1] and "[DONE]" not in got, [len(p) for p in pieces]
        else:
            assert got == reference, [len(p) for p in pieces]
    return reference


def content_of(evts: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in evts if isinstance(e, dict) and e.get("choices")
    )


def test_sse_stream_translation() -> None:
    evts = assert_split_invariant(SSE_BODY)
    assert evts[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(evts) == "Hello, wörld 👋 ✓"
    assert all(e["model"] == "gemini-2.5-flash" and e["object"] == "chat.completion.chunk" for e in evts[:-1])
    finish = [e for e in evts[:-1] if e["choices"] and e["choices"][0]["finish_reason"]]
    assert [f["choices"][0]["finish_reason"] for f in finish] == ["stop"]
    usage_chunk = evts[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 17,
        "total_tokens": 21,
        "completion_tokens_details": {"reasoning_tokens": 10},
    }
    assert evts[-1] == "[DONE]"


def test_json_array_stream_same_as_sse() -> None:
    assert assert_split_invariant(ARRAY_BODY) == events(run_stream([SSE_BODY]))


def test_no_usage_chunk_unless_asked() -> None:
    evts = assert_split_invariant(SSE_BODY, include_usage=False)
    assert all("usage" not in e for e in evts[:-1]) and evts[-1] == "[DONE]"
    assert content_of(evts) == "Hello, wörld 👋 ✓"


def test_stream_result_for_the_audit_record() -> None:
    translator = GeminiStream(chat_call(stream=True), include_usage=False, keep_payload=True)
    translator.feed(SSE_BODY)
    translator.finish()
    result = translator.result
    assert result.completed and result.error is None and result.finish_reason == "stop"
    assert result.model == "gemini-2.5-flash" and "".join(result.text) == "Hello, wörld 👋 ✓"
    assert result.usage["prompt_tokens"] == 4 and result.usage["completion_tokens"] == 17


@pytest.mark.parametrize(
    "prefix", [b"\xef\xbb\xbf", b"\r\n\r\n", b"\xef\xbb\xbf \n"], ids=["bom", "blank-lines", "bom-and-space"]
)
def test_leading_bom_and_whitespace(prefix: bytes) -> None:
    expected = events(run_stream([SSE_BODY]))
    assert assert_split_invariant(prefix + SSE_BODY) == expected
    assert assert_split_invariant(prefix.replace(b"\xef\xbb\xbf", b"") + b"\r\n" + ARRAY_BODY) == expected


def test_completions_stream() -> None:
    evts = assert_split_invariant(SSE_BODY, COMPLETIONS_STREAM_CALL)
    assert all(e["object"] == "text_completion" for e in evts[:-1])
    assert "".join(e["choices"][0]["text"] for e in evts[:-1] if e["choices"]) == "Hello, wörld 👋 ✓"
    assert [
        e["choices"][0]["finish_reason"] for e in evts[:-1] if e["choices"] and e["choices"][0]["finish_reason"]
    ] == ["stop"]


def test_stream_thoughts_are_reasoning_deltas() -> None:
    first = gen(None)
    first["candidates"][0]["content"] = {"role": "model", "parts": [{"text": "Let me think.", "thought": True}]}
    evts = events(run_stream([sse(first), sse(gen("Answer", "STOP"))]))
    deltas = [e["choices"][0]["delta"] for e in evts[:-1] if e["choices"]]
    assert {"reasoning_content": "Let me think."} in deltas and content_of(evts) == "Answer"


def test_stream_prompt_blocked() -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    evts = assert_split_invariant(sse(blocked))
    assert content_of(evts) == ""
    assert [e["choices"][0]["finish_reason"] for e in evts[:-2] if e["choices"][0]["finish_reason"]] == [
        "content_filter"
    ]
    assert evts[-2]["usage"]["prompt_tokens"] == 9


def test_stream_max_tokens_and_safety() -> None:
    evts = events(run_stream([sse(gen("a")), sse(gen("b", "MAX_TOKENS"))]))
    assert evts[-3]["choices"][0]["finish_reason"] == "length"
    evts = events(run_stream([sse(gen("a")), sse(gen(None, "SAFETY"))]))
    assert evts[-3]["choices"][0]["finish_reason"] == "content_filter"


def test_stream_function_call_is_one_tool_call_delta() -> None:
    part = {"functionCall": {"name": "getWeather", "args": {"location": "Tokyo"}}, "thoughtSignature": "CikB"}
    obj = gen(None, "STOP", usage_meta={"promptTokenCount": 83, "candidatesTokenCount": 14, "thoughtsTokenCount": 104})
    obj["candidates"][0]["content"] = {"role": "model", "parts": [part]}
    evts = assert_split_invariant(sse(obj))
    [start] = [e for e in evts[:-2] if e["choices"][0]["delta"].get("tool_calls", [{}])[0].get("id")]
    call = start["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and call["function"]["name"] == "getWeather" and call["id"].startswith("call_")
    args = "".join(
        d["function"]["arguments"] for e in evts[:-2] for d in e["choices"][0]["delta"].get("tool_calls", [])
    )
    assert json.loads(args) == {"location": "Tokyo"}
    assert evts[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert evts[-2]["usage"]["completion_tokens"] == 118


def test_stream_ends_at_eof_not_at_each_finish_reason() -> None:
    """Older models put finishReason STOP on every chunk: one finish chunk, at the end of the body."""
    body = sse(gen("a", "STOP")) + sse(gen("b", "STOP"))
    evts = events(run_stream([body]))
    assert content_of(evts) == "ab"
    assert sum(1 for e in evts[:-1] if e["choices"] and e["choices"][0]["finish_reason"]) == 1


@pytest.mark.parametrize("form", ["sse", "array"])
def test_mid_stream_error_event(form: str) -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    if form == "sse":
        body = sse(gen("partial")) + sse(error) + sse(gen("never", "STOP"))
    else:
        body = b"[" + json.dumps(gen("partial")).encode() + b",\r\n" + json.dumps(error).encode() + b"]"
    evts = assert_split_invariant(body)
    assert content_of(evts) == "partial"
    assert evts[-1] == {
        "error": {"message": "The model is overloaded.", "type": "server_error", "param": None, "code": "UNAVAILABLE"}
    }
    assert "[DONE]" not in evts
    translator = GeminiStream(chat_call(stream=True), False, False)
    translator.feed(body)
    assert translator.result.error is not None and translator.result.error.status == 503
    assert translator.feed(sse(gen("more"))) == b"" and translator.finish() == b""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (sse(gen("cut")), "ended before a finishReason"),
        (b"", "ended before a finishReason"),
        (b"data: {not json\r\n\r\n", "not a JSON object"),
        (b'[{"candidates": [', "malformed"),
        (b'[{"a": 1}}', "malformed"),
    ],
    ids=["no-finish", "empty", "bad-json", "array-cut", "array-syntax"],
)
def test_broken_streams_end_in_an_error_event(body: bytes, message: str) -> None:
    evts = assert_split_invariant(body, malformed=True) if body else events(run_stream([body]))
    assert (
        "[DONE]" not in evts and message in evts[-1]["error"]["message"] and evts[-1]["error"]["code"] == "stream_error"
    )


# ---- Kong's Gemini streams, in place ----------------------------------------------------------------------


def test_kong_streaming_function_call_fixture() -> None:
    """Kong's mock writes this JSON-array stream (CRLF, with stray LFs) in three writes."""
    chunks = [
        c.encode()
        for c in json.loads(
            kong("extracted-from-spec/09-streaming/gemini_llm_v1_chat_functions_good.chunks.json").read_text()
        )
    ]
    wire = kong("extracted-from-spec/09-streaming/gemini_llm_v1_chat_functions_good.wire.txt").read_bytes()
    assert b"".join(chunks) == wire
    reference = assert_split_invariant(wire)
    assert events(run_stream(chunks)) == reference
    tool_deltas = [d for e in reference[:-2] for d in e["choices"][0]["delta"].get("tool_calls", [])]
    assert tool_deltas[0]["function"]["name"] == "add"
    assert json.loads("".join(d["function"]["arguments"] for d in tool_deltas)) == {"a": 2, "b": 12}
    assert reference[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert reference[-3]["model"] == "gemini-1.5-pro-001"
    assert reference[-2]["usage"] == {"prompt_tokens": 47, "completion_tokens": 3, "total_tokens": 50}


@pytest.mark.parametrize("name", ["partial-json-split", "partial-json-split-three-parts", "partial-json-beginning"])
def test_kong_chunked_json_array_fixtures(name: str) -> None:
    folder = kong(f"ai-proxy/unit/streaming-chunk-formats/{name}")
    reads = [p.read_bytes() for p in sorted(folder.glob("input*.bin"))]
    data = b"".join(reads)
    reference = assert_split_invariant(data)
    assert events(run_stream(reads)) == reference
    if (folder / "expected-output.bin").exists():
        assert content_of(reference) == (folder / "expected-output.bin").read_text()
    else:
        expected = json.loads((folder / "expected-output.json").read_text())
        texts = [json.loads(e["data"])["candidates"][0]["content"]["parts"][0]["text"] for e in expected]
        assert content_of(reference) == "".join(texts)
    finishes = [e["choices"][0]["finish_reason"] for e in reference[:-2] if e["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]


# ==============================================================================================================
# Purity: the provider module imports no mitmproxy; neither does the token source
# ==============================================================================================================


def test_modules_import_no_mitmproxy() -> None:
    code = (
        "import sys, addon.providers.gemini, addon.credentials.gcp; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'mitmproxy']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ==============================================================================================================
# GCP token source against a fake OAuth token endpoint
# ==============================================================================================================


def service_account_info(token_uri: str, email: str = "svc@fake-project.iam.gserviceaccount.com") -> tuple[dict, str]:
    """A service account key file with a freshly generated RSA key; returns it and the public key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    info = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "fake-key-id-0001",
        "private_key": private_pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    return info, public_pem


GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class FakeTokenServer:
    """An OAuth2 token endpoint (`POST /token`, JWT-bearer grant) on 127.0.0.1.

    It verifies each assertion against the account's public key, counts grants per account and answers
    `ya29.fake-<n>` tokens with the account's `expires_in`, or an `invalid_grant` error for a failing account.
    """

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, int | None]] = {}  # email -> (public key PEM, expires_in or None: fail)
        self.grants: dict[str, int] = {}
        self.claims: list[dict[str, Any]] = []
        self.threads: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                status, body = server.grant(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-oauth", daemon=True
        ).start()

    def add(self, email: str, expires_in: int | None = 3600) -> str:
        """A new service account JSON whose grants this server answers."""
        info, public_pem = service_account_info(self.uri, email)
        self.accounts[email] = (public_pem, expires_in)
        return json.dumps(info)

    def grant(self, path: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path != "/token" or form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        assertion = form["assertion"][0]
        email = google_jwt.decode(assertion, verify=False)["iss"]
        public_pem, expires_in = self.accounts[email]
        # Raises on a bad signature. google-auth always names Google's endpoint as the audience.
        claims = google_jwt.decode(assertion, certs=public_pem, audience=GOOGLE_TOKEN_AUDIENCE)
        with self._lock:
            self.claims.append(claims)
            if expires_in is None:
                self.grants[email] = self.grants.get(email, 0) + 1
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            n = self.grants[email] = self.grants.get(email, 0) + 1
        return 200, {
            "access_token": f"ya29.fake-{email.split('@')[0]}-{n}",
            "expires_in": expires_in,
            "token_type": "Bearer",
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def oauth() -> Iterator[FakeTokenServer]:
    server = FakeTokenServer()
    try:
        yield server
    finally:
        server.close()


class Clock:
    """Wall time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def gcp_auth(info_json: str | None) -> AuthSpec:
    return AuthSpec(gcp_use_service_account=True, gcp_service_account_json=info_json)


def test_token_fetched_once_for_a_burst_then_again_after_expiry(oauth: FakeTokenServer) -> None:
    email = "burst@fake-project.iam.gserviceaccount.com"
    auth = gcp_auth(oauth.add(email, expires_in=3600))
    clock = Clock()
    source = GcpTokenSource(clock=clock)

    async def burst(n: int) -> list[str]:
        return list(await asyncio.gather(*(source.token(auth) for _ in range(n))))

    async def scenario() -> None:
        assert await burst(25) == ["ya29.fake-burst-1"] * 25
        assert oauth.grants[email] == 1
        # Still valid until REFRESH_MARGIN_SECONDS before expiry: no new fetch.
        clock.offset = 3600 - REFRESH_MARGIN_SECONDS - 30
        assert await burst(5) == ["ya29.fake-burst-1"] * 5
        assert oauth.grants[email] == 1
        # Inside the margin: refreshed once, however many requests arrive together.
        clock.offset = 3600 - REFRESH_MARGIN_SECONDS + 30
        assert await burst(25) == ["ya29.fake-burst-2"] * 25
        assert oauth.grants[email] == 2
        # Past the new token's expiry as well.
        clock.offset += 3600
        assert await source.token(auth) == "ya29.fake-burst-3"

    asyncio.run(scenario())
    assert oauth.grants[email] == 3
    claims = oauth.claims[0]
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["iss"] == email and claims["aud"] == GOOGLE_TOKEN_AUDIENCE


def test_token_cached_per_service_account(oauth: FakeTokenServer) -> None:
    a = gcp_auth(oauth.add("a@p.iam.gserviceaccount.com"))
    b = gcp_auth(oauth.add("b@p.iam.gserviceaccount.com"))
    source = GcpTokenSource()

    async def scenario() -> list[str]:
        return list(await asyncio.gather(source.token(a), source.token(b), source.token(a), source.token(b)))

    assert asyncio.run(scenario()) == ["ya29.fake-a-1", "ya29.fake-b-1", "ya29.fake-a-1", "ya29.fake-b-1"]
    assert oauth.grants == {"a@p.iam.gserviceaccount.com": 1, "b@p.iam.gserviceaccount.com": 1}


def test_refresh_runs_off_the_event_loop(oauth: FakeTokenServer) -> None:
    auth = gcp_auth(oauth.add("thread@p.iam.gserviceaccount.com"))
    seen: list[str] = []
    inner = UrllibRequest()

    def request(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return inner(*args, **kwargs)

    source = GcpTokenSource(request=request)  # type: ignore[arg-type]
    loop_thread: list[str] = []

    async def scenario() -> str:
        loop_thread.append(threading.current_thread().name)
        return await source.token(auth)

    assert asyncio.run(scenario()) == "ya29.fake-thread-1"
    assert seen and all(name != loop_thread[0] for name in seen)


def test_failed_fetch_is_shared_by_waiters_and_retried_later(oauth: FakeTokenServer) -> None:
    email = "broken@p.iam.gserviceaccount.com"
    auth = gcp_auth(oauth.add(email, expires_in=None))
    source = GcpTokenSource()

    async def burst() -> list[Any]:
        return list(await asyncio.gather(*(source.token(auth) for _ in range(6)), return_exceptions=True))

    results = asyncio.run(burst())
    assert all(isinstance(r, ProxyError) and r.status == 502 and r.code == "gcp_auth_error" for r in results)
    assert "invalid_grant" in results[0].message
    assert oauth.grants[email] == 1  # one failing fetch, not six in a row
    # A later request tries again.
    with pytest.raises(ProxyError):
        asyncio.run(source.token(auth))
    assert oauth.grants[email] == 2


@pytest.mark.parametrize(
    ("info_json", "match"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "JSON object"),
        ('{"type": "service_account", "client_email": "x@y"}', "not a usable service account key"),
    ],
    ids=["not-json", "not-object", "missing-fields"],
)
def test_bad_service_account_json_is_a_config_error(info_json: str, match: str) -> None:
    with pytest.raises(ProxyError, match=match) as info:
        asyncio.run(GcpTokenSource().token(gcp_auth(info_json)))
    assert info.value.status == 500 and info.value.code == "proxy_misconfigured"


def test_application_default_credentials(
    oauth: FakeTokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No service account JSON in the rule: google.auth.default() finds one through GOOGLE_APPLICATION_CREDENTIALS."""
    key_file = tmp_path / "adc.json"
    key_file.write_text(oauth.add("adc@p.iam.gserviceaccount.com"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    source = GcpTokenSource()

    async def scenario() -> list[str]:
        return list(await asyncio.gather(*(source.token(gcp_auth(None)) for _ in range(5))))

    assert asyncio.run(scenario()) == ["ya29.fake-adc-1"] * 5
    assert oauth.grants == {"adc@p.iam.gserviceaccount.com": 1}


def test_token_endpoint_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeTokenServer()
    info = server.add("gone@p.iam.gserviceaccount.com")
    server.close()  # nothing listens on that port any more
    with pytest.raises(ProxyError, match="could not get a Google Cloud access token") as err:
        asyncio.run(GcpTokenSource().token(gcp_auth(info)))
    assert err.value.status == 502
    assert "PRIVATE KEY" not in err.value.message
