"""Audit: the JSONL writer of the records and its helpers (times, payloads); the price table is pricing.py's.

Records are serialised and written on a background thread (no file I/O on mitmproxy's event loop), one whole
line per write call; the queue is drained at shutdown and records that come later are written directly, so
nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from . import jsonutil
from .pricing import PriceTable as PriceTable  # re-exported: the addon and tests name it audit.PriceTable

log = logging.getLogger(__name__)

# An escape that may spell a character of a secret otherwise than orjson writes it: `\/`, or `\u` for anything but
# a C0 control (no credential holds one). `\\u`, an escaped backslash before a u, also matches: parsed, still right.
_SPELLED = re.compile(rb"\\(?:/|u(?!00[01]))")
# How many escapes _spelled_otherwise looks at one by one (a memchr each) before the regular expression takes the
# rest: a body with few escapes is decided at once, one full of them in one bounded scan.
_ESCAPES_ONE_BY_ONE = 256
BATCH_WAIT_SECONDS = 0.02
# How long `close` waits for queued records to reach the disk (a slow or stuck disk must not hang a shutdown).
CLOSE_TIMEOUT_SECONDS = 5.0


def time_per_token(latency_ms: float | None, usage: dict[str, Any] | None) -> float | None:
    if latency_ms is None or not usage or not usage.get("completion_tokens"):
        return None
    return round(latency_ms / usage["completion_tokens"], 3)


def iso_time(timestamp: float | None = None) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload_value(raw: bytes | str | None, valid_json: bool = False) -> Any:
    """A body as it goes into a record: parsed JSON when it is JSON, text otherwise.

    `valid_json`: the proxy has already parsed these bytes as JSON. They then go into the record as they are
    (orjson.Fragment), neither parsed nor serialised again: an agent's 200 KB history costs a copy, not two walks on
    the writer thread (which holds the GIL while it works). Bytes with a line break (JSON Lines keep one record a
    line; one memchr each) or with an escape that may spell a secret's character otherwise than orjson writes it
    (`\\/`, or `\\u` for anything but a control character: secrets are redacted by their plain spelling) are parsed
    and written anew instead. The escapes every agent's body holds (`\\"`, `\\n`, `\\\\`, `\\u001b`) keep the fast
    path; a memchr per escape (the first few hundred) and one regular-expression scan past them decide."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        if valid_json and not (b"\n" in raw or b"\r" in raw or _spelled_otherwise(raw)):
            return orjson.Fragment(raw)
        try:
            return jsonutil.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")
    try:
        return jsonutil.loads(raw)
    except ValueError:
        return raw


def _spelled_otherwise(raw: bytes) -> bool:
    """Whether JSON bytes hold an escape that may spell a secret's character otherwise than orjson writes it."""
    at = raw.find(b"\\")
    for _ in range(_ESCAPES_ONE_BY_ONE):
        if at < 0:
            return False
        if raw[at + 1 : at + 2] in (b"/", b"u") and _SPELLED.match(raw, at):
            return True
        at = raw.find(b"\\", at + 2)  # past the escaped character: `\\` is one escape
    return at >= 0 and _SPELLED.search(raw, at) is not None


def raw_json(serialised: bytes | None) -> Any:
    """Bytes the proxy serialised itself (compact: no line breaks), as they go into a record."""
    return None if serialised is None else orjson.Fragment(serialised)


# A record, or a function that builds one (as a dict, or as its JSON line already serialised).
Record = dict[str, Any] | Callable[[], dict[str, Any] | bytes]
# A record and the secrets of its own exchange (per-request values: a client's key on allow_override, tokens).
_Item = tuple[Record, tuple[str, ...]]


