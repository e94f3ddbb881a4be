"""End to end: the google-genai SDK through a real mitmdump to a fake Amazon Bedrock that checks every SigV4
signature: generate_content, generate_content_stream, a function calling round trip and Bedrock's throttling as
the SDK's own ClientError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.providers.bedrock.test_e2e_bedrock import ANSWER, PIECES
from tests.support.bedrock import BedrockReply, FakeBedrock, Seen, bedrock_behind_proxy
from tests.support.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
KEY_ID = "AKIDE2EGEMINIBEDROCK1"
SECRET = "e2e/gemini+bedrock/secret00000000000001"
REGION = "us-east-1"
CLIENT_KEY = "AIza-client-key-must-not-travel"


@dataclass
class Env:
    proxy: Mitmdump
    fake: FakeBedrock

    def client(self) -> genai.Client:
        http = httpx.Client(proxy=f"http://127.0.0.1:{self.proxy.port('regular')}", trust_env=False, timeout=20)
        options = types.HttpOptions(base_url="http://bedrock.gemini.internal", httpx_client=http)
        return genai.Client(api_key=CLIENT_KEY, http_options=options)

    def seen(self) -> Seen:
        (seen,) = self.fake.requests
        assert seen.rejected is None, seen.rejected
        assert CLIENT_KEY not in json.dumps(seen.headers) and CLIENT_KEY not in seen.body.decode()
        return seen


@pytest.fixture(scope="module")
def env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    def rules(fake: FakeBedrock) -> str:
        return f"""
rules:
  - name: gemini-to-bedrock
    match: {{host: bedrock.gemini.internal}}
    llm_format: gemini
    model:
      provider: bedrock
      name: "{MODEL}"
      aliases: {{"*": "{MODEL}"}}
      options: {{upstream_url: "{fake.url}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: {KEY_ID}, aws_secret_access_key: "{SECRET}"}}
    logging: {{log_payloads: true}}
"""

    workdir = tmp_path_factory.mktemp("e2e-gemini-bedrock")
    with bedrock_behind_proxy(workdir, {KEY_ID: SECRET}, REGION, rules) as (proxy, fake):
        yield Env(proxy, fake)


@pytest.fixture
def env(env_module: Env) -> Env:
    env_module.fake.reset()
    return env_module


def test_generate_content(env: Env) -> None:
    out = env.client().models.generate_content(
        model="gemini-2.5-pro",
        contents="What is 1 + 1?",
        config=types.GenerateContentConfig(system_instruction="You are a mathematician.", max_output_tokens=256),
    )
    assert out.text == ANSWER and out.candidates[0].finish_reason == types.FinishReason.STOP
    assert (out.usage_metadata.prompt_token_count, out.usage_metadata.candidates_token_count) == (25, 12)
    seen = env.seen()
    assert seen.path.endswith("/converse")
    assert seen.json["system"] == [{"text": "You are a mathematician."}]
    assert seen.json["messages"] == [{"role": "user", "content": [{"text": "What is 1 + 1?"}]}]


def test_generate_content_stream(env: Env) -> None:
    chunks = list(env.client().models.generate_content_stream(model="gemini-2.5-pro", contents="What is 1 + 1?"))
    assert "".join(c.text or "" for c in chunks) == "".join(PIECES) == ANSWER
    assert chunks[-1].usage_metadata.candidates_token_count == 12
    assert env.seen().path.endswith("/converse-stream")


ADD = types.FunctionDeclaration(
    name="add",
    parameters_json_schema={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
)
CONFIG = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[ADD])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)


def test_a_function_calling_round_trip(env: Env) -> None:
    tool_use = {"toolUse": {"toolUseId": "tu_1", "name": "add", "input": {"a": 1, "b": 1}}}
    env.fake.queue(
        BedrockReply(
            json={
                "output": {"message": {"role": "assistant", "content": [tool_use]}},
                "stopReason": "tool_use",
                "usage": {"inputTokens": 40, "outputTokens": 20, "totalTokens": 60},
            }
        )
    )
    client = env.client()
    question = types.Content(role="user", parts=[types.Part(text="What is 1 + 1?")])
    first = client.models.generate_content(model="gemini-2.5-pro", contents=[question], config=CONFIG)
    assert [(c.id, c.name, c.args) for c in first.function_calls or []] == [("tu_1", "add", {"a": 1, "b": 1})]
    assert env.seen().json["toolConfig"]["tools"][0]["toolSpec"]["name"] == "add"
    env.fake.reset()
    answer = types.Content(role="user", parts=[types.Part.from_function_response(name="add", response={"output": "2"})])
    final = client.models.generate_content(
        model="gemini-2.5-pro", contents=[question, first.candidates[0].content, answer], config=CONFIG
    )
    assert final.text == ANSWER
    messages = env.seen().json["messages"]
    assert messages[1]["content"] == [tool_use]
    assert messages[2]["content"][0]["toolResult"]["toolUseId"] == "tu_1"


def test_throttling_is_the_sdks_client_error(env: Env) -> None:
    env.fake.queue(
        BedrockReply(429, {"message": "Too many requests"}, {"x-amzn-ErrorType": "ThrottlingException:http://x/"})
    )
    with pytest.raises(errors.ClientError) as e:
        env.client().models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert (e.value.code, e.value.status) == (429, "RESOURCE_EXHAUSTED") and "Too many requests" in e.value.message
