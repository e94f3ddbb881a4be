"""The client's side of the three-turn tool loop of tests/support/signed.py, with the official SDKs through a real
mitmdump: OpenAI Chat (`chat_loop`), OpenAI Responses with the items replayed or chained by previous_response_id
(`responses_loop`), Anthropic Messages (`anthropic_loop`), Gemini generateContent (`gemini_loop`); plain or
streamed. Each returns the final answer's text.

`SignedEnv` is one mitmdump with a rule per client format and provider (`{provider}.{format}.sig.internal`) to the
signing fakes: Claude on Anthropic, Claude on Bedrock (SigV4 checked), Gemini 3. `keys` gives the client key of each
turn (`*_clients(provider, keys)`): one key keeps the proxy's signature store in play; a new key per turn leaves it
out (it is scoped by the client's credential), so only what the client's own format carries can bring the signatures
back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from tests.support.anthropic_sdk import anthropic_client
from tests.support.bedrock import FakeBedrock, proxy_for_bedrock
from tests.support.fakes import FakeUpstream
from tests.support.format_e2e import auth
from tests.support.mitmdump import Mitmdump
from tests.support.signed import (
    TOOL,
    FakeBedrockClaude,
    FakeClaude,
    FakeGemini,
    bedrock_signatures,
    claude_signatures,
    gemini_signatures,
)
from tests.support.tools import client_through

QUESTION = "Add 1 and 1, then 2 and 2, with the tool."
KEY_ID, SECRET, REGION = "AKIDE2ESIGNATURES001", "e2e/signatures/secret000000000000000001", "us-east-1"
MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "bedrock": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "gemini": "gemini-3-pro-preview",
}
FORMATS = {
    "chat": "llm_format: openai",
    "responses": "route_type: llm/v1/responses",
    "anthropic": "llm_format: anthropic",
    "gemini": "llm_format: gemini",
}


def _ask(api: Any, stream: bool, final: str, kwargs: dict[str, Any]) -> Any:
    """One turn: `api.create`, or `api.stream` and the SDK's own assembly of the streamed answer (`final`)."""
    if stream:
        with api.stream(**kwargs) as events:
            return getattr(events, final)()
    return api.create(**kwargs)


def _answer(arguments: str) -> str:
    args = json.loads(arguments)
    return str(args["a"] + args["b"])


# ---- OpenAI Chat ------------------------------------------------------------------------------------------------


def chat_loop(clients: list[openai.OpenAI], model: str, stream: bool, **knobs: Any) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    for client in clients:
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "tools": [TOOL], **knobs}
        completion = _ask(client.chat.completions, stream, "get_final_completion", kwargs)
        message = completion.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        calls = [c.model_dump(exclude_none=True) for c in message.tool_calls]
        messages.append({"role": "assistant", "content": message.content, "tool_calls": calls})
        messages += [
            {"role": "tool", "tool_call_id": c.id, "content": _answer(c.function.arguments)}  # type: ignore[union-attr]
            for c in message.tool_calls
        ]
    raise AssertionError("the conversation did not end in three turns")


# ---- OpenAI Responses -------------------------------------------------------------------------------------------

RESPONSES_TOOL = {"type": "function", **TOOL["function"]}  # type: ignore[dict-item]


def responses_loop(clients: list[openai.OpenAI], model: str, stream: bool, chained: bool) -> str:
    """As Codex does: reasoning asked with its encrypted content; the items replayed (or chained by id)."""
    history: list[Any] = [{"role": "user", "content": QUESTION}]
    pending, previous = list(history), None
    for client in clients:
        kwargs: dict[str, Any] = {"model": model, "tools": [RESPONSES_TOOL], "reasoning": {"effort": "low"},
                                  "include": ["reasoning.encrypted_content"]}  # fmt: skip
        if chained:
            kwargs["input"] = pending
            if previous is not None:
                kwargs["previous_response_id"] = previous
        else:
            kwargs["input"] = history
        response = _ask(client.responses, stream, "get_final_response", kwargs)
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return response.output_text
        outputs = [
            {"type": "function_call_output", "call_id": c.call_id, "output": _answer(c.arguments)} for c in calls
        ]
        history += [item.model_dump(exclude_none=True) for item in response.output] + outputs
        pending, previous = outputs, response.id
    raise AssertionError("the conversation did not end in three turns")


# ---- Anthropic Messages -----------------------------------------------------------------------------------------

ANTHROPIC_TOOL = {"name": "add", "description": "Adds two integers.", "input_schema": TOOL["function"]["parameters"]}  # type: ignore[index]


