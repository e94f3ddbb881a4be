"""The proxy's store of signed reasoning, for clients whose format has no place for it: an OpenAI Chat client talking
to Claude with thinking and tools gets no signatures back, so its next turn would reach the provider without the
thinking blocks Claude requires in a tool loop. The proxy keeps them itself: after an answer with tool calls and
signed reasoning (the standard extension `thinking_blocks`), the blocks are stored under each tool-call id; a later
request whose assistant turn has those tool calls but no thinking_blocks gets them back (routes/signatures.py).

An embedded SQLite file (by default `signatures.sqlite3` in the recordings folder; option `ai_signature_store`),
bounded by size (`ai_signature_store_mb`, default 64; 0 turns the store off) and age (`ai_signature_store_days`,
default 7): the oldest entries go first (sqlite_store.BoundedStore).

Keys are scoped: a digest of the rule's name, the client's credential (its auth headers and key parameters, as it
sent them) and the tool-call id, so one client cannot have another client's reasoning put into its own conversation
(it would need the other's key as well as its call ids), and the file holds neither ids nor keys."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from . import jsonutil, sqlite_store
from .auth import CREDENTIAL_HEADERS, CREDENTIAL_PARAMS

DEFAULT_FILE = "signatures.sqlite3"
DEFAULT_MB = 64
DEFAULT_DAYS = 7
OPTION = "ai_signature_store"


class SignatureStore(sqlite_store.BoundedStore):
    table = "signatures"
    columns = ("blocks",)

    # ---- blocking calls (run in a thread) ---------------------------------------------------------------------

    def save(self, keys: list[str], blocks: list[dict[str, Any]]) -> None:
        """The blocks of one answer under the key of each of its tool calls."""
        text = jsonutil.dumps_str(blocks)
        self.put([(key, text) for key in keys])

    def load(self, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The stored blocks of those keys that have some."""
        return {key: jsonutil.loads(row[0]) for key, row in self.get(keys).items()}

    # ---- from the event loop ------------------------------------------------------------------------------------

    def save_soon(self, keys: list[str], blocks: list[dict[str, Any]]) -> None:
        self.later(keys, self.save, keys, blocks)

    async def load_async(self, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
        await self.settled(keys)
        return await asyncio.to_thread(self.load, keys)


class Scope:
    """Where one client's entries live: the rule and the client's credential, digested with each tool-call id."""

    __slots__ = ("_prefix",)

    def __init__(self, rule: str, credential: str) -> None:
        self._prefix = f"{len(rule)}:{rule}\0{credential}\0".encode()

    def key(self, call_id: str) -> str:
        return hashlib.sha256(self._prefix + call_id.encode()).hexdigest()

    def keys(self, call_ids: Iterable[str]) -> list[str]:
        return [self.key(i) for i in call_ids]


def client_credential(headers: Mapping[str, str], query: Mapping[str, str], extra_header: str | None = None) -> str:
    """A digest of the credentials a client sent (auth headers, the rule's own key header, key parameters); the
    same for every request with the same key, whatever else differs."""
    names = [*CREDENTIAL_HEADERS, *([extra_header.lower()] if extra_header else [])]
    parts = [f"{n}={headers[n]}" for n in names if n in headers]
    parts += [f"?{k}={v}" for k, v in sorted(query.items()) if k.lower() in CREDENTIAL_PARAMS]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def add_options(loader: Any) -> None:
    sqlite_store.add_options(
        loader, OPTION, DEFAULT_FILE, DEFAULT_MB, DEFAULT_DAYS, "the signed reasoning the proxy keeps (0 MB: off)"
    )


def store_for(options: Any) -> SignatureStore | None:
    """The store the options name, or None when it is turned off (a size bound of 0)."""
    if getattr(options, f"{OPTION}_mb") <= 0:
        return None
    return sqlite_store.store_for(options, OPTION, DEFAULT_FILE, SignatureStore)
