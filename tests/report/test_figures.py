"""The report's figures on generated records, checked against a hand count (tests/report/hand.py)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from addon import record
from addon.audit import PriceTable
from addon.providers import REGISTRY
from addon.report import engine
from addon.report.engine import Query, duckdb_installed, run
from addon.report.figures import percentile
from addon.report.scan import ScanStats, fields_of, scan
from addon.rules import load_rules_text
from tests.report.hand import D1, D2, D3, HAND, MALFORMED, make_folder


def by(folder: Path, *dims: str, since: date | None = date(2026, 11, 1), until: date | None = None) -> dict:
    report, stats = run(folder, Query(dims, since, until))
    return {tuple(row[d] for d in dims): row for row in report.rows()}, report, stats


def figures(row: dict) -> dict:
    return {k: v for k, v in row.items() if k in HAND["m1"]}


def test_by_model_matches_the_hand_count(tmp_path: Path) -> None:
    rows, report, stats = by(make_folder(tmp_path), "model")
    assert figures(rows[("m1",)]) == pytest.approx(HAND["m1"])
    assert figures(rows[("m2",)]) == pytest.approx(HAND["m2"])
    total = report.total().figures()
    assert total["requests"] == 7 and total["errors"] == 3 and total["cost"] == pytest.approx(0.066)
    assert total["latency_p50_ms"] == 300  # [100, 200, 300, 400, 500, 600]: rank ceil(3) = 3
    assert total["latency_p95_ms"] == 600
    assert stats.records == 7 and stats.files == 3  # the October file is skipped by its name


def test_malformed_lines_are_counted_and_named_never_fatal(tmp_path: Path) -> None:
    _, _, stats = by(make_folder(tmp_path), "model")
    assert stats.malformed == MALFORMED
    where = [(m.file, m.line) for m in stats.malformed_at]
    assert where == [(f"ai-proxy-{D1}.jsonl", n) for n in (4, 5, 6, 8)]  # line 7 is blank: no damage
    reasons = [m.reason for m in stats.malformed_at]
    assert reasons[0].startswith("not JSON") and reasons[1] == "not a whole JSON object"
    assert reasons[2] == "not a whole JSON object" and reasons[3] == "no timestamp"  # an array is no record either


def test_grouping_by_day_and_by_two_dimensions(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    days, _, _ = by(folder, "day")
    # r7 finished at 23:59:59.999 on D2 and sits in D3's file: it counts for D2
    assert {k[0]: v["requests"] for k, v in days.items()} == {D1: 3, D2: 3, D3: 1}
    assert days[(D2,)]["cost"] == pytest.approx(0.036) and days[(D2,)]["errors"] == 1
    pairs, _, _ = by(folder, "day", "client")
    assert {k: v["requests"] for k, v in pairs.items()} == {
        (D1, "anthropic"): 1, (D1, "openai"): 2, (D2, "openai"): 3, (D3, "anthropic"): 1,
    }  # fmt: skip
    rules, _, _ = by(folder, "rule", "provider")
    assert {k: v["requests"] for k, v in rules.items()} == {("a", "openai"): 5, ("b", "anthropic"): 2}
    everything, _, _ = by(folder)
    assert list(everything) == [()] and everything[()]["requests"] == 7


def test_date_filters_are_inclusive_utc_days(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    rows, _, _ = by(folder, "day", since=date(2026, 11, 2), until=date(2026, 11, 2))
    assert list(rows) == [(D2,)] and rows[(D2,)]["requests"] == 3  # r7 read from the next day's file
    rows, _, _ = by(folder, "model", since=date(2026, 11, 3))
    assert {k: v["requests"] for k, v in rows.items()} == {("m2",): 1}
    rows, _, _ = by(folder, "day", since=None, until=date(2026, 10, 31))
    assert {k: v["requests"] for k, v in rows.items()} == {("2026-10-01",): 1}
    rows, _, _ = by(folder, "day", since=None)
    assert sum(v["requests"] for v in rows.values()) == 8


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 21))
    assert percentile(values, 50) == 10 and percentile(values, 95) == 19 and percentile(values, 100) == 20
    assert percentile([7.5], 95) == 7.5 and percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2


def test_missing_and_mistyped_fields_read_as_absent() -> None:
    got = fields_of(
        {"timestamp": "2026-11-05T01:02:03Z", "meta": "junk", "usage": {"prompt_tokens": "12", "cost": True}}
    )
    assert got == ("2026-11-05", "?", "?", "?", "openai", False, None, None, None, None, None, None, None, None)
    got = fields_of(
        {"timestamp": "2026-11-05T01:02:03Z", "meta": {"model": {}, "response_model": ["x"], "status": 404}}
    )
    assert got[3] == "?" and got[5] is True
    nested = fields_of({"timestamp": "2026-11-05T00:00:00Z", "usage": {"prompt_tokens_details": {"cached_tokens": 7}}})
    assert nested[9] == 7


def test_a_record_as_the_addon_builds_it(tmp_path: Path) -> None:
    """The reader and record.build agree on the record's shape (payload logged: the reader cuts it off)."""
    rules = load_rules_text(
        "rules:\n- name: claude-code\n  match: {host: claude.internal}\n  llm_format: anthropic\n"
        "  model: {provider: openai, name: gpt-4.1, options: {input_cost: 1.0, output_cost: 2.0}}\n"
        "  logging: {log_payloads: true}\n"
    )
    ex = record.Exchange(rules[0], REGISTRY["openai"], "http://claude.internal/v1/messages", b'{"a": "b"}')
    ex.status, ex.latency_ms, ex.ttft_ms, ex.finished = 200, 123.0, 45.0, time.time()
    ex.client_response = {
        "model": "gpt-4.1-2025",
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
                  "prompt_tokens_details": {"cached_tokens": 4}},
    }  # fmt: skip
    ex.upstream_response = b'{"payload": "}{,\\"payload\\":"}'
    line = record.line("flow-1", ex, PriceTable())
    assert b',"payload":' in line
    (tmp_path / "ai-proxy-2026-11-05.jsonl").write_bytes(line + b"\n")
    got: list = []
    stats = ScanStats()
    scan(sorted(tmp_path.glob("*.jsonl")), got.append, stats)
    day = time.strftime("%Y-%m-%d", time.gmtime(ex.finished))
    assert got == [
        (day, "claude-code", "openai", "gpt-4.1-2025", "anthropic", False, 10, 3, 13, 4, 1.6e-05, 123.0, 45.0, None)
    ]
    assert stats.malformed == 0


