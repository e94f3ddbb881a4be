"""Running a report over a recordings folder: the files are shared out among worker processes when there is
enough to read to pay for them (each worker scans whole files and hands back its tallies), else read here."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .figures import Report
from .scan import MAX_MALFORMED_SHOWN, ScanStats, record_files, scan

# Below this many bytes of records a process pool (or DuckDB) costs more than it saves.
PARALLEL_BYTES = 64 << 20
ENGINES = ("auto", "python", "duckdb")


@dataclass(slots=True)
class Query:
    by: tuple[str, ...]
    since: date | None = None
    until: date | None = None
    chart: bool = False


def _scan_files(paths: Sequence[Path], query: Query) -> tuple[Report, ScanStats]:
    report, stats = Report(query.by, query.chart), ScanStats()
    scan(paths, report.add, stats, query.since, query.until)
    return report, stats


def _merge(into: tuple[Report, ScanStats], part: tuple[Report, ScanStats]) -> None:
    report, stats = into
    other, other_stats = part
    for key, tally in other.groups.items():
        mine = report.groups.get(key)
        if mine is None:
            report.groups[key] = tally
        else:
            mine.merge(tally)
    for at, cost in other.cost_by_day_model.items():
        report.cost_by_day_model[at] = report.cost_by_day_model.get(at, 0.0) + cost
    stats.files += other_stats.files
    stats.records += other_stats.records
    stats.malformed += other_stats.malformed
    stats.malformed_at += other_stats.malformed_at


def _shares(paths: list[Path], jobs: int) -> list[list[Path]]:
    """The files dealt out to `jobs` workers, largest first, each to the least loaded one (in file order within)."""
    loads = [0] * jobs
    shares: list[list[Path]] = [[] for _ in range(jobs)]
    for path in sorted(paths, key=lambda p: p.stat().st_size, reverse=True):
        least = loads.index(min(loads))
        loads[least] += path.stat().st_size
        shares[least].append(path)
    return [sorted(share) for share in shares if share]


def duckdb_installed() -> bool:
    return importlib.util.find_spec("duckdb") is not None


def run(folder: Path, query: Query, jobs: int | None = None, engine: str = "auto") -> tuple[Report, ScanStats]:
    """The report of every record in `folder` dated within the query's days. `engine`: python (this process or
    worker processes), duckdb (the [report-duckdb] extra), or auto: DuckDB for a large folder when installed."""
    paths = record_files(folder, query.since, query.until)
    size = sum(p.stat().st_size for p in paths)
    if engine == "duckdb" or (engine == "auto" and size >= PARALLEL_BYTES and duckdb_installed()):
        import duckdb

        from . import duck

        try:
            return duck.run(paths, query.by, query.since, query.until, query.chart)
        except duckdb.Error:
            pass  # DuckDB refused a file as a whole (lines it cannot read are handled): the plain path reads anything
    jobs = min(jobs or os.cpu_count() or 1, len(paths))
    if jobs <= 1 or size < PARALLEL_BYTES:
        return _scan_files(paths, query)
    result = Report(query.by, query.chart), ScanStats()
    with ProcessPoolExecutor(jobs) as pool:
        for part in pool.map(_scan_files, _shares(paths, jobs), [query] * jobs):
            _merge(result, part)
    # Workers finish in any order: the malformed lines shown are the first ones, in file order.
    result[1].malformed_at.sort(key=lambda m: (m.file, m.line))
    del result[1].malformed_at[MAX_MALFORMED_SHOWN:]
    return result
