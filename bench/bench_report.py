"""How long the spend report takes over a month of audit records.

Writes N records (default 1,000,000) spread over 30 days into day files in a temp dir, as the recorder writes them
(record.build's shape, payloads of about --payload-bytes each, 2% errors, half of them streamed), then times the
report (`--by day,model`, as `python -m addon.report` runs it) with worker processes and in this process alone.
Wall time and CPU time (this process and its workers) are printed, and whether the figures of both runs agree.

    .venv/bin/python bench/bench_report.py                      # 1M records, ~1.5 KB payloads
    .venv/bin/python bench/bench_report.py --records 200000 --payload-bytes 0
    .venv/bin/python bench/bench_report.py --keep /tmp/records  # reuse (or keep) the generated folder
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from addon.report.engine import Query, duckdb_installed, run
from tests.support.records import write_synthetic


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def calibration() -> float:
    """CPU seconds for a fixed piece of pure Python, to compare machines (and a busy machine with an idle one)."""
    cpu = cpu_seconds()
    sum(range(10_000_000))
    return cpu_seconds() - cpu


def timed(folder: Path, jobs: int, engine: str = "python") -> tuple[float, float, list[dict], int]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    report, stats = run(folder, Query(("day", "model")), jobs=jobs, engine=engine)
    rows = report.rows()
    return time.perf_counter() - wall, cpu_seconds() - cpu, rows, stats.records


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--payload-bytes", type=int, default=1500, help="about this much payload per record (0: none)")
    p.add_argument("--keep", type=Path, help="folder for the records: reused if it has them, else written and kept")
    args = p.parse_args()

    temp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench-report-")
    folder = args.keep or Path(temp.name)  # type: ignore[union-attr]
    try:
        if not any(folder.glob("ai-proxy-*.jsonl")):
            started = time.perf_counter()
            size = write_synthetic(folder, args.records, args.days, args.payload_bytes)
            print(f"wrote {args.records:,} records, {size / 1e6:,.0f} MB, in {time.perf_counter() - started:.1f} s")
        size = sum(f.stat().st_size for f in folder.glob("ai-proxy-*.jsonl"))
        print(f"folder: {folder} ({size / 1e6:,.0f} MB), {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.1f}")
        timed(folder, 1)  # warm the page cache: what is measured is the report, not the disk
        results = {}
        runs = [("workers", os.cpu_count() or 1, "python"), ("one process", 1, "python")]
        if duckdb_installed():
            runs.append(("duckdb", 1, "duckdb"))
        for label, jobs, engine in runs:
            wall, cpu, rows, records = timed(folder, jobs, engine)
            results[label] = rows
            print(f"{label:12s} {records:,} records: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                  f"{records / wall:,.0f} records/s")  # fmt: skip
        same = all(rows == results["one process"] for rows in results.values())
        print(f"figures agree: {same}; calibration: sum(range(10M)) in {calibration():.2f} s CPU here")
        return 0 if same else 1
    finally:
        if temp is not None:
            temp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
