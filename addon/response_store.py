"""The proxy's own store of Responses API responses, so `previous_response_id` and `GET /v1/responses/{id}` work on
providers that keep no server-side state: an embedded SQLite file (by default `responses.sqlite3` in the recordings
folder; option `ai_responses_store`), bounded by size (`ai_responses_store_mb`) and age
(`ai_responses_store_days`): the oldest responses are removed first (sqlite_store.BoundedStore).

Each row keeps the response object as the client received it and the conversation it closes (the input items of
every turn chained so far, and this response's output items): the next turn's `previous_response_id` prepends it.

Blocking I/O: the route calls it through `asyncio.to_thread`; a save is scheduled at the end of an exchange and a
load of that id waits for it (`pending`), so a client that chains at once never misses its previous response."""

from __future__ import annotations

import asyncio
from typing import Any

from . import jsonutil, sqlite_store

DEFAULT_FILE = "responses.sqlite3"
DEFAULT_MB = 256
DEFAULT_DAYS = 30
OPTION = "ai_responses_store"


class ResponseStore(sqlite_store.BoundedStore):
    table = "responses"
    columns = ("response", "conversation")

    # ---- blocking calls (run in a thread) ---------------------------------------------------------------------

    def save(self, response_id: str, response: dict[str, Any], conversation: list[Any]) -> None:
        self.put([(response_id, jsonutil.dumps_str(response), jsonutil.dumps_str(conversation))])

    def load(self, response_id: str) -> tuple[dict[str, Any], list[Any]] | None:
        """(response, conversation) of a stored, unexpired response, or None."""
        row = self.get([response_id]).get(response_id)
        if row is None:
            return None
        return jsonutil.loads(row[0]), jsonutil.loads(row[1])

    def delete(self, response_id: str) -> bool:
        return self.remove(response_id)

    # ---- from the event loop ------------------------------------------------------------------------------------

    def save_soon(self, response_id: str, response: dict[str, Any], conversation: list[Any]) -> None:
        """Save in a thread without waiting; a load of the same id waits for it."""
        self.later([response_id], self.save, response_id, response, conversation)

    async def load_async(self, response_id: str) -> tuple[dict[str, Any], list[Any]] | None:
        await self.settled([response_id])
        return await asyncio.to_thread(self.load, response_id)

    async def delete_async(self, response_id: str) -> bool:
        await self.settled([response_id])
        return await asyncio.to_thread(self.delete, response_id)


def add_options(loader: Any) -> None:
    sqlite_store.add_options(
        loader, OPTION, DEFAULT_FILE, DEFAULT_MB, DEFAULT_DAYS, "the Responses API conversations the proxy keeps"
    )


def store_for(options: Any) -> ResponseStore:
    """The store the options name (one per path and bounds; created on first use, the file on first write)."""
    return sqlite_store.store_for(options, OPTION, DEFAULT_FILE, ResponseStore)
