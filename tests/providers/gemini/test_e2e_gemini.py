"""End to end: the openai SDK through a real mitmdump to a fake Gemini server (SSE and JSON-array streams,
API key in a header or the query) and to Vertex AI with service-account tokens from a fake OAuth endpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.providers.gemini.test_provider_gemini import FakeTokenServer
from tests.support.chunks import collect
from tests.support.e2e_env import CLIENT_KEY, MESSAGES
from tests.support.fakes import ANSWER, STREAM_PIECES, FakeUpstream, Reply
from tests.support.mitmdump import Mitmdump, running
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

GEMINI_KEY = "e2e-gemini-secret-0004"
MODEL = "gemini-fake-1"
VERTEX_PATH = f"/v1/projects/proj-e2e/locations/us-central1/publishers/google/models/{MODEL}"
ACCOUNTS = {  # rule host -> (service account e-mail, token lifetime; None: the token endpoint refuses it)
    "vertex.internal": ("vertex@proj-e2e.iam.gserviceaccount.com", 3600),
    "vertex-short.internal": ("short@proj-e2e.iam.gserviceaccount.com", 60),  # inside the 5-minute refresh margin
    "vertex-broken.internal": ("broken@proj-e2e.iam.gserviceaccount.com", None),
}


def usage_meta(candidates: int) -> dict[str, int]:
    return {"promptTokenCount": 25, "candidatesTokenCount": candidates, "totalTokenCount": 25 + candidates}


def response(text: str = ANSWER, finish: str | None = "STOP", candidates: int = 12) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage_meta(candidates),
        "modelVersion": "gemini-fake-1-001",
        "responseId": "resp-e2e",
    }


def stream_objects(complete: bool = True) -> list[dict[str, Any]]:
    objs = [response(p, None, 4 * (i + 1)) for i, p in enumerate(STREAM_PIECES)]
    if complete:
        objs[-1] = response(STREAM_PIECES[-1], "STOP", 12)
    return objs


def sse_chunks(objs: list[Any]) -> list[bytes]:
    return [b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objs]


def array_chunks(objs: list[Any]) -> list[bytes]:
    """The JSON-array form, cut in the middle of every element as the network may."""
    body = b"[" + b"\r\n,\r\n".join(json.dumps(o, indent=2).encode() for o in objs) + b"]"
    step = max(1, len(body) // (2 * len(objs)))
    return [body[i : i + step] for i in range(0, len(body), step)]


def rules_yaml(fake: FakeUpstream) -> str:
    rules = f"""
rules:
  - name: gemini-chat
    match: {{host: gemini.internal, path: /v1/chat/completions}}
    model:
      provider: gemini
      name: {MODEL}
      options: {{upstream_url: "{fake.url}"}}
    auth: {{header_name: x-goog-api-key, header_value: "${{E2E_GEMINI_KEY}}"}}
    logging: {{log_statistics: true, log_payloads: true}}
  - name: gemini-completions
    match: {{host: gemini.internal, path: /v1/completions}}
    route_type: llm/v1/completions
    model:
      provider: gemini
      name: {MODEL}
      options: {{upstream_url: "{fake.url}"}}
    auth: {{header_name: x-goog-api-key, header_value: "${{E2E_GEMINI_KEY}}"}}
  - name: gemini-json-array
    match: {{host: gemini-array.internal, path: /v1/chat/completions}}
    model:
      provider: gemini
      name: {MODEL}
      options: {{upstream_url: "{fake.url}/v1beta/models/{MODEL}:streamGenerateContent"}}
    auth: {{param_name: key, param_value: "${{E2E_GEMINI_KEY}}", param_location: query}}
    logging: {{log_payloads: true}}
