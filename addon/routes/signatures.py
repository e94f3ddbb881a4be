"""The translated route's use of the signature store (addon/signature_store.py): signed reasoning kept across turns
for clients whose format drops it (an OpenAI Chat client), so a provider that needs its reasoning back in a tool
loop (Claude, on Anthropic or Bedrock) gets it. Formats and providers stay pure: they only return the blocks in
answers (the extension `thinking_blocks`) and take them back in requests; the keeping is done here.

Only requests that ask for reasoning are concerned (a provider that does not reason now needs none back and signs
none):
- request: each assistant turn with tool calls and no thinking_blocks whose first
  tool-call id is in the store gets its blocks back before the provider sees the request; a turn the store cannot
  complete goes on as it is (the provider decides) and `thinking_blocks` is in the loss report;
- answer: a message with tool calls and thinking_blocks stores them under each tool-call id; a stream is watched as
  it passes (`Collector`: the reasoning text of the open block, the signatures, the tool-call ids — nothing else),
  and what it collected is stored when it has ended properly."""

from __future__ import annotations

from typing import Any

from ..openai_format import THINKING_BLOCKS
from ..reasoning import requested_budget
from ..record import Exchange
from ..signature_store import Scope, SignatureStore, client_credential
from ..streaming import StreamTranslator

LOSS = THINKING_BLOCKS  # the loss report's name for reasoning the store could not give back


class Keeper:
    """The store's work for one exchange: where its entries live, and the stream's collector once it started."""

    __slots__ = ("collector", "scope", "store")

    def __init__(self, store: SignatureStore, scope: Scope) -> None:
        self.store = store
        self.scope = scope
        self.collector: Collector | None = None


def keeper_for(store: SignatureStore | None, ex: Exchange, client_format: Any = None) -> Keeper | None:
    """A Keeper when the request asks for reasoning from a provider that takes signed reasoning back (and the store
    is on), else None: a provider that does not reason now needs none back and signs none, and a client format that
    carries signed reasoning itself (`carries_signed_reasoning`) needs no keeping."""
    call = ex.call
    if store is None or call is None or THINKING_BLOCKS not in ex.provider.optional_fields:
        return None
    if getattr(client_format, "carries_signed_reasoning", False):
        return None
    if not requested_budget(call.body)[0]:  # not asked to reason
        return None
    auth = ex.rule.spec.auth
    credential = client_credential(ex.client_headers, call.client_query, auth.header_name if auth is not None else None)
    return Keeper(store, Scope(ex.rule.name, credential))


def _first_call_id(message: Any) -> str | None:
    if not isinstance(message, dict) or message.get("role") != "assistant" or message.get(THINKING_BLOCKS):
        return None
    calls = message.get("tool_calls")
    first = calls[0] if isinstance(calls, list) and calls else None
    call_id = first.get("id") if isinstance(first, dict) else None
    return call_id if isinstance(call_id, str) and call_id else None


async def restore(keeper: Keeper, ex: Exchange) -> None:
    """The request's assistant turns with tool calls and no thinking_blocks get theirs from the store."""
    call = ex.call
    assert call is not None
    messages = call.body.get("messages")
    if not isinstance(messages, list):
        return
    wanted = {i: call_id for i, m in enumerate(messages) if (call_id := _first_call_id(m)) is not None}
    if not wanted:
        return
    keys = {i: keeper.scope.key(call_id) for i, call_id in wanted.items()}
    found = await keeper.store.load_async(list(dict.fromkeys(keys.values())))
    if found:
        restored = list(messages)
        for i, key in keys.items():
            if key in found:
                restored[i] = {**messages[i], THINKING_BLOCKS: found[key]}
        call.body = {**call.body, "messages": restored}
    if len(found) < len(set(keys.values())) and LOSS not in call.dropped:
        call.dropped.append(LOSS)


def remember_answer(keeper: Keeper, answer: dict[str, Any]) -> None:
    """A plain answer's signed reasoning, stored under its tool calls' ids."""
    choices = answer.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        return
    blocks = message.get(THINKING_BLOCKS)
    calls = message.get("tool_calls")
    if not isinstance(blocks, list) or not blocks or not isinstance(calls, list):
        return
    ids = [c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str) and c["id"]]
    if ids:
        keeper.store.save_soon(keeper.scope.keys(ids), blocks)


def watch(keeper: Keeper, translator: StreamTranslator) -> None:
    """The stream's writer wrapped so its reasoning signatures and tool calls are collected as they pass."""
    writer = getattr(translator, "out", None)
    if writer is None:
        return  # a passthrough translator: OpenAI-format streams carry no signed reasoning
    keeper.collector = Collector(writer)
    translator.out = keeper.collector  # type: ignore[attr-defined]


def remember_stream(keeper: Keeper) -> None:
    """What a stream that ended properly collected, stored."""
    collector = keeper.collector
    if collector is None or not collector.blocks or not collector.call_ids:
        return
    result = collector.result
    if result.completed and result.error is None:
        keeper.store.save_soon(keeper.scope.keys(collector.call_ids), collector.blocks)


class Collector:
    """A stream writer (chunks.StreamWriter) passed through, noting the signed reasoning blocks and the tool-call
    ids: the text of the reasoning block in progress, closed by its signature. Constant memory apart from them."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.result = inner.result
        for name in ("role", "text", "tool_call_arguments", "note_usage", "finish", "error"):  # the hot ones, bound
            setattr(self, name, getattr(inner, name))
        self.blocks: list[dict[str, Any]] = []
        self.call_ids: list[str] = []
        self._text: list[str] = []

    def __getattr__(self, name: str) -> Any:  # everything the collector does not watch
        return getattr(self._inner, name)

    def reasoning(self, text: str) -> bytes:
        self._text.append(text)
        return self._inner.reasoning(text)

    def reasoning_signature(self, signature: str) -> bytes:
        if signature:
            self.blocks.append({"type": "thinking", "thinking": "".join(self._text), "signature": signature})
            self._text = []
        return self._inner.reasoning_signature(signature)

    def reasoning_redacted(self, data: str) -> bytes:
        if data:
            self.blocks.append({"type": "redacted_thinking", "data": data})
        return self._inner.reasoning_redacted(data)

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        if call_id:
            self.call_ids.append(call_id)
        return self._inner.tool_call_start(index, call_id, name)