def test_worker_processes_give_the_same_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_folder(tmp_path)
    alone, _, alone_stats = by(folder, "day", "model")
    monkeypatch.setattr(engine, "PARALLEL_BYTES", 0)
    report, stats = run(folder, Query(("day", "model"), date(2026, 11, 1)), jobs=2)
    assert {tuple(r[d] for d in ("day", "model")): r for r in report.rows()} == alone
    assert (stats.records, stats.malformed, stats.files) == (alone_stats.records, MALFORMED, 3)
    assert stats.malformed_at == alone_stats.malformed_at


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_the_reader_takes_any_file_it_maps(tmp_path: Path, engine: str) -> None:
    """Empty files (which cannot be memory-mapped), a last line without its newline, the usage after the payload
    (the piece before the payload has none: the whole line is parsed), CRLF line ends; as DuckDB reads them."""
    if engine == "duckdb" and not duckdb_installed():
        pytest.skip("DuckDB is not installed (the [report-duckdb] extra)")
    head = '{"timestamp":"2026-11-02T10:00:00Z","meta":{"rule":"r","response_model":"m"},"usage":{"cost":0.5}'
    (tmp_path / "ai-proxy-2026-11-01.jsonl").write_bytes(b"")
    usage_last = head.replace('"usage":{"cost":0.5}', '"payload":{"b":"}"},"usage":{"cost":0.25}')
    lines = [head + ',"payload":{"a":1}}\r\n', usage_last + "}\n", head + "}"]
    (tmp_path / "ai-proxy-2026-11-02.jsonl").write_text("".join(lines))
    report, stats = run(tmp_path, Query(("model",)), engine=engine)
    [row] = report.rows()
    assert (stats.files, stats.records, stats.malformed) == (2, 3, 0)
    assert row["requests"] == 3 and row["cost"] == pytest.approx(1.25) and row["unpriced"] == 0
