"""Amazon Bedrock (Converse / ConverseStream): request mapping, URLs, SigV4 signing, responses, errors and the
eventstream translation, as pure tests (no process, no network). Kong's bedrock fixtures run in place.

`verify_sigv4` (tests/support/bedrock.py) is the server side of SigV4 as AWS runs it, recomputed with botocore
from the received request; the end-to-end fake Bedrock uses it too.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call, UpstreamRequest
from addon.providers.bedrock import BEDROCK, CREDENTIALS, BedrockStream, CredentialSource, signed_host
from addon.rules import Rule
from tests.support.bedrock import event, exception, frame, verify_sigv4
from tests.support.chunks import sse_events
from tests.support.rules import one_rule

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
KEY_ID = "AKIDFAKEBEDROCK00001"
SECRET = "fake/Secret+Key0000000000000000000000000"
KEYS = {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
USER = [{"role": "user", "content": "Hi"}]

KONG = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "kong"
needs_kong = pytest.mark.skipif(not (KONG / "ai-proxy").is_dir(), reason=f"Kong fixtures not found at {KONG}")

_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_BEARER_TOKEN_BEDROCK",
)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """No test reads the machine's AWS set-up or reaches instance metadata."""
    for var in _AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    CREDENTIALS.clear()
    yield monkeypatch
    CREDENTIALS.clear()


def make_rule(
    name: str | None = MODEL,
    route: str = CHAT,
    options: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
) -> Rule:
    opts = {"bedrock": {"aws_region": "us-east-1"}} if options is None else options
    return one_rule("bedrock", name, route, opts, host="bedrock.internal", auth=KEYS if auth is None else auth)


def make_call(rule: Rule, body: Any, headers: dict[str, str] | None = None) -> Call:
    return prepare_call(rule, {}, ClientRequest(headers or {}, {}, "application/json", json.dumps(body).encode()))


def upstream(rule: Rule, body: Any) -> UpstreamRequest:
    return build_upstream(rule, make_call(rule, body))


def up_body(body: Any, **rule_kw: Any) -> dict[str, Any]:
    up = upstream(make_rule(**rule_kw), body)
    assert up.body is not None
    return up.body


def refused(body: Any, status: int = 400, **rule_kw: Any) -> ProxyError:
    with pytest.raises(ProxyError) as e:
        upstream(make_rule(**rule_kw), body)
    assert e.value.status == status, e.value.message
    assert set(e.value.envelope()["error"]) == {"message", "type", "param", "code"}
    return e.value


def signed(rule: Rule, body: Any, headers: dict[str, str] | None = None) -> tuple[UpstreamRequest, bytes]:
    """What the glue does: build, serialise, (inject auth headers), sign."""
    call = make_call(rule, body, headers)
    up = build_upstream(rule, call)
    data = json.dumps(up.body).encode()
    BEDROCK.sign(call, up, data)
    return up, data


# ==============================================================================================================
# SigV4 as the server checks it
# ==============================================================================================================


