#!/usr/bin/env python3
"""Benchmark: one proxy process against two behind HAProxy (TCP mode), the AI proxy addon in each.

    .venv/bin/python bench/bench_scale.py [--requests N] [--concurrency C] [--rounds R] [--body chat|agent]

mitmproxy runs one event loop per process; a second process behind a TCP load balancer is how the proxy uses a
second core (README, "Several proxy processes on one machine"). Configurations, alternated per round:
  * x1: one mitmdump with the addon, the client connecting to it directly;
  * haproxy-x1: the same process behind HAProxy (what the balancer itself costs);
  * haproxy-x2: two such processes behind HAProxy (balance leastconn).
The fake upstream, the load generator and the rules are bench_chat.py's. On a 2-core machine the load generator,
the fake and HAProxy share the cores with the proxies: read the x2/x1 ratio with that in mind. Needs `haproxy` on
PATH (Debian package haproxy)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import bench_chat as bc
from bench import harness
from bench.workloads import agent_body

CONFIGS = ("x1", "haproxy-x1", "haproxy-x2")


def haproxy_config(front: int, backends: list[int]) -> str:
    servers = "\n".join(f"    server p{i} {harness.HOST}:{port}" for i, port in enumerate(backends))
    return (
        "global\n    maxconn 1024\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 120s\n"
        f"    timeout server 120s\nfrontend ai\n    bind {harness.HOST}:{front}\n    default_backend proxies\n"
        f"backend proxies\n    balance leastconn\n{servers}\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--body", choices=("chat", "agent"), default="chat")
    args = ap.parse_args()
    if shutil.which("haproxy") is None:
        print("bench_scale: haproxy is not installed (apt-get install haproxy)", file=sys.stderr)
        return 1
    body = agent_body(bc.MODEL) if args.body == "agent" else bc.chat_body()
    procs = harness.Processes()
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale-"))
    try:
        fake_port, p1, p2, front1, front2 = (harness.free_port() for _ in range(5))
        me = [sys.executable, str(Path(bc.__file__).resolve())]
        fake = procs.start("fake", [*me, "--role", "fake", "--port", str(fake_port)], tmp / "fake.log")
        (tmp / "rules.yaml").write_text(bc.rules_yaml(fake_port))
        addons = []
        for i, port in enumerate((p1, p2)):
            cmd = [
                str(Path(sys.executable).parent / "mitmdump"), "--mode", f"reverse:http://{harness.HOST}:{fake_port}",
                "--listen-host", harness.HOST, "-q", "-p", str(port), "--set", f"confdir={tmp / 'conf'}",
                "-s", str(bc.ADDON_SCRIPT), "--set", f"ai_rules={tmp / 'rules.yaml'}",
                "--set", f"ai_recordings={tmp / 'recordings'}", "--set", f"ai_recordings_tag=p{i}",
            ]  # fmt: skip
            addons.append(procs.start(f"addon{i}", cmd, tmp / f"addon{i}.log", cwd=bc.ROOT))
            harness.wait_listening(procs, addons[-1], f"mitmdump p{i}", port)  # one at a time: one CA in the confdir
        for front, backends in ((front1, [p1]), (front2, [p1, p2])):
            (tmp / f"haproxy-{front}.cfg").write_text(haproxy_config(front, backends))
            ha = procs.start("haproxy", ["haproxy", "-f", str(tmp / f"haproxy-{front}.cfg")], tmp / "haproxy.log")
            harness.wait_listening(procs, ha, "haproxy", front)
        harness.wait_listening(procs, fake, "fake", fake_port)
        ports = {"x1": p1, "haproxy-x1": front1, "haproxy-x2": front2}
        for name in CONFIGS:
            bc.check("addon", ports[name], fake_port, body, tmp / "recordings")
        print(f"request body {len(body)} bytes, {args.concurrency} connections, {os.cpu_count()} CPUs")
        results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        for _ in range(args.rounds):
            for name in CONFIGS:
                params = {
                    "port": ports[name], "path": bc.CHAT_PATH, "body_hex": body.hex(),
                    "concurrency": args.concurrency, "warmup": args.warmup, "requests": args.requests,
                    "timeout": args.timeout, "proxy_pid": None, "fake_pid": fake.pid,
                }  # fmt: skip
                client = procs.start("client", [*me, "--role", "client"], None, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)  # fmt: skip
                out, _ = client.communicate(json.dumps(params).encode(), timeout=args.timeout + 15)
                result = json.loads(out)
                if "fatal" in result or result["errors"]:
                    raise harness.BenchError(f"{name}: {result.get('fatal') or result['error_samples']}")
                results[name].append(result)
                print(f"{name:<11} {bc.summarize([result])['rps']:8.0f} req/s")
        summary = {name: bc.summarize(rs) for name, rs in results.items()}
        print()
        for name in CONFIGS:
            s = summary[name]
            print(f"{name:<11} {s['rps']:8.0f} req/s  p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms")
        two, one, behind = (summary[n]["rps"] for n in ("haproxy-x2", "x1", "haproxy-x1"))
        print(f"\nhaproxy-x2 / x1: {two / one:.2f}x  haproxy-x2 / haproxy-x1: {two / behind:.2f}x")
        return 0
    except harness.BenchError as e:
        print(f"bench_scale: ABORTED: {e}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    sys.exit(main())
