"""Reading the audit records: the JSONL files of a recordings folder, line by line as bytes, and only the fields the
report needs. Tolerant: a line that is not a record is counted (with where it is) and skipped, a missing or
mistyped field reads as absent.

A record is `{"timestamp", "id", "meta", "usage", "payload"}` in that order (record.build). The payload, nearly all
of a record's bytes when payloads are logged, is never parsed nor copied: the file is mapped into memory, and the
line is cut before `,"payload":`, which cannot occur inside a JSON string (a quote there is always escaped) and so
is the top-level key. The piece before it is parsed as a record of its own; when that piece is no JSON, or has no
`usage` (record.build writes the usage before the payload, and none with `log_statistics: false`), the whole line
is parsed instead, so a line with keys after its payload reads as DuckDB's reader reads it.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

FILE_GLOB = "ai-proxy-*.jsonl"
_FILE_DAY = re.compile(r"ai-proxy-(\d{4}-\d{2}-\d{2})")
_PAYLOAD = b',"payload":'
MAX_MALFORMED_SHOWN = 5

# What the report groups by, in the order of Fields' first five values.
DIMENSIONS = ("day", "rule", "provider", "model", "client")
UNKNOWN = "?"

# One record's figures: (day, rule, provider, model, client, is_error, prompt, completion, total, cached, cost,
# latency_ms, ttft_ms, cache_written). Numbers are None where the record has none.
Fields = tuple[str, str, str, str, str, bool, Any, Any, Any, Any, Any, Any, Any, Any]


@dataclass(slots=True)
class Malformed:
    file: str
    line: int
    reason: str


@dataclass(slots=True)
class ScanStats:
    """What was read: files, records kept (in the date range), and the lines that are not records."""

    files: int = 0
    records: int = 0
    malformed: int = 0
    malformed_at: list[Malformed] = field(default_factory=list)

    def bad_line(self, path: Path, number: int, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_at) < MAX_MALFORMED_SHOWN:
            self.malformed_at.append(Malformed(path.name, number, reason))


def record_files(folder: Path, since: date | None = None, until: date | None = None) -> list[Path]:
    """The folder's record files (`ai-proxy-YYYY-MM-DD*.jsonl`) that may hold records of the date range, by name.

    A file is named for the day its records were written, and a record is dated when its exchange finished: one
    that finished just before midnight may be in the next day's file, so a day's margin is kept on each side
    (the records themselves are filtered by their timestamp)."""
    out = []
    for path in sorted(folder.glob(FILE_GLOB)):
        m = _FILE_DAY.match(path.name)
        if m is None or not path.is_file():
            continue
        try:
            day = date.fromisoformat(m.group(1))
        except ValueError:
            continue
        if since is not None and day < since - timedelta(days=1):
            continue
        if until is not None and day > until + timedelta(days=1):
            continue
        out.append(path)
    return out


_NUMBERS = frozenset((int, float))  # not bool: a flag is no count
_EMPTY: dict[str, Any] = {}


def _cached(usage: dict[str, Any]) -> Any:
    """Cached prompt tokens: usage.cached_tokens as record.build writes it, or the standard usage's nested field."""
    cached = usage.get("cached_tokens")
    if cached is None:
        details = usage.get("prompt_tokens_details")
        if details.__class__ is dict:
            cached = details.get("cached_tokens")
    return cached if cached.__class__ in _NUMBERS else None


def _written(usage: dict[str, Any]) -> Any:
    """Prompt tokens written to the cache: usage.cache_write_tokens as record.build writes it."""
    written = usage.get("cache_write_tokens")
    return written if written.__class__ in _NUMBERS else None