def verify(
    up: UpstreamRequest, body: bytes, region: str = "us-east-1", keys: dict[str, str] | None = None
) -> str | None:
    parts = urlsplit(up.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {k.lower(): v for k, v in up.headers.items()}
    headers["host"] = parts.netloc  # what the glue sets (default ports omitted)
    return verify_sigv4(up.method, target, headers, body, keys or {KEY_ID: SECRET}, region)


# ==============================================================================================================
# Signing
# ==============================================================================================================


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime.datetime:
    moment = datetime.datetime(2025, 1, 2, 3, 4, 5)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    return moment


def botocore_sends(operation: str, body: dict[str, Any], **client_kw: Any) -> Any:
    """The request botocore's own bedrock-runtime client sends (captured before it leaves)."""
    client = botocore.session.get_session().create_client("bedrock-runtime", region_name="us-east-1", **client_kw)
    seen = []

    class Raw:
        def stream(self, **kw: Any) -> Any:
            return iter([b""])

    def capture(request: Any, **kw: Any) -> AWSResponse:
        seen.append(request)
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ValidationException"}, Raw())

    client.meta.events.register("before-send", capture)
    with pytest.raises(client.exceptions.ValidationException):
        getattr(client, operation)(modelId=MODEL, **body)
    return seen[0]


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
def test_signature_is_what_botocore_sends(frozen_clock: datetime.datetime, stream: bool) -> None:
    rule = make_rule()
    up, data = signed(rule, {"messages": [{"role": "system", "content": "Be terse."}, *USER], "stream": stream})
    theirs = botocore_sends(
        "converse_stream" if stream else "converse",
        {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "system": [{"text": "Be terse."}]},
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    assert theirs.body == data  # same bytes (botocore serialises the same key order)
    assert up.url == theirs.url
    assert "%3A0/converse" in up.url
    assert up.headers["authorization"] == theirs.headers["Authorization"].decode()
    assert up.headers["x-amz-date"] == theirs.headers["X-Amz-Date"].decode() == "20250102T030405Z"
    assert "SignedHeaders=content-type;host;x-amz-date," in up.headers["authorization"]
    assert "x-amz-content-sha256" not in up.headers  # botocore does not add it for bedrock
    assert verify(up, data) is None


def test_session_token_from_the_environment_is_signed(aws_env: pytest.MonkeyPatch, frozen_clock: Any) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    aws_env.setenv("AWS_SESSION_TOKEN", "FakeSessionToken//0001")
    up, data = signed(make_rule(auth={}), {"messages": USER})
    assert up.headers["x-amz-security-token"] == "FakeSessionToken//0001"
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in up.headers["authorization"]
    theirs = botocore_sends(
        "converse",
        {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token="FakeSessionToken//0001",
    )
    assert up.headers["authorization"] == theirs.headers["Authorization"].decode()
    assert verify(up, data) is None


def test_chain_is_resolved_once(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    calls = []
    real = botocore.session.Session.get_credentials

    def counting(self: Any) -> Any:
        calls.append(1)
        return real(self)

    aws_env.setattr(botocore.session.Session, "get_credentials", counting)
    rule = make_rule(auth={})
    for _ in range(3):
        up, data = signed(rule, {"messages": USER})
        assert verify(up, data) is None
    assert calls == [1]


def test_credentials_can_be_loaded_ahead_of_signing(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    rule = make_rule(auth={})
    BEDROCK.load_credentials(make_call(rule, {"messages": USER}))  # what a glue would run off the event loop
    aws_env.delenv("AWS_ACCESS_KEY_ID")  # already resolved: the environment is not read again
    up, data = signed(rule, {"messages": USER})
    assert verify(up, data) is None


def test_rule_keys_win_over_the_environment(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT1")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    aws_env.setenv("AWS_SESSION_TOKEN", "env-token")
    up, data = signed(make_rule(), {"messages": USER})
    assert f"Credential={KEY_ID}/" in up.headers["authorization"]
    assert "x-amz-security-token" not in up.headers
    assert verify(up, data) is None


def test_no_credentials_is_a_clear_500(aws_env: pytest.MonkeyPatch) -> None:
    rule = make_rule(auth={})
    call = make_call(rule, {"messages": USER})
    up = build_upstream(rule, call)
    with pytest.raises(ProxyError) as e:
        BEDROCK.sign(call, up, b"{}")
    assert (e.value.status, e.value.code) == (500, "proxy_misconfigured")
    assert "aws_access_key_id" in e.value.message and "AWS_ACCESS_KEY_ID" in e.value.message
    # The failure is remembered (no chain lookup per request) and retried after a while.
    source = CredentialSource(retry_after=0)
    with pytest.raises(ProxyError):
        source.get(None)
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    assert source.get(None).access_key == KEY_ID


def test_half_a_key_pair_is_refused() -> None:
    with pytest.raises(ProxyError) as e:
        CredentialSource().get(make_rule(auth={"aws_access_key_id": KEY_ID}).spec.auth)
    assert e.value.status == 500 and "go together" in e.value.message


def test_signature_covers_body_path_and_query() -> None:
    rule = make_rule(options={"bedrock": {"aws_region": "eu-west-3"}, "upstream_url": "http://127.0.0.1:9/x?a=1&b=2"})
    up, data = signed(rule, {"messages": USER})
    assert verify(up, data, region="eu-west-3") is None
    assert verify(up, data) is not None  # another region's scope
    assert verify(up, data.replace(b"Hi", b"Ho"), region="eu-west-3") is not None
    assert verify(up, data, region="eu-west-3", keys={KEY_ID: "other"}) is not None
    moved = UpstreamRequest(up.url.replace("/x?", "/y?"), up.body, up.headers, up.method)
    assert verify(moved, data, region="eu-west-3") is not None
    # The client's OpenAI body is not what was signed.
    assert verify(up, json.dumps({"model": MODEL, "messages": USER}).encode(), region="eu-west-3") is not None


def test_arn_model_is_double_encoded_in_the_canonical_uri(frozen_clock: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    up, data = signed(make_rule(name=arn), {"messages": USER})
    assert urlsplit(up.url).path == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
        "us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    )
    assert verify(up, data) is None
    # A signer that skips the second encoding (canonical URI == the wire path) is rejected.
    wrong = AWSRequest(method="POST", url=up.url, data=data, headers={"content-type": "application/json"})
    single = SigV4Auth(Credentials(KEY_ID, SECRET), "bedrock", "us-east-1")
    single._normalize_url_path = lambda path: path  # type: ignore[method-assign]
    single.add_auth(wrong)
    forged = {**up.headers, "authorization": wrong.headers["Authorization"]}
    assert verify(UpstreamRequest(up.url, up.body, forged), data) is not None


def test_bearer_api_key_rule_is_not_signed() -> None:
    rule = make_rule(auth={"header_name": "Authorization", "header_value": "Bearer fake-bedrock-api-key"})
    call = make_call(rule, {"messages": USER})
    up = build_upstream(rule, call)
    up.headers["authorization"] = "Bearer fake-bedrock-api-key"  # what the glue's auth injection adds
    BEDROCK.sign(call, up, json.dumps(up.body).encode())
    assert up.headers["authorization"] == "Bearer fake-bedrock-api-key"
    assert "x-amz-date" not in up.headers


def test_client_authorization_kept_by_allow_override_is_replaced_by_the_signature() -> None:
    rule = make_rule(auth={**KEYS, "allow_override": True})
    call = make_call(rule, {"messages": USER})
    up = build_upstream(rule, call)
    up.headers["Authorization"] = "Bearer sk-client"
    data = json.dumps(up.body).encode()
    BEDROCK.sign(call, up, data)
    assert [k for k in up.headers if k.lower() == "authorization"] == ["authorization"]
    assert verify(up, data) is None


# ==============================================================================================================
# URLs and region
# ==============================================================================================================


def test_default_url_and_headers() -> None:
    up = upstream(make_rule(), {"messages": USER})
    assert (
        up.url
        == "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    )
    assert up.method == "POST"
    assert up.headers["accept"] == "application/json"
    assert up.headers["content-type"] == "application/json"
    stream = upstream(make_rule(), {"messages": USER, "stream": True})
    assert stream.url.endswith("%3A0/converse-stream")
    assert stream.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "stream" not in (stream.body or {}) and "model" not in (stream.body or {})


def test_china_region_host() -> None:
    up = upstream(make_rule(options={"bedrock": {"aws_region": "cn-north-1"}}), {"messages": USER})
    assert up.url.startswith("https://bedrock-runtime.cn-north-1.amazonaws.com.cn/model/")


@pytest.mark.parametrize(
    ("upstream_url", "stream", "expected"),
    [
        ("http://127.0.0.1:9000", False, f"http://127.0.0.1:9000/model/{MODEL.replace(':', '%3A')}/converse"),
        ("http://127.0.0.1:9000/", True, f"http://127.0.0.1:9000/model/{MODEL.replace(':', '%3A')}/converse-stream"),
        ("http://h:1/model/m%3A0/converse", False, "http://h:1/model/m%3A0/converse"),
        ("http://h:1/model/m%3A0/converse", True, "http://h:1/model/m%3A0/converse-stream"),  # Kong #14680
        ("http://h:1/model/m%3A0/converse-stream", False, "http://h:1/model/m%3A0/converse"),
        ("http://h:1/model/m%3A0/converse-stream/", True, "http://h:1/model/m%3A0/converse-stream"),
        ("http://h:1/custom/endpoint?x=1", True, "http://h:1/custom/endpoint?x=1"),
    ],
)
def test_upstream_url(upstream_url: str, stream: bool, expected: str) -> None:
    rule = make_rule(options={"bedrock": {"aws_region": "us-west-2"}, "upstream_url": upstream_url})
    assert upstream(rule, {"messages": USER, "stream": stream}).url == expected


def test_upstream_path_switches_operation_too() -> None:
    rule = make_rule(options={"bedrock": {"aws_region": "us-west-2"}, "upstream_path": "/model/my-profile/converse"})
    url = upstream(rule, {"messages": USER, "stream": True}).url
    assert url == "https://bedrock-runtime.us-west-2.amazonaws.com/model/my-profile/converse-stream"


def test_pinned_url_needs_no_model() -> None:
    options = {"bedrock": {"aws_region": "us-east-1"}, "upstream_url": "http://h:1/model/my-profile/converse"}
    up = upstream(make_rule(name=None, options=options), {"messages": USER, "stream": True})
    assert up.url == "http://h:1/model/my-profile/converse-stream"
    err = refused({"messages": USER}, name=None, options={"bedrock": {"aws_region": "us-east-1"}})
    assert err.param == "model"


def test_invoke_url_is_refused() -> None:
    options = {"bedrock": {"aws_region": "us-east-1"}, "upstream_url": "http://h:1/model/m/invoke"}
    err = refused({"messages": USER}, status=500, options=options)
    assert err.code == "proxy_misconfigured" and "Converse" in err.message


def test_region_resolution(aws_env: pytest.MonkeyPatch) -> None:
    def host(options: dict[str, Any]) -> str:
        return urlsplit(upstream(make_rule(options=options), {"messages": USER}).url).netloc

    aws_env.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert host({}) == "bedrock-runtime.eu-central-1.amazonaws.com"
    aws_env.setenv("AWS_REGION", "ap-southeast-2")
    assert host({}) == "bedrock-runtime.ap-southeast-2.amazonaws.com"
    assert host({"bedrock": {"aws_region": "us-gov-west-1"}}) == "bedrock-runtime.us-gov-west-1.amazonaws.com"
    # An AWS upstream_url names its region: that is the one to sign for.
    rule = make_rule(options={"upstream_url": "https://bedrock-runtime-fips.ca-central-1.amazonaws.com"})
    up, data = signed(rule, {"messages": USER})
    assert verify(up, data, region="ca-central-1") is None


def test_missing_or_bad_region_is_a_500() -> None:
    err = refused({"messages": USER}, status=500, options={})
    assert err.code == "proxy_misconfigured" and "aws_region" in err.message
    err = refused({"messages": USER}, status=500, options={"bedrock": {"aws_region": "us-east-1.evil.example"}})
    assert "invalid AWS region" in err.message


def test_assume_role_options_are_refused_not_ignored() -> None:
    options = {"bedrock": {"aws_region": "us-east-1", "aws_assume_role_arn": "arn:aws:iam::1:role/x"}}
    assert "not supported" in refused({"messages": USER}, status=500, options=options).message


def test_model_id_stays_one_path_segment() -> None:
    assert refused({"messages": USER, "model": ".."}, name=None).param is None  # encode_url_value refuses . and ..
    up = upstream(make_rule(name=None), {"messages": USER, "model": "../admin?x=1#y"})
    assert urlsplit(up.url).path == "/model/..%2Fadmin%3Fx%3D1%23y/converse"


# ==============================================================================================================
# Requests
# ==============================================================================================================


def test_plain_chat_request() -> None:
    body = up_body(
        {
            "messages": [
                {"role": "system", "content": "One."},
                {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}, {"type": "text", "text": ""}]},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "Hello."},
                {"role": "assistant", "content": [{"type": "text", "text": "How can I help?"}]},
                {"role": "user", "content": "Add 1 and 2."},
            ]
        }
    )
    assert body == {
        "system": [{"text": "One."}, {"text": "Two."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]},
            {"role": "assistant", "content": [{"text": "Hello."}, {"text": "How can I help?"}]},
            {"role": "user", "content": [{"text": "Add 1 and 2."}]},
        ],
    }


def test_inference_config() -> None:
    body = up_body(
        {"messages": USER, "max_tokens": 100, "temperature": 1.7, "top_p": 0.5, "stop": "END", "top_k": 40, "n": 1}
    )
    assert body["inferenceConfig"] == {"maxTokens": 100, "temperature": 1.0, "topP": 0.5, "stopSequences": ["END"]}
    assert body["additionalModelRequestFields"] == {"top_k": 40}
    body = up_body({"messages": USER, "max_completion_tokens": 7, "max_tokens": 100, "stop": ["a", "b"]})
    assert body["inferenceConfig"] == {"maxTokens": 7, "stopSequences": ["a", "b"]}
    assert "inferenceConfig" not in up_body({"messages": USER, "stop": []})
    nova = up_body({"messages": USER, "top_k": 5}, name="us.amazon.nova-pro-v1:0")
    assert nova["additionalModelRequestFields"] == {"inferenceConfig": {"topK": 5}}


def test_rule_options_override_the_client() -> None:
    options = {"bedrock": {"aws_region": "us-east-1"}, "max_tokens": 64, "temperature": 0.3, "top_p": 0.9, "top_k": 3}
    body = up_body({"messages": USER, "max_tokens": 1000, "temperature": 0.9}, options=options)
    assert body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.3, "topP": 0.9}
    assert body["additionalModelRequestFields"] == {"top_k": 3}


def test_user_and_performance_config() -> None:
    options = {"bedrock": {"aws_region": "us-east-1", "performance_config_latency": "optimized"}}
    body = up_body({"messages": USER, "user": "alice@example.com"}, options=options)
    assert body["requestMetadata"] == {"user": "alice@example.com"}
    assert body["performanceConfig"] == {"latency": "optimized"}
    assert refused({"messages": USER, "user": "naïve\u2028user"}).param == "user"


def test_completions_is_one_user_message() -> None:
    body = up_body({"prompt": "Say hi", "max_tokens": 5, "echo": False}, route=COMPLETIONS)
    assert body == {
        "messages": [{"role": "user", "content": [{"text": "Say hi"}]}],
        "inferenceConfig": {"maxTokens": 5},
    }
    assert up_body({"prompt": ["Only one"]}, route=COMPLETIONS)["messages"][0]["content"] == [{"text": "Only one"}]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"seed": 1}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tool_choice": "required"}, "tool_choice"),
    ],
)
def test_unsupported_fields_are_refused(extra: dict[str, Any], param: str) -> None:
    assert refused({"messages": USER, **extra}).param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "echo": True}, "echo"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_unsupported_completions_fields_are_refused(body: dict[str, Any], param: str) -> None:
    assert refused(body, route=COMPLETIONS).param == param


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "system", "content": "only system"}], "messages"),
        ([{"role": "function", "name": "f", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}], None),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}],
            None,
        ),
        ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}, *USER], None),
    ],
)
def test_unsupported_messages_are_refused(messages: list[dict[str, Any]], param: str | None) -> None:
    err = refused({"messages": messages})
    if param:
        assert err.param == param
    assert err.message


