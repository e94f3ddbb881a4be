"""Draws docs/report-chart.png, the README's picture of the spend report, from synthetic records (the same
generator as the report's tests and benchmark: five models over 30 days), and prints the report's table beside it.

    .venv/bin/python docs/make_report_chart.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from addon.report.cli import main  # noqa: E402  (the project root is on the path from here)
from tests.support.records import write_synthetic  # noqa: E402

if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="report-chart-") as folder:
        write_synthetic(Path(folder), 20_000, days=30, payload_bytes=0, seed=15)
        sys.exit(main([folder, "--by", "model", "--chart", str(ROOT / "docs" / "report-chart.png")]))
