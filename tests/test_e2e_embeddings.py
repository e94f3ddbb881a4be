"""End to end: the openai SDK's `embeddings.create` through a real mitmdump to fake OpenAI, Azure, Cohere, Gemini,
Ollama and Bedrock servers (the fake Bedrock checks SigV4). Each fake checks the native request; the client gets
vectors of the right length (the SDK asks for base64 by default and decodes it); the audit record has the usage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from addon.openai_format import encode_embedding
from tests.support.bedrock import BedrockReply, FakeBedrock
from tests.support.fakes import FakeUpstream, Recorded, Reply
from tests.support.mitmdump import Mitmdump, no_machine_aws, running
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

CLIENT_KEY = "sk-client-embed-must-not-travel"
OPENAI_KEY = "sk-e2e-openai-embed-fake"
AZURE_KEY = "az-e2e-embed-fake-key"
COHERE_KEY = "co-e2e-embed-fake-key"
GEMINI_KEY = "AIza-e2e-embed-fake"
AWS_KEY_ID = "AKIDE2EEMBEDFAKE0001"
AWS_SECRET = "e2e/embed+secret/00000000000000000000001"
REGION = "us-east-1"
VEC = [0.25, -0.5, 1.0, 0.125]  # exact in float32: base64 round trips compare equal
VEC2 = [1.5, 0.0, -2.0, 0.75]


def rules(fake: FakeUpstream, bedrock: FakeBedrock) -> str:
    def rule(name: str, provider: str, model: str, options: str, auth: str) -> str:
        return f"""
  - name: {name}
    match: {{host: {name}.internal, path: /v1/embeddings}}
    route_type: llm/v1/embeddings
    model: {{provider: {provider}, name: "{model}", options: {options}}}
    auth: {auth}
    logging: {{log_payloads: true}}"""

    url = f'upstream_url: "{fake.url}"'
    bedrock_options = f'{{upstream_url: "{bedrock.url}", bedrock: {{aws_region: {REGION}}}}}'
    aws = f"{{aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: {AWS_SECRET}}}"
    bearer = "{{header_name: Authorization, header_value: 'Bearer {}'}}"
    return "rules:" + "".join(
        [
            rule("openai", "openai", "text-embedding-3-small", f"{{{url}}}", bearer.format(OPENAI_KEY)),
            rule(
                "azure",
                "azure",
                "emb-deployment",
                f'{{{url}, azure_api_version: "2024-10-21"}}',
                f"{{header_name: api-key, header_value: {AZURE_KEY}}}",
            ),
            rule(
                "cohere",
                "cohere",
                "embed-v4.0",
                f"{{{url}, cohere: {{embedding_input_type: search_query}}}}",
                bearer.format(COHERE_KEY),
            ),
            rule(
                "gemini",
                "gemini",
                "gemini-embedding-001",
                f"{{{url}}}",
                f"{{param_name: key, param_value: {GEMINI_KEY}, param_location: query}}",
            ),
            rule("ollama", "llama2", "nomic-embed-text", f"{{{url}, llama2_format: ollama}}", "null"),
            rule("titan", "bedrock", "amazon.titan-embed-text-v2:0", bedrock_options, aws),
            rule("bedrock-cohere", "bedrock", "cohere.embed-english-v3", bedrock_options, aws),
        ]
    )


@dataclass
class Env:
    proxy: Mitmdump
    fake: FakeUpstream
    bedrock: FakeBedrock
    mark: int = 0  # records written before the current test

    def client(self, host: str) -> openai.OpenAI:
        return client_through(self.proxy, f"{host}.internal", CLIENT_KEY)

    def seen(self) -> Recorded:
        (req,) = self.fake.requests
        assert CLIENT_KEY not in json.dumps(req.headers) and CLIENT_KEY not in req.body.decode()
        return req

    def record(self, rule: str) -> dict[str, Any]:
        """The audit record of this test's request (records are written by a background thread)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [r for r in self.proxy.records()[self.mark :] if r["meta"]["rule"] == rule]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no audit record for rule {rule}")


@pytest.fixture(scope="module")
def embed_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fake = FakeUpstream("embeddings")
    bedrock = FakeBedrock({AWS_KEY_ID: AWS_SECRET}, REGION)
    workdir = tmp_path_factory.mktemp("e2e-embeddings")
    env = {
        **no_machine_aws(workdir),
    }
    with running(Mitmdump(workdir, rules(fake, bedrock), env=env), fake, bedrock) as proxy:
        yield Env(proxy, fake, bedrock)


@pytest.fixture
def e(embed_env: Env) -> Env:
    embed_env.fake.reset()
    embed_env.bedrock.reset()
    embed_env.mark = len(embed_env.proxy.wait_records(embed_env.mark, 2.0))  # the earlier tests' records
    return embed_env


def usage_of(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    u = record["usage"]
    return u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]


# --------------------------------------------------------------------------------------------------------------


