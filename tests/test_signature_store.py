"""The signature store (addon/signature_store.py) and the translated route's use of it (addon/routes/signatures.py):
what it keeps, its bounds and scoping, how a request gets its reasoning back, and what a stream's collector notes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openai
import pytest

from addon import signature_store, sqlite_store
from addon.formats import ANTHROPIC
from addon.providers import REGISTRY, Call
from addon.providers.bedrock.stream import BedrockStream
from addon.routes import signatures
from addon.signature_store import Scope, SignatureStore, client_credential
from addon.spec import ModelOptions
from tests.support.bedrock import converse_answer
from tests.support.signed import FINAL, TOOL
from tests.support.signed_clients import QUESTION, SignedEnv, chat_loop, signed_fixtures

BLOCKS = [
    {"type": "thinking", "thinking": "add them", "signature": "sig-1"},
    {"type": "redacted_thinking", "data": "x"},
]


def test_blocks_are_kept_under_each_call_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SignatureStore(tmp_path / "s.sqlite3", 10_000, 60)
    store.save(["k1", "k2"], BLOCKS)
    assert store.load(["k1", "k2", "k3"]) == {"k1": BLOCKS, "k2": BLOCKS}
    later = 10**10
    monkeypatch.setattr(sqlite_store.time, "time", lambda: later)
    assert store.load(["k1"]) == {}  # expired
    monkeypatch.undo()
    small = SignatureStore(tmp_path / "small.sqlite3", 1000, 3600)
    for i in range(10):
        small.save([f"k{i}"], [{"type": "thinking", "thinking": "x" * 150, "signature": "s"}])
    kept = sorted(int(k[1:]) for k in small.load([f"k{i}" for i in range(10)]))
    assert kept and kept == list(range(10 - len(kept), 10)) and len(kept) < 10  # the oldest went first


def test_options_default_next_to_the_recordings_and_zero_turns_it_off(tmp_path: Path) -> None:
    options = SimpleNamespace(
        ai_signature_store="", ai_recordings=str(tmp_path), ai_signature_store_mb=2, ai_signature_store_days=3
    )
    store = signature_store.store_for(options)
    assert store is not None and store.path == tmp_path / "signatures.sqlite3"
    assert store.max_bytes == 2 * 1024 * 1024 and store.max_age == 3 * 86400
    assert signature_store.store_for(options) is store
    options.ai_signature_store_mb = 0
    assert signature_store.store_for(options) is None


def test_keys_are_scoped_by_rule_and_client_credential() -> None:
    alice = client_credential({"authorization": "Bearer alice"}, {})
    bob = client_credential({"authorization": "Bearer bob"}, {})
    team = client_credential({"x-team-key": "t1"}, {}, "X-Team-Key")
    assert alice != bob and team != client_credential({}, {}) == ""
    assert client_credential({}, {"key": "k"}) != ""
    keys = {Scope("r", alice).key("call_1"), Scope("r", bob).key("call_1"), Scope("r2", alice).key("call_1")}
    assert len(keys) == 3 and Scope("r", alice).key("call_1") == Scope("r", alice).key("call_1")
    assert "call_1" not in Scope("r", alice).key("call_1")


def _exchange(messages: list[dict[str, Any]], headers: dict[str, str], **body: Any) -> Any:
    call = Call(route_type="llm/v1/chat", body={"messages": messages, **body}, model="m", options=ModelOptions())
    rule = SimpleNamespace(name="rule", spec=SimpleNamespace(auth=None))
    return SimpleNamespace(provider=REGISTRY["bedrock"], rule=rule, client_headers=headers, call=call)


def _turn(call_id: str, **extra: Any) -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": "add", "arguments": "{}"}}
    return {"role": "assistant", "content": None, "tool_calls": [call], **extra}


def test_a_request_gets_its_reasoning_back_and_reports_what_the_store_lacks(tmp_path: Path) -> None:
    store = SignatureStore(tmp_path / "s.sqlite3", 100_000, 3600)
    answer = {"choices": [{"message": {**_turn("call_1"), "thinking_blocks": BLOCKS}}]}

    async def run() -> tuple[Any, Any, Any]:
        first = _exchange([], {"authorization": "Bearer alice"}, reasoning_effort="high")
        keeper = signatures.keeper_for(store, first)
        assert keeper is not None
        signatures.remember_answer(keeper, answer)  # saved in a thread; a load waits for it
        messages = [{"role": "user", "content": "hi"}, _turn("call_1"), {"role": "tool", "tool_call_id": "call_1"}]
        ex = _exchange([*messages, _turn("call_9")], {"authorization": "Bearer alice"}, reasoning_effort="low")
        await signatures.restore(signatures.keeper_for(store, ex), ex)  # type: ignore[arg-type]
        other = _exchange(messages, {"authorization": "Bearer bob"}, thinking={"type": "enabled"})
        await signatures.restore(signatures.keeper_for(store, other), other)  # type: ignore[arg-type]
        return ex, other, first

    ex, other, first = asyncio.run(run())
    assert ex.call.body["messages"][1]["thinking_blocks"] == BLOCKS
    assert "thinking_blocks" not in ex.call.body["messages"][3]  # call_9: never stored
    assert ex.call.dropped == ["thinking_blocks"]  # the request asks for reasoning: the missing turn is reported
    assert "thinking_blocks" not in other.call.body["messages"][1] and other.call.dropped == ["thinking_blocks"]
    # A request that does not ask for reasoning needs none back (and its answer signs none): the store is not used.
    assert signatures.keeper_for(store, _exchange(ex.call.body["messages"], {"authorization": "Bearer alice"})) is None
    assert signatures.keeper_for(None, ex) is None
    assert signatures.keeper_for(store, SimpleNamespace(**{**vars(ex), "provider": REGISTRY["openai"]})) is None
    assert first.call.dropped == []
    assert signatures.keeper_for(store, ex, ANTHROPIC) is None  # its format carries signed reasoning itself


def test_a_stream_collects_signed_blocks_and_call_ids_at_any_split(tmp_path: Path) -> None:
    _, frames = converse_answer(
        [
            ("reasoning", "sig-A", "I shall ", "add"),
            ("redacted", "UkVE"),
            ("text", "Adding."),
            ("tool", "tu_1", "add", '{"a":', "1}"),
        ],
        stop="tool_use",
    )
    body = b"".join(frames)
    for cut in range(0, len(body), 7):
        call = Call(route_type="llm/v1/chat", body={"messages": []}, model="anthropic.claude", options=ModelOptions())
        translator = BedrockStream(call, False, False)
        keeper = signatures.Keeper(SignatureStore(tmp_path / "s.sqlite3", 100_000, 3600), Scope("r", ""))
        signatures.watch(keeper, translator)
        out = translator.feed(body[:cut]) + translator.feed(body[cut:]) + translator.finish()
        assert b"reasoning_content" in out and b"[DONE]" in out
        collector = keeper.collector
        assert collector is not None and collector.call_ids == ["tu_1"]
        assert collector.blocks == [
            {"type": "thinking", "thinking": "I shall add", "signature": "sig-A"},
            {"type": "redacted_thinking", "data": "UkVE"},
        ]
        assert collector.result.completed and isinstance(translator.out, signatures.Collector)


# ---- end to end: OpenAI Chat clients, whose format has no place for signed reasoning ------------------------------

THINKING = {"type": "enabled", "budget_tokens": 2048}


def chat_knobs(provider: str) -> dict[str, Any]:
    """How an OpenAI Chat client asks the provider to reason: reasoning_effort where the provider maps it, else the
    extension `thinking` (LiteLLM's) where it takes that."""
    fields = REGISTRY[provider].optional_fields
    if "reasoning_effort" in fields:
        return {"reasoning_effort": "low"}
    return {"extra_body": {"thinking": THINKING}} if "thinking" in fields else {}


KEY = "sk-signatures-client-a"


env_module, env = signed_fixtures("e2e-signatures-chat")


@pytest.mark.e2e
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", ["anthropic", "bedrock", "gemini"])
def test_chat_clients_send_the_signatures_back_on_turns_two_and_three(
    env: SignedEnv, provider: str, stream: bool
) -> None:
    clients = env.openai_clients(provider, "chat", [KEY] * 3)
    assert chat_loop(clients, "gpt-5", stream, **chat_knobs(provider)) == FINAL
    first, second = env.issued(provider)
    # What the provider received: turn 2 has turn 1's signed reasoning, turn 3 both turns'.
    assert env.received(provider) == [[], [first], [first, second]]


@pytest.mark.e2e
def test_another_clients_key_finds_nothing_and_the_loss_is_reported(env: SignedEnv) -> None:
    alice, bob = env.openai_clients("bedrock", "chat", [KEY, "sk-signatures-client-b"])
    ask: dict[str, Any] = {"model": "gpt-5", "tools": [TOOL], **chat_knobs("bedrock")}
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    call = alice.chat.completions.create(messages=messages, **ask).choices[0].message.tool_calls[0]  # type: ignore[index]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "2"},
    ]
    try:  # the provider decides: Bedrock lets thinking give way (reported); a provider may refuse instead
        headers = bob.chat.completions.with_raw_response.create(messages=messages, **ask).headers
    except openai.BadRequestError as refused:
        headers = refused.response.headers
    assert "thinking_blocks" in headers["x-ai-proxy-dropped"].split(",")
    assert env.received("bedrock") == [[], [[]]]
