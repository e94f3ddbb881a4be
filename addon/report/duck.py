"""The report's figures through DuckDB's JSON reader (the optional [report-duckdb] extra), for large folders.

The same figures as scan.fields_of reads, field by field (types checked as there: a field of another type reads as
absent), summed by DuckDB per file and group; percentiles are taken in Python from the latency lists, as the plain
path does. DuckDB parses whole lines (payload included) on all CPUs. A line that is not a record comes out of its
reader as an empty row: a file with any is read again by the plain path instead, which also names the lines, so
both paths give the same figures and the same malformed-line report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from .figures import Report, Tally
from .scan import UNKNOWN, ScanStats, scan

_NUMBER = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')"
_META = ("rule", "provider_name", "response_model", "request_model", "client_format", "status", "error",
         "llm_latency", "time_to_first_token")  # fmt: skip
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "prompt_tokens_details", "cost",
          "cache_write_tokens")  # fmt: skip


def _struct(names: Sequence[str]) -> str:
    """Each field as its own JSON value: the type checks below then read a few bytes, not the whole object."""
    return "STRUCT(" + ", ".join(f"{name} JSON" for name in names) + ")"


def _number(x: str, path: str = "$") -> str:
    return f"CASE WHEN json_type({x}, '{path}') IN {_NUMBER} THEN ({x}->>'{path}')::DOUBLE END"


def _label(x: str) -> str:
    return f"CASE WHEN json_type({x}) = 'VARCHAR' AND {x}->>'$' <> '' THEN {x}->>'$' END"


def _truthy(x: str) -> str:
    """Python's bool() of a JSON value (a missing one is false)."""
    value = f"{x}->>'$'"
    return f"""coalesce(CASE json_type({x})
        WHEN 'VARCHAR' THEN {value} <> '' WHEN 'BOOLEAN' THEN {value} = 'true' WHEN 'NULL' THEN false
        WHEN 'ARRAY' THEN json_array_length({x}) > 0 WHEN 'OBJECT' THEN {value} <> '{{}}'
        ELSE try_cast({value} AS DOUBLE) <> 0 END, false)"""


_RECORDS = f"""
WITH raw AS (
    SELECT filename AS f, "timestamp" AS ts, meta AS m, usage AS u
    FROM read_json($files, format = 'newline_delimited', ignore_errors = true, filename = true,
                   columns = {{"timestamp": 'VARCHAR', meta: '{_struct(_META)}', usage: '{_struct(_USAGE)}'}})
), fields AS (
    SELECT f,
        CASE WHEN length(ts) >= 10 AND substr(ts, 5, 1) = '-' AND substr(ts, 8, 1) = '-' THEN substr(ts, 1, 10) END
            AS day,
        coalesce({_label("m.rule")}, '{UNKNOWN}') AS rule,
        coalesce({_label("m.provider_name")}, '{UNKNOWN}') AS provider,
        coalesce(CASE WHEN {_truthy("m.response_model")} THEN {_label("m.response_model")}
                      ELSE {_label("m.request_model")} END, '{UNKNOWN}') AS model,
        CASE WHEN NOT {_truthy("m.client_format")} THEN 'openai'
             ELSE coalesce({_label("m.client_format")}, '{UNKNOWN}') END AS client,
        {_truthy("m.error")} OR coalesce(json_type(m.status) IN ('BIGINT', 'UBIGINT')
            AND (m.status->>'$')::DOUBLE >= 400, false) AS failed,
        {_number("u.prompt_tokens")} AS prompt,
        {_number("u.completion_tokens")} AS completion,
        {_number("u.total_tokens")} AS total,
        CASE WHEN coalesce(json_type(u.cached_tokens), 'NULL') = 'NULL'
             THEN {_number("u.prompt_tokens_details", "$.cached_tokens")} ELSE {_number("u.cached_tokens")} END
            AS cached,
        {_number("u.cache_write_tokens")} AS written,
        {_number("u.cost")} AS cost,
        {_number("m.llm_latency")} AS latency,
        {_number("m.time_to_first_token")} AS ttft
    FROM raw
)
"""


def _sql(by: Sequence[str]) -> str:
    keys = ", ".join(dict.fromkeys(("day", "model", *by)))
    return (
        _RECORDS
        + f"""
SELECT f, count(*) FILTER (WHERE day IS NULL) AS bad, {keys},
    count(*) AS requests, count(*) FILTER (WHERE failed) AS errors,
    coalesce(sum(prompt), 0), coalesce(sum(completion), 0),
    coalesce(sum(coalesce(total, CASE WHEN prompt IS NOT NULL OR completion IS NOT NULL
                                      THEN coalesce(prompt, 0) + coalesce(completion, 0) END)), 0),
    coalesce(sum(cached), 0), coalesce(sum(cost), 0), count(*) FILTER (WHERE cost IS NULL),
    list(latency) FILTER (WHERE latency IS NOT NULL), list(ttft) FILTER (WHERE ttft IS NOT NULL),
    coalesce(sum(written), 0)
FROM fields
WHERE day IS NULL OR (day >= $low AND day <= $high)
GROUP BY ALL
"""
    )


def _count(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def run(
    paths: Sequence[Path], by: Sequence[str], since: date | None, until: date | None, chart: bool
) -> tuple[Report, ScanStats]:
    """The report of `paths` (records dated since..until) through DuckDB."""
    import duckdb

    low, high = since.isoformat() if since else "", until.isoformat() if until else "~"
    report, stats = Report(by, chart), ScanStats()
    if not paths:
        return report, stats
    columns = list(dict.fromkeys(("day", "model", *by)))
    rows: list[tuple[Any, ...]] = (
        duckdb.connect().execute(_sql(by), {"files": [str(p) for p in paths], "low": low, "high": high}).fetchall()
    )
    damaged = {row[0] for row in rows if row[1]}
    for f, _, *rest in rows:
        if f in damaged:
            continue
        key = dict(zip(columns, rest, strict=False))
        figures = rest[len(columns) :]
        tally = Tally()
        (tally.requests, tally.errors, prompt, completion, total, cached, cost, tally.unpriced) = figures[:8]
        tally.prompt, tally.completion, tally.total, tally.cached = map(_count, (prompt, completion, total, cached))
        tally.cost, tally.latencies, tally.ttfts = cost, list(figures[8] or ()), list(figures[9] or ())
        tally.written = _count(figures[10])
        group = tuple(key[d] for d in by) if len(by) != 1 else key[by[0]]
        mine = report.groups.get(group)
        if mine is None:
            report.groups[group] = tally
        else:
            mine.merge(tally)
        stats.records += tally.requests
        if chart and cost:
            at = (key["day"], key["model"])
            report.cost_by_day_model[at] = report.cost_by_day_model.get(at, 0.0) + cost
    stats.files = len(paths) - len(damaged)
    redo = [p for p in paths if str(p) in damaged]
    if redo:  # read by the plain path: its figures, and the lines that are not records, named
        scan(redo, report.add, stats, since, until)
    return report, stats
