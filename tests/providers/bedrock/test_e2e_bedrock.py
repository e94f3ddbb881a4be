"""End to end: the openai SDK -> a real mitmdump with the addon -> a fake Amazon Bedrock.

The fake (tests/support/bedrock.py) speaks Converse JSON and ConverseStream's binary eventstream (frames with
valid CRCs, cut across chunk boundaries), and it checks every request's SigV4 signature the way AWS does: it
rebuilds the canonical request with botocore from the path, headers and body it received, with the same test
credentials, and answers 403 on a mismatch. A proxy that signed wrongly, signed another path, or signed the
client's untranslated body fails these tests.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.bedrock import (
    ANSWER,
    PIECES,
    BedrockReply,
    FakeBedrock,
    Seen,
    bedrock_behind_proxy,
    converse_frames,
    exception,
)
from tests.support.chunks import collect
from tests.support.e2e_env import MESSAGES
from tests.support.mitmdump import Mitmdump
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
CHAIN_MODEL = "meta.llama3-70b-instruct-v1:0"
KEY_ID = "AKIDE2EBEDROCKFAKE01"
SECRET = "e2e/bedrock+secret/0000000000000000000001"
CHAIN_KEY_ID = "FAKEE2EBEDROCKCHAIN1"
CHAIN_SECRET = "e2e/bedrock+chain/secret000000000000002"
SESSION_TOKEN = "e2e-session-token//FAKE+0003"
REGION = "us-east-1"
SIGNATURE = re.compile(r"Signature=([0-9a-f]{64})")


# --------------------------------------------------------------------------------------------------------------
# The fake Bedrock
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# Proxy and clients
# --------------------------------------------------------------------------------------------------------------


def rules_yaml(fake: FakeBedrock) -> str:
    keys = {"aws_access_key_id": "${E2E_AWS_KEY_ID}", "aws_secret_access_key": "${E2E_AWS_SECRET}"}
    region = {"bedrock": {"aws_region": REGION}}

    def rule(name: str, host: str, model: str, route: str = "chat", **options: Any) -> dict[str, Any]:
        return rule_spec(name, host, "bedrock", model, {"upstream_url": fake.url, **region, **options}, route)

    logged = {"logging": {"log_payloads": True}}
    chain = rule_spec("bedrock-chain", "bedrock-chain.internal", "bedrock", CHAIN_MODEL, {"upstream_url": fake.url})
    pinned = f"{fake.url}/model/my-profile/converse"
    return rules_text(
        {**rule("bedrock-chat", "bedrock.internal", MODEL, max_tokens=256), "auth": keys, **logged},
        {**rule("bedrock-completions", "bedrock.internal", MODEL, "completions"), "auth": keys},
        {**chain, **logged},
        {
            **rule("bedrock-wrong-secret", "bedrock-wrong.internal", MODEL),
            "auth": {**keys, "aws_secret_access_key": "not-the-secret"},
        },
        {**rule("bedrock-pinned-url", "bedrock-pinned.internal", "my-profile", upstream_url=pinned), "auth": keys},
    )


@dataclass
class Env:
    proxy: Mitmdump
    fake: FakeBedrock

    def client(self, host: str = "bedrock.internal") -> openai.OpenAI:
        return client_through(self.proxy, host)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("e2e-bedrock")
    env = {
        "E2E_AWS_KEY_ID": KEY_ID,
        "E2E_AWS_SECRET": SECRET,
        # The standard chain, for the rule without keys: environment credentials with a session token.
        "AWS_ACCESS_KEY_ID": CHAIN_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": CHAIN_SECRET,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_REGION": REGION,
    }
    # flow_detail=3: headers and bodies in the log, which the leak test reads.
    keys = {KEY_ID: SECRET, CHAIN_KEY_ID: CHAIN_SECRET}
    with bedrock_behind_proxy(workdir, keys, REGION, rules_yaml, env, ["--set", "flow_detail=3"]) as (proxy, fake):
        yield Env(proxy, fake)


@pytest.fixture
def e(env: Env) -> Env:
    env.fake.reset()
    return env


def signed_ok(seen: Seen, key_id: str = KEY_ID) -> None:
    assert seen.rejected is None, seen.rejected
    assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={key_id}/")
    assert f"/{REGION}/bedrock/aws4_request" in seen.headers["authorization"]


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------


def test_chat(e: Env) -> None:
    response = e.client().chat.completions.create(model=MODEL, messages=MESSAGES, temperature=1.5, stop="END")
    assert response.choices[0].message.content == ANSWER
    assert response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (25, 12)
    assert response.model == MODEL
    [seen] = e.fake.requests
    signed_ok(seen)
    assert seen.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert seen.json == {
        "messages": [{"role": "user", "content": [{"text": "What is 1 + 1?"}]}],
        "system": [{"text": "You are a mathematician."}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 1.0, "stopSequences": ["END"]},
    }
    assert seen.headers["content-type"] == "application/json"
    assert "sk-client" not in json.dumps(seen.headers)


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_stream_chat(e: Env, include_usage: bool) -> None:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = e.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **extra)
    text, finish, chunks = collect(stream)
    assert text == ANSWER and finish == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert usage_chunks == [chunks[-1]] and chunks[-1].choices == []
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 12)
    else:
        assert usage_chunks == []
    [seen] = e.fake.requests
    signed_ok(seen)
    assert seen.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    assert seen.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "stream" not in seen.json


def test_completions(e: Env) -> None:
    client = e.client()
    response = client.completions.create(model=MODEL, prompt="What is 1 + 1?", max_tokens=20)
    assert response.choices[0].text == ANSWER and response.object == "text_completion"
    chunks = list(client.completions.create(model=MODEL, prompt="What is 1 + 1?", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    first, second = e.fake.requests
    for seen in (first, second):
        signed_ok(seen)
        assert seen.json["messages"] == [{"role": "user", "content": [{"text": "What is 1 + 1?"}]}]
    assert first.json["inferenceConfig"] == {"maxTokens": 20}
    assert second.path.endswith("/converse-stream")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_credential_chain_with_session_token(e: Env, stream: bool) -> None:
    client = e.client("bedrock-chain.internal")
    if stream:
        assert collect(client.chat.completions.create(model=CHAIN_MODEL, messages=MESSAGES, stream=True))[0] == ANSWER
    else:
        response = client.chat.completions.create(model=CHAIN_MODEL, messages=MESSAGES)
        assert response.choices[0].message.content == ANSWER
    seen = e.fake.last()
    signed_ok(seen, CHAIN_KEY_ID)
    assert seen.headers["x-amz-security-token"] == SESSION_TOKEN
    assert "x-amz-security-token" in seen.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert seen.path.startswith("/model/meta.llama3-70b-instruct-v1%3A0/")


def test_a_wrong_signature_is_refused(e: Env) -> None:
    """The fake really checks: a rule with the wrong secret gets Bedrock's 403, as an OpenAI permission error."""
    with pytest.raises(openai.PermissionDeniedError, match="signature we calculated does not match") as info:
        e.client("bedrock-wrong.internal").chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 403
    # The error name is in the x-amzn-ErrorType header, which reaches parse_error once the glue passes headers.
    assert info.value.code in (None, "InvalidSignatureException")
    assert e.fake.last().rejected is not None


