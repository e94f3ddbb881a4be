"""End to end: route_type preserve (embeddings, model lists) and dynamic model selection (templates), through a
real mitmdump with the openai SDK as the client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.e2e_env import Env as SharedEnv
from tests.support.fakes import ANSWER, FakeUpstream, Reply
from tests.support.mitmdump import Mitmdump, running

pytestmark = pytest.mark.e2e

OPENAI_KEY = "preserve-openai-secret-0001"
AZURE_KEY = "preserve-azure-secret-0002"
ANTHROPIC_KEY = "preserve-anthropic-secret-0003"
CLIENT_KEY = "sk-client-key-must-not-travel"
EMBEDDING = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 0.125]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 5, "total_tokens": 5},
}
MESSAGES = [{"role": "user", "content": "hi"}]


def rules(openai_fake: FakeUpstream, azure_fake: FakeUpstream, anthropic_fake: FakeUpstream) -> str:
    return f"""
rules:
  - name: openai-preserve
    match: {{host: api.openai.com, path: /v1/*}}
    route_type: preserve
    model: {{provider: openai, options: {{upstream_url: "{openai_fake.url}", input_cost: 0.02}}}}
    auth: {{header_name: Authorization, header_value: "Bearer {OPENAI_KEY}"}}
    logging: {{log_payloads: true}}
  - name: azure-preserve
    match: {{host: azure-preserve.internal, path: /v1/*}}
    route_type: preserve
    model:
      provider: azure
      options: {{upstream_url: "{azure_fake.url}", azure_deployment_id: emb-dep, azure_api_version: "2024-10-21"}}
    auth: {{header_name: api-key, header_value: "{AZURE_KEY}"}}
  - name: claude-by-path
    match: {{host: models.internal, path: "/{{model}}/v1/chat/completions"}}
    model:
      provider: anthropic
      name: "$(uri_captures.model)"
      options: {{upstream_url: "{anthropic_fake.url}/v1/messages"}}
    auth: {{header_name: x-api-key, header_value: "{ANTHROPIC_KEY}"}}
  - name: azure-by-header
    match: {{host: azure-dyn.internal, path: /v1/chat/completions}}
    model:
      provider: azure
      options: {{upstream_url: "{azure_fake.url}", azure_deployment_id: "$(headers.x-deployment)"}}
    auth: {{header_name: api-key, header_value: "{AZURE_KEY}"}}
  - name: tenant-path
    match: {{host: tenant.internal, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{anthropic_fake.url}/tenants/$(headers.x-tenant)/v1/messages"}}
    auth: {{header_name: x-api-key, header_value: "{ANTHROPIC_KEY}"}}
"""


@dataclass
class Env(SharedEnv):
    """The shared environment's fakes, with a client for any base URL (the preserved paths are the client's)."""

    def client(self, base_url: str, **headers: str) -> openai.OpenAI:  # type: ignore[override]
        http_client = httpx.Client(proxy=f"http://127.0.0.1:{self.proxy.port('regular')}", trust_env=False)
        return openai.OpenAI(
            base_url=base_url, api_key=CLIENT_KEY, http_client=http_client, max_retries=0, default_headers=headers
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fakes = FakeUpstream("openai"), FakeUpstream("azure"), FakeUpstream("anthropic")
    with running(Mitmdump(tmp_path_factory.mktemp("preserve"), rules(*fakes)), *fakes) as proxy:
        yield Env(proxy, *fakes)


@pytest.fixture
def e(env: Env) -> Env:
    env.reset()
    return env


def test_openai_embeddings_through_preserve(e: Env) -> None:
    e.openai.queue(Reply(json=EMBEDDING))
    out = e.client("http://api.openai.com/v1").embeddings.create(model="text-embedding-3-small", input="hello")
    assert out.data[0].embedding == [0.25, -0.5, 0.125]
    seen = e.openai.last()
    assert (seen.method, seen.path) == ("POST", "/v1/embeddings")
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert CLIENT_KEY not in str(seen.headers)
    assert seen.json["input"] == "hello" and seen.json["model"] == "text-embedding-3-small"
    record = next(r for r in reversed(e.proxy.wait_records(1)) if r["meta"]["rule"] == "openai-preserve")
    assert record["meta"]["route_type"] == "preserve"
    assert record["meta"]["request_model"] == "text-embedding-3-small"
    assert record["usage"]["prompt_tokens"] == 5
    assert record["usage"]["cost"] == pytest.approx(5 * 0.02 / 1_000_000)


def test_model_list_through_preserve(e: Env) -> None:
    e.openai.queue(Reply(json={"object": "list", "data": [{"id": "gpt-fake-1", "object": "model", "owned_by": "x"}]}))
    models = e.client("http://api.openai.com/v1").models.list()
    assert [m.id for m in models] == ["gpt-fake-1"]
    assert (e.openai.last().method, e.openai.last().path) == ("GET", "/v1/models")


def test_azure_embeddings_through_preserve(e: Env) -> None:
    e.azure.queue(Reply(json=EMBEDDING))
    out = e.client("http://azure-preserve.internal/v1").embeddings.create(model="ignored", input="hello")
    assert out.usage.prompt_tokens == 5
    seen = e.azure.last()
    assert seen.path == "/openai/deployments/emb-dep/embeddings"
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == AZURE_KEY and "authorization" not in seen.headers


def test_two_models_named_in_the_path(e: Env) -> None:
    for model in ("claude-alpha", "claude-beta"):
        client = e.client(f"http://models.internal/{model}/v1")
        raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
        assert raw.parse().choices[0].message.content == ANSWER
        assert e.anthropic.last().json["model"] == model
        assert raw.headers["x-ai-proxy-model"].startswith("anthropic/")  # the model is named in a header


def test_azure_deployment_chosen_by_header(e: Env) -> None:
    for deployment in ("gpt4o-east", "gpt4o-west"):
        client = e.client("http://azure-dyn.internal/v1", **{"x-deployment": deployment})
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content
        assert e.azure.last().path == f"/openai/deployments/{deployment}/chat/completions"


@pytest.mark.parametrize("value", ["../../admin", "evil.example:443@x", "a/b", "x?y=1#z"])
def test_template_values_cannot_change_host_or_escape_the_path(e: Env, value: str) -> None:
    client = e.client("http://azure-dyn.internal/v1", **{"x-deployment": value})
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    seen = e.azure.last()  # it reached the configured host, nothing else
    segments = seen.path.split("/")
    assert segments[:3] == ["", "openai", "deployments"] and segments[4:] == ["chat", "completions"]
    assert "/" not in segments[3] and segments[3] != ".."

    client = e.client("http://tenant.internal/v1", **{"x-tenant": value})
    client.chat.completions.create(model="claude-fake-1", messages=MESSAGES)
    segments = e.anthropic.last().path.split("/")
    assert segments[:2] == ["", "tenants"] and segments[3:] == ["v1", "messages"]


def test_dot_dot_template_value_is_refused(e: Env) -> None:
    client = e.client("http://azure-dyn.internal/v1", **{"x-deployment": ".."})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert not e.azure.requests


def test_no_secret_in_log_or_records(e: Env) -> None:
    e.openai.queue(Reply(json=EMBEDDING))
    e.client("http://api.openai.com/v1").embeddings.create(model="text-embedding-3-small", input="x")
    e.proxy.wait_records(1)
    text = e.proxy.log() + "".join(p.read_text() for p in Path(e.proxy.recordings).glob("*.jsonl"))
    for secret in (OPENAI_KEY, AZURE_KEY, ANTHROPIC_KEY):
        assert secret not in text
