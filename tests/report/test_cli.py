"""The report command: each output format parsed back to the hand-counted figures, the chart, the errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from addon.report.cli import main
from addon.report.figures import FIGURES
from tests.report.hand import HAND, MALFORMED, make_folder

ROOT = Path(__file__).resolve().parents[2]
SINCE = ["--since", "2026-11-01"]


def out(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(list(args)) == 0
    got = capsys.readouterr()
    return got.out, got.err


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, err = out(capsys, str(make_folder(tmp_path)), "--by", "model", "--format", "json", *SINCE)
    doc = json.loads(text)
    assert doc["by"] == ["model"] and doc["since"] == "2026-11-01" and doc["until"] is None
    assert doc["records"] == 7 and doc["files"] == 3 and doc["malformed"] == MALFORMED
    assert doc["malformed_lines"][0] == {
        "file": "ai-proxy-2026-11-01.jsonl",
        "line": 4,
        "reason": doc["malformed_lines"][0]["reason"],
    }
    groups = {g["model"]: g for g in doc["groups"]}
    for model in HAND:
        assert {k: groups[model][k] for k in HAND[model]} == pytest.approx(HAND[model])
    assert doc["total"]["requests"] == 7
    assert "4 malformed line(s) skipped" in err  # said on stderr too: stdout stays a JSON document


def test_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = out(capsys, str(make_folder(tmp_path)), "--by", "model,day", "--format", "csv", *SINCE)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["model", "day", *FIGURES]
    assert [(r["model"], r["day"], int(r["requests"])) for r in rows] == [
        ("m1", "2026-11-01", 2), ("m1", "2026-11-02", 3), ("m2", "2026-11-01", 1), ("m2", "2026-11-03", 1),
    ]  # fmt: skip
    first = rows[0]
    assert float(first["cost"]) == pytest.approx(0.01) and float(first["error_rate"]) == 0.5
    assert first["latency_p95_ms"] == "300" and first["ttft_p50_ms"] == ""  # no TTFT: empty, not 0


def table_cells(text: str, markdown: bool) -> dict[str, list[str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if markdown:
        rows = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
        del rows[1]  # the alignment row
    else:
        rows = [line.split() for line in lines if not line.startswith("--") and not line[0].isdigit()]
        rows = [row for row in rows if row[0] != "prompt"]
    head = rows[0]
    return {row[0]: row for row in rows[1:]} | {"_head": head}


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_table_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    text, _ = out(capsys, str(make_folder(tmp_path)), "--by", "model", "--format", fmt, *SINCE)
    cells = table_cells(text, fmt == "markdown")
    head = cells["_head"]
    if fmt == "markdown":
        assert head[:4] == ["model", "requests", "errors", "error %"]
        m1 = dict(zip(head, cells["m1"], strict=True))
        assert (m1["requests"], m1["errors"], m1["error %"], m1["cost $"], m1["p50 ms"], m1["p95 ms"]) == (
            "5", "2", "40.0", "0.0460", "400", "600",
        )  # fmt: skip
    else:
        assert cells["m1"][:4] == ["m1", "5", "2", "40.0"]
        assert cells["m2"][1:3] == ["2", "1"]
    assert cells["TOTAL"][1] == "7"
    assert "7 records from" not in text  # not grouped by day: no span to give
    assert f"7 records in 3 file(s); {MALFORMED} malformed line(s) skipped" in text


def test_chart_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "out.png"
    _, err = out(capsys, str(make_folder(tmp_path / "rec")), "--chart", str(chart), *SINCE)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    assert f"chart written to {chart}" in err


def test_chart_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main([str(make_folder(tmp_path)), "--chart", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert "needs matplotlib" in err and "mitm-ai-proxy[report]" in err
    assert not (tmp_path / "c.png").exists()


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    for args in (["--by", "colour"], ["--since", "yesterday"], ["--format", "xml"]):
        with pytest.raises(SystemExit) as stop:
            main([str(tmp_path), *args])
        assert stop.value.code == 2
    assert "cannot group by colour" in capsys.readouterr().err
    assert main([str(tmp_path), "--since", "2026-11-02", "--until", "2026-11-01"]) == 2


def test_an_empty_folder_is_an_empty_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = out(capsys, str(tmp_path), "--format", "json")
    doc = json.loads(text)
    assert doc["groups"] == [] and doc["total"]["requests"] == 0 and doc["total"]["latency_p50_ms"] is None


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "addon.report", str(make_folder(tmp_path)), "--by", "client", "--format", "csv", *SINCE],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert [r["client"] for r in csv.DictReader(io.StringIO(done.stdout))] == ["anthropic", "openai"]


def test_duckdb_engine_without_duckdb_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from addon.report import cli

    monkeypatch.setattr(cli, "duckdb_installed", lambda: False)
    assert main([str(make_folder(tmp_path)), "--engine", "duckdb"]) == 1
    assert "mitm-ai-proxy[report-duckdb]" in capsys.readouterr().err
