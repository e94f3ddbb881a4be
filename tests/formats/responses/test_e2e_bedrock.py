"""End to end: the openai SDK's Responses API through a real mitmdump to a fake Bedrock (Converse, SigV4 checked):
responses.create and responses.stream build the same answer, a conversation chains with previous_response_id."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.providers.bedrock.test_e2e_bedrock import ANSWER, KEY_ID, MODEL, REGION, SECRET, signed_ok
from tests.support.bedrock import FakeBedrock, bedrock_behind_proxy
from tests.support.mitmdump import Mitmdump
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mitmdump, FakeBedrock]]:
    def rules(fake: FakeBedrock) -> str:
        return f"""
rules:
  - name: responses-to-bedrock
    match: {{host: bedrock.codex.internal, path: "/v1/*"}}
    route_type: llm/v1/responses
    model:
      provider: bedrock
      name: "{MODEL}"
      aliases: {{"*": "{MODEL}"}}
      options: {{upstream_url: "{fake.url}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: "{KEY_ID}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
"""

    workdir = tmp_path_factory.mktemp("e2e-responses-bedrock")
    with bedrock_behind_proxy(workdir, {KEY_ID: SECRET}, REGION, rules, {"E2E_AWS_SECRET": SECRET}) as shared:
        yield shared


def client(proxy: Mitmdump) -> openai.OpenAI:
    return client_through(proxy, "bedrock.codex.internal", "sk-x")


def test_create_and_stream_give_the_same_answer(env: tuple[Mitmdump, FakeBedrock]) -> None:
    proxy, fake = env
    fake.reset()
    whole = client(proxy).responses.create(model="gpt-5", instructions="Be brief.", input="What is 1 + 1?")
    with client(proxy).responses.stream(model="gpt-5", input="What is 1 + 1?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert whole.output_text == final.output_text == "".join(deltas) == ANSWER
    assert whole.usage == final.usage and final.usage is not None and final.usage.input_tokens == 25
    first, second = fake.requests
    signed_ok(first)
    signed_ok(second)
    assert first.path.endswith("/converse") and second.path.endswith("/converse-stream")
    assert first.json["system"] == [{"text": "Be brief."}]


def test_previous_response_id_on_bedrock(env: tuple[Mitmdump, FakeBedrock]) -> None:
    proxy, fake = env
    fake.reset()
    first = client(proxy).responses.create(model="gpt-5", input="What is 1 + 1?")
    second = client(proxy).responses.create(model="gpt-5", input="And 2 + 2?", previous_response_id=first.id)
    assert second.output_text == ANSWER
    messages = fake.requests[-1].json["messages"]
    assert [(m["role"], m["content"][0]["text"]) for m in messages] == [
        ("user", "What is 1 + 1?"),
        ("assistant", ANSWER),
        ("user", "And 2 + 2?"),
    ]
