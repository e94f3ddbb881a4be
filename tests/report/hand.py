"""A small recordings folder whose figures are counted by hand in the tests (see HAND)."""

from __future__ import annotations

from pathlib import Path

from tests.support.records import record, write

D1, D2, D3 = "2026-11-01", "2026-11-02", "2026-11-03"


def make_folder(folder: Path) -> Path:
    m1 = {"rule": "a", "provider": "openai", "model": "m1"}
    m2 = {"rule": "b", "provider": "anthropic", "model": "m2", "client_format": "anthropic"}
    write(
        folder,
        [
            record(D1, **m1, latency=100, prompt=10, completion=5, cost=0.01, cached=2, written=3),  # r1
            record(D1, **m1, status=500, error="boom", latency=300, prompt=None, completion=None, cost=None),  # r2
            record(D1, **m2, latency=200, ttft=50, prompt=20, completion=10, cost=0.02, cached=4),  # r3
        ],
    )
    path = folder / f"ai-proxy-{D1}.jsonl"
    with path.open("ab") as f:  # four lines that are not records, and a blank one that is no damage
        f.write(b"{not json}\n")
        f.write(b'{"timestamp":"2026-11-01T00:00:00Z","meta":{"rule":"a"\n')  # cut short
        f.write(b"[1, 2]\n")
        f.write(b"\n")
        f.write(b'{"no": "timestamp"}\n')
    write(
        folder,
        [
            record(D2, **m1, latency=400, ttft=80, prompt=30, completion=6, cost=0.03, written=8),  # r4
            record(D2, **m1, error="cut mid-stream", latency=500, prompt=1, completion=None, cost=0.001),  # r5
        ],
    )
    write(
        folder,
        [
            record(
                D3, **m2, status=429, error="slow down", latency=None, prompt=None, completion=None, cost=None
            ),  # r6
            # finished a moment before midnight, written into the next day's file: it counts for its own day
            record(D2, **m1, latency=600, prompt=5, completion=5, cost=0.005, at="23:59:59.999"),  # r7
        ],
        name=f"ai-proxy-{D3}.jsonl",
    )
    write(folder, [record("2026-10-01", **m1)])  # outside every date range the tests use
    (folder / "notes.txt").write_text("not a record file")
    return folder


# By model, counted by hand from the records above (2026-10-01 excluded: every test filters it out or counts it).
HAND = {
    "m1": {
        "requests": 5, "errors": 2, "error_rate": 0.4, "prompt_tokens": 46, "completion_tokens": 16,
        "total_tokens": 62, "cached_tokens": 2, "cache_write_tokens": 11, "cost": 0.046, "unpriced": 1,
        "latency_p50_ms": 400, "latency_p95_ms": 600, "ttft_p50_ms": 80, "ttft_p95_ms": 80,
    },
    "m2": {
        "requests": 2, "errors": 1, "error_rate": 0.5, "prompt_tokens": 20, "completion_tokens": 10,
        "total_tokens": 30, "cached_tokens": 4, "cache_write_tokens": 0, "cost": 0.02, "unpriced": 1,
        "latency_p50_ms": 200, "latency_p95_ms": 200, "ttft_p50_ms": 50, "ttft_p95_ms": 50,
    },
}  # fmt: skip
MALFORMED = 4