def anthropic_loop(clients: list[anthropic.Anthropic], model: str, stream: bool) -> str:
    """As Claude Code does: thinking on, every content block of an answer sent back as it came."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    for client in clients:
        kwargs: dict[str, Any] = {"model": model, "max_tokens": 4096, "messages": messages, "tools": [ANTHROPIC_TOOL],
                                  "thinking": {"type": "enabled", "budget_tokens": 2048}}  # fmt: skip
        message = _ask(client.messages, stream, "get_final_message", kwargs)
        uses = [b for b in message.content if b.type == "tool_use"]
        if not uses:
            return "".join(b.text for b in message.content if b.type == "text")
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]})
        results = [{"type": "tool_result", "tool_use_id": u.id, "content": _answer(json.dumps(u.input))} for u in uses]
        messages.append({"role": "user", "content": results})
    raise AssertionError("the conversation did not end in three turns")


# ---- Gemini generateContent ------------------------------------------------------------------------------------


def gemini_loop(clients: list[genai.Client], stream: bool) -> str:
    """As gemini-cli does: thoughts included, the model's parts (a stream's, gathered) sent back as they came."""
    declaration = types.FunctionDeclaration(
        name="add",
        description="Adds two integers.",
        parameters_json_schema=TOOL["function"]["parameters"],  # type: ignore[index]
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents = [types.Content(role="user", parts=[types.Part(text=QUESTION)])]
    for client in clients:
        kwargs: dict[str, Any] = {"model": "gemini-2.5-pro", "contents": contents, "config": config}
        if stream:
            chunks = list(client.models.generate_content_stream(**kwargs))
        else:
            chunks = [client.models.generate_content(**kwargs)]
        parts = [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or [])]  # type: ignore[union-attr]
        calls = [p.function_call for p in parts if p.function_call is not None]
        if not calls:
            return "".join(p.text or "" for p in parts if not p.thought)
        contents.append(types.Content(role="model", parts=parts))
        responses = [
            types.Part(function_response=types.FunctionResponse(
                id=c.id, name=c.name, response={"result": _answer(json.dumps(c.args))}
            ))
            for c in calls
        ]  # fmt: skip
        contents.append(types.Content(role="user", parts=responses))
    raise AssertionError("the conversation did not end in three turns")


# ---- the environment --------------------------------------------------------------------------------------------


@dataclass
class SignedEnv:
    proxy: Mitmdump
    bedrock: FakeBedrock
    fakes: dict[str, FakeUpstream]  # anthropic, gemini

    def reset(self) -> SignedEnv:
        self.bedrock.reset()
        self.bedrock.responder = FakeBedrockClaude()
        for fake in self.fakes.values():
            fake.reset()
        self.fakes["anthropic"].responder = FakeClaude()
        self.fakes["gemini"].responder = FakeGemini()
        return self

    def host(self, provider: str, fmt: str) -> str:
        return f"{provider}.{fmt}.sig.internal"

    def openai_clients(self, provider: str, fmt: str, keys: list[str]) -> list[openai.OpenAI]:
        return [client_through(self.proxy, self.host(provider, fmt), key) for key in keys]

    def anthropic_clients(self, provider: str, keys: list[str]) -> list[anthropic.Anthropic]:
        return [anthropic_client(self.proxy, self.host(provider, "anthropic"), key) for key in keys]

    def gemini_clients(self, provider: str, keys: list[str]) -> list[genai.Client]:
        proxy = f"http://127.0.0.1:{self.proxy.port('regular')}"
        return [
            genai.Client(api_key=key, http_options=types.HttpOptions(
                base_url=f"http://{self.host(provider, 'gemini')}",
                httpx_client=httpx.Client(proxy=proxy, trust_env=False, timeout=20),
            ))
            for key in keys
        ]  # fmt: skip

    def received(self, provider: str) -> list[list[list[str]]]:
        """Per request the provider received, per assistant turn, the signatures that came back."""
        if provider == "bedrock":
            return [bedrock_signatures(seen.json) for seen in self.bedrock.requests]
        of = claude_signatures if provider == "anthropic" else gemini_signatures
        return [of(rec.json) for rec in self.fakes[provider].requests]

    def issued(self, provider: str) -> list[list[str]]:
        """The opaque tokens (signatures, redacted data) of each answer of the provider that reasoned."""
        responder = self.bedrock.responder if provider == "bedrock" else self.fakes[provider].responder
        return responder.signer.turns  # type: ignore[union-attr]


def _rules(bedrock: FakeBedrock, fakes: dict[str, FakeUpstream]) -> str:
    out = "rules:\n"
    for fmt, select in FORMATS.items():
        for provider, model in MODELS.items():
            if provider == "bedrock":
                options = f'upstream_url: "{bedrock.url}", bedrock: {{aws_region: {REGION}}}'
                credentials = f'{{aws_access_key_id: "{KEY_ID}", aws_secret_access_key: "${{E2E_SIG_SECRET}}"}}'
            else:
                options, credentials = f'upstream_url: "{fakes[provider].url}"', auth(provider)
            out += f"""
  - name: {fmt}-to-{provider}
    match: {{host: {provider}.{fmt}.sig.internal}}
    {select}
    model: {{provider: {provider}, name: "{model}", aliases: {{"*": "{model}"}}, options: {{{options}}}}}
    auth: {credentials}
    logging: {{log_payloads: true}}
"""
    return out


@contextmanager
def signed_env(workdir: Path) -> Iterator[SignedEnv]:
    bedrock = FakeBedrock({KEY_ID: SECRET}, REGION)
    fakes = {name: FakeUpstream(name) for name in ("anthropic", "gemini")}
    try:
        with proxy_for_bedrock(workdir, _rules(bedrock, fakes), {"E2E_SIG_SECRET": SECRET}) as proxy:
            yield SignedEnv(proxy, bedrock, fakes)
    finally:
        bedrock.close()
        for fake in fakes.values():
            fake.close()


def signed_fixtures(name: str) -> tuple[Any, Any]:
    """A test module's two fixtures (`env_module, env = signed_fixtures(...)`): one `signed_env` for the module, and
    that environment with its fakes reset (fresh signers) before each test."""

    @pytest.fixture(scope="module", name="env_module")
    def env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedEnv]:
        with signed_env(tmp_path_factory.mktemp(name)) as shared:
            yield shared

    @pytest.fixture(name="env")
    def env(env_module: SignedEnv) -> SignedEnv:
        return env_module.reset()

    return env_module, env
