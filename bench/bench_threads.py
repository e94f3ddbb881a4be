#!/usr/bin/env python3
"""Where a mitmdump's CPU goes, per thread and to the garbage collector: the event loop (mitmproxy and the addon's
hooks) against the audit writer thread, context switches per request, and the cyclic collector's passes and time.

    .venv/bin/python bench/bench_threads.py [--body chat|agent] [--requests N] [--concurrency C] [--no-payloads]

Runs bench_chat's fake upstream and load generator against plain mitmdump and then mitmdump with the addon (its
rule as in bench_chat), each with a small extra script (bench/gc_stats.py) that times every collection with
gc.callbacks on the thread that runs it. CPU times come from /proc/<pid>/task/<tid>/stat around the measured
requests. One process at a time: the figures are per request, not a race."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import bench_chat as bc  # noqa: E402
from bench import harness  # noqa: E402
from bench.workloads import agent_body  # noqa: E402

GC_SCRIPT = Path(__file__).resolve().parent / "gc_stats.py"


def per_thread(pid: int) -> dict[int, tuple[float, int]]:
    """CPU seconds and context switches of each thread of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
        out[int(tid)] = ((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), switches)
    return out


def measure(config: str, args: argparse.Namespace, body: bytes, tmp: Path) -> dict[str, object]:
    procs = harness.Processes()
    try:
        fake_port, port = harness.free_port(), harness.free_port()
        me = [sys.executable, str(Path(bc.__file__).resolve())]
        fake = procs.start("fake", [*me, "--role", "fake", "--port", str(fake_port)], tmp / "fake.log")
        gc_out = tmp / f"gc-{config}.json"
        confdir = tmp / f"conf-{config}"
        cmd = [str(Path(sys.executable).parent / "mitmdump"), "--mode", f"reverse:http://{harness.HOST}:{fake_port}",
               "--listen-host", harness.HOST, "-q", "-p", str(port), "--set", f"confdir={confdir}"]  # fmt: skip
        if config == "addon":
            (tmp / "rules.yaml").write_text(bc.rules_yaml(fake_port, not args.no_payloads))
            cmd += ["-s", str(bc.ADDON_SCRIPT), "--set", f"ai_rules={tmp / 'rules.yaml'}",
                    "--set", f"ai_recordings={tmp / 'recordings'}"]  # fmt: skip
        os.environ["BENCH_GC_OUT"] = str(gc_out)  # the children's environment is this one's
        proxy = procs.start(config, [*cmd, "-s", str(GC_SCRIPT)], tmp / f"{config}.log", cwd=ROOT)
        harness.wait_listening(procs, fake, "fake", fake_port)
        harness.wait_listening(procs, proxy, f"mitmdump ({config})", port)
        params = {"port": port, "path": bc.CHAT_PATH, "body_hex": body.hex(), "concurrency": args.concurrency,
                  "warmup": 0, "requests": args.warmup, "timeout": 600, "proxy_pid": proxy.pid,
                  "fake_pid": fake.pid}  # fmt: skip
        subprocess.run([*me, "--role", "client"], input=json.dumps(params).encode(), capture_output=True, check=True)
        time.sleep(0.3)
        before = per_thread(proxy.pid)
        os.kill(proxy.pid, signal.SIGUSR1)  # gc_stats.py writes its figures and starts again from zero
        time.sleep(0.3)
        params["requests"] = args.requests
        run = subprocess.run([*me, "--role", "client"], input=json.dumps(params).encode(), capture_output=True)
        time.sleep(0.5)
        after = per_thread(proxy.pid)
        os.kill(proxy.pid, signal.SIGUSR1)
        time.sleep(0.3)
        collected = json.loads(gc_out.read_text())
        result = json.loads(run.stdout)
        if "fatal" in result or result["errors"]:
            raise harness.BenchError(f"{config}: {result.get('fatal') or result['error_samples']}")
    finally:
        procs.stop_all()
    n = args.requests
    threads = {}
    for tid, (cpu, switches) in after.items():
        cpu0, switches0 = before.get(tid, (0.0, 0))
        if cpu - cpu0 > 0 or switches - switches0 > 0:
            name = "event loop" if tid == proxy.pid else f"thread {tid}"
            threads[name] = {"cpu_ms_per_req": (cpu - cpu0) / n * 1000, "switches_per_req": (switches - switches0) / n}
    return {"rps": result["requests"] / result["wall_s"], "threads": threads, "gc": collected}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--body", choices=("chat", "agent"), default="agent")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--no-payloads", action="store_true")
    args = ap.parse_args()
    body = agent_body(bc.MODEL) if args.body == "agent" else bc.chat_body()
    with tempfile.TemporaryDirectory(prefix="bench_threads-") as tmp:
        for config in ("plain", "addon"):
            r = measure(config, args, body, Path(tmp))
            print(f"{config}: {r['rps']:.0f} req/s")
            for name, t in r["threads"].items():  # type: ignore[union-attr]
                print(f"  {name:<14} {t['cpu_ms_per_req']:7.3f} ms CPU/req  {t['switches_per_req']:5.2f} switches/req")
            for gen, (count, seconds, freed) in sorted(r["gc"].items()):  # type: ignore[union-attr]
                print(f"  gc gen{gen}: {count} passes, {seconds / args.requests * 1000:.3f} ms/req, {freed} freed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
