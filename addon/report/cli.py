"""`python -m addon.report` / `ai-proxy-report`: spend and usage over the audit records of a recordings folder."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from . import output
from .engine import ENGINES, Query, duckdb_installed, run
from .scan import DIMENSIONS

DEFAULT_BY = "day,model"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _dimensions(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [d for d in chosen if d not in DIMENSIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"cannot group by {', '.join(unknown)} (choose from {', '.join(DIMENSIONS)})")
    if len(set(chosen)) != len(chosen):
        raise argparse.ArgumentTypeError("a dimension is named twice")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ai-proxy-report",
        description="Spend and usage from the AI proxy's audit records (ai-proxy-YYYY-MM-DD*.jsonl): requests, "
        "tokens, cached tokens, cost, error rate, p50/p95 latency and time to first token.",
    )
    p.add_argument("folder", nargs="?", default="recordings", type=Path, help="recordings folder (default: recordings)")
    p.add_argument(
        "--by",
        type=_dimensions,
        default=_dimensions(DEFAULT_BY),
        help=f"comma-separated groups among {', '.join(DIMENSIONS)} (default: {DEFAULT_BY}; '' for one total row)",
    )
    p.add_argument("--since", type=_day, help="first UTC day included (YYYY-MM-DD)")
    p.add_argument("--until", type=_day, help="last UTC day included (YYYY-MM-DD)")
    p.add_argument("--format", choices=output.FORMATS, default="table", help="output format (default: table)")
    p.add_argument(
        "--chart",
        type=Path,
        metavar="PNG",
        help="also draw cost per day by model and the latency "
        "distribution into this PNG file (needs matplotlib: the [report] extra)",
    )
    p.add_argument("--jobs", type=int, default=None, help="worker processes for large folders (default: one per CPU)")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="how records are read: python, or duckdb (the [report-duckdb] extra); auto (default) takes DuckDB for "
        "folders over 64 MB when it is installed",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.since and args.until and args.since > args.until:
        print("ai-proxy-report: --since is after --until", file=sys.stderr)
        return 2
    if not args.folder.is_dir():
        print(f"ai-proxy-report: {args.folder} is not a folder (the addon's ai_recordings)", file=sys.stderr)
        return 1
    if args.chart is not None:
        from .chart import MISSING

        try:
            import matplotlib  # noqa: F401  (checked before the records are read)
        except ImportError:
            print(f"ai-proxy-report: {MISSING}", file=sys.stderr)
            return 1
    if args.engine == "duckdb" and not duckdb_installed():
        print(
            "ai-proxy-report: --engine duckdb needs DuckDB: pip install 'mitm-ai-proxy[report-duckdb]'", file=sys.stderr
        )
        return 1
    query = Query(args.by, args.since, args.until, args.chart is not None)
    report, stats = run(args.folder, query, args.jobs, args.engine)
    rows = report.rows()
    total_tally = report.total()
    total = total_tally.figures()
    days = sorted({row["day"] for row in rows}) if "day" in args.by else []
    span: dict[str, Any] = {
        "since": args.since.isoformat() if args.since else None,
        "until": args.until.isoformat() if args.until else None,
        "first_day": days[0] if days else None,
        "last_day": days[-1] if days else None,
    }
    by = args.by
    if args.format == "json":
        sys.stdout.write(output.to_json(by, rows, total, stats, span))
    elif args.format == "csv":
        sys.stdout.write(output.to_csv(by, rows))
    elif args.format == "markdown":
        sys.stdout.write(output.markdown(by, rows, total) + "\n" + output.summary(stats, span) + "\n")
    else:
        sys.stdout.write(output.table(by, rows, total) + "\n" + output.summary(stats, span) + "\n")
    if stats.malformed and args.format in ("json", "csv"):
        print(f"ai-proxy-report: {output.summary(stats, span)}", file=sys.stderr)
    if args.chart is not None:
        from .chart import write_chart

        write_chart(args.chart, report.cost_by_day_model, total_tally.latencies, total_tally.ttfts)
        print(f"ai-proxy-report: chart written to {args.chart}", file=sys.stderr)
    return 0