def openai_list(*vectors: Any, tokens: int = 6) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def test_openai_sdk_default_base64(e: Env) -> None:
    e.fake.queue(Reply(json=openai_list(encode_embedding(VEC), encode_embedding(VEC2))))
    out = e.client("openai").embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [d.embedding for d in out.data] == [VEC, VEC2]
    assert out.usage.prompt_tokens == 6 and out.usage.total_tokens == 6
    req = e.seen()
    assert req.path == "/v1/embeddings"
    assert req.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert req.json == {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"}
    assert usage_of(e.record("openai")) == (6, 0, 6)


def test_azure_float(e: Env) -> None:
    e.fake.queue(Reply(json=openai_list(VEC, tokens=2)))
    out = e.client("azure").embeddings.create(model="emb-deployment", input="a", encoding_format="float", dimensions=4)
    assert out.data[0].embedding == VEC
    req = e.seen()
    assert req.path == "/openai/deployments/emb-deployment/embeddings"
    assert req.query == {"api-version": "2024-10-21"}
    assert req.headers["api-key"] == AZURE_KEY
    assert req.json == {"model": "emb-deployment", "input": "a", "encoding_format": "float", "dimensions": 4}
    assert usage_of(e.record("azure")) == (2, 0, 2)


def test_cohere(e: Env) -> None:
    e.fake.queue(
        Reply(json={"id": "x", "embeddings": {"float": [VEC, VEC2]}, "meta": {"billed_units": {"input_tokens": 3}}})
    )
    out = e.client("cohere").embeddings.create(model="embed-v4.0", input=["q1", "q2"], dimensions=4)
    assert [d.embedding for d in out.data] == [VEC, VEC2]
    assert [d.index for d in out.data] == [0, 1]
    req = e.seen()
    assert req.path == "/v2/embed"
    assert req.headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert req.json == {
        "model": "embed-v4.0",
        "texts": ["q1", "q2"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "output_dimension": 4,
    }
    assert usage_of(e.record("cohere")) == (3, 0, 3)


def test_gemini(e: Env) -> None:
    e.fake.queue(Reply(json={"embeddings": [{"values": VEC}]}))
    out = e.client("gemini").embeddings.create(model="gemini-embedding-001", input="a", encoding_format="float")
    assert out.data[0].embedding == VEC
    assert out.model == "gemini-embedding-001"
    req = e.seen()
    assert req.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert req.query == {"key": GEMINI_KEY}
    assert req.json == {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}}]}
    assert e.record("gemini")["usage"]["prompt_tokens"] is None  # Gemini does not count embedding tokens


def test_ollama(e: Env) -> None:
    e.fake.queue(Reply(json={"model": "nomic-embed-text", "embeddings": [VEC, VEC2], "prompt_eval_count": 5}))
    out = e.client("ollama").embeddings.create(model="nomic-embed-text", input=["a", "b"])
    assert [len(d.embedding) for d in out.data] == [4, 4] and out.data[1].embedding == VEC2
    req = e.seen()
    assert req.path == "/api/embed"
    assert req.json == {"model": "nomic-embed-text", "input": ["a", "b"]}
    assert usage_of(e.record("ollama")) == (5, 0, 5)


def test_bedrock_titan_signed(e: Env) -> None:
    e.bedrock.queue(
        BedrockReply(
            json={"embedding": VEC, "inputTextTokenCount": 3}, headers={"X-Amzn-Bedrock-Input-Token-Count": "3"}
        )
    )
    out = e.client("titan").embeddings.create(model="amazon.titan-embed-text-v2:0", input="hello", dimensions=4)
    assert out.data[0].embedding == VEC
    (seen,) = e.bedrock.requests
    assert seen.rejected is None, seen.rejected
    assert seen.path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert seen.json == {"inputText": "hello", "dimensions": 4}
    assert usage_of(e.record("titan")) == (3, 0, 3)


def test_bedrock_titan_refuses_several_inputs(e: Env) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        e.client("titan").embeddings.create(model="amazon.titan-embed-text-v2:0", input=["a", "b"])
    assert info.value.body["param"] == "input"
    assert e.bedrock.requests == []


def test_bedrock_cohere_header_usage(e: Env) -> None:
    e.bedrock.queue(
        BedrockReply(
            json={"id": "x", "embeddings": {"float": [VEC, VEC2]}, "response_type": "embeddings_by_type"},
            headers={"X-Amzn-Bedrock-Input-Token-Count": "7"},
        )
    )
    out = e.client("bedrock-cohere").embeddings.create(model="cohere.embed-english-v3", input=["a", "b"])
    assert [d.embedding for d in out.data] == [VEC, VEC2]
    (seen,) = e.bedrock.requests
    assert seen.rejected is None, seen.rejected
    assert seen.path == "/model/cohere.embed-english-v3/invoke"
    assert seen.json == {"texts": ["a", "b"], "input_type": "search_document", "embedding_types": ["float"]}
    assert usage_of(e.record("bedrock-cohere")) == (7, 0, 7)


def test_stream_flag_refused(e: Env) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        e.client("cohere").embeddings.create(model="embed-v4.0", input="a", extra_body={"stream": True})
    assert info.value.body["param"] == "stream"
    assert e.fake.requests == []


def test_upstream_error_in_openai_envelope(e: Env) -> None:
    e.fake.queue(Reply(status=400, json={"message": "invalid input_type"}))
    with pytest.raises(openai.BadRequestError) as info:
        e.client("cohere").embeddings.create(model="embed-v4.0", input="a")
    assert info.value.body["message"] == "invalid input_type"