def test_image_data_url() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
    ]
    body = up_body({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == [
        {"text": "What is it?"},
        {"image": {"format": "png", "source": {"bytes": png}}},
    ]


TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    },
}
TOOL_HISTORY = [
    {"role": "user", "content": "Add 2 and 12, and 3 and 4."},
    {
        "role": "assistant",
        "content": "Adding.",
        "tool_calls": [
            {"id": "tooluse_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 12}'}},
            {"id": "tooluse_2", "type": "function", "function": {"name": "add", "arguments": '{"a": 3, "b": 4}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "tooluse_1", "content": "14"},
    {"role": "tool", "tool_call_id": "tooluse_2", "content": [{"type": "text", "text": "7"}]},
    {"role": "user", "content": "Thanks."},
]


def test_tools_and_tool_history() -> None:
    body = up_body({"messages": TOOL_HISTORY, "tools": [TOOL], "tool_choice": "auto"})
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "add",
                    "description": "Add two numbers",
                    "inputSchema": {"json": TOOL["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Add 2 and 12, and 3 and 4."}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Adding."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "add", "input": {"a": 2, "b": 12}}},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "add", "input": {"a": 3, "b": 4}}},
            ],
        },
        {
            "role": "user",  # both tool results and the next user text: one user turn, results first
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "14"}]}},
                {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "7"}]}},
                {"text": "Thanks."},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "add"}}, {"tool": {"name": "add"}}),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    body = up_body({"messages": USER, "tools": [TOOL], **({"tool_choice": choice} if choice else {})})
    assert body["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_drops_the_tools() -> None:
    assert "toolConfig" not in up_body({"messages": USER, "tools": [TOOL], "tool_choice": "none"})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": TOOL_HISTORY}, "tools"),  # Converse needs toolConfig with tool blocks in history
        ({"messages": TOOL_HISTORY, "tools": [TOOL], "tool_choice": "none"}, "tool_choice"),
        ({"messages": USER, "tools": [TOOL], "parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"messages": USER, "tools": [{"type": "function", "function": {}}]}, "tools[0]"),
        ({"messages": USER, "tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {
                "messages": [
                    *USER,
                    {"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "add", "arguments": "{"}}]},
                ],
                "tools": [TOOL],
            },
            "messages[1].tool_calls[0]",
        ),
        ({"messages": [*USER, {"role": "tool", "content": "x"}], "tools": [TOOL]}, "messages[1].tool_call_id"),
    ],
)
def test_tool_refusals(body: dict[str, Any], param: str) -> None:
    assert refused(body).param == param


@needs_kong
def test_kong_unit_chat_request() -> None:
    """Kong's unit request with its test options (maxTokens 8192, temperature 0.8, topP 0.6). Kong also sends
    `anthropic_version`, which Converse does not take: not compared."""
    unit = KONG / "ai-proxy" / "unit"
    request = json.loads((unit / "requests" / "llm-v1-chat.json").read_text())
    expected = json.loads((unit / "expected-requests" / "bedrock" / "llm-v1-chat.json").read_text())
    options = {"bedrock": {"aws_region": "us-east-1"}, "max_tokens": 8192, "temperature": 0.8, "top_p": 0.6}
    body = up_body(request, options=options)
    assert body["system"] == expected["system"]
    assert body["messages"] == expected["messages"]
    assert body["inferenceConfig"] == expected["inferenceConfig"]
    assert set(body) == set(expected) - {"anthropic_version"}


# ==============================================================================================================
# Responses
# ==============================================================================================================


def converse(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 25, "outputTokens": 12, "totalTokens": 37, **usage},
        "metrics": {"latencyMs": 321},
    }


def respond(
    data: Any, route: str = CHAT, status: int = 200, content_type: str = "application/json"
) -> tuple[int, dict]:
    rule = make_rule(route=route)
    request = {"messages": USER} if route == CHAT else {"prompt": "Hi"}
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return translate_response(provider_for(rule), make_call(rule, request), status, raw, content_type)


def test_text_response() -> None:
    status, data = respond(converse([{"text": "Hello "}, {"text": "there."}]))
    assert status == 200
    assert data["object"] == "chat.completion" and data["model"] == MODEL
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert data["usage"] == {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}


def test_tool_use_and_reasoning_response() -> None:
    content = [
        {"reasoningContent": {"reasoningText": {"text": "Need to add.", "signature": "sig"}}},
        {"text": "Adding."},
        {"toolUse": {"toolUseId": "tooluse_A", "name": "add", "input": {"a": 2, "b": 12}}},
        {"toolUse": {"toolUseId": "tooluse_B", "name": "add", "input": {"a": 3, "b": 4}}},
    ]
    _, data = respond(converse(content, "tool_use"))
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Adding." and message["reasoning_content"] == "Need to add."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]
    ] == [
        ("tooluse_A", "add", {"a": 2, "b": 12}),
        ("tooluse_B", "add", {"a": 3, "b": 4}),
    ]
    _, data = respond(converse([content[2]], "tool_use"))
    assert data["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop: str, finish: str) -> None:
    assert respond(converse([{"text": "x"}], stop))[1]["choices"][0]["finish_reason"] == finish


def test_cache_usage() -> None:
    _, data = respond(converse([{"text": "x"}], cacheReadInputTokens=100, cacheWriteInputTokens=50))
    assert data["usage"] == {
        "prompt_tokens": 175,
        "completion_tokens": 12,
        "total_tokens": 187,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 50, "cache_write_tokens": 50},
    }


def test_completions_response() -> None:
    _, data = respond(converse([{"text": "Hi!"}], "max_tokens"), route=COMPLETIONS)
    assert data["object"] == "text_completion"
    assert data["choices"] == [{"index": 0, "text": "Hi!", "logprobs": None, "finish_reason": "length"}]
    assert data["id"].startswith("cmpl")


@pytest.mark.parametrize("raw", [b"[]", b'{"output": {}}', b'{"output": {"message": {"content": "x"}}}', b"not json"])
def test_malformed_response_is_502(raw: bytes) -> None:
    status, data = respond(raw)
    assert status == 502 and data["error"]["code"] == "bad_upstream_response"


@needs_kong
def test_kong_unit_chat_response() -> None:
    """Kong's fake carries OpenAI-named usage keys; real Converse says inputTokens/outputTokens (§5.4), so no usage
    is read from it. Kong leaves `end_turn` unmapped: OpenAI's value is `stop`."""
    unit = KONG / "ai-proxy" / "unit"
    real = json.loads((unit / "real-responses" / "bedrock" / "llm-v1-chat.json").read_text())
    expected = json.loads((unit / "expected-responses" / "bedrock" / "llm-v1-chat.json").read_text())
    status, data = respond(real)
    assert status == 200 and data["object"] == expected["object"]
    assert data["choices"][0]["message"] == expected["choices"][0]["message"]
    assert expected["choices"][0]["finish_reason"] == "end_turn" and data["choices"][0]["finish_reason"] == "stop"


# ==============================================================================================================
# Errors
# ==============================================================================================================


CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/"
HTML_503 = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
ERRORS = [
    (400, b'{"message":"Malformed input"}', {"x-amzn-ErrorType": f"ValidationException:{CORAL}"}, 400,
     "ValidationException", "Malformed"),
    (403, b'{"Message":"The request signature we calculated does not match"}', {}, 403, None, "signature"),
    (404, b'{"__type":"com.amazon.coral.service#ResourceNotFoundException","message":"Model not found"}', {}, 404,
     "ResourceNotFoundException", "not found"),
    (408, b'{"message":"Model has timed out"}', {"X-Amzn-ErrorType": "ModelTimeoutException"}, 504,
     "ModelTimeoutException", "timed out"),
    (424, b'{"message":"The model returned an error","originalStatusCode":500}',
     {"x-amzn-errortype": "ModelErrorException"}, 502, "ModelErrorException", "model returned"),
    (429, b'{"message":"Too many requests"}', {"x-amzn-ErrorType": "ThrottlingException"}, 429,
     "ThrottlingException", "Too many"),
    (500, b'{"message":"Internal"}', None, 500, None, "Internal"),
    (503, HTML_503, None, 503, None, "503 Service Unavailable"),
    (502, b"", None, 502, None, "HTTP 502"),
]  # fmt: skip
ERROR_TYPES = {400: "invalid_request_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


@pytest.mark.parametrize(("status", "raw", "headers", "out_status", "code", "fragment"), ERRORS)
def test_errors(status: int, raw: bytes, headers: Any, out_status: int, code: str | None, fragment: str) -> None:
    err = BEDROCK.parse_error(status, raw, "text/html" if raw.startswith(b"<") else "application/json", headers)
    assert err.status == out_status
    assert err.code == code
    assert fragment in err.message
    assert err.type == {
        400: "invalid_request_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(out_status, "server_error")


def test_errors_through_the_pipeline() -> None:
    status, data = respond(b'{"message":"Too many tokens"}', status=429)
    assert status == 429 and data["error"]["message"] == "Too many tokens"
    status, data = respond(b'{"message":"Model timeout"}', status=408)
    assert status == 504 and data["error"]["type"] == "server_error"


# ==============================================================================================================
# Streams
# ==============================================================================================================


PIECES = ["Héllo ", "wörld 👋🏽", "!"]


def text_stream(pieces: list[str] = PIECES, stop: str = "end_turn", metadata: bool = True) -> bytes:
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
    frames += [event("contentBlockStop", {"contentBlockIndex": 0}), event("messageStop", {"stopReason": stop})]
    if metadata:
        usage = {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13, "cacheReadInputTokens": 2}
        frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 100}}))
    return b"".join(frames)


