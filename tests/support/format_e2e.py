"""The end-to-end environment of a client-format test: one fake server per provider, one mitmdump whose rules send
each provider's virtual host to its fake, and the helpers every such test wants (the last request a fake saw,
checked free of the client's key; the audit record of one exchange)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import replies
from tests.support.fakes import FakeUpstream, Recorded
from tests.support.mitmdump import Mitmdump

PROVIDER_KEY = "provider-e2e-fake-key-0011"  # the provider key of rules_yaml's default auth
Setup = tuple[str, str, Any]
# provider -> (model, extra options, fake reply builder or None for the fake's OpenAI-format defaults); each format's
# tests pick the providers they reach with `setups`
SETUPS: dict[str, Setup] = {
    "openai": ("gpt-fake-1", "", None),
    "azure": ("gpt-fake-1", "azure_instance: fake, azure_deployment_id: dep-1, ", None),
    "anthropic": ("claude-fake-1", "", None),
    "gemini": ("gemini-fake-1", "", replies.gemini_reply),
    "cohere": ("command-fake", "", replies.cohere_reply),
    "mistral": ("mistral-fake", "", replies.mistral_reply),
    "llama2": ("llama3.2", "llama2_format: ollama, ", replies.ollama_reply),
    "huggingface": ("tgi", "", None),
}
AUTH_HEADERS = {"azure": "api-key", "anthropic": "x-api-key", "gemini": "x-goog-api-key"}  # default: a bearer


def setups(*providers: str) -> dict[str, Setup]:
    return {name: SETUPS[name] for name in providers}


def auth(provider: str, key: str = PROVIDER_KEY) -> str:
    """The rule's auth for `provider`: its own key header, or Authorization: Bearer."""
    header = AUTH_HEADERS.get(provider)
    if header is None:
        return f"{{header_name: Authorization, header_value: 'Bearer {key}'}}"
    return f"{{header_name: {header}, header_value: {key}}}"


@dataclass
class FormatEnv:
    proxy: Mitmdump
    fakes: dict[str, FakeUpstream]
    client_key: str

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port('regular')}"

    def seen(self, provider: str) -> Recorded:
        """The last request the provider's fake received; the client's key never reaches it."""
        req = self.fakes[provider].requests[-1]
        assert self.client_key not in json.dumps(req.headers) and self.client_key not in req.body.decode()
        return req

    def record(self, marker: str, timeout: float = 10.0) -> dict[str, Any]:
        """The last audit record whose payload holds `marker` (records are written by a background thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.proxy.records() if marker in json.dumps(r.get("payload"))]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no record holds {marker!r}")

    def queue_answer(self, provider: str, stream: bool) -> None:
        """Queue the provider's native answer (its SETUPS builder); none leaves the fake's OpenAI-style default."""
        builder = SETUPS[provider][2]
        if builder is not None:
            self.fakes[provider].queue(builder(stream))

    def reset(self) -> FormatEnv:
        for fake in self.fakes.values():
            fake.reset()
        return self


@contextmanager
def format_env(
    workdir: Path, providers: Iterable[str], rules: Callable[[dict[str, FakeUpstream]], str], client_key: str
) -> Iterator[FormatEnv]:
    fakes = {name: FakeUpstream(name) for name in providers}
    proxy = Mitmdump(workdir, rules(fakes)).start()
    try:
        yield FormatEnv(proxy, fakes, client_key)
    finally:
        proxy.stop()
        for fake in fakes.values():
            fake.close()


def fixtures[E: FormatEnv](
    env_type: type[E],
    providers: Iterable[str],
    rules: Callable[[dict[str, FakeUpstream]], str],
    client_key: str,
    name: str,
) -> tuple[Any, Any]:
    """A test module's two fixtures (`env_module, env = fixtures(...)`): `env_module`, one `format_env` of
    `env_type` for the module, and `env`, that environment with its fakes reset before each test."""

    @pytest.fixture(scope="module", name="env_module")
    def env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E]:
        with format_env(tmp_path_factory.mktemp(name), providers, rules, client_key) as shared:
            yield env_type(shared.proxy, shared.fakes, client_key)

    @pytest.fixture(name="env")
    def env(env_module: E) -> E:
        return env_module.reset()

    return env_module, env


def assert_tool_results_sent(sent: list[dict[str, Any]], second_result: str) -> None:
    """The OpenAI messages of the two-call round trip (call_1 add 1+1 answered "2", call_2 add 2+2): the second
    call kept as the client sent it back and each tool result under its call's id."""
    assert sent[1]["tool_calls"][1] == {
        "id": "call_2",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a":2,"b":2}'},
    }
    assert sent[2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "2"},
        {"role": "tool", "tool_call_id": "call_2", "content": second_result},
    ]


def rules_yaml(
    llm_format: str,
    hosts: str,
    providers: dict[str, Setup],
    fakes: dict[str, FakeUpstream],
    small: str,
    path: str = "",
    select: str = "",
    small_suffix: str = "-small",
    key: str = PROVIDER_KEY,
) -> str:
    """One rule per provider (`{provider}.{hosts}`) for clients of `llm_format` (`select`: the rule line that picks
    the format, default `llm_format: <llm_format>`): the provider's model, with `small` (a model-name pattern)
    aliased to `<model><small_suffix>` and every other name to the model, and `auth(provider, key)`."""
    out = "rules:\n"
    for provider, (model, extra, _) in providers.items():
        where = f", path: {path!r}" if path else ""
        out += f"""
  - name: {llm_format}-to-{provider}
    match: {{host: {provider}.{hosts}{where}}}
    {select or f"llm_format: {llm_format}"}
    model:
      provider: {provider}
      name: {model}
      aliases: {{"{small}": {model}{small_suffix}, "*": {model}}}
      options: {{{extra}upstream_url: "{fakes[provider].url}"}}
    auth: {auth(provider, key)}
    logging: {{log_payloads: true}}
"""
    return out