"""
    for i, host in enumerate(ACCOUNTS):
        rules += f"""
  - name: {host.split(".")[0]}
    match: {{host: {host}, path: /v1/chat/completions}}
    model:
      provider: gemini
      name: {MODEL}
      options:
        upstream_url: "{fake.url}"
        gemini: {{project_id: proj-e2e, location_id: us-central1}}
    auth: {{gcp_use_service_account: true, gcp_service_account_json: "${{E2E_GCP_SA_{i}}}"}}
    logging: {{log_payloads: true}}
"""
    return rules


@dataclass
class GeminiEnv:
    proxy: Mitmdump
    fake: FakeUpstream
    oauth: FakeTokenServer

    def client(self, host: str) -> openai.OpenAI:
        return client_through(self.proxy, host, CLIENT_KEY)


@pytest.fixture(scope="module")
def genv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeminiEnv]:
    fake = FakeUpstream("gemini")
    oauth = FakeTokenServer()
    env = {"E2E_GEMINI_KEY": GEMINI_KEY}
    for i, (email, lifetime) in enumerate(ACCOUNTS.values()):
        env[f"E2E_GCP_SA_{i}"] = oauth.add(email, lifetime)
    with running(
        Mitmdump(
            tmp_path_factory.mktemp("e2e-gemini"), rules_yaml(fake), env=env, extra_args=["--set", "flow_detail=3"]
        ),
        fake,
        oauth,
    ) as proxy:
        yield GeminiEnv(proxy, fake, oauth)


@pytest.fixture
def g(genv: GeminiEnv) -> GeminiEnv:
    genv.fake.reset()
    return genv


# ---- Gemini API ----------------------------------------------------------------------------------------------


def test_chat_not_streamed(g: GeminiEnv) -> None:
    g.fake.queue(Reply(json=response()))
    out = g.client("gemini.internal").chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=50, temperature=0.3, stop=["END"], seed=7
    )
    assert out.choices[0].message.content == ANSWER and out.choices[0].finish_reason == "stop"
    assert out.model == "gemini-fake-1-001" and out.id == "resp-e2e"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (25, 12, 37)
    seen = g.fake.last()
    assert seen.path == f"/v1beta/models/{MODEL}:generateContent" and seen.query == {}
    assert seen.headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in seen.headers and CLIENT_KEY not in json.dumps(seen.headers)
    assert seen.json == {
        "systemInstruction": {"parts": [{"text": "You are a mathematician."}]},
        "contents": [{"role": "user", "parts": [{"text": "What is 1 + 1?"}]}],
        "generationConfig": {"maxOutputTokens": 50, "temperature": 0.3, "stopSequences": ["END"], "seed": 7},
    }


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_chat_streamed_sse(g: GeminiEnv, include_usage: bool) -> None:
    g.fake.queue(Reply(chunks=sse_chunks(stream_objects())))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = g.client("gemini.internal").chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **extra)
    text, finish, chunks = collect(stream)
    assert text == ANSWER and finish == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        [usage_chunk] = usage_chunks
        assert usage_chunk is chunks[-1] and usage_chunk.choices == []
        assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (25, 12)
    else:
        assert usage_chunks == []
    seen = g.fake.last()
    assert seen.path == f"/v1beta/models/{MODEL}:streamGenerateContent" and seen.query == {"alt": "sse"}
    assert seen.headers["x-goog-api-key"] == GEMINI_KEY and "stream" not in seen.json


def test_json_array_stream_from_a_whole_upstream_url(g: GeminiEnv) -> None:
    """A rule URL naming :streamGenerateContent without alt=sse gets the JSON-array form; the key goes in ?key=."""
    g.fake.queue(Reply(chunks=array_chunks(stream_objects()), headers={"content-type": "application/json"}))
    stream = g.client("gemini-array.internal").chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text, finish, chunks = collect(stream)
    assert text == ANSWER and finish == ["stop"] and chunks[-1].usage.completion_tokens == 12
    seen = g.fake.last()
    assert seen.path == f"/v1beta/models/{MODEL}:streamGenerateContent" and seen.query == {"key": GEMINI_KEY}

    # The same rule, not streamed: the operation follows the client.
    g.fake.queue(Reply(json=response()))
    out = g.client("gemini-array.internal").chat.completions.create(model=MODEL, messages=MESSAGES)
    assert out.choices[0].message.content == ANSWER
    seen = g.fake.last()
    assert seen.path == f"/v1beta/models/{MODEL}:generateContent" and seen.query == {"key": GEMINI_KEY}


def test_completions_streamed_and_not(g: GeminiEnv) -> None:
    client = g.client("gemini.internal")
    g.fake.queue(Reply(json=response(" Paris.", "MAX_TOKENS")))
    out = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=3)
    assert out.object == "text_completion"
    assert out.choices[0].text == " Paris." and out.choices[0].finish_reason == "length"
    assert g.fake.last().json["contents"] == [{"role": "user", "parts": [{"text": "The capital of France is"}]}]

    g.fake.queue(Reply(chunks=sse_chunks(stream_objects())))
    chunks = list(client.completions.create(model=MODEL, prompt="What is 1 + 1?", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


QUOTA = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
    }
}
OVERLOADED = [{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    ("status", "body", "exc", "message"),
    [
        (429, QUOTA, openai.RateLimitError, "Resource has been exhausted"),
        (503, OVERLOADED, openai.InternalServerError, "overloaded"),
        (
            400,
            {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}},
            openai.BadRequestError,
            "API key not valid",
        ),
        (
            404,
            {"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}},
            openai.NotFoundError,
            "not found",
        ),
    ],
    ids=["429", "503-array", "400", "404"],
)
def test_upstream_errors(g: GeminiEnv, stream: bool, status: int, body: Any, exc: type, message: str) -> None:
    g.fake.queue(Reply(status=status, json=body))
    with pytest.raises(exc, match=message) as info:
        g.client("gemini.internal").chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
    rpc_status = (body[0] if isinstance(body, list) else body)["error"]["status"]
    assert info.value.status_code == status and info.value.code == rpc_status
    if status == 429:  # Google states the back-off in the body only (RetryInfo): the client gets it as a header
        assert info.value.response.headers["retry-after"] == "7"


def test_mid_stream_error_event(g: GeminiEnv) -> None:
    chunks = sse_chunks(stream_objects(complete=False)[:1]) + sse_chunks(OVERLOADED[:1])
    g.fake.queue(Reply(chunks=chunks))
    stream = g.client("gemini.internal").chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    received = ""
    with pytest.raises(openai.APIError, match="overloaded"):
        for chunk in stream:
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received == STREAM_PIECES[0]


def test_stream_cut_short(g: GeminiEnv) -> None:
    g.fake.queue(Reply(chunks=sse_chunks(stream_objects(complete=False))))
    stream = g.client("gemini.internal").chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="ended before a finishReason"):
        list(stream)


def test_refused_locally(g: GeminiEnv) -> None:
    with pytest.raises(openai.BadRequestError, match="tool_choice"):
        g.client("gemini.internal").chat.completions.create(model=MODEL, messages=MESSAGES, tool_choice="required")
    assert g.fake.requests == []


def test_audit_record(g: GeminiEnv) -> None:
    marker = f"gemini-{uuid.uuid4().hex}"
    g.fake.queue(Reply(chunks=sse_chunks(stream_objects())))
    collect(
        g.client("gemini.internal").chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": marker}], stream=True
        )
    )
    record = g.proxy.record_with(marker)
    meta = record["meta"]
    assert meta["provider_name"] == "gemini" and meta["status"] == 200 and meta["stream"] is True
    assert meta["response_model"] == "gemini-fake-1-001" and meta["error"] is None
    assert (record["usage"]["prompt_tokens"], record["usage"]["completion_tokens"]) == (25, 12)
    assert record["payload"]["client_response"]["choices"][0]["message"]["content"] == ANSWER
    assert record["payload"]["upstream_request"]["contents"][0]["parts"][0]["text"] == marker


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# ---- Vertex AI -----------------------------------------------------------------------------------------------


def test_vertex_one_token_for_many_requests(g: GeminiEnv) -> None:
    email = ACCOUNTS["vertex.internal"][0]
    concurrent = 8
    g.fake.queue(*[Reply(json=response()) for _ in range(concurrent)])

    def ask(_: int) -> str | None:
        out = g.client("vertex.internal").chat.completions.create(model=MODEL, messages=MESSAGES)
        return out.choices[0].message.content

    with ThreadPoolExecutor(concurrent) as pool:
        assert list(pool.map(ask, range(concurrent))) == [ANSWER] * concurrent
    # And a streamed request, later, with the cached token.
    g.fake.queue(Reply(chunks=sse_chunks(stream_objects())))
    text, finish, _ = collect(
        g.client("vertex.internal").chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    )
    assert (text, finish) == (ANSWER, ["stop"])

    assert g.oauth.grants[email] == 1, "a burst of requests must share one token fetch"
    paths = [r.path for r in g.fake.requests]
    assert paths == [f"{VERTEX_PATH}:generateContent"] * concurrent + [f"{VERTEX_PATH}:streamGenerateContent"]
    assert g.fake.last().query == {"alt": "sse"}
    for request in g.fake.requests:
        assert request.headers["authorization"] == "Bearer ya29.fake-vertex-1"
        assert "x-goog-api-key" not in request.headers


def test_vertex_token_refreshed_before_it_expires(g: GeminiEnv) -> None:
    """This account's tokens live 60 s, inside the refresh margin: every request needs a fresh one."""
    email = ACCOUNTS["vertex-short.internal"][0]
    client = g.client("vertex-short.internal")
    for _ in range(3):
        g.fake.queue(Reply(json=response()))
        assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content == ANSWER
    assert g.oauth.grants[email] == 3
    assert [r.headers["authorization"] for r in g.fake.requests] == [f"Bearer ya29.fake-short-{n}" for n in (1, 2, 3)]