def test_pinned_url_follows_the_stream_flag(e: Env) -> None:
    client = e.client("bedrock-pinned.internal")
    assert collect(client.chat.completions.create(model="my-profile", messages=MESSAGES, stream=True))[0] == ANSWER
    assert client.chat.completions.create(model="my-profile", messages=MESSAGES).choices[0].message.content == ANSWER
    assert [s.path for s in e.fake.requests] == ["/model/my-profile/converse-stream", "/model/my-profile/converse"]
    for seen in e.fake.requests:
        signed_ok(seen)


@pytest.mark.parametrize(
    ("status", "name", "exc", "client_status"),
    [
        (400, "ValidationException", openai.BadRequestError, 400),
        (404, "ResourceNotFoundException", openai.NotFoundError, 404),
        (408, "ModelTimeoutException", openai.InternalServerError, 504),
        (424, "ModelErrorException", openai.InternalServerError, 502),
        (429, "ThrottlingException", openai.RateLimitError, 429),
        (503, "ServiceUnavailableException", openai.InternalServerError, 503),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_upstream_errors(e: Env, status: int, name: str, exc: type, client_status: int, stream: bool) -> None:
    message = f"{name} from the fake"
    e.fake.queue(
        BedrockReply(status, {"message": message}, {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/"})
    )
    with pytest.raises(exc) as info:
        e.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
    assert info.value.status_code == client_status
    assert message in str(info.value)


def test_exception_frame_mid_stream(e: Env) -> None:
    frames = converse_frames(complete=False)[:2]
    e.fake.queue(BedrockReply(frames=[*frames, exception("modelStreamErrorException", "The model stream broke")]))
    stream = e.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    received = ""
    with pytest.raises(openai.APIError, match="The model stream broke"):
        for chunk in stream:
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received == PIECES[0]  # what arrived before the failure was delivered


def test_stream_is_not_buffered(e: Env) -> None:
    """The fake holds the rest of the stream until the client has the first text: a buffering proxy (or a
    decoder that waits for the whole body) would deliver nothing before the fake's wait runs out."""
    gate = threading.Event()
    released: list[bool] = []
    frames = converse_frames()
    e.fake.queue(BedrockReply(frames=[*frames[:2], lambda: released.append(gate.wait(20)), *frames[2:]]))
    text = ""
    for chunk in e.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            if not gate.is_set():
                assert chunk.choices[0].delta.content == PIECES[0]
                gate.set()
            text += chunk.choices[0].delta.content
    assert released == [True], "the client got no text before the upstream sent the rest: the proxy buffered"
    assert text == ANSWER


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_audit_record_and_no_secret_anywhere(e: Env, stream: bool) -> None:
    marker = f"bedrock-{uuid.uuid4().hex}"
    messages = [{"role": "user", "content": marker}]
    for host, model in (("bedrock.internal", MODEL), ("bedrock-chain.internal", CHAIN_MODEL)):
        created = e.client(host).chat.completions.create(model=model, messages=messages, stream=stream)
        if stream:
            collect(created)
    record = e.proxy.record_with(marker)
    assert record["meta"]["provider_name"] == "bedrock" and record["meta"]["status"] == 200
    assert (record["usage"]["prompt_tokens"], record["usage"]["completion_tokens"]) == (25, 12)
    assert record["payload"]["upstream_request"]["messages"] == [{"role": "user", "content": [{"text": marker}]}]
    signatures = [m for s in e.fake.requests for m in SIGNATURE.findall(s.headers["authorization"])]
    assert len(signatures) == 2
    e.proxy.wait_records(2)
    log = e.proxy.log()
    assert marker in log  # the flow dump is really there
    recordings = "".join(p.read_text() for p in Path(e.proxy.recordings).glob("*.jsonl"))
    for secret in (SECRET, CHAIN_SECRET, SESSION_TOKEN, *signatures):
        assert secret not in log, "a credential or signature leaked into the mitmdump log"
        assert secret not in recordings, "a credential or signature leaked into an audit record"
