"""The end-to-end environment of the self-hosted providers (tests/providers/mistral, tests/providers/llama2): a
real mitmdump with the addon, fake Mistral (SSE), Ollama (NDJSON) and raw text-generation (TGI) servers, one rule
per format, the openai SDK as the client; and the fake upstreams' bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.chunks import collect as collect
from tests.support.fakes import FakeUpstream, chat_completion
from tests.support.mitmdump import Mitmdump, running
from tests.support.rules import rule_spec, rules_text
from tests.support.selfhosted import DIALOG, LLAMA2_DIALOG
from tests.support.tools import client_through

MISTRAL_KEY = "e2e-mistral-secret-0004"
CLIENT_KEY = "sk-client-key-must-not-travel"
MESSAGES = DIALOG
LLAMA2_PROMPT = LLAMA2_DIALOG
PIECES = ["Rome", " is the", " capital é."]
ANSWER = "".join(PIECES)
USAGE = {"prompt_tokens": 34, "completion_tokens": 12, "total_tokens": 46}


def rules(mistral: FakeUpstream, ollama: FakeUpstream, tgi: FakeUpstream) -> str:
    def rule(name: str, host: str, provider: str, model: str | None, options: dict[str, Any], **extra: Any) -> dict:
        logging = {"log_statistics": True, "log_payloads": True}
        return rule_spec(name, host, provider, model, options, extra.pop("route", "chat"), logging=logging, **extra)

    auth = {"header_name": "Authorization", "header_value": "Bearer ${E2E_MISTRAL_KEY}"}
    llama_raw = {"llama2_format": "raw", "upstream_url": f"{tgi.url}/generate"}
    spec = [
        rule("mistral-chat", "mistral.internal", "mistral", "mistral-small-latest", {"upstream_url": mistral.url},
             auth=auth),
        rule("mistral-completions", "mistral.internal", "mistral", "mistral-small-latest",
             {"upstream_url": mistral.url, "max_tokens": 64}, auth=auth, route="completions"),
        rule("mistral-ollama", "mistral-ollama.internal", "mistral", "mistral:7b",
             {"mistral_format": "ollama", "upstream_url": ollama.url}),
        rule("ollama-chat", "ollama.internal", "llama2", "llama3.2",
             {"llama2_format": "ollama", "upstream_url": ollama.url, "temperature": 0.2}),
        rule("ollama-completions", "ollama.internal", "llama2", "llama3.2",
             {"llama2_format": "ollama", "upstream_url": ollama.url}, route="completions"),
        rule("llama2-raw", "llama-raw.internal", "llama2", None, {**llama_raw, "max_tokens": 100}),
        rule("llama3-raw", "llama3-raw.internal", "llama2", "llama-3-8b-instruct",
             {**llama_raw, "llama_template": "llama3"}),
        rule("llama2-raw-completions", "llama-raw.internal", "llama2", None, llama_raw, route="completions"),
        rule("llama-openai", "llama-openai.internal", "llama2", "llama3.2",
             {"llama2_format": "openai", "upstream_url": ollama.url}),
    ]  # fmt: skip
    return rules_text(*spec)


class Env:
    def __init__(self, proxy: Mitmdump, mistral: FakeUpstream, ollama: FakeUpstream, tgi: FakeUpstream) -> None:
        self.proxy, self.mistral, self.ollama, self.tgi = proxy, mistral, ollama, tgi

    def client(self, host: str) -> openai.OpenAI:
        return client_through(self.proxy, host, CLIENT_KEY)

    def reset(self) -> None:
        for fake in (self.mistral, self.ollama, self.tgi):
            fake.reset()

    def record_with(self, marker: str) -> dict[str, Any]:
        return self.proxy.record_with(marker)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The fakes and the proxy, stopped after the module. A provider folder's conftest takes it in, and the
    `e` fixture of tests/conftest.py then resets this environment for each test."""
    fakes = FakeUpstream("mistral"), FakeUpstream("ollama"), FakeUpstream("tgi")
    with running(
        Mitmdump(
            Path(tmp_path_factory.mktemp("e2e-mistral-llama")), rules(*fakes), env={"E2E_MISTRAL_KEY": MISTRAL_KEY}
        ),
        *fakes,
    ) as proxy:
        yield Env(proxy, *fakes)


def assert_refused_without_upstream_url(provider: str, options: dict[str, Any]) -> None:
    """A self-hosted rule with no upstream_url cannot load: there is no public server to default to."""
    from addon.rules import RulesError, load_rules_text

    spec = {"name": "no-url", "match": {"host": "x.internal"}, "model": {"provider": provider, "options": options}}
    text = json.dumps({"rules": [spec]})
    with pytest.raises(RulesError, match=r"rule 'no-url': model\.options\.upstream_url is required"):
        load_rules_text(text, environ={})


def usage_of(chunks: list[Any]) -> list[tuple[int, int, int]]:
    return [(c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) for c in chunks if c.usage]


# ---- fake upstream bodies --------------------------------------------------------------------------------------


def sse(obj: Any, space: bool = True) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"data:{' ' if space else ''}{data}\n\n".encode()


def mistral_reply(text: str = ANSWER, finish: str = "stop") -> dict[str, Any]:
    return chat_completion(
        {"content": text}, finish, id="a1b2c3d4e5f6", created=1732548656, model="mistral-small-2409", usage=USAGE
    )


def mistral_stream(finish: str = "stop") -> list[bytes]:
    head = {"id": "a1b2c3d4e5f6", "object": "chat.completion.chunk", "created": 1732548656, "model": "mistral-small"}

    def chunk(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}], **extra})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in PIECES[:-1]]
    events.append(chunk({"content": PIECES[-1]}, finish, usage=USAGE))  # usage rides on the last content chunk
    return [*events, b"data: [DONE]\n\n"]


def ollama_stream(generate: bool = False, error: str | None = None) -> list[bytes]:
    def line(obj: dict[str, Any]) -> bytes:
        return json.dumps({"model": "llama3.2", "created_at": "2024-08-04T08:52:19Z", **obj}).encode() + b"\n"

    def piece(text: str) -> dict[str, Any]:
        return {"response": text} if generate else {"message": {"role": "assistant", "content": text}}

    lines = [line({**piece(p), "done": False}) for p in PIECES]
    if error:
        return [lines[0], json.dumps({"error": error}).encode() + b"\n"]
    final = {**piece(""), "done": True, "done_reason": "stop", "prompt_eval_count": 34, "eval_count": 12}
    lines.append(line(final))
    # Lines cut at odd places, as TCP may deliver them.
    raw = b"".join(lines)
    return [raw[:7], raw[7:60], raw[60:61], raw[61:150], raw[150:]]


def ollama_reply(generate: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"response": ANSWER} if generate else {"message": {"role": "assistant", "content": ANSWER}}
    return {"model": "llama3.2", "done": True, "done_reason": "stop", "prompt_eval_count": 34, "eval_count": 12,
            **body}  # fmt: skip


NDJSON = {"content-type": "application/x-ndjson"}


def tgi_stream() -> list[bytes]:
    events = [
        sse({"index": i, "token": {"id": i, "text": p, "logprob": -0.1, "special": False}, "generated_text": None,
             "details": None}, space=False)
        for i, p in enumerate([" " + PIECES[0], *PIECES[1:]], 1)
    ]  # fmt: skip
    final = {
        "index": 4,
        "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
        "generated_text": ANSWER,
        "details": {"finish_reason": "eos_token", "generated_tokens": 12, "seed": None, "input_length": 34},
    }
    return [b":\n\n", *events, sse(final, space=False)]
