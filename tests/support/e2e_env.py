"""The shared end-to-end environment: fake OpenAI/Azure/Anthropic servers and one mitmdump with rules for
each, listening in regular mode and in reverse mode for each provider's host."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx
import openai

from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import Mitmdump

OPENAI_KEY = "e2e-openai-secret-0001"
AZURE_KEY = "e2e-azure-secret-0002"
ANTHROPIC_KEY = "e2e-anthropic-secret-0003"
CLIENT_KEY = "sk-client-key-must-not-travel"
SECRETS = (OPENAI_KEY, AZURE_KEY, ANTHROPIC_KEY)
CLIENT_CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")

MESSAGES = [
    {"role": "system", "content": "You are a mathematician."},
    {"role": "user", "content": "What is 1 + 1?"},
]


HOSTS = {"openai": "api.openai.com", "azure": "azure.internal", "anthropic": "anthropic.internal"}
MODELS = {"openai": "gpt-fake-1", "azure": "gpt-4o", "anthropic": "claude-fake-1"}


def rules_yaml(openai_fake: FakeUpstream, azure_fake: FakeUpstream, anthropic_fake: FakeUpstream) -> str:
    return f"""
rules:
  - name: openai-chat
    match: {{host: api.openai.com, path: /v1/chat/completions}}
    route_type: llm/v1/chat
    model:
      provider: openai
      name: gpt-fake-1
      options: {{upstream_url: "{openai_fake.url}"}}
    auth: {{header_name: Authorization, header_value: "Bearer ${{E2E_OPENAI_KEY}}"}}
    logging: {{log_statistics: true, log_payloads: true}}
  - name: openai-completions
    match: {{host: api.openai.com, path: /v1/completions}}
    route_type: llm/v1/completions
    model:
      provider: openai
      name: gpt-fake-instruct
      options: {{upstream_url: "{openai_fake.url}", max_tokens: 64}}
    auth: {{header_name: Authorization, header_value: "Bearer ${{E2E_OPENAI_KEY}}"}}
    logging: {{log_payloads: true}}
  - name: azure-chat
    match: {{host: azure.internal, path: /v1/chat/completions}}
    model:
      provider: azure
      name: gpt-4o
      options: {{upstream_url: "{azure_fake.url}", azure_deployment_id: dep-e2e, azure_api_version: "2024-10-21"}}
    auth: {{header_name: api-key, header_value: "${{E2E_AZURE_KEY}}"}}
    logging: {{log_payloads: true}}
  - name: azure-completions
    match: {{host: azure.internal, path: /v1/completions}}
    route_type: llm/v1/completions
    model:
      provider: azure
      name: gpt-35-instruct
      options: {{upstream_url: "{azure_fake.url}", azure_deployment_id: dep-instruct}}
    auth: {{header_name: api-key, header_value: "${{E2E_AZURE_KEY}}"}}
    logging: {{log_payloads: true}}
  - name: anthropic-chat
    match: {{host: anthropic.internal, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{anthropic_fake.url}/v1/messages", max_tokens: 256, input_cost: 3.0, output_cost: 15.0}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_ANTHROPIC_KEY}}"}}
    logging: {{log_payloads: true}}
  - name: anthropic-completions
    match: {{host: anthropic.internal, path: /v1/completions}}
    route_type: llm/v1/completions
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{anthropic_fake.url}"}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_ANTHROPIC_KEY}}"}}
    logging: {{log_payloads: true}}
  - name: anthropic-legacy-complete
    match: {{host: anthropic-legacy.internal, path: /v1/completions}}
    route_type: llm/v1/completions
    model:
      provider: anthropic
      name: claude-2.1
      options: {{upstream_url: "{anthropic_fake.url}/v1/complete"}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_ANTHROPIC_KEY}}"}}
  - name: no-auth-self-hosted
    match: {{host: selfhosted.internal, path: /v1/chat/completions}}
    model:
      provider: openai
      options: {{upstream_url: "{openai_fake.url}"}}
    max_request_body_size: 2048
  - name: always-stream
    match: {{host: always-stream.internal, path: /v1/chat/completions}}
    response_streaming: always
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{anthropic_fake.url}"}}
    auth: {{header_name: x-api-key, header_value: "${{E2E_ANTHROPIC_KEY}}"}}
  - name: deny-streaming
    match: {{host: nostream.internal, path: /v1/chat/completions}}
    response_streaming: deny
    model:
      provider: openai
      options: {{upstream_url: "{openai_fake.url}"}}
"""


@dataclass
class Env:
    proxy: Mitmdump
    openai: FakeUpstream
    azure: FakeUpstream
    anthropic: FakeUpstream

    @property
    def fakes(self) -> tuple[FakeUpstream, ...]:
        return (self.openai, self.azure, self.anthropic)

    def reset(self) -> None:
        for fake in self.fakes:
            fake.reset()

    def via_proxy(self, host: str, scheme: str = "https") -> openai.OpenAI:
        """The openai SDK as an unmodified app would run it with HTTPS_PROXY and the mitmproxy CA trusted."""
        client = httpx.Client(
            proxy=f"http://127.0.0.1:{self.proxy.port('regular')}",
            verify=ssl.create_default_context(cafile=str(self.proxy.ca)),
            trust_env=False,
        )
        return openai.OpenAI(base_url=f"{scheme}://{host}/v1", api_key=CLIENT_KEY, http_client=client, max_retries=0)

    def client(self, provider: str, via: str = "proxy") -> openai.OpenAI:
        host = HOSTS[provider]
        if via == "proxy":
            return self.via_proxy(host)
        return self.via_reverse("reverse:https://api.openai.com" if provider == "openai" else f"reverse:http://{host}")

    def fake(self, provider: str) -> FakeUpstream:
        return {"openai": self.openai, "azure": self.azure, "anthropic": self.anthropic}[provider]

    def via_reverse(self, mode_prefix: str) -> openai.OpenAI:
        """The openai SDK pointed at the proxy in reverse mode (base_url only, no proxy settings)."""
        client = httpx.Client(trust_env=False)
        base = f"http://127.0.0.1:{self.proxy.port(mode_prefix)}/v1"
        return openai.OpenAI(base_url=base, api_key=CLIENT_KEY, http_client=client, max_retries=0)