def test_vertex_token_failure(g: GeminiEnv) -> None:
    with pytest.raises(openai.InternalServerError, match="could not get a Google Cloud access token") as info:
        g.client("vertex-broken.internal").chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 502 and "invalid_grant" in str(info.value)
    assert g.fake.requests == []


def test_no_secret_in_logs_or_records(g: GeminiEnv) -> None:
    markers = [f"secret-test-{uuid.uuid4().hex}" for _ in range(3)]
    g.fake.queue(Reply(json=response()), Reply(json=response()), Reply(chunks=array_chunks(stream_objects())))
    g.client("gemini.internal").chat.completions.create(model=MODEL, messages=ask(markers[0]))
    g.client("vertex.internal").chat.completions.create(model=MODEL, messages=ask(markers[1]))
    collect(
        g.client("gemini-array.internal").chat.completions.create(model=MODEL, messages=ask(markers[2]), stream=True)
    )
    assert g.fake.requests[0].headers["x-goog-api-key"] == GEMINI_KEY  # the credentials did travel
    assert g.fake.requests[1].headers["authorization"].startswith("Bearer ya29.fake-vertex-")
    assert g.fake.requests[2].query["key"] == GEMINI_KEY
    for marker in markers:
        g.proxy.record_with(marker)
    log = g.proxy.log()
    assert markers[1] in log and "authorization" in log.lower()  # the dump is really there (flow_detail=3)
    recordings = "".join(p.read_text() for p in Path(g.proxy.recordings).glob("*.jsonl"))
    assert recordings
    # The rule's key, the OAuth tokens and the service account's private key. (The client's own key is not
    # checked here: mitmdump dumps it for flows the addon answers locally, which is the glue's business.)
    secrets = [GEMINI_KEY, "ya29.fake", "PRIVATE KEY"]
    for secret in secrets:
        assert secret not in log, f"{secret} leaked into the mitmdump log"
        assert secret not in recordings, f"{secret} leaked into an audit record"
