"""The end-to-end set-up of the reasoning tests (#14): the openai SDK through one mitmdump to fake Gemini, Cohere,
Mistral and Ollama servers, one rule per provider (`{provider}.reasoning.internal`) that lets the client's model
through, so a test picks the model family (gemini-2.5-flash or gemini-3-flash-preview, magistral or mistral)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from tests.support.fakes import FakeUpstream, Recorded, Reply
from tests.support.format_e2e import PROVIDER_KEY
from tests.support.mitmdump import Mitmdump, running
from tests.support.rules import rule_spec, rules_text
from tests.support.tools import client_through

PROVIDERS = ("gemini", "cohere", "mistral", "llama2")
_OPTIONS = {"llama2": {"llama2_format": "ollama"}}
_AUTH = {
    "gemini": {"header_name": "x-goog-api-key", "header_value": PROVIDER_KEY},
    "llama2": None,
}
CLIENT_KEY = "sk-reasoning-client-key-must-not-travel"


def _rules(fakes: dict[str, FakeUpstream]) -> str:
    specs = []
    for provider, fake in fakes.items():
        auth = _AUTH.get(provider, {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"})
        extra: dict[str, Any] = {"logging": {"log_payloads": True}}
        if auth:
            extra["auth"] = auth
        options = {**_OPTIONS.get(provider, {}), "upstream_url": fake.url}
        specs.append(rule_spec(f"reasoning-{provider}", f"{provider}.reasoning.internal", provider, None, options,
                               **extra))  # fmt: skip
    return rules_text(*specs)


@dataclass
class ReasoningEnv:
    proxy: Mitmdump
    fakes: dict[str, FakeUpstream]

    def client(self, provider: str) -> openai.OpenAI:
        return client_through(self.proxy, f"{provider}.reasoning.internal", CLIENT_KEY)

    def seen(self, provider: str) -> Recorded:
        req = self.fakes[provider].requests[-1]
        assert CLIENT_KEY not in req.body.decode() and CLIENT_KEY not in json.dumps(req.headers)
        return req

    def ask(self, provider: str, stream: bool, **kw: Any) -> tuple[Any, str, Any, dict[str, str]]:
        """(the SDK's assistant message, its reasoning_content, the usage, the response headers), streamed (with
        usage asked for) or not."""
        create = self.client(provider).chat.completions.with_raw_response.create
        if not stream:
            raw = create(stream=False, **kw)
            completion = raw.parse()
            message = completion.choices[0].message
            reasoning = (message.model_extra or {}).get("reasoning_content") or ""
            return message, reasoning, completion.usage, dict(raw.headers)
        raw = create(stream=True, stream_options={"include_usage": True}, **kw)
        state, reasoning, usage = ChatCompletionStreamState(), "", None
        for chunk in raw.parse():
            state.handle_chunk(chunk)
            usage = chunk.usage or usage
            for choice in chunk.choices:
                reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
        return state.get_final_completion().choices[0].message, reasoning, usage, dict(raw.headers)

    def reasoning_reaches_the_client(
        self, provider: str, stream: bool, reply: Reply, model: str, effort: str, answer: str, thought: str
    ) -> dict[str, Any]:
        """Queue the provider's native `reply`, ask `model` with `effort` (plain or streamed): the client gets the
        `answer` and the `thought` as reasoning_content, nothing is reported dropped; the request the fake saw."""
        self.fakes[provider].queue(reply)
        message, reasoning, _, headers = self.ask(
            provider, stream, model=model, messages=[{"role": "user", "content": "Hi"}], reasoning_effort=effort
        )
        assert (message.content, reasoning) == (answer, thought)
        assert "x-ai-proxy-dropped" not in headers
        return self.seen(provider).json


@pytest.fixture(scope="module")
def renv_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReasoningEnv]:
    fakes = {name: FakeUpstream(name) for name in PROVIDERS}
    with running(Mitmdump(tmp_path_factory.mktemp("e2e-reasoning"), _rules(fakes)), *fakes.values()) as proxy:
        yield ReasoningEnv(proxy, fakes)


@pytest.fixture
def renv(renv_module: ReasoningEnv) -> ReasoningEnv:
    for fake in renv_module.fakes.values():
        fake.reset()
    return renv_module
