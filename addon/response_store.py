"""The proxy's own store of Responses API responses, so `previous_response_id` and `GET /v1/responses/{id}` work on
providers that keep no server-side state: an embedded SQLite file (by default `responses.sqlite3` in the recordings
folder; option `ai_responses_store`), bounded by size (`ai_responses_store_mb`) and age
(`ai_responses_store_days`): the oldest responses are removed first.

Each row keeps the response object as the client received it and the conversation it closes (the input items of
every turn chained so far, and this response's output items): the next turn's `previous_response_id` prepends it.

Blocking I/O: the route calls it through `asyncio.to_thread`; a save is scheduled at the end of an exchange and a
load of that id waits for it (`pending`), so a client that chains at once never misses its previous response."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from . import jsonutil

log = logging.getLogger("ai_proxy")
DEFAULT_FILE = "responses.sqlite3"
DEFAULT_MB = 256
DEFAULT_DAYS = 30
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    response TEXT NOT NULL,
    conversation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
"""


class ResponseStore:
    def __init__(self, path: Path, max_bytes: int, max_age_seconds: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age_seconds
        self._lock = threading.Lock()  # one writer at a time; SQLite's own locking covers readers
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        if not self._ready:
            connection.executescript("PRAGMA journal_mode=WAL;" + _SCHEMA)
            self._ready = True
        return connection

    # ---- blocking calls (run in a thread) ---------------------------------------------------------------------

    def save(self, response_id: str, response: dict[str, Any], conversation: list[Any]) -> None:
        row_response, row_conversation = jsonutil.dumps_str(response), jsonutil.dumps_str(conversation)
        size = len(row_response) + len(row_conversation)
        now = time.time()
        with self._lock, closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (response_id, now, size, row_response, row_conversation),
            )
            db.execute("DELETE FROM responses WHERE created < ?", (now - self.max_age,))
            total = db.execute("SELECT COALESCE(SUM(size), 0) FROM responses").fetchone()[0]
            if total > self.max_bytes:
                self._trim(db, total)

    def _trim(self, db: sqlite3.Connection, total: int) -> None:
        """Remove the oldest rows until the store is under its size bound."""
        excess = total - self.max_bytes
        doomed: list[str] = []
        for row_id, size in db.execute("SELECT id, size FROM responses ORDER BY created"):
            if excess <= 0:
                break
            doomed.append(row_id)
            excess -= size
        db.executemany("DELETE FROM responses WHERE id = ?", [(i,) for i in doomed])

    def load(self, response_id: str) -> tuple[dict[str, Any], list[Any]] | None:
        """(response, conversation) of a stored, unexpired response, or None."""
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT response, conversation FROM responses WHERE id = ? AND created >= ?",
                (response_id, time.time() - self.max_age),
            ).fetchone()
        if row is None:
            return None
        return jsonutil.loads(row[0]), jsonutil.loads(row[1])

    def delete(self, response_id: str) -> bool:
        with self._lock, closing(self._connect()) as db, db:
            return db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

    # ---- from the event loop ------------------------------------------------------------------------------------

    def save_soon(self, response_id: str, response: dict[str, Any], conversation: list[Any]) -> None:
        """Save in a thread without waiting; a load of the same id waits for it."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self.save, response_id, response, conversation)
        self._pending[response_id] = future

        def done(f: asyncio.Future[Any]) -> None:
            if self._pending.get(response_id) is f:
                del self._pending[response_id]
            if not f.cancelled() and f.exception() is not None:
                log.error(f"AI proxy: could not store response {response_id}: {f.exception()}")

        future.add_done_callback(done)

    async def load_async(self, response_id: str) -> tuple[dict[str, Any], list[Any]] | None:
        pending = self._pending.get(response_id)
        if pending is not None:
            await asyncio.wait([pending])
        return await asyncio.to_thread(self.load, response_id)

    async def delete_async(self, response_id: str) -> bool:
        pending = self._pending.get(response_id)
        if pending is not None:
            await asyncio.wait([pending])
        return await asyncio.to_thread(self.delete, response_id)


# ---- the addon's options ------------------------------------------------------------------------------------------


def add_options(loader: Any) -> None:
    loader.add_option(
        "ai_responses_store",
        str,
        "",
        f"SQLite file of the Responses API conversations the proxy keeps (default: {DEFAULT_FILE} in ai_recordings).",
    )
    loader.add_option("ai_responses_store_mb", int, DEFAULT_MB, "Size bound of the Responses store, in MB.")
    loader.add_option("ai_responses_store_days", int, DEFAULT_DAYS, "How long the Responses store keeps a response.")


_STORES: dict[tuple[str, int, int], ResponseStore] = {}


def store_for(options: Any) -> ResponseStore:
    """The store the options name (one per path and bounds; created on first use, the file on first write)."""
    path = options.ai_responses_store or str(Path(options.ai_recordings or ".") / DEFAULT_FILE)
    key = (str(Path(path).expanduser()), options.ai_responses_store_mb, options.ai_responses_store_days)
    if key not in _STORES:
        _STORES[key] = ResponseStore(Path(key[0]), key[1] * 1024 * 1024, key[2] * 86400.0)
    return _STORES[key]
