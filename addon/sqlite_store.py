"""What the proxy's embedded stores share: one SQLite table of JSON rows, bounded by size (the oldest rows go first)
and age, written from a thread so the event loop never waits on the disk, and a load that waits for a save of the
same key still under way (a client that chains at once never misses what it just got). Also their mitmproxy
options: a file (default: in the recordings folder), a size bound in MB and an age bound in days.

Subclasses name their table and its JSON columns (after `id`, `created` and `size`, the bookkeeping every row has).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger("ai_proxy")


class BoundedStore:
    table: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]  # the JSON text columns of a row, after id, created and size

    def __init__(self, path: Path, max_bytes: int, max_age_seconds: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age_seconds
        self._lock = threading.Lock()  # one writer at a time; SQLite's own locking covers readers
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ready = False

    def _schema(self) -> str:
        payload = "".join(f", {c} TEXT NOT NULL" for c in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            f"(id TEXT PRIMARY KEY, created REAL NOT NULL, size INTEGER NOT NULL{payload});"
            f"CREATE INDEX IF NOT EXISTS {self.table}_created ON {self.table} (created);"
        )

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        if not self._ready:
            connection.executescript("PRAGMA journal_mode=WAL;" + self._schema())
            self._ready = True
        return connection

    # ---- blocking calls (run in a thread) ---------------------------------------------------------------------

    def put(self, rows: Iterable[tuple[str, ...]]) -> None:
        """Store rows (id, then one text per column), replacing rows of the same id; then apply the bounds."""
        now = time.time()
        marks = ", ".join("?" * (len(self.columns) + 3))
        values = [(row[0], now, sum(len(t) for t in row[1:]), *row[1:]) for row in rows]
        with self._lock, closing(self._connect()) as db, db:
            db.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES ({marks})", values)
            db.execute(f"DELETE FROM {self.table} WHERE created < ?", (now - self.max_age,))
            total = db.execute(f"SELECT COALESCE(SUM(size), 0) FROM {self.table}").fetchone()[0]
            if total > self.max_bytes:
                self._trim(db, total)

    def _trim(self, db: sqlite3.Connection, total: int) -> None:
        """Remove the oldest rows until the store is under its size bound."""
        excess = total - self.max_bytes
        doomed: list[str] = []
        for row_id, size in db.execute(f"SELECT id, size FROM {self.table} ORDER BY created"):
            if excess <= 0:
                break
            doomed.append(row_id)
            excess -= size
        db.executemany(f"DELETE FROM {self.table} WHERE id = ?", [(i,) for i in doomed])

    def get(self, ids: list[str]) -> dict[str, tuple[str, ...]]:
        """The unexpired rows of these ids: id -> its column texts."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT id, {', '.join(self.columns)} FROM {self.table} WHERE id IN ({marks}) AND created >= ?",
                (*ids, time.time() - self.max_age),
            ).fetchall()
        return {row[0]: tuple(row[1:]) for row in rows}

    def remove(self, row_id: str) -> bool:
        with self._lock, closing(self._connect()) as db, db:
            return db.execute(f"DELETE FROM {self.table} WHERE id = ?", (row_id,)).rowcount > 0

    # ---- from the event loop ------------------------------------------------------------------------------------

    def later(self, ids: list[str], write: Callable[..., None], *args: Any) -> None:
        """Run a write in a thread without waiting; a `settled` on any of `ids` waits for it."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, write, *args)
        for row_id in ids:
            self._pending[row_id] = future

        def done(f: asyncio.Future[Any]) -> None:
            for row_id in ids:
                if self._pending.get(row_id) is f:
                    del self._pending[row_id]
            if not f.cancelled() and f.exception() is not None:
                log.error(f"AI proxy: could not write to {self.path}: {f.exception()}")

        future.add_done_callback(done)

    async def settled(self, ids: Iterable[str]) -> None:
        """Wait for the writes still under way of any of these ids."""
        pending = {self._pending[i] for i in ids if i in self._pending}
        if pending:
            await asyncio.wait(pending)


# ---- the addon's options ------------------------------------------------------------------------------------------


def add_options(loader: Any, option: str, default_file: str, mb: int, days: int, what: str) -> None:
    """The options `<option>` (the file), `<option>_mb` and `<option>_days` of one store."""
    loader.add_option(option, str, "", f"SQLite file of {what} (default: {default_file} in ai_recordings).")
    loader.add_option(f"{option}_mb", int, mb, f"Size bound of {what}, in MB.")
    loader.add_option(f"{option}_days", int, days, f"How long {what} keeps an entry, in days.")


_STORES: dict[tuple[Any, ...], BoundedStore] = {}
# The options' values -> their store: asked on every translated request, so the path is worked out only once.
_BY_OPTIONS: dict[tuple[Any, ...], BoundedStore] = {}


def store_for[S: BoundedStore](options: Any, option: str, default_file: str, kind: type[S]) -> S:
    """The store the options name (one per path and bounds; created on first use, the file on first write)."""
    given = getattr(options, option)
    mb, days = getattr(options, f"{option}_mb"), getattr(options, f"{option}_days")
    asked = (kind, given, options.ai_recordings, mb, days)
    store = _BY_OPTIONS.get(asked)
    if store is None:
        path = given or str(Path(options.ai_recordings or ".") / default_file)
        key = (kind, str(Path(path).expanduser()), mb, days)
        if key not in _STORES:
            _STORES[key] = kind(Path(key[1]), mb * 1024 * 1024, days * 86400.0)
        store = _BY_OPTIONS[asked] = _STORES[key]
    return store  # type: ignore[return-value]