def tool_start(index: int, tool_id: str) -> bytes:
    return event(
        "contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_id, "name": "add"}}}
    )


def tool_stream() -> bytes:
    return b"".join(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Adding."}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            tool_start(1, "tu_A"),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a": 1,'}}}),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ' "b": 2}'}}}),
            event("contentBlockStop", {"contentBlockIndex": 1}),
            tool_start(2, "tu_B"),
            event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"a": 3}'}}}),
            event("contentBlockStop", {"contentBlockIndex": 2}),
            event("messageStop", {"stopReason": "tool_use"}),
            event("metadata", {"usage": {"inputTokens": 30, "outputTokens": 20, "totalTokens": 50}}),
        ]
    )  # fmt: skip


_STREAM_CALLS: dict[str, Call] = {}


def translator(route: str = CHAT, include_usage: bool = False, keep_payload: bool = True) -> BedrockStream:
    call = _STREAM_CALLS.get(route)
    if call is None:
        body = {"messages": USER, "stream": True} if route == CHAT else {"prompt": "Hi", "stream": True}
        call = _STREAM_CALLS[route] = make_call(make_rule(route=route), body)
    t = BEDROCK.stream_translator(call, include_usage, keep_payload)
    assert isinstance(t, BedrockStream)
    return t


def run(pieces: list[bytes], **kw: Any) -> tuple[list[Any], BedrockStream]:
    t = translator(**kw)
    out = b"".join(t.feed(p) for p in pieces) + t.finish()
    return events_of(out), t


