"""addon/native.py: native client formats (llm_format) passed through, with usage decoded on the side.

Pure tests: the upstream request built from a client's native request (URL, credentials, SigV4), the usage of
every format's whole responses, and every format's stream recorder fed the raw bytes cut at every offset and in
1-byte pieces (the bytes must come out unchanged and the record must be the same). The builders and checks are in
tests/support/native.py; each provider's own cases are in tests/providers/<name>/test_native_<name>.py.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from addon import native
from addon.errors import ProxyError
from addon.providers import REGISTRY
from addon.rules import RulesError, load_rules_text
from addon.spec import AuthSpec
from tests.support.native import build, kong, record, req

KEY_ID = "AKIDNATIVEUNITFAKE01"
SECRET = "native/unit+secret/000000000000000000001"
REGION = "eu-west-1"


# ==============================================================================================================
# Rules
# ==============================================================================================================


@pytest.mark.parametrize("fmt", ["anthropic", "gemini", "bedrock", "cohere", "huggingface"])
def test_rules_accept_each_native_format_with_its_provider(fmt: str) -> None:
    text = f"""
rules:
  - name: r
    match: {{host: x.internal}}
    llm_format: {fmt}
    model: {{provider: {fmt}, options: {{bedrock: {{aws_region: us-east-1}}}}}}
"""
    (rule,) = load_rules_text(text, {})
    assert rule.spec.llm_format == fmt


def test_rules_refuse_a_format_that_does_not_fit_the_provider() -> None:
    text = """
rules:
  - name: r
    match: {host: x.internal}
    llm_format: cohere
    model: {provider: anthropic}
