"""The real anthropic SDK as an end-to-end client of a mitmdump under test (plain HTTP virtual hosts through the
proxy; the SDK here builds on httpx2, hence its own DefaultHttpxClient), and the environment of the Anthropic-client
e2e tests: one rule per provider (`{provider}.claude.internal`), each with its fake server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anthropic

from tests.support import replies
from tests.support.fakes import FakeUpstream, Recorded
from tests.support.mitmdump import Mitmdump

CLIENT_KEY = "sk-ant-client-key-must-not-travel"


def anthropic_client(proxy: Mitmdump, host: str, api_key: str = CLIENT_KEY) -> anthropic.Anthropic:
    """An anthropic client of `http://{host}` through the proxy's regular mode, without retries."""
    http = anthropic.DefaultHttpxClient(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False)
    return anthropic.Anthropic(base_url=f"http://{host}", api_key=api_key, http_client=http, max_retries=0)


PROVIDER_KEY = "provider-e2e-fake-key-0011"
# provider -> (model, extra options, fake reply builder or None for the fake's OpenAI-format defaults)
PROVIDERS: dict[str, tuple[str, str, Any]] = {
    "openai": ("gpt-fake-1", "", None),
    "azure": ("gpt-fake-1", "azure_instance: fake, azure_deployment_id: dep-1, ", None),
    "gemini": ("gemini-fake-1", "", replies.gemini_reply),
    "cohere": ("command-fake", "", replies.cohere_reply),
    "mistral": ("mistral-fake", "", replies.mistral_reply),
    "llama2": ("llama3.2", "llama2_format: ollama, ", replies.ollama_reply),
    "huggingface": ("tgi", "", None),
}
AUTH = {
    "openai": f"{{header_name: Authorization, header_value: 'Bearer {PROVIDER_KEY}'}}",
    "azure": f"{{header_name: api-key, header_value: {PROVIDER_KEY}}}",
    "gemini": f"{{header_name: x-goog-api-key, header_value: {PROVIDER_KEY}}}",
}
DEFAULT_AUTH = f"{{header_name: Authorization, header_value: 'Bearer {PROVIDER_KEY}'}}"


def rules_yaml(fakes: dict[str, FakeUpstream]) -> str:
    out = "rules:\n"
    for provider, (model, extra, _) in PROVIDERS.items():
        out += f"""
  - name: claude-to-{provider}
    match: {{host: {provider}.claude.internal, path: "/v1/*"}}
    llm_format: anthropic
    model:
      provider: {provider}
      name: {model}
      aliases: {{"claude-*haiku*": {model}-small, "*": {model}}}
      options: {{{extra}upstream_url: "{fakes[provider].url}"}}
    auth: {AUTH.get(provider, DEFAULT_AUTH)}
    logging: {{log_payloads: true}}
"""
    return out


@dataclass
class Env:
    proxy: Mitmdump
    fakes: dict[str, FakeUpstream]

    def client(self, provider: str) -> anthropic.Anthropic:
        return anthropic_client(self.proxy, f"{provider}.claude.internal")

    def seen(self, provider: str) -> Recorded:
        (req,) = self.fakes[provider].requests
        assert CLIENT_KEY not in json.dumps(req.headers) and CLIENT_KEY not in req.body.decode()
        return req


def queue_answer(env: Env, provider: str, stream: bool) -> None:
    builder = PROVIDERS[provider][2]
    if builder is not None:
        env.fakes[provider].queue(builder(stream))


MESSAGES = [{"role": "user", "content": "What is 1 + 1?"}]


def first_tool_fragment(stream: Any) -> str:
    """Read a messages.stream() up to its first input_json_delta (the first piece of a tool call's arguments)."""
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            return event.delta.partial_json
    raise AssertionError("the stream held no input_json_delta")