class Recorder:
    """Appends records as JSON lines to `<folder>/ai-proxy-YYYY-MM-DD.jsonl` (UTC date; `…-YYYY-MM-DD.<tag>.jsonl` with
    a tag, e.g. one per proxy process) from one writer thread.

    `write` takes a record or a function that builds one: building and serialising then happen on the writer
    thread. The thread drains whatever is queued in one batch and one write call, keeping the file open.

    Nothing is lost at shutdown and nothing is written twice: `close` puts a stop mark behind everything queued
    and waits (bounded) for the thread to write it all; a record written after `close` (an exchange that ends
    while the proxy stops) is written at once by the caller. The thread is a daemon, so a recorder nobody closes
    can never hold the process at exit, and an exit hook closes every recorder still open, so a queue is drained
    before the interpreter stops its daemon threads.
    """

    def __init__(self, folder: str | Path, redact: tuple[str, ...] = (), tag: str = "") -> None:
        self.folder = Path(folder)
        self._suffix = f".{tag}.jsonl" if tag else ".jsonl"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._redact = tuple(s.encode() for s in redact)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        # Orders `write` against `close`: an item is queued before the stop mark or written by its caller.
        self._state_lock = threading.Lock()
        self._closed = False
        # One writer of the files at a time (the thread, or a caller after close): lines never interleave.
        self._io_lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._file_path: Path | None = None
        self._day = -1
        self._day_path = self.folder
        self._thread = threading.Thread(target=self._run, name="ai-proxy-recorder", daemon=True)
        self._thread.start()
        _OPEN.add(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def set_redactions(self, secrets: tuple[str, ...]) -> None:
        self._redact = tuple(sorted({s.encode() for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def write(self, record: Record, secrets: tuple[str, ...] = ()) -> None:
        """Queue a record; `secrets` are redacted from it like the configured ones. After `close` (or if the
        writer thread has died) the record is written before this returns."""
        item = (record, secrets)
        with self._state_lock:
            if not self._closed and self._thread.is_alive():
                self._queue.put(item)
                return
        line = self._line(item)
        if line:
            with self._io_lock:
                self._append_once(line)

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
        """Stop taking records into the queue and wait up to `timeout` seconds for it to be written. True when
        everything queued is on disk. Safe to call more than once."""
        with self._state_lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        _OPEN.discard(self)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(f"audit records still being written after {timeout:g} s (about {self._queue.qsize()} queued)")
            return False
        return True

    def path_for_today(self) -> Path:
        day = int(time.time() // 86400)
        if day != self._day:
            self._day = day
            self._day_path = self.folder / f"ai-proxy-{time.strftime('%Y-%m-%d', time.gmtime())}{self._suffix}"
        return self._day_path

    def _run(self) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                # Let a busy proxy queue a few more: one wake-up and one write per batch, not per record.
                time.sleep(BATCH_WAIT_SECONDS)
                while True:  # whatever else is waiting goes out with the same write
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    lines = [self._line(item) for item in batch if item is not None]
                    with self._io_lock:
                        self._append(b"".join(line for line in lines if line))
                except Exception:  # the thread must outlive any one bad batch, or later records pile up unseen
                    log.exception("could not write audit records")
                if None in batch:
                    return
        finally:
            with self._io_lock:
                if self._file is not None:
                    self._file.close()
                self._file = self._file_path = None

    def _line(self, item: _Item) -> bytes | None:
        """The record's JSON line, redacted. Bytes throughout: a 400 KB record is never decoded and encoded again."""
        record, own = item
        try:
            value = record() if callable(record) else record
            line = value if isinstance(value, bytes) else jsonutil.dumps(value)
        except Exception:
            log.exception("could not build an audit record")
            return None
        secrets = self._redact
        extra = [s.encode() for s in own if len(s) >= 4]
        if extra:
            # A value may sit in the line JSON-escaped: look for that spelling too. Each spelling is looked for
            # once (a rule's own key is usually both configured and the exchange's), longest first: every search
            # walks the whole line, an agent's record being half a megabyte.
            extra += [jsonutil.dumps(s.decode())[1:-1] for s in extra]
            secrets = tuple(sorted(dict.fromkeys((*secrets, *extra)), key=len, reverse=True))
        for secret in secrets:
            # Last line of defence: a configured secret never reaches the disk, wherever it hid.
            if secret in line:
                line = line.replace(secret, b"REDACTED")
        return line + b"\n"

    def _append(self, text: bytes) -> None:
        """The writer thread's write, through the file it keeps open. Call with `_io_lock` held."""
        if not text:
            return
        try:
            path = self.path_for_today()
            if path != self._file_path:
                if self._file is not None:
                    self._file.close()
                self._file, self._file_path = path.open("ab"), path
            assert self._file is not None
            self._file.write(text)
            self._file.flush()  # whole lines reach the OS at once: readers never see half a record
        except OSError:
            log.exception("could not write audit records")
            self._file = self._file_path = None

    def _append_once(self, text: bytes) -> None:
        """A write after close: its own open, write and close, as no thread is left to close a kept file. Call
        with `_io_lock` held."""
        try:
            with self.path_for_today().open("ab") as f:
                f.write(text)
        except OSError:
            log.exception("could not write an audit record")


# Recorders not closed yet: closed (their queues drained) when the interpreter exits. Exit hooks run after the
# interpreter has joined its non-daemon threads and before it stops the daemon ones, so the writers still run.
_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _close_open_recorders() -> None:
    for recorder in list(_OPEN):
        recorder.close()
