"""The JSONL writer (audit.Recorder): whole lines, every record exactly once, also around and after close and
at interpreter exit."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from addon import audit

ROOT = Path(__file__).resolve().parents[1]


def lines(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        text = path.read_text()
        assert not text or text.endswith("\n"), "the last record is not a whole line"
        out += [json.loads(line) for line in text.splitlines()]  # a partial or interleaved line fails here
    return out


def test_close_drains_everything_queued(tmp_path: Path) -> None:
    recorder = audit.Recorder(tmp_path)
    for n in range(2000):
        recorder.write(lambda n=n: {"id": n})
    assert recorder.close()
    assert [r["id"] for r in lines(tmp_path)] == list(range(2000))


def test_write_after_close_is_written_not_dropped(tmp_path: Path) -> None:
    recorder = audit.Recorder(tmp_path, redact=("configured-secret",))
    recorder.write({"id": "before"})
    assert recorder.close()
    recorder.write({"id": "late", "key": "configured-secret"})
    recorder.write(lambda: {"id": "late-built", "token": "per-request-token"}, ("per-request-token",))
    assert lines(tmp_path) == [
        {"id": "before"},
        {"id": "late", "key": "REDACTED"},  # redacted like the queued ones
        {"id": "late-built", "token": "REDACTED"},
    ]


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    recorder = audit.Recorder(tmp_path)
    recorder.write({"id": 1})
    assert recorder.close() and recorder.close()
    assert recorder.closed
    assert lines(tmp_path) == [{"id": 1}]


def test_every_record_exactly_once_when_close_races_writers(tmp_path: Path) -> None:
    """Writers on several threads around a close: records written before it, while it runs and after it are each
    on disk once (queued and drained by the writer thread, or written by the caller), never lost, never twice."""
    recorder = audit.Recorder(tmp_path)
    writers, per_part = 8, 300
    started, closed = threading.Barrier(writers + 1), threading.Event()

    def write(w: int) -> None:
        for part in range(3):
            if part == 1:
                started.wait()  # the close starts while every writer still writes
            if part == 2:
                closed.wait()  # and some records certainly come after it
            for n in range(per_part):
                recorder.write({"id": f"{w}-{part}-{n}", "pad": "x" * 200})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    started.wait()
    recorder.close()
    closed.set()
    for t in threads:
        t.join()
    ids = [r["id"] for r in lines(tmp_path)]
    assert len(ids) == len(set(ids)) == writers * per_part * 3


def test_a_record_that_cannot_be_built_is_skipped_not_fatal(tmp_path: Path) -> None:
    recorder = audit.Recorder(tmp_path)
    recorder.write(lambda: 1 / 0)
    recorder.write({"id": "good"})
    assert recorder.close()
    recorder.write(lambda: 1 / 0)  # after close too: logged, and the caller goes on
    recorder.write({"id": "late"})
    assert lines(tmp_path) == [{"id": "good"}, {"id": "late"}]


EXIT_SCRIPT = """
import sys
from addon import audit
recorder = audit.Recorder(sys.argv[1])
for n in range(20000):
    recorder.write(lambda n=n: {"id": n, "pad": "x" * 100})
# no close: the interpreter exits with the queue full and the daemon writer thread busy
"""


def test_queue_is_drained_at_interpreter_exit_without_close(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(tmp_path)], cwd=ROOT, check=True, timeout=30)
    assert [r["id"] for r in lines(tmp_path)] == list(range(20000))
