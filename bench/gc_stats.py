"""A mitmdump script for bench_threads.py: every pass of the cyclic garbage collector counted and timed (CPU time of
the thread that runs it) per generation; on SIGUSR1 the figures so far go to $BENCH_GC_OUT as JSON
({generation: [passes, seconds, objects freed]}) and counting starts again."""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from typing import Any

_stats: dict[int, list[float]] = {}
_started = [0.0]


def _callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
        return
    entry = _stats.setdefault(info["generation"], [0, 0.0, 0])
    entry[0] += 1
    entry[1] += time.thread_time() - _started[0]
    entry[2] += info.get("collected", 0)


def _dump(signum: int, frame: Any) -> None:
    with open(os.environ["BENCH_GC_OUT"], "w") as f:
        json.dump({gen: _stats.get(gen, [0, 0.0, 0]) for gen in range(3)}, f)
    _stats.clear()


class GcStats:
    def running(self) -> None:
        gc.callbacks.append(_callback)
        signal.signal(signal.SIGUSR1, _dump)


addons = [GcStats()]