def events_of(out: bytes) -> list[Any]:
    """The SSE events, parsed, without the per-response id and timestamp."""
    return sse_events(out, allow_empty=True)


def splits(data: bytes) -> list[list[bytes]]:
    """The body whole, cut at every offset, and in 1-byte pieces."""
    cuts = [[data[:i], data[i:]] for i in range(1, len(data))]
    return [[data], *cuts, [data[i : i + 1] for i in range(len(data))]]


_VOLATILE = re.compile(rb'"id": ?"c(?:hatcmpl|mpl)-[0-9a-f]+", ?"object"|"created": ?\d+')


def raw_run(pieces: list[bytes], **kw: Any) -> bytes:
    t = translator(**kw)
    return _VOLATILE.sub(b"", b"".join([*(t.feed(p) for p in pieces), t.finish()]))


def assert_split_invariant(data: bytes, **kw: Any) -> list[Any]:
    """Every way of cutting the body gives the same output (ids and timestamps aside); returns it parsed."""
    reference = raw_run([data], **kw)
    for pieces in splits(data):
        assert raw_run(pieces, **kw) == reference
    return run([data], **kw)[0]


def text_of_events(events: list[Any]) -> str:
    return "".join(
        (e["choices"][0]["delta"].get("content") or "") for e in events if isinstance(e, dict) and e.get("choices")
    )


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_text_stream(include_usage: bool) -> None:
    events = assert_split_invariant(text_stream(), include_usage=include_usage)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of_events(events) == "".join(PIECES)
    assert events[-1] == "[DONE]"
    finish = events[-3] if include_usage else events[-2]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["choices"][0]["delta"] == {}
    assert all(e["model"] == MODEL for e in events if isinstance(e, dict))
    if include_usage:
        assert events[-2]["choices"] == []
        assert events[-2]["usage"] == {
            "prompt_tokens": 11,
            "completion_tokens": 4,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 2},
        }
        assert all("usage" in e and e["usage"] is None for e in events[:-2] if isinstance(e, dict))
    else:
        assert not any("usage" in e for e in events if isinstance(e, dict))
    _, t = run([text_stream()], include_usage=include_usage)
    assert t.result.completed and t.result.finish_reason == "stop" and t.result.usage["prompt_tokens"] == 11
    assert t.result.text == PIECES and t.result.first_token_at is not None


