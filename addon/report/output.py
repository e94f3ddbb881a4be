"""The report as a terminal table, CSV, JSON or Markdown. CSV and JSON carry the raw figures (cost in USD,
error_rate as a fraction, latencies in ms); the table and Markdown format them for people and add a total row."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from .figures import FIGURES
from .scan import ScanStats

FORMATS = ("table", "csv", "json", "markdown")

# Column titles for people.
_TITLES = {
    "requests": "requests",
    "errors": "errors",
    "error_rate": "error %",
    "prompt_tokens": "prompt tok",
    "completion_tokens": "compl tok",
    "total_tokens": "total tok",
    "cached_tokens": "cached tok",
    "cache_write_tokens": "cache wr tok",
    "cost": "cost $",
    "unpriced": "unpriced",
    "latency_p50_ms": "p50 ms",
    "latency_p95_ms": "p95 ms",
    "ttft_p50_ms": "ttft p50",
    "ttft_p95_ms": "ttft p95",
}


def _human(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "error_rate":
        return f"{value * 100:.1f}"
    if column == "cost":
        return f"{value:,.4f}"
    if isinstance(value, float):
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _human_rows(by: Sequence[str], rows: list[dict[str, Any]], total: dict[str, Any]) -> list[list[str]]:
    out = [[_human(c, row[c]) for c in (*by, *FIGURES)] for row in rows]
    if by and len(rows) != 1:
        out.append(["TOTAL", *([""] * (len(by) - 1)), *(_human(c, total[c]) for c in FIGURES)])
    return out


def table(by: Sequence[str], rows: list[dict[str, Any]], total: dict[str, Any]) -> str:
    head = [*by, *(_TITLES[c] for c in FIGURES)]
    body = _human_rows(by, rows, total)
    widths = [max(len(cell) for cell in column) for column in zip(head, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(w) if i < len(by) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(head), rule, *(line(cells) for cells in body[: len(rows)])]
    if len(body) > len(rows):
        lines += [rule, line(body[-1])]
    return "\n".join(lines) + "\n"


def markdown(by: Sequence[str], rows: list[dict[str, Any]], total: dict[str, Any]) -> str:
    head = [*by, *(_TITLES[c] for c in FIGURES)]
    body = _human_rows(by, rows, total)
    if len(body) > len(rows):
        body[-1] = [f"**{cell}**" if cell else "" for cell in body[-1]]
    align = ["---" if i < len(by) else "---:" for i in range(len(head))]
    lines = ["| " + " | ".join(cells) + " |" for cells in (head, align, *body)]
    return "\n".join(lines) + "\n"


def to_csv(by: Sequence[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*by, *FIGURES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_json(
    by: Sequence[str], rows: list[dict[str, Any]], total: dict[str, Any], stats: ScanStats, span: dict[str, Any]
) -> str:
    document = {
        "by": list(by),
        **span,
        "files": stats.files,
        "records": stats.records,
        "malformed": stats.malformed,
        "malformed_lines": [{"file": m.file, "line": m.line, "reason": m.reason} for m in stats.malformed_at],
        "groups": rows,
        "total": total,
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def summary(stats: ScanStats, span: dict[str, Any]) -> str:
    """One line on what was read, for people (below the table, or on stderr)."""
    days = f" from {span['first_day']} to {span['last_day']}" if span.get("first_day") else ""
    text = f"{stats.records:,} records{days} in {stats.files} file(s)"
    if stats.malformed:
        where = ", ".join(f"{m.file}:{m.line} ({m.reason})" for m in stats.malformed_at)
        text += f"; {stats.malformed:,} malformed line(s) skipped, first: {where}"
    return text