"""
    # Cohere's format is no client format (only Cohere's own, passed through): it does not fit Anthropic.
    with pytest.raises(RulesError, match="llm_format 'cohere' does not fit provider 'anthropic'"):
        load_rules_text(text, {})


# ==============================================================================================================
# Requests
# ==============================================================================================================


def test_stream_flag_of_each_format() -> None:
    assert build("anthropic", req(body={"stream": True})).stream
    assert not build("anthropic", req(body={"stream": False})).stream
    opts = {"bedrock": {"aws_region": REGION}}
    auth = AuthSpec(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    assert build("bedrock", req("/model/m/converse-stream"), auth=auth, **opts).stream
    assert build("bedrock", req("/model/m/invoke-with-response-stream"), auth=auth, **opts).stream
    assert not build("bedrock", req("/model/m/converse"), auth=auth, **opts).stream
    assert build("gemini", req("/v1beta/models/g:streamGenerateContent")).stream
    assert not build("gemini", req("/v1beta/models/g:generateContent")).stream
    assert build("cohere", req("/v2/chat", {"stream": True})).stream
    assert build("huggingface", req("/generate_stream", {"inputs": "x"})).stream
    assert build("huggingface", req("/v1/chat/completions", {"stream": True})).stream


def test_upstream_url_host_replaces_the_providers_and_its_path_pins_the_path() -> None:
    up = build("anthropic", req("/v1/messages"), upstream_url="http://127.0.0.1:9000")
    assert up.url == "http://127.0.0.1:9000/v1/messages"
    up = build("anthropic", req("/v1/messages", query=[("beta", "true")]), upstream_url="http://h:1/x/y?z=1")
    assert urlsplit(up.url).path == "/x/y"
    assert parse_qsl(urlsplit(up.url).query) == [("beta", "true"), ("z", "1")]
    up = build("cohere", req("/v2/chat"), upstream_path="/custom/chat")
    assert up.url == "https://api.cohere.com/custom/chat"


def test_default_hosts() -> None:
    assert build("cohere", req("/v2/chat")).url == "https://api.cohere.com/v2/chat"
    assert build("huggingface", req("/v1/chat/completions")).url.startswith("https://router.huggingface.co/")
    assert build("gemini", req("/v1beta/models/g:generateContent")).url.startswith(
        "https://generativelanguage.googleapis.com/v1beta/"
    )
    vertex = build(
        "gemini",
        req("/v1/projects/p/locations/europe-west4/publishers/google/models/g:generateContent"),
        gemini={"project_id": "p", "location_id": "europe-west4"},
    )
    assert vertex.url.startswith("https://europe-west4-aiplatform.googleapis.com/v1/projects/p/")
    assert vertex.model == "g"
    bedrock = build(
        "bedrock",
        req("/model/m/converse"),
        auth=AuthSpec(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET),
        bedrock={"aws_region": "cn-north-1"},
    )
    assert bedrock.url == "https://bedrock-runtime.cn-north-1.amazonaws.com.cn/model/m/converse"


def test_allow_override_keeps_the_clients_key() -> None:
    auth = AuthSpec(header_name="x-api-key", header_value="sk-rule", allow_override=True)
    up = build("anthropic", req(headers={"x-api-key": "sk-client"}), auth=auth)
    assert up.headers["x-api-key"] == "sk-client"
    up = build("anthropic", req(), auth=auth)
    assert up.headers["x-api-key"] == "sk-rule"


def test_body_key_injection() -> None:
    auth = AuthSpec(param_name="api_key", param_value="rule-key", param_location="body")
    up = build("cohere", req("/v2/chat", {"model": "c"}), auth=auth)
    assert json.loads(up.body) == {"model": "c", "api_key": "rule-key"}
    with pytest.raises(ProxyError) as info:
        build("cohere", req("/v2/chat", b"not json"), auth=auth)
    assert info.value.status == 400


def test_model_pinned_by_the_rule() -> None:
    up = build("anthropic", req(body={"model": "claude-a"}), model="claude-a")
    assert up.model == "claude-a"
    up = build("huggingface", req("/generate", {"inputs": "x"}), model="tgi-model")
    assert up.model == "tgi-model"  # the request names none: the rule's
    with pytest.raises(ProxyError) as info:
        build("anthropic", req(body={"model": "claude-b"}), model="claude-a")
    assert info.value.status == 400 and info.value.param == "model"
    with pytest.raises(ProxyError):
        build("gemini", req("/v1beta/models/other:generateContent"), model="gemini-a")


def test_body_size_limit() -> None:
    with pytest.raises(ProxyError) as info:
        build("anthropic", req(body=b"x" * 1001))
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        ("anthropic", lambda b, h: b["type"] == "error" and b["error"]["type"] == "invalid_request_error"),
        ("gemini", lambda b, h: b["error"]["status"] == "INVALID_ARGUMENT" and b["error"]["code"] == 400),
        ("bedrock", lambda b, h: b["message"] and h["x-amzn-errortype"] == "ValidationException"),
        ("cohere", lambda b, h: b["message"] == "no"),
        ("huggingface", lambda b, h: b["error"] == "no"),
    ],
)
def test_error_bodies_in_each_providers_shape(fmt: str, check: Any) -> None:
    body, headers = native.adapter(REGISTRY[fmt]).error_body(ProxyError(400, "no"))
    assert check(json.loads(body), headers)


# ==============================================================================================================
# Whole responses
# ==============================================================================================================


def test_kong_responses_usage() -> None:
    def real(rel: str) -> Any:
        return json.loads(kong(f"ai-proxy/unit/real-responses/{rel}").read_bytes())

    anth = record("anthropic", real("anthropic/llm-v1-chat.json"))
    assert anth["usage"]["prompt_tokens"] == 0 and anth["model"] == "claude-2.1"
    gem = record("gemini", real("gemini/llm-v1-chat.json"))
    assert (gem["usage"]["prompt_tokens"], gem["usage"]["completion_tokens"]) == (14, 128)
    coh = record("cohere", real("cohere/llm-v1-chat.json"))
    assert (coh["usage"]["prompt_tokens"], coh["usage"]["completion_tokens"]) == (102, 258)
    # Kong's bedrock "real response" carries OpenAI-shaped usage, which Converse never sends: no usage read.
    assert record("bedrock", real("bedrock/llm-v1-chat.json"))["usage"] is None
    hf = record("huggingface", json.loads(kong("ai-proxy/huggingface/llm-v1-chat/responses/good.json").read_bytes()))
    assert hf["usage"] == {"prompt_tokens": 26, "completion_tokens": 40, "total_tokens": 66}
    assert hf["model"] == "mistralai/Mistral-7B-Instruct-v0.2"


def test_error_responses_are_recorded_with_the_providers_message() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    out, message = native.response_record(native.adapter_for("anthropic"), 529, json.dumps(body).encode(), {})
    assert message == "busy" and out["error"]["message"] == "busy"
    out, message = native.response_record(native.adapter_for("bedrock"), 400, b'{"message":"bad"}', {})
    assert message == "bad"


def test_unparseable_2xx_body_has_no_usage() -> None:
    assert record("anthropic", b"<html>") == {"model": None, "usage": None}


# ==============================================================================================================
# Streams
# ==============================================================================================================


def test_stream_content_types() -> None:
    assert native.is_stream_response("text/event-stream; charset=utf-8")
    assert native.is_stream_response("application/vnd.amazon.eventstream")
    assert native.is_stream_response("application/stream+json")
    assert not native.is_stream_response("application/json")