def test_finish_is_held_until_metadata() -> None:
    t = translator(include_usage=True)
    frames = [event("messageStart", {"role": "assistant"}), event("messageStop", {"stopReason": "max_tokens"})]
    before = t.feed(b"".join(frames))
    assert b'finish_reason": "length' not in before and b"[DONE]" not in before
    after = events_of(t.feed(event("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})))
    assert after[0]["choices"][0]["finish_reason"] == "length"
    assert after[1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert after[2] == "[DONE]"
    assert t.feed(event("metadata", {})) == b"" and t.finish() == b""


def test_stream_ending_without_metadata_still_finishes() -> None:
    events, t = run([text_stream(metadata=False)], include_usage=True)
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2] == {"object": "chat.completion.chunk", "model": MODEL, "choices": [], "usage": None}
    assert t.result.completed and t.result.error is None


def test_stream_cut_before_message_stop_is_an_error_event() -> None:
    data = text_stream()
    cut = data.index(event("messageStop", {"stopReason": "end_turn"}))
    events, t = run([data[:cut]])
    assert events[-1]["error"]["code"] == "stream_error" and "before messageStop" in events[-1]["error"]["message"]
    assert text_of_events(events) == "".join(PIECES)
    assert not t.result.completed and t.result.error is not None
    events, _ = run([data[: cut + 5]])  # inside a frame
    assert "incomplete frame" in events[-1]["error"]["message"]


def test_exception_frame_mid_stream() -> None:
    data = text_stream(metadata=False)
    cut = data.index(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": PIECES[1]}}))
    stream = data[:cut] + exception("throttlingException", "Too many requests, please wait.") + data[cut:]
    events = assert_split_invariant(stream)
    assert text_of_events(events) == PIECES[0]
    assert events[-1] == {
        "error": {
            "message": "Too many requests, please wait.",
            "type": "rate_limit_error",
            "param": None,
            "code": "throttlingException",
        }
    }
    _, t = run([stream])
    assert t.result.error is not None and t.result.error.status == 429 and not t.result.completed


@pytest.mark.parametrize(
    ("kind", "status", "etype"),
    [
        ("modelStreamErrorException", 502, "server_error"),
        ("validationException", 400, "invalid_request_error"),
        ("serviceUnavailableException", 503, "server_error"),
        ("internalServerException", 500, "server_error"),
        ("somethingNewException", 502, "server_error"),
    ],
)
def test_exception_types(kind: str, status: int, etype: str) -> None:
    events, t = run([event("messageStart", {"role": "assistant"}), exception(kind, "boom")])
    assert events[-1]["error"]["type"] == etype and events[-1]["error"]["code"] == kind
    assert t.result.error is not None and t.result.error.status == status


def test_error_message_type_frame() -> None:
    error = frame({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "It broke"}, b"")
    events, _ = run([event("messageStart", {"role": "assistant"}), error, text_stream()])
    assert events[-1]["error"]["message"] == "It broke" and events[-1]["error"]["code"] == "InternalFailure"
    assert len(events) == 2  # nothing after the error


def test_corrupt_frame_is_an_error_event() -> None:
    data = bytearray(text_stream())
    data[40] ^= 0xFF  # inside the first frame's headers: message CRC mismatch
    events, t = run([bytes(data)])
    assert len(events) == 1 and "malformed" in events[0]["error"]["message"]
    assert t.result.error is not None


def test_non_json_payload_is_an_error_event() -> None:
    bad = frame({":message-type": "event", ":event-type": "contentBlockDelta"}, b"{not json")
    events, _ = run([event("messageStart", {"role": "assistant"}), bad])
    assert "not JSON" in events[-1]["error"]["message"]


def test_tool_calls_are_renumbered() -> None:
    events = assert_split_invariant(tool_stream())
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if not isinstance(e, dict) or not e.get("choices"):
            continue
        for d in e["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(d["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = d.get("id") or call["id"]
            call["name"] = d.get("function", {}).get("name") or call["name"]
            call["arguments"] += d.get("function", {}).get("arguments") or ""
    assert calls == {
        0: {"id": "tu_A", "name": "add", "arguments": '{"a": 1, "b": 2}'},
        1: {"id": "tu_B", "name": "add", "arguments": '{"a": 3}'},
    }
    assert text_of_events(events) == "Adding."
    assert [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e["choices"]][
        -1
    ] == "tool_calls"
    _, t = run([tool_stream()])
    assert t.result.tool_calls == [
        {"id": "tu_A", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
        {"id": "tu_B", "type": "function", "function": {"name": "add", "arguments": '{"a": 3}'}},
    ]


def test_reasoning_and_unknown_events() -> None:
    data = b"".join(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hmm."}}}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}),
            event("somethingNew", {"x": 1}),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Yes."}}),
            event("messageStop", {"stopReason": "end_turn"}),
            event("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
        ]
    )
    events = assert_split_invariant(data)
    deltas = [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e["choices"]]
    assert {"reasoning_content": "Hmm."} in deltas and text_of_events(events) == "Yes."


def test_completions_stream() -> None:
    events = assert_split_invariant(text_stream(stop="max_tokens"), route=COMPLETIONS, include_usage=True)
    assert all(e["object"] == "text_completion" for e in events if isinstance(e, dict))
    assert "".join(e["choices"][0]["text"] for e in events if isinstance(e, dict) and e["choices"]) == "".join(PIECES)
    assert events[-3]["choices"][0]["finish_reason"] == "length" and events[-2]["usage"]["completion_tokens"] == 4


@needs_kong
def test_kong_bedrock_tool_stream() -> None:
    """Kong's recorded ConverseStream (3 reads of base64 frames): a tool call add(a=2, b=12). Kong keeps only the
    last tool call; we keep every one (this stream has one)."""
    reads = [base64.b64decode((KONG / f"ai-proxy/bedrock/chunks/chunk-{i}.txt").read_text()) for i in (1, 2, 3)]
    for i, raw in enumerate(reads, 1):
        assert raw == (KONG / f"extracted-from-spec/bedrock/chunk-{i}.eventstream.bin").read_bytes()
    data = b"".join(reads)
    events = assert_split_invariant(data, include_usage=True)
    assert run(reads, include_usage=True)[0] == events
    starts = [
        d
        for e in events
        if isinstance(e, dict) and e["choices"]
        for d in e["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert starts[0] == {
        "index": 0,
        "id": "tooluse_UxbKWVKgTqe8cKjPPzopiQ",
        "type": "function",
        "function": {"name": "add", "arguments": ""},
    }
    assert json.loads("".join(d["function"]["arguments"] for d in starts)) == {"a": 2, "b": 12}
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-2]["usage"] == {"prompt_tokens": 478, "completion_tokens": 44, "total_tokens": 522}


@needs_kong
def test_kong_aws_streaming_chunk_format() -> None:
    """Kong's unit eventstream body; its expected-output.json lists the decoded frames (headers and body)."""
    folder = KONG / "ai-proxy/unit/streaming-chunk-formats/aws"
    data = (folder / "input.bin").read_bytes()
    frames = [json.loads(item["data"]) for item in json.loads((folder / "expected-output.json").read_text())]
    events = assert_split_invariant(data, include_usage=True)
    texts = [
        json.loads(f["body"])["delta"]["text"] for f in frames if f["headers"][":event-type"] == "contentBlockDelta"
    ]
    assert text_of_events(events) == "".join(texts) and len(texts) == 2
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["usage"] == {"prompt_tokens": 9, "completion_tokens": 97, "total_tokens": 106}


def test_stream_memory_is_flat() -> None:
    """A long stream in small pieces: the translator keeps no history when payloads are not recorded."""
    t = translator(keep_payload=False)
    t.feed(event("messageStart", {"role": "assistant"}))
    one = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 50}})
    for _ in range(2000):
        assert t.feed(one[:7]) == b""
        assert b"x" * 50 in t.feed(one[7:])
    assert t.result.text is None and len(t._decoder._buf) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
        "https://Bedrock-Runtime.US-EAST-1.amazonaws.com:443/x",
        "http://127.0.0.1:8080/model/m%3A0/converse?x=1",
        "http://127.0.0.1:80/",
        "http://[::1]:9000/model/x",
        "http://[::1]/model/x",
        "https://host:8443?q=1",
    ],
)
def test_signed_host_is_botocores(url: str) -> None:
    assert signed_host(url) == botocore.auth._host_from_url(url)


def test_signing_key_cache_follows_day_region_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The derived key is cached per secret, day, region: a new day or another secret still verifies."""
    for day, region, secret in [(1, "us-east-1", SECRET), (2, "us-east-1", SECRET), (2, "eu-west-1", SECRET),
                                (2, "eu-west-1", "another/secret")]:  # fmt: skip
        moment = datetime.datetime(2025, 3, day, 23, 59, 59)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda moment=moment: moment)
        rule = make_rule(
            options={"bedrock": {"aws_region": region}},
            auth={"aws_access_key_id": KEY_ID, "aws_secret_access_key": secret},
        )
        up, data = signed(rule, {"messages": USER})
        assert up.headers["x-amz-date"] == f"202503{day:02d}T235959Z"
        assert verify(up, data, region=region, keys={KEY_ID: secret}) is None


def test_error_name_comes_from_the_x_amzn_errortype_header_through_the_pipeline():
    """The glue hands the upstream's response headers to parse_error: the AWS error name becomes the code."""
    rule = make_rule()
    call = make_call(rule, {"messages": [{"role": "user", "content": "hi"}]})
    call.response_headers = {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/x/"}
    status, body = translate_response(
        provider_for(rule), call, 429, b'{"message": "Too many requests"}', "application/json"
    )
    assert status == 429
    assert body["error"]["code"] == "ThrottlingException"
    assert body["error"]["message"] == "Too many requests"