def fields_of(record: Any) -> Fields | str:
    """A parsed record's figures, or why it is not a record. Written out long-hand: it runs once per record."""
    if record.__class__ is not dict:
        return "not a JSON object"
    stamp = record.get("timestamp")
    if stamp.__class__ is not str or len(stamp) < 10 or stamp[4] != "-" or stamp[7] != "-":
        return "no timestamp"
    meta = record.get("meta")
    if meta.__class__ is not dict:
        meta = _EMPTY
    usage = record.get("usage")
    if usage.__class__ is not dict:
        usage = _EMPTY
    get = meta.get
    status, error = get("status"), get("error")
    failed = bool(error) or (status.__class__ is int and status >= 400)
    rule, provider = get("rule"), get("provider_name")
    model = get("response_model") or get("request_model")
    client = get("client_format") or "openai"  # the record names the client's format when it is not OpenAI's
    latency, ttft = get("llm_latency"), get("time_to_first_token")
    get = usage.get
    prompt, completion, total, cost = get("prompt_tokens"), get("completion_tokens"), get("total_tokens"), get("cost")
    if prompt.__class__ not in _NUMBERS:
        prompt = None
    if completion.__class__ not in _NUMBERS:
        completion = None
    if total.__class__ not in _NUMBERS:
        total = None if prompt is None and completion is None else (prompt or 0) + (completion or 0)
    return (
        stamp[:10],
        rule if rule.__class__ is str and rule else UNKNOWN,
        provider if provider.__class__ is str and provider else UNKNOWN,
        model if model.__class__ is str and model else UNKNOWN,
        client if client.__class__ is str else UNKNOWN,
        failed,
        prompt,
        completion,
        total,
        _cached(usage) if usage else None,
        cost if cost.__class__ in _NUMBERS else None,
        latency if latency.__class__ in _NUMBERS else None,
        ttft if ttft.__class__ in _NUMBERS else None,
        _written(usage) if usage else None,
    )


def scan(
    paths: Iterable[Path],
    add: Callable[[Fields], None],
    stats: ScanStats,
    since: date | None = None,
    until: date | None = None,
) -> None:
    """Feed every record of `paths` dated in [since, until] (UTC days, inclusive) to `add`.

    Each file is mapped into memory (read-only: no copy of the file is made) and each line is found with two byte
    searches: the payload's key and the end of the line. Only the part before the payload is copied and parsed."""
    low = since.isoformat() if since else ""
    high = until.isoformat() if until else "~"
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for path in paths:
        stats.files += 1
        number = records = 0
        with path.open("rb") as f, _mapped(f) as block:
            pos, size = 0, len(block)
            while pos < size:
                end = block.find(b"\n", pos)
                if end < 0:
                    end = size
                number += 1
                last = end - 1
                if last < pos or block[last] != _CLOSE:  # rare: trailing white space, a blank line, a cut line
                    while last >= pos and block[last] in _SPACE:
                        last -= 1
                    if last < pos:  # a blank line: no record, and no damage either
                        pos = end + 1
                        continue
                    if block[last] != _CLOSE:  # cut short (a crash mid-write); its payload is not parsed to tell
                        stats.bad_line(path, number, "not a whole JSON object")
                        pos = end + 1
                        continue
                cut = block.find(_PAYLOAD, pos, end)
                try:
                    if cut > pos:
                        try:  # the record closed where its payload began
                            record = loads(block[pos:cut] + b"}")
                        except decode_error:
                            record = None
                        if record.__class__ is not dict or "usage" not in record:  # usage after the payload?
                            record = loads(block[pos : last + 1])
                    else:
                        record = loads(block[pos : last + 1])
                except decode_error as e:
                    stats.bad_line(path, number, f"not JSON ({e.msg})")
                    pos = end + 1
                    continue
                pos = end + 1
                got = fields_of(record)
                if type(got) is str:
                    stats.bad_line(path, number, got)
                elif low <= got[0] <= high:
                    records += 1
                    add(got)  # type: ignore[arg-type]
        stats.records += records


_SPACE = frozenset(b" \t\r")
_CLOSE = ord("}")


def _mapped(f: BinaryIO) -> AbstractContextManager[mmap.mmap | bytes]:
    """The open file's bytes, mapped read-only (an empty file cannot be mapped: its bytes are b"")."""
    if os.fstat(f.fileno()).st_size == 0:
        return nullcontext(b"")
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)  # read once, front to back: read ahead, drop behind
    return mapped
