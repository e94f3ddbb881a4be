"""End to end: a real mitmdump with the addon, fake OpenAI/Azure/Anthropic servers, the openai SDK as client.

Every provider is exercised for chat and completions, through HTTPS_PROXY (trusting the mitmproxy CA of a
temporary confdir) and through reverse mode; each test checks what the client got and exactly what the fake
upstream received.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.e2e_env import (
    ANTHROPIC_KEY,
    AZURE_KEY,
    CLIENT_CREDENTIAL_HEADERS,
    CLIENT_KEY,
    MESSAGES,
    OPENAI_KEY,
    SECRETS,
    Env,
)
from tests.support.fakes import ANSWER, Reply, anthropic_message

pytestmark = pytest.mark.e2e


def assert_no_client_credentials(headers: dict[str, str], allowed: str) -> None:
    for name in CLIENT_CREDENTIAL_HEADERS:
        if name != allowed:
            assert name not in headers, f"upstream received client credential header {name}"
    assert CLIENT_KEY not in json.dumps(headers)


def client_for(e: Env, provider: str, via: str) -> openai.OpenAI:
    host = {"openai": "api.openai.com", "azure": "azure.internal", "anthropic": "anthropic.internal"}[provider]
    if via == "proxy":
        return e.via_proxy(host)
    return e.via_reverse({"openai": "reverse:https://api.openai.com"}.get(provider, f"reverse:http://{host}"))


VIAS = ["proxy", "reverse"]


# ---- chat -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_openai_chat(e: Env, via: str) -> None:
    client = client_for(e, "openai", via)
    out = client.chat.completions.create(model="gpt-fake-1", messages=MESSAGES, temperature=0.3)
    assert out.choices[0].message.content == ANSWER
    assert out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (25, 12, 37)
    seen = e.openai.last()
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["host"] == f"127.0.0.1:{e.openai.port}"
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert_no_client_credentials(seen.headers, "authorization")
    assert seen.json == {"model": "gpt-fake-1", "messages": MESSAGES, "temperature": 0.3, "stream": False}
    assert not e.azure.requests and not e.anthropic.requests


@pytest.mark.parametrize("via", VIAS)
def test_azure_chat(e: Env, via: str) -> None:
    client = client_for(e, "azure", via)
    out = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=50)
    assert out.choices[0].message.content == ANSWER
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.total_tokens == 37
    seen = e.azure.last()
    assert seen.path == "/openai/deployments/dep-e2e/chat/completions"
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == AZURE_KEY
    assert_no_client_credentials(seen.headers, "api-key")
    assert seen.json == {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 50, "stream": False}


@pytest.mark.parametrize("via", VIAS)
def test_anthropic_chat(e: Env, via: str) -> None:
    e.anthropic.queue(Reply(json=anthropic_message(stop_reason="max_tokens", cache_read_input_tokens=5)))
    client = client_for(e, "anthropic", via)
    out = client.chat.completions.create(
        model="claude-fake-1",
        messages=[*MESSAGES, {"role": "assistant", "content": "Let me think."}, {"role": "user", "content": "Go on"}],
        temperature=1.5,
        stop=["END"],
    )
    assert out.choices[0].message.content == ANSWER
    assert out.choices[0].finish_reason == "length"
    # cache reads are part of the prompt
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (30, 12, 42)
    assert out.model == "claude-fake-1"
    seen = e.anthropic.last()
    assert seen.path == "/v1/messages"
    assert seen.headers["host"] == f"127.0.0.1:{e.anthropic.port}"
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert_no_client_credentials(seen.headers, "x-api-key")
    assert seen.json == {
        "model": "claude-fake-1",
        "system": "You are a mathematician.",
        "messages": [
            {"role": "user", "content": "What is 1 + 1?"},
            {"role": "assistant", "content": "Let me think."},
            {"role": "user", "content": "Go on"},
        ],
        "max_tokens": 256,
        "temperature": 1.0,  # OpenAI's 0-2 range clamped to Anthropic's 0-1
        "stop_sequences": ["END"],
        "stream": False,
    }


# ---- completions ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIAS)
def test_openai_completions(e: Env, via: str) -> None:
    client = client_for(e, "openai", via)
    out = client.completions.create(model="gpt-fake-instruct", prompt="What are you?", max_tokens=500)
    assert out.choices[0].text == ANSWER
    assert out.choices[0].finish_reason == "length"
    assert out.usage.total_tokens == 20
    seen = e.openai.last()
    assert seen.path == "/v1/completions"
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    # the rule's max_tokens overrides the client's
    assert seen.json == {"model": "gpt-fake-instruct", "prompt": "What are you?", "max_tokens": 64, "stream": False}


@pytest.mark.parametrize("via", VIAS)
def test_azure_completions(e: Env, via: str) -> None:
    client = client_for(e, "azure", via)
    out = client.completions.create(model="gpt-35-instruct", prompt="What are you?")
    assert out.choices[0].text == ANSWER
    seen = e.azure.last()
    assert seen.path == "/openai/deployments/dep-instruct/completions"
    assert seen.query == {"api-version": "2024-10-21"}  # the default when the rule sets none
    assert seen.headers["api-key"] == AZURE_KEY
    assert seen.json == {"model": "gpt-35-instruct", "prompt": "What are you?", "stream": False}


@pytest.mark.parametrize("via", VIAS)
def test_anthropic_completions_use_messages_api(e: Env, via: str) -> None:
    client = client_for(e, "anthropic", via)
    out = client.completions.create(model="claude-fake-1", prompt="What are you?", max_tokens=30)
    assert out.object == "text_completion"
    assert out.choices[0].text == ANSWER
    assert out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (25, 12)
    seen = e.anthropic.last()
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert seen.json == {
        "model": "claude-fake-1",
        "messages": [{"role": "user", "content": "What are you?"}],
        "max_tokens": 30,
        "stream": False,
    }


def test_anthropic_legacy_complete_when_path_asks(e: Env) -> None:
    client = e.via_proxy("anthropic-legacy.internal")
    out = client.completions.create(model="claude-2.1", prompt="What are you?")
    assert out.choices[0].text == ANSWER
    assert out.choices[0].finish_reason == "length"
    seen = e.anthropic.last()
    assert seen.path == "/v1/complete"
    assert seen.json["prompt"] == "\n\nHuman: What are you?\n\nAssistant:"
    assert seen.json["max_tokens_to_sample"] > 0


def test_plain_http_virtual_host(e: Env) -> None:
    """An app using a plain-HTTP virtual host through HTTP_PROXY (no CA needed)."""
    out = e.via_proxy("anthropic.internal", scheme="http").chat.completions.create(
        model="claude-fake-1", messages=MESSAGES
    )
    assert out.choices[0].message.content == ANSWER
    assert e.anthropic.last().path == "/v1/messages"


# ---- audit ----------------------------------------------------------------------------------------------------


def test_audit_record(e: Env) -> None:
    marker = f"audit-{uuid.uuid4().hex}"
    client = e.via_proxy("anthropic.internal")
    client.chat.completions.create(model="claude-fake-1", messages=[{"role": "user", "content": marker}])
    record = e.proxy.record_with(marker)
    meta, usage, payload = record["meta"], record["usage"], record["payload"]
    assert meta["rule"] == "anthropic-chat"
    assert meta["provider_name"] == "anthropic"
    assert meta["request_model"] == "claude-fake-1"
    assert meta["response_model"] == "claude-fake-1"
    assert meta["status"] == 200
    assert meta["llm_latency"] >= 0
    assert meta["client_url"] == "https://anthropic.internal/v1/chat/completions"
    assert meta["upstream_url"] == f"{e.anthropic.url}/v1/messages"
    assert usage["prompt_tokens"] == 25 and usage["completion_tokens"] == 12 and usage["total_tokens"] == 37
    assert usage["cost"] == pytest.approx((25 * 3.0 + 12 * 15.0) / 1_000_000)
    assert payload["client_request"]["messages"][0]["content"] == marker
    assert payload["upstream_request"]["messages"][0]["content"] == marker
    assert payload["upstream_response"]["type"] == "message"
    assert payload["client_response"]["object"] == "chat.completion"


# ---- errors ---------------------------------------------------------------------------------------------------


def _raw(e: Env, host: str, body: bytes | str, content_type: str = "application/json") -> httpx.Response:
    with httpx.Client(proxy=f"http://127.0.0.1:{e.proxy.port('regular')}", trust_env=False) as client:
        return client.post(
            f"http://{host}/v1/chat/completions",
            content=body,
            headers={"content-type": content_type, "authorization": f"Bearer {CLIENT_KEY}"},
        )


LOCAL_ERRORS = [
    ("bad-json", "anthropic.internal", b"{not json", "application/json", 400, "invalid_json"),
    ("wrong-content-type", "anthropic.internal", b"messages=hi", "application/x-www-form-urlencoded", 400, None),
    ("not-chat", "anthropic.internal", json.dumps({"segassem": MESSAGES}), "application/json", 400, None),
    ("no-messages", "anthropic.internal", json.dumps({"messages": []}), "application/json", 400, None),
    (
        "other-model",
        "anthropic.internal",
        json.dumps({"model": "gpt-4", "messages": MESSAGES}),
        "application/json",
        400,
        "model_not_allowed",
    ),
    ("no-model", "selfhosted.internal", json.dumps({"messages": MESSAGES}), "application/json", 400, None),
    (
        "too-large",
        "selfhosted.internal",
        json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 4096}]}),
        "application/json",
        413,
        "request_too_large",
    ),
    (
        "stream-denied",
        "nostream.internal",
        json.dumps({"model": "m", "messages": MESSAGES, "stream": True}),
        "application/json",
        400,
        "streaming_denied",
    ),
]


@pytest.mark.parametrize(
    ("case", "host", "body", "ctype", "status", "code"), LOCAL_ERRORS, ids=[c[0] for c in LOCAL_ERRORS]
)
def test_local_errors_answer_envelope_and_send_nothing(
    e: Env, case: str, host: str, body: bytes | str, ctype: str, status: int, code: str | None
) -> None:
    response = _raw(e, host, body, ctype)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code:
        assert error["code"] == code
    assert not any(fake.requests for fake in e.fakes), "a local error must send nothing upstream"


def test_local_error_raises_sdk_exception(e: Env) -> None:
    client = e.via_proxy("anthropic.internal")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert "claude-fake-1" in info.value.message
    assert not e.anthropic.requests


UPSTREAM_ERRORS = [
    # (name, reply, expected status, SDK exception, message fragment)
    (
        "anthropic-401",
        Reply(
            status=401, json={"type": "error", "error": {"type": "authentication_error", "message": "Invalid API Key"}}
        ),
        401,
        openai.AuthenticationError,
        "Invalid API Key",
    ),
    (
        "anthropic-429",
        Reply(
            status=429,
            json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            headers={"retry-after": "7"},
        ),
        429,
        openai.RateLimitError,
        "slow down",
    ),
    (
        "anthropic-529",
        Reply(status=529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        503,
        openai.InternalServerError,
        "Overloaded",
    ),
    (
        "html-500",
        Reply(
            status=500,
            body=b"<html><body><h1>Fake Internal Server Error</h1></body></html>",
            headers={"content-type": "text/html"},
        ),
        500,
        openai.InternalServerError,
        "Fake Internal Server Error",
    ),
    ("empty-502", Reply(status=502, body=b""), 502, openai.InternalServerError, "empty body"),
    (
        "untranslatable-200",
        Reply(json={"nothing_object": {"not_interesting": "bad string"}}),
        502,
        openai.InternalServerError,
        "could not be translated",
    ),
]


@pytest.mark.parametrize(
    ("case", "reply", "status", "exc", "fragment"), UPSTREAM_ERRORS, ids=[c[0] for c in UPSTREAM_ERRORS]
)
def test_upstream_errors_in_envelope(
    e: Env, case: str, reply: Reply, status: int, exc: type[Exception], fragment: str
) -> None:
    e.anthropic.queue(reply)
    client = e.via_proxy("anthropic.internal")
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="claude-fake-1", messages=MESSAGES)
    error = info.value
    assert error.status_code == status
    body = error.response.json()
    assert fragment in body["error"]["message"]
    assert error.response.headers["content-type"] == "application/json"
    if case == "anthropic-429":
        assert error.response.headers["retry-after"] == "7"
    assert len(e.anthropic.requests) == 1


def test_no_secret_in_logs_or_records(e: Env) -> None:
    client = e.via_proxy("api.openai.com")
    client.chat.completions.create(model="gpt-fake-1", messages=MESSAGES)
    e.via_proxy("anthropic.internal").chat.completions.create(model="claude-fake-1", messages=MESSAGES)
    e.via_proxy("azure.internal").chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert e.anthropic.last().headers["x-api-key"] == ANTHROPIC_KEY  # the key did travel upstream
    e.proxy.wait_records(3)
    log = e.proxy.log()
    assert "anthropic.internal" in log  # the dump is really there (flow_detail=3)
    recordings = "".join(p.read_text() for p in Path(e.proxy.recordings).glob("*.jsonl"))
    assert recordings
    for secret in SECRETS:
        assert secret not in log, f"{secret} leaked into the mitmdump log"
        assert secret not in recordings, f"{secret} leaked into an audit record"
