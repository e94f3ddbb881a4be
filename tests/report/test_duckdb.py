"""The DuckDB engine gives the plain path's figures: on clean folders, on damaged files (read again by the plain
path, which names the lines), and on fields of every wrong type. Skipped where DuckDB is not installed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from addon.report import engine
from addon.report.engine import Query, run
from tests.report.hand import make_folder
from tests.support.records import record, write, write_synthetic

pytest.importorskip("duckdb")

GROUPINGS = [("model",), ("day", "client"), (), ("rule", "provider", "model"), ("client",)]


def same(duck: list[dict], plain: list[dict]) -> bool:
    """Rows alike: labels and counts equal, sums of floats to 1e-9 (DuckDB adds in its own order)."""
    assert len(duck) == len(plain)
    for d, p in zip(duck, plain, strict=True):
        assert d.keys() == p.keys()
        for key, value in p.items():
            assert d[key] == (pytest.approx(value) if isinstance(value, float) else value), (key, d, p)
    return True


def both(folder: Path, query: Query) -> tuple:
    plain, duck = run(folder, query, engine="python"), run(folder, query, engine="duckdb")
    return plain, duck


@pytest.mark.parametrize("by", GROUPINGS, ids=lambda by: ",".join(by) or "total")
def test_clean_folder(tmp_path: Path, by: tuple[str, ...]) -> None:
    write_synthetic(tmp_path, 3000, days=6, payload_bytes=200, seed=7)
    for since, until in ((None, None), (date(2026, 11, 2), date(2026, 11, 4))):
        (plain, plain_stats), (duck, duck_stats) = both(tmp_path, Query(by, since, until, chart=True))
        assert same(duck.rows(), plain.rows())
        assert duck.cost_by_day_model == pytest.approx(plain.cost_by_day_model)
        assert duck_stats == plain_stats


def test_damaged_files_are_read_by_the_plain_path(tmp_path: Path) -> None:
    (plain, plain_stats), (duck, duck_stats) = both(make_folder(tmp_path), Query(("day", "model")))
    assert same(duck.rows(), plain.rows())
    assert duck_stats == plain_stats and duck_stats.malformed == 4  # the same lines, named the same way


def test_fields_of_every_wrong_type(tmp_path: Path) -> None:
    day = "2026-11-05"
    odd = [
        {"timestamp": f"{day}T00:00:00Z"},  # nothing but a timestamp
        {"timestamp": f"{day}T00:00:01Z", "meta": "junk", "usage": [1]},
        {"timestamp": f"{day}T00:00:02Z", "meta": {"status": "500", "error": 0.0, "rule": 7, "response_model": ""},
         "usage": {"prompt_tokens": "12", "completion_tokens": True, "cost": "0.1"}},
        {"timestamp": f"{day}T00:00:03Z", "meta": {"status": 404.0, "error": [], "request_model": "asked",
                                                   "client_format": ""}},
        {"timestamp": f"{day}T00:00:04Z", "meta": {"error": {}, "response_model": ["x"], "provider_name": ""}},
        {"timestamp": f"{day}T00:00:05Z", "meta": {"error": {"a": 1}, "llm_latency": True, "client_format": 3}},
        {"timestamp": f"{day}T00:00:06Z", "meta": {"error": True, "time_to_first_token": 12.5},
         "usage": {"prompt_tokens_details": {"cached_tokens": 9}, "prompt_tokens": 3, "total_tokens": None}},
        {"timestamp": f"{day}T00:00:07Z", "meta": {"status": 429},
         "usage": {"cached_tokens": "many", "prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens": 4.5}},
        record(day, rule="r", provider="p", model="m", client_format="anthropic", cached=3, ttft=20.0),
    ]  # fmt: skip
    write(tmp_path, odd, name=f"ai-proxy-{day}.jsonl")
    for by in GROUPINGS:
        (plain, plain_stats), (duck, duck_stats) = both(tmp_path, Query(by, chart=True))
        assert same(duck.rows(), plain.rows()), by
        assert duck_stats == plain_stats and plain_stats.malformed == 0
    totals = run(tmp_path, Query(()), engine="duckdb")[0].rows()[0]
    assert (totals["requests"], totals["errors"], totals["cached_tokens"]) == (9, 3, 12)


def test_auto_takes_duckdb_for_a_large_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synthetic(tmp_path, 500, days=2, payload_bytes=0)
    taken = []
    real = engine.Query  # the engine module imports duck lazily: watch its run
    from addon.report import duck

    monkeypatch.setattr(duck, "run", lambda *a, **k: taken.append(a) or ("report", "stats"))
    assert run(tmp_path, real(("model",))) != ("report", "stats")  # small: the plain path
    monkeypatch.setattr(engine, "PARALLEL_BYTES", 0)
    assert run(tmp_path, real(("model",))) == ("report", "stats") and len(taken) == 1
    assert run(tmp_path, real(("model",)), engine="python") != ("report", "stats")


def test_a_folder_duckdb_refuses_is_read_by_the_plain_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from addon.report import duck

    def refuse(*args: object, **kwargs: object) -> None:
        raise duckdb.InvalidInputException("unreadable")

    monkeypatch.setattr(duck, "run", refuse)
    report, stats = run(make_folder(tmp_path), Query(("model",)), engine="duckdb")
    assert [row["requests"] for row in report.rows()] == [6, 2] and stats.malformed == 4
