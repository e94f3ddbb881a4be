"""Reading the audit records: the JSONL files of a recordings folder, line by line as bytes, and only the fields the
report needs. Tolerant: a line that is not a record is counted (with where it is) and skipped, a missing or
mistyped field reads as absent.

A record is `{"timestamp", "id", "meta", "usage", "payload"}` in that order (record.build). The payload, nearly all
of a record's bytes when payloads are logged, is never parsed: the line is cut before `,"payload":`, which cannot
occur inside a JSON string (a quote there is always escaped) and so is the top-level key. Should a line ever put
another key after the payload, the cut piece is not valid JSON and the whole line is parsed instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

FILE_GLOB = "ai-proxy-*.jsonl"
_FILE_DAY = re.compile(r"ai-proxy-(\d{4}-\d{2}-\d{2})")
_PAYLOAD = b',"payload":'
MAX_MALFORMED_SHOWN = 5

# What the report groups by, in the order of Fields' first five values.
DIMENSIONS = ("day", "rule", "provider", "model", "client")
UNKNOWN = "?"

# One record's figures: (day, rule, provider, model, client, is_error, prompt, completion, total, cached, cost,
# latency_ms, ttft_ms). Numbers are None where the record has none.
Fields = tuple[str, str, str, str, str, bool, Any, Any, Any, Any, Any, Any, Any]


@dataclass(slots=True)
class Malformed:
    file: str
    line: int
    reason: str


@dataclass(slots=True)
class ScanStats:
    """What was read: files, lines, records kept (in the date range), and the lines that are not records."""

    files: int = 0
    lines: int = 0
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


def _number(value: Any) -> int | float | None:
    kind = type(value)
    return value if kind is int or kind is float else None


def _label(value: Any) -> str:
    return value if type(value) is str and value else UNKNOWN


def _cached(usage: dict[str, Any]) -> Any:
    cached = usage.get("cached_tokens")
    if cached is None:
        details = usage.get("prompt_tokens_details")
        if type(details) is dict:
            cached = details.get("cached_tokens")
    return _number(cached)


def fields_of(record: Any) -> Fields | str:
    """A parsed record's figures, or why it is not a record."""
    if type(record) is not dict:
        return "not a JSON object"
    stamp = record.get("timestamp")
    if type(stamp) is not str or len(stamp) < 10 or stamp[4] != "-" or stamp[7] != "-":
        return "no timestamp"
    meta = record.get("meta")
    if type(meta) is not dict:
        meta = {}
    usage = record.get("usage")
    if type(usage) is not dict:
        usage = {}
    status = meta.get("status")
    error = bool(meta.get("error")) or (type(status) is int and status >= 400)
    prompt, completion = _number(usage.get("prompt_tokens")), _number(usage.get("completion_tokens"))
    total = _number(usage.get("total_tokens"))
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    return (
        stamp[:10],
        _label(meta.get("rule")),
        _label(meta.get("provider_name")),
        _label(meta.get("response_model") or meta.get("request_model")),
        _label(meta.get("client_format") or "openai"),  # the record names the client's format when not OpenAI's
        error,
        prompt,
        completion,
        total,
        _cached(usage),
        _number(usage.get("cost")),
        _number(meta.get("llm_latency")),
        _number(meta.get("time_to_first_token")),
    )


def scan(
    paths: Iterable[Path],
    add: Callable[[Fields], None],
    stats: ScanStats,
    since: date | None = None,
    until: date | None = None,
) -> None:
    """Feed every record of `paths` dated in [since, until] (UTC days, inclusive) to `add`.

    Files are read in large blocks and each line is found with two byte searches: the payload's key and the end
    of the line. Only the part before the payload is copied and parsed."""
    low = since.isoformat() if since else ""
    high = until.isoformat() if until else "~"
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for path in paths:
        stats.files += 1
        number = 0
        for block in _blocks(path):
            pos, size = 0, len(block)
            while pos < size:
                end = block.find(b"\n", pos)
                if end < 0:
                    end = size
                number += 1
                last = end - 1
                while last >= pos and block[last] in _SPACE:  # trailing CR or spaces
                    last -= 1
                if last < pos:  # a blank line: no record, and no damage either
                    pos = end + 1
                    continue
                stats.lines += 1
                if block[last] != _CLOSE:  # a line cut short (a crash mid-write); its payload is not parsed to tell
                    stats.bad_line(path, number, "not a whole JSON object")
                    pos = end + 1
                    continue
                cut = block.find(_PAYLOAD, pos, end)
                try:
                    try:
                        record = loads(block[pos:cut] + b"}") if cut > pos else loads(block[pos : last + 1])
                    except decode_error:
                        if cut <= pos:
                            raise
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
                    stats.records += 1
                    add(got)  # type: ignore[arg-type]


_SPACE = frozenset(b" \t\r")
_CLOSE = ord("}")
BLOCK_BYTES = 8 << 20


def _blocks(path: Path) -> Iterator[bytes]:
    """The file in blocks of whole lines (a line longer than a block makes its block longer)."""
    with path.open("rb") as f:
        rest = b""
        while True:
            data = f.read(BLOCK_BYTES)
            if not data:
                if rest:
                    yield rest
                return
            data = rest + data if rest else data
            nl = data.rfind(b"\n")
            if nl < 0:
                rest = data
                continue
            rest = data[nl + 1 :]
            yield data if not rest else data[: nl + 1]
