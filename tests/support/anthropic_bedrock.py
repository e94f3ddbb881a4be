"""The environment of the Anthropic-client e2e tests against the fake Bedrock (tests/support/bedrock.py): a rule
for Claude models on Bedrock with aliases (and one whose Bedrock cannot be reached), a client of it, and helpers
that queue an answer both ways and ask for it streamed or not."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anthropic

from tests.support.anthropic_sdk import CLIENT_KEY, anthropic_client
from tests.support.bedrock import BedrockReply, FakeBedrock, Seen, converse_answer
from tests.support.mitmdump import Mitmdump, free_ports

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SMALL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
PATH = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
KEY_ID = "AKIDE2EANTHROPICBR01"
SECRET = "e2e/anthropic-to-bedrock/secret000000001"
REGION = "eu-west-3"
MESSAGES = [{"role": "user", "content": "What is 1 + 1?"}]
TOOLS = [
    {
        "name": "add",
        "description": "Add two numbers",
        "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    }
]


def rules_yaml(fake: FakeBedrock) -> str:
    return f"""
rules:
  - name: claude-code-on-bedrock
    match: {{host: bedrock.claude.internal, path: "/v1/*"}}
    llm_format: anthropic
    model:
      provider: bedrock
      name: "{MODEL}"
      aliases: {{"claude-*haiku*": "{SMALL}", "*": "{MODEL}"}}
      options: {{upstream_url: "{fake.url}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: "${{E2E_AWS_KEY_ID}}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
    logging: {{log_payloads: true}}
  - name: claude-code-on-bedrock-unreachable
    match: {{host: bedrock-down.claude.internal, path: "/v1/*"}}
    llm_format: anthropic
    model:
      provider: bedrock
      name: "{MODEL}"
      options: {{upstream_url: "http://127.0.0.1:{free_ports(1)[0]}", bedrock: {{aws_region: {REGION}}}}}
    auth: {{aws_access_key_id: "${{E2E_AWS_KEY_ID}}", aws_secret_access_key: "${{E2E_AWS_SECRET}}"}}
"""


@dataclass
class Env:
    proxy: Mitmdump
    fake: FakeBedrock

    def client(self) -> anthropic.Anthropic:
        return anthropic_client(self.proxy, "bedrock.claude.internal")

    def seen(self) -> Seen:
        """The one request the fake got: signed for the rule's keys and region, without the client's key."""
        (seen,) = self.fake.requests
        assert seen.rejected is None, seen.rejected
        assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
        assert f"/{REGION}/bedrock/aws4_request" in seen.headers["authorization"]
        assert CLIENT_KEY not in json.dumps(seen.headers) and CLIENT_KEY not in seen.body.decode()
        return seen


def queue(
    env: Env,
    blocks: list[tuple[Any, ...]],
    stream: bool,
    stop: str = "end_turn",
    fields: dict[str, Any] | None = None,
    **usage: int,
) -> None:
    answer, frames = converse_answer(blocks, stop, fields, **usage)
    env.fake.queue(BedrockReply(frames=frames) if stream else BedrockReply(json=answer))


def ask(env: Env, stream: bool, **kwargs: Any) -> tuple[anthropic.types.Message, dict[str, str]]:
    """The answer (the stream's accumulated message when streamed) and the response headers."""
    client = env.client()
    kwargs = {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": MESSAGES, **kwargs}
    if stream:
        with client.messages.stream(**kwargs) as s:
            return s.get_final_message(), dict(s.response.headers)
    raw = client.messages.with_raw_response.create(**kwargs)
    return raw.parse(), dict(raw.headers)
