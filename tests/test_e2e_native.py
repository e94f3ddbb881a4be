"""End to end: provider SDKs speaking their own format (llm_format) -> a real mitmdump with the addon -> fakes.

The request and the response pass through unchanged (streamed and not); the proxy swaps the client's key for
the rule's (re-signing SigV4 for Bedrock, which the fake Bedrock verifies with the rule's credentials) and
records usage and cost by decoding the native format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import botocore.session
import httpx
import pytest
from botocore.config import Config

from tests.support.bedrock import BedrockReply, FakeBedrock, converse_frames, converse_json
from tests.support.fakes import ANSWER, FakeUpstream, Reply, anthropic_message, anthropic_stream, sse
from tests.support.mitmdump import Mitmdump, running

BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"

pytestmark = pytest.mark.e2e

ANTHROPIC_KEY = "sk-ant-rule-FAKE-0001"
GEMINI_KEY = "AIza-rule-FAKE-0002"
COHERE_KEY = "co-rule-FAKE-0003"
HF_KEY = "hf_rule_FAKE_0004"
CLIENT_KEY = "sk-client-FAKE-9999"
AWS_KEY_ID = "AKIDNATIVEE2EFAKE001"
AWS_SECRET = "native/e2e+secret/00000000000000000001"
CLIENT_AWS_KEY_ID = "AKIDCLIENTSIDEFAKE99"
CLIENT_AWS_SECRET = "client/side+secret/0000000000000000099"
REGION = "us-west-2"
GEMINI_MODEL = "gemini-2.0-flash"


def rules(fake: FakeUpstream, bedrock: FakeBedrock) -> str:
    return f"""
