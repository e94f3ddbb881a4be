"""The real anthropic SDK as an end-to-end client of a mitmdump under test (plain HTTP virtual hosts through the
proxy; the SDK here builds on httpx2, hence its own DefaultHttpxClient), and the environment of the Anthropic-client
e2e tests: one rule per provider (`{provider}.claude.internal`), each with its fake server."""

from __future__ import annotations

from typing import Any

import anthropic

from tests.support import format_e2e
from tests.support.fakes import FakeUpstream, Recorded
from tests.support.format_e2e import PROVIDER_KEY as PROVIDER_KEY
from tests.support.format_e2e import FormatEnv
from tests.support.mitmdump import Mitmdump

CLIENT_KEY = "sk-ant-client-key-must-not-travel"


def anthropic_client(proxy: Mitmdump, host: str, api_key: str = CLIENT_KEY) -> anthropic.Anthropic:
    """An anthropic client of `http://{host}` through the proxy's regular mode, without retries."""
    http = anthropic.DefaultHttpxClient(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False)
    return anthropic.Anthropic(base_url=f"http://{host}", api_key=api_key, http_client=http, max_retries=0)


PROVIDERS = format_e2e.setups("openai", "azure", "gemini", "cohere", "mistral", "llama2", "huggingface")


def rules_yaml(fakes: dict[str, FakeUpstream]) -> str:
    return format_e2e.rules_yaml("anthropic", "claude.internal", PROVIDERS, fakes, "claude-*haiku*", path="/v1/*")


class Env(FormatEnv):
    def client(self, provider: str) -> anthropic.Anthropic:
        return anthropic_client(self.proxy, f"{provider}.claude.internal")

    def seen(self, provider: str) -> Recorded:
        """The one request the provider's fake received, free of the client's key."""
        assert len(self.fakes[provider].requests) == 1
        return super().seen(provider)


MESSAGES = [{"role": "user", "content": "What is 1 + 1?"}]


def first_tool_fragment(stream: Any) -> str:
    """Read a messages.stream() up to its first input_json_delta (the first piece of a tool call's arguments)."""
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            return event.delta.partial_json
    raise AssertionError("the stream held no input_json_delta")