rules:
  - name: anthropic-native
    match: {{host: anthropic.internal}}
    llm_format: anthropic
    model:
      provider: anthropic
      options: {{upstream_url: "{fake.url}", input_cost: 3.0, output_cost: 15.0}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_ANTHROPIC_KEY}}"}}
    logging: {{log_payloads: true}}
  - name: anthropic-pinned
    match: {{host: claude-pinned.internal}}
    llm_format: anthropic
    model:
      provider: anthropic
      name: claude-pinned-1
      options: {{upstream_url: "{fake.url}"}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_ANTHROPIC_KEY}}"}}
  - name: anthropic-unset-key
    match: {{host: claude-unset.internal}}
    llm_format: anthropic
    model:
      provider: anthropic
      options: {{upstream_url: "{fake.url}"}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_NATIVE_UNSET_KEY}}"}}
  - name: bedrock-native
    match: {{host: bedrock-native.internal}}
    llm_format: bedrock
    model:
      provider: bedrock
      options: {{upstream_url: "{bedrock.url}", bedrock: {{aws_region: {REGION}}}, input_cost: 3.0, output_cost: 15.0}}
    auth: {{aws_access_key_id: "{AWS_KEY_ID}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
    logging: {{log_payloads: true}}
  - name: gemini-native
    match: {{host: gemini.internal}}
    llm_format: gemini
    model:
      provider: gemini
      options: {{upstream_url: "{fake.url}", input_cost: 1.0, output_cost: 2.0}}
    auth: {{param_name: key, param_value: "${{E2E_GEMINI_KEY}}", param_location: query}}
  - name: cohere-native
    match: {{host: cohere.internal}}
    llm_format: cohere
    model:
      provider: cohere
      options: {{upstream_url: "{fake.url}", input_cost: 1.0, output_cost: 1.0}}
    auth: {{header_name: authorization, header_value: "Bearer ${{E2E_COHERE_KEY}}"}}
  - name: hf-native
    match: {{host: hf.internal}}
    llm_format: huggingface
    model:
      provider: huggingface
      options: {{upstream_url: "{fake.url}"}}
    auth: {{header_name: authorization, header_value: "Bearer ${{E2E_HF_KEY}}"}}
"""


class Env:
    def __init__(self, proxy: Mitmdump, fake: FakeUpstream, bedrock: FakeBedrock) -> None:
        self.proxy, self.fake, self.bedrock = proxy, fake, bedrock
        self.seen_records = 0

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port('regular')}"

    def http(self) -> httpx.Client:
        return httpx.Client(proxy=self.proxy_url, trust_env=False, timeout=10)

    def anthropic(self, host: str = "anthropic.internal") -> anthropic.Anthropic:
        http_client = anthropic.DefaultHttpxClient(proxy=self.proxy_url, trust_env=False)
        return anthropic.Anthropic(
            base_url=f"http://{host}", api_key=CLIENT_KEY, http_client=http_client, max_retries=0
        )

    def bedrock_client(self) -> Any:
        session = botocore.session.get_session()
        return session.create_client(
            "bedrock-runtime",
            region_name=REGION,
            endpoint_url="http://bedrock-native.internal",
            aws_access_key_id=CLIENT_AWS_KEY_ID,
            aws_secret_access_key=CLIENT_AWS_SECRET,
            config=Config(proxies={"http": self.proxy_url}, retries={"max_attempts": 1}),
        )

    def record(self) -> dict[str, Any]:
        """The one record written since the last call."""
        records = self.proxy.wait_records(self.seen_records + 1)
        assert len(records) == self.seen_records + 1, records
        self.seen_records += 1
        return records[-1]


@pytest.fixture(scope="module")
def native_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fake = FakeUpstream("native")
    bedrock = FakeBedrock({AWS_KEY_ID: AWS_SECRET}, REGION)
    env = {
        "E2E_ANTHROPIC_KEY": ANTHROPIC_KEY,
        "E2E_GEMINI_KEY": GEMINI_KEY,
        "E2E_COHERE_KEY": COHERE_KEY,
        "E2E_HF_KEY": HF_KEY,
        "E2E_AWS_SECRET": AWS_SECRET,
    }
    with running(
        Mitmdump(tmp_path_factory.mktemp("e2e-native"), rules(fake, bedrock), env=env), fake, bedrock
    ) as proxy:
        yield Env(proxy, fake, bedrock)


@pytest.fixture
def env(native_env: Env) -> Env:
    native_env.fake.reset()
    native_env.bedrock.reset()
    native_env.seen_records = len(native_env.proxy.records())
    return native_env


def assert_no_secret_in(env: Env, record: dict[str, Any]) -> None:
    text = json.dumps(record)
    for secret in (ANTHROPIC_KEY, GEMINI_KEY, COHERE_KEY, HF_KEY, AWS_SECRET, CLIENT_KEY, CLIENT_AWS_SECRET):
        assert secret not in text
    assert ANTHROPIC_KEY not in env.proxy.log() and AWS_SECRET not in env.proxy.log()


# --------------------------------------------------------------------------------------------------------------
# Anthropic: the anthropic SDK
# --------------------------------------------------------------------------------------------------------------


def test_anthropic_sdk_messages_create(env: Env) -> None:
    message = env.anthropic().messages.create(
        model="claude-fake-1", max_tokens=100, messages=[{"role": "user", "content": "What is 1 + 1?"}]
    )
    assert message.content[0].text == ANSWER
    assert message.usage.input_tokens == 25 and message.usage.output_tokens == 12
    (req,) = env.fake.requests
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == ANTHROPIC_KEY
    assert CLIENT_KEY not in json.dumps(req.headers)
    assert req.headers["anthropic-version"]  # the SDK's own headers pass
    assert req.json == {
        "model": "claude-fake-1",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "What is 1 + 1?"}],
    }
    record = env.record()
    assert record["meta"]["rule"] == "anthropic-native"
    assert record["meta"]["request_model"] == "claude-fake-1"
    assert record["meta"]["response_model"] == "claude-fake-1"
    assert record["meta"]["status"] == 200 and record["meta"]["stream"] is False
    assert record["usage"]["prompt_tokens"] == 25 and record["usage"]["completion_tokens"] == 12
    assert record["usage"]["cost"] == pytest.approx((25 * 3.0 + 12 * 15.0) / 1e6)
    assert record["payload"]["client_request"]["messages"][0]["content"] == "What is 1 + 1?"
    assert record["payload"]["upstream_response"] == anthropic_message()
    assert_no_secret_in(env, record)


def test_anthropic_sdk_response_bytes_are_unchanged(env: Env) -> None:
    raw = json.dumps(anthropic_message(), indent=3).encode()  # an unusual layout survives byte for byte
    env.fake.queue(Reply(body=raw, headers={"content-type": "application/json", "request-id": "req_1"}))
    response = env.anthropic().messages.with_raw_response.create(
        model="claude-fake-1", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert response.http_response.content == raw
    assert response.headers["request-id"] == "req_1"
    assert response.headers["x-ai-proxy-model"] == "anthropic/claude-fake-1"
    env.record()


def test_anthropic_sdk_messages_stream(env: Env) -> None:
    events = anthropic_stream()
    env.fake.queue(Reply(chunks=events))
    with env.anthropic().messages.stream(
        model="claude-fake-1", max_tokens=100, messages=[{"role": "user", "content": "What is 1 + 1?"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANSWER
    assert final.usage.output_tokens == 12
    (req,) = env.fake.requests
    assert req.json["stream"] is True and req.headers["x-api-key"] == ANTHROPIC_KEY
    record = env.record()
    assert record["meta"]["stream"] is True and record["meta"]["status"] == 200
    assert record["meta"]["response_model"] == "claude-fake-1"
    assert record["meta"]["error"] is None
    assert record["usage"]["prompt_tokens"] == 25 and record["usage"]["completion_tokens"] == 12
    assert record["usage"]["cost"] == pytest.approx((25 * 3.0 + 12 * 15.0) / 1e6)
    assert record["meta"]["time_to_first_token"] is not None
    assert_no_secret_in(env, record)


def test_anthropic_stream_bytes_are_unchanged(env: Env) -> None:
    events = anthropic_stream()
    env.fake.queue(Reply(chunks=events))
    with env.http().stream(
        "POST",
        "http://anthropic.internal/v1/messages",
        json={"model": "claude-fake-1", "max_tokens": 5, "stream": True, "messages": []},
        headers={"x-api-key": CLIENT_KEY},
    ) as response:
        raw = response.read()
    assert raw == b"".join(events)
    env.record()


def test_anthropic_upstream_error_passes_in_its_own_shape(env: Env) -> None:
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    env.fake.queue(Reply(status=429, json=error, headers={"retry-after": "3"}))
    with pytest.raises(anthropic.RateLimitError) as info:
        env.anthropic().messages.create(model="claude-fake-1", max_tokens=5, messages=[])
    assert info.value.body == error
    record = env.record()
    assert record["meta"]["status"] == 429 and record["meta"]["error"] == "slow down"


def test_anthropic_model_pinned_by_the_rule(env: Env) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        env.anthropic("claude-pinned.internal").messages.create(model="claude-other", max_tokens=5, messages=[])
    assert "claude-pinned-1" in info.value.message
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert env.fake.requests == []
    record = env.record()
    assert record["meta"]["status"] == 400
    env.fake.queue(Reply(json=anthropic_message()))
    env.anthropic("claude-pinned.internal").messages.create(model="claude-pinned-1", max_tokens=5, messages=[])
    assert env.fake.last().json["model"] == "claude-pinned-1"
    env.record()


def test_anthropic_local_error_is_answered_in_anthropics_shape(env: Env) -> None:
    with pytest.raises(anthropic.InternalServerError) as info:
        env.anthropic("claude-unset.internal").messages.create(model="claude-fake-1", max_tokens=5, messages=[])
    assert "E2E_NATIVE_UNSET_KEY" in info.value.message
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert env.fake.requests == []
    record = env.record()
    assert record["meta"]["status"] == 500 and "E2E_NATIVE_UNSET_KEY" in record["meta"]["error"]
    assert_no_secret_in(env, record)


# --------------------------------------------------------------------------------------------------------------
# Bedrock: botocore, re-signed with the rule's keys
# --------------------------------------------------------------------------------------------------------------


def test_botocore_converse(env: Env) -> None:
    client = env.bedrock_client()
    out = client.converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "1 + 1?"}]}])
    assert out["output"]["message"]["content"][0]["text"] == ANSWER
    assert out["usage"]["inputTokens"] == 25
    seen = env.bedrock.last()
    assert seen.rejected is None  # the fake recomputed the signature with the rule's keys
    assert f"Credential={AWS_KEY_ID}/" in seen.headers["authorization"]
    assert CLIENT_AWS_KEY_ID not in json.dumps(seen.headers)
    assert seen.json["messages"][0]["content"][0]["text"] == "1 + 1?"
    record = env.record()
    assert record["meta"]["rule"] == "bedrock-native" and record["meta"]["status"] == 200
    assert record["meta"]["request_model"] == BEDROCK_MODEL
    assert record["usage"]["prompt_tokens"] == 25 and record["usage"]["completion_tokens"] == 12
    assert record["usage"]["cost"] == pytest.approx((25 * 3.0 + 12 * 15.0) / 1e6)
    assert record["payload"]["upstream_response"] == converse_json()
    assert_no_secret_in(env, record)


def test_botocore_converse_stream(env: Env) -> None:
    env.bedrock.queue(BedrockReply(frames=converse_frames()))
    client = env.bedrock_client()
    out = client.converse_stream(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "1+1?"}]}])
    events = list(out["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == ANSWER
    assert any("metadata" in e for e in events)
    seen = env.bedrock.last()
    assert seen.rejected is None and seen.path.endswith("/converse-stream")
    record = env.record()
    assert record["meta"]["stream"] is True and record["meta"]["status"] == 200
    assert record["meta"]["error"] is None
    assert record["usage"]["prompt_tokens"] == 25 and record["usage"]["completion_tokens"] == 12
    assert_no_secret_in(env, record)


def test_botocore_sees_bedrock_errors(env: Env) -> None:
    env.bedrock.queue(
        BedrockReply(400, {"message": "bad input"}, {"x-amzn-ErrorType": "ValidationException:http://x/"})
    )
    client = env.bedrock_client()
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
    record = env.record()
    assert record["meta"]["status"] == 400 and record["meta"]["error"] == "bad input"


# --------------------------------------------------------------------------------------------------------------
# Gemini, Cohere, Hugging Face: raw HTTP in the native format
# --------------------------------------------------------------------------------------------------------------

GEMINI_USAGE = {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12}


def gemini_chunk(text: str, finish: str | None = None, usage: bool = False) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [cand], "modelVersion": GEMINI_MODEL}
    if usage:
        out["usageMetadata"] = GEMINI_USAGE
    return out


def test_gemini_generate_content(env: Env) -> None:
    answer = gemini_chunk(ANSWER, "STOP", usage=True)
    env.fake.queue(Reply(json=answer))
    body = {"contents": [{"role": "user", "parts": [{"text": "1+1?"}]}]}
    r = env.http().post(
        f"http://gemini.internal/v1beta/models/{GEMINI_MODEL}:generateContent?key=client-key",
        json=body,
        headers={"x-goog-api-key": CLIENT_KEY},
    )
    assert r.status_code == 200 and r.json() == answer
    req = env.fake.last()
    assert req.path == f"/v1beta/models/{GEMINI_MODEL}:generateContent"
    assert req.query == {"key": GEMINI_KEY}
    assert "x-goog-api-key" not in req.headers
    assert req.json == body
    record = env.record()
    assert record["meta"]["request_model"] == GEMINI_MODEL
    assert record["usage"]["prompt_tokens"] == 7 and record["usage"]["completion_tokens"] == 5
    assert record["usage"]["cost"] == pytest.approx((7 * 1.0 + 5 * 2.0) / 1e6)
    assert GEMINI_KEY not in json.dumps(record) and "client-key" not in json.dumps(record)


@pytest.mark.parametrize("sse_form", [True, False], ids=["sse", "json-array"])
def test_gemini_stream(env: Env, sse_form: bool) -> None:
    objects = [gemini_chunk("The sum "), gemini_chunk("is 2.", "STOP", usage=True)]
    if sse_form:
        chunks = [sse(o) for o in objects]
        headers = {"content-type": "text/event-stream"}
        query = "?alt=sse"
    else:
        text = json.dumps(objects).encode()
        chunks = [text[:17], text[17:50], text[50:]]
        headers = {"content-type": "application/json"}
        query = ""
    env.fake.queue(Reply(chunks=chunks, headers=headers))
    with env.http().stream(
        "POST",
        f"http://gemini.internal/v1beta/models/{GEMINI_MODEL}:streamGenerateContent{query}",
        json={"contents": []},
    ) as response:
        raw = response.read()
    assert raw == b"".join(chunks)
    req = env.fake.last()
    assert req.query == ({"alt": "sse", "key": GEMINI_KEY} if sse_form else {"key": GEMINI_KEY})
    record = env.record()
    assert record["meta"]["stream"] is True and record["meta"]["error"] is None
    assert record["meta"]["response_model"] == GEMINI_MODEL
    assert record["usage"]["prompt_tokens"] == 7 and record["usage"]["completion_tokens"] == 5


def test_cohere_v2_chat_and_stream(env: Env) -> None:
    answer = {
        "id": "c1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
        "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 3},
            "tokens": {"input_tokens": 9, "output_tokens": 3},
        },
    }
    env.fake.queue(Reply(json=answer))
    body = {"model": "command-r", "messages": [{"role": "user", "content": "hi"}]}
    r = env.http().post("http://cohere.internal/v2/chat", json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.json() == answer
    req = env.fake.last()
    assert req.path == "/v2/chat" and req.headers["authorization"] == f"Bearer {COHERE_KEY}"
    record = env.record()
    assert record["usage"]["prompt_tokens"] == 9 and record["usage"]["completion_tokens"] == 3
    assert record["meta"]["request_model"] == "command-r"

    events = [
        sse({"type": "message-start", "id": "c2"}, "message-start"),
        sse(
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": ANSWER}}}}, "content-delta"
        ),
        sse(
            {
                "type": "message-end",
                "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": 9, "output_tokens": 4}}},
            },
            "message-end",
        ),
    ]
    env.fake.queue(Reply(chunks=events))
    with env.http().stream("POST", "http://cohere.internal/v2/chat", json={**body, "stream": True}) as response:
        assert response.read() == b"".join(events)
    record = env.record()
    assert record["meta"]["stream"] is True and record["meta"]["error"] is None
    assert record["usage"]["prompt_tokens"] == 9 and record["usage"]["completion_tokens"] == 4


def test_cohere_v1_ndjson_stream(env: Env) -> None:
    lines = [
        {"event_type": "stream-start", "generation_id": "g"},
        {"event_type": "text-generation", "text": ANSWER},
        {
            "event_type": "stream-end",
            "finish_reason": "COMPLETE",
            "response": {"text": ANSWER, "meta": {"billed_units": {"input_tokens": 6, "output_tokens": 8}}},
        },
    ]
    chunks = [json.dumps(x).encode() + b"\n" for x in lines]
    env.fake.queue(Reply(chunks=chunks, headers={"content-type": "application/stream+json"}))
    body = {"model": "command-r", "message": "hi", "stream": True}
    with env.http().stream("POST", "http://cohere.internal/v1/chat", json=body) as response:
        assert response.read() == b"".join(chunks)
    record = env.record()
    assert record["usage"]["prompt_tokens"] == 6 and record["usage"]["completion_tokens"] == 8


def test_huggingface_tgi_generate_and_stream(env: Env) -> None:
    answer = {"generated_text": ANSWER, "details": {"finish_reason": "eos_token", "generated_tokens": 6}}
    env.fake.queue(Reply(json=answer, headers={"x-prompt-tokens": "4", "x-generated-tokens": "6"}))
    body = {"inputs": "1+1?", "parameters": {"max_new_tokens": 20}}
    r = env.http().post("http://hf.internal/generate", json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.json() == answer
    req = env.fake.last()
    assert req.path == "/generate" and req.headers["authorization"] == f"Bearer {HF_KEY}"
    record = env.record()
    assert record["usage"]["prompt_tokens"] == 4 and record["usage"]["completion_tokens"] == 6

    events = [
        sse({"index": 1, "token": {"id": 1, "text": "The sum", "special": False}, "generated_text": None}),
        sse(
            {
                "index": 2,
                "token": {"id": 2, "text": " is 2.", "special": False},
                "generated_text": ANSWER,
                "details": {"finish_reason": "eos_token", "generated_tokens": 2, "input_length": 4},
            }
        ),
    ]
    env.fake.queue(Reply(chunks=events))
    with env.http().stream("POST", "http://hf.internal/generate_stream", json=body) as response:
        assert response.read() == b"".join(events)
    assert env.fake.last().path == "/generate_stream"
    record = env.record()
    assert record["meta"]["stream"] is True and record["meta"]["error"] is None
    assert record["usage"]["prompt_tokens"] == 4 and record["usage"]["completion_tokens"] == 2


# --------------------------------------------------------------------------------------------------------------
# Gemini: the google-genai SDK
# --------------------------------------------------------------------------------------------------------------


def genai_client(env: Env) -> Any:
    genai = pytest.importorskip("google.genai")
    options = genai.types.HttpOptions(
        base_url="http://gemini.internal",
        httpx_client=httpx.Client(proxy=env.proxy_url, trust_env=False, timeout=10),
    )
    return genai.Client(api_key=CLIENT_KEY, http_options=options)


def test_google_genai_generate_content(env: Env) -> None:
    client = genai_client(env)
    env.fake.queue(Reply(json=gemini_chunk(ANSWER, "STOP", usage=True)))
    out = client.models.generate_content(model=GEMINI_MODEL, contents="What is 1 + 1?")
    assert out.text == ANSWER
    assert out.usage_metadata.prompt_token_count == 7
    req = env.fake.last()
    assert req.path.endswith(f"/models/{GEMINI_MODEL}:generateContent")
    assert req.query.get("key") == GEMINI_KEY
    assert CLIENT_KEY not in json.dumps(req.headers) and CLIENT_KEY not in json.dumps(req.query)
    record = env.record()
    assert record["meta"]["request_model"] == GEMINI_MODEL and record["meta"]["status"] == 200
    assert record["usage"]["prompt_tokens"] == 7 and record["usage"]["completion_tokens"] == 5
    assert record["usage"]["cost"] == pytest.approx((7 * 1.0 + 5 * 2.0) / 1e6)


def test_google_genai_generate_content_stream(env: Env) -> None:
    client = genai_client(env)
    objects = [gemini_chunk("The sum "), gemini_chunk("of 1 + 1 is 2.", "STOP", usage=True)]
    env.fake.queue(Reply(chunks=[sse(o) for o in objects]))
    text = "".join(c.text or "" for c in client.models.generate_content_stream(model=GEMINI_MODEL, contents="1+1?"))
    assert text == "The sum of 1 + 1 is 2."
    req = env.fake.last()
    assert req.path.endswith(":streamGenerateContent") and req.query.get("alt") == "sse"
    assert req.query.get("key") == GEMINI_KEY
    record = env.record()
    assert record["meta"]["stream"] is True and record["meta"]["error"] is None
    assert record["usage"]["prompt_tokens"] == 7 and record["usage"]["completion_tokens"] == 5
