#!/usr/bin/env python3
"""Benchmark: non-streamed OpenAI chat completions through plain mitmdump vs. mitmdump with the AI proxy addon.

    .venv/bin/python bench/bench_chat.py            # or: make bench
    .venv/bin/python bench/bench_chat.py --help

One script, four kinds of process, each its own interpreter so none shares a GIL with another:
  * a fake Anthropic Messages server (hand-written asyncio HTTP/1.1, keep-alive, fixed answer to any POST);
  * `mitmdump --mode reverse:<fake>` without addon ("plain": forwards the OpenAI-shaped body unchanged);
  * the same with `-s addon/ai_proxy.py` and a one-rule rules file ("addon": OpenAI -> Anthropic -> OpenAI,
    statistics and payload logging on);
  * a load generator (raw asyncio sockets, N keep-alive connections) started afresh for every round.
The configurations alternate (direct once, then plain/addon per round); the proxy's CPU seconds per request
come from /proc/<pid>/stat around the measured phase. Results: a table on stdout and a JSON file in
bench/results/. Standard library only (the proxies come from the venv).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.formats import FAKE_TEXT, FORMATS, MODEL, Format  # noqa: E402
from bench.harness import (  # noqa: E402  (the project root is on the path from here)
    HOST,
    BenchError,
    Processes,
    free_port,
    http_call,
    percentile,
    wait_listening,
)
from bench.roles import FAKE_BODY, KEY_STAT, fake_stats, run_client, run_fake  # noqa: E402
from bench.workloads import agent_body  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
ADDON_SCRIPT = ROOT / "addon" / "ai_proxy.py"
CHAT_PATH = "/v1/chat/completions"
RULE_NAME = "bench-anthropic"
CONFIGS = ("direct", "plain", "addon")
NO_PAYLOADS = "addon-np"  # --compare-payloads: the same rule with log_payloads off, in the same run
BEFORE = "before"  # --before DIR: the addon of another checkout (with its own .venv), in the same run
__all__ = ["FAKE_TEXT", "MODEL"]


def chat_body() -> bytes:
    """An OpenAI chat request of about 1 KB: system prompt and a few user/assistant turns."""
    body = {
        "model": MODEL,
        "messages": [
            {
                "role": "system",
                "content": "You are a concise geography tutor. Answer in one or two sentences, cite no sources, "
                "and prefer well-known facts over trivia. If a question is ambiguous, pick the most common "
                "reading and say so briefly.",
            },
            {"role": "user", "content": "Which river flows through Vienna, Budapest and Belgrade?"},
            {
                "role": "assistant",
                "content": "The Danube flows through all three capitals on its way to the Black Sea.",
            },
            {"role": "user", "content": "How long is it, roughly, and where does it start?"},
            {
                "role": "assistant",
                "content": "About 2,850 km. It rises in the Black Forest in Germany, where the Brigach and Breg "
                "streams meet at Donaueschingen.",
            },
            {
                "role": "user",
                "content": "Good. Now a different one: what is the capital of France, and why did the city end up "
                "as the capital rather than Lyon or Marseille? Keep it short, one or two sentences please.",
            },
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "user": "bench-user-0001",
    }
    return json.dumps(body).encode()


# ----------------------------------------------------------------------------------------------------------------
# Orchestrator
# ----------------------------------------------------------------------------------------------------------------


def check(
    config: str,
    port: int,
    fake_port: int,
    body: bytes,
    recordings: Path | None,
    payloads: bool = True,
    fmt: Format = FORMATS["openai"],
) -> str:
    """One request through a configuration, verified; raises BenchError with what was wrong."""
    before = fake_stats(fake_port)
    try:
        status, _, raw = http_call(port, "POST", fmt.path, body)
    except OSError as e:
        raise BenchError(f"{config}: request failed: {e}") from None
    after = fake_stats(fake_port)
    shown = raw[:600].decode("utf-8", "replace")
    if status != 200:
        raise BenchError(f"{config}: expected HTTP 200, got {status}: {shown}")
    try:
        data = json.loads(raw)
    except ValueError:
        raise BenchError(f"{config}: response is not JSON: {shown}") from None

    def hits(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    if config in ("direct", "plain"):
        if data != json.loads(FAKE_BODY):
            raise BenchError(f"{config}: expected the fake's Anthropic message unchanged, got: {shown}")
        if hits(fmt.path) != 1:
            raise BenchError(f"{config}: the fake did not see one {fmt.path} request (stats {after})")
        return "fake's Anthropic JSON returned unchanged"
    if not fmt.ok(data):
        raise BenchError(f"{config}: expected {fmt.shape} carrying the fake's text and usage, got: {shown}")
    if hits(fmt.upstream_path) != 1 or hits(KEY_STAT) != 1:
        want = f"one {fmt.upstream_path} request with the rule's key"
        raise BenchError(f"{config}: the fake did not get {want} ({after})")
    assert recordings is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [ln for f in recordings.glob("*.jsonl") for ln in f.read_text().splitlines()]
        if lines:
            record = json.loads(lines[-1])
            as_configured = ("payload" in record) == payloads and "usage" in record
            if record.get("meta", {}).get("rule") != RULE_NAME or not as_configured:
                raise BenchError(f"{config}: the audit record is not as the rule says: {lines[-1][:300]}")
            break
        time.sleep(0.05)
    else:
        raise BenchError(f"{config}: no audit record appeared in {recordings} within 5 s")
    return f"{fmt.shape} with the fake's text; audit record written"


def rules_yaml(fake_port: int, payloads: bool = True, fmt: Format = FORMATS["openai"]) -> str:
    return f"""\
rules:
  - name: {RULE_NAME}
    match:
      host: {HOST}
      path: "{fmt.path}"
    {fmt.select}
    model:
      provider: {fmt.provider}
      name: {MODEL}
      options:
        upstream_url: http://{HOST}:{fake_port}{fmt.upstream_path}
    auth:
      header_name: {fmt.auth_header}
      header_value: {fmt.auth_value}
    logging:
      log_statistics: true
      log_payloads: {"true" if payloads else "false"}
"""


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures over one configuration's rounds."""
    lat = sorted(x for r in results for x in r["latencies_ms"])
    requests = sum(r["requests"] for r in results)
    wall = sum(r["wall_s"] for r in results)
    out: dict[str, Any] = {
        "rounds": len(results),
        "requests": requests,
        "errors": sum(r["errors"] for r in results),
        "rps": requests / wall if wall else float("nan"),
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1] if lat else float("nan"),
        "mean_ms": sum(lat) / len(lat) if lat else float("nan"),
    }
    for name in ("proxy", "fake", "client"):
        secs = [r["cpu_s"][name] for r in results if name in r["cpu_s"]]
        if secs:
            out[f"{name}_cpu_ms_per_req"] = sum(secs) / requests * 1000
            out[f"{name}_cpu_util"] = sum(secs) / wall
    return out


def git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return None
    if rev.returncode:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    cpu = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    versions = {}
    for pkg in ("mitmproxy", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "versions": versions,
        "git": git_revision(),
    }


def ratios_over(addon: dict[str, Any], plain: dict[str, Any]) -> dict[str, float]:
    return {
        "throughput": addon["rps"] / plain["rps"],
        "p50": addon["p50_ms"] / plain["p50_ms"],
        "p99": addon["p99_ms"] / plain["p99_ms"],
        "proxy_cpu_per_req": addon["proxy_cpu_ms_per_req"] / plain["proxy_cpu_ms_per_req"],
    }


def fmt_row(name: str, rnd: str, s: dict[str, Any]) -> str:
    def f(key: str, spec: str) -> str:
        v = s.get(key)
        return format(v, spec) if v is not None else format("-", ">" + spec.split(".")[0])

    return (
        f"{name:<9}{rnd:>6}{f('rps', '9.0f')}{f('p50_ms', '9.2f')}{f('p99_ms', '9.2f')}"
        f"{f('proxy_cpu_ms_per_req', '11.3f')}{f('proxy_cpu_util', '8.2f')}"
        f"{f('client_cpu_ms_per_req', '10.3f')}{f('fake_cpu_ms_per_req', '9.3f')}{s.get('errors', 0):>7}"
    )


HEADER = (
    f"{'config':<9}{'round':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'proxy ms':>11}{'util':>8}{'client ms':>10}{'fake ms':>9}{'errors':>7}\n"
    f"{'':<9}{'':>6}{'':>9}{'':>9}{'':>9}{'CPU/req':>11}{'proxy':>8}{'CPU/req':>10}{'CPU/req':>9}"
)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def orchestrate(args: argparse.Namespace) -> int:
    mitmdump = args.mitmdump or str(Path(sys.executable).parent / "mitmdump")
    if not Path(mitmdump).exists():
        raise BenchError(f"mitmdump not found at {mitmdump} (run `make install`, or pass --mitmdump)")
    fmt = FORMATS[args.format]
    body = fmt.body(agent_body(MODEL) if args.body == "agent" else chat_body())
    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="bench_chat-"))
    started = time.time()
    try:
        # Each mitmdump with the addon: its rule's log_payloads, and the checkout it runs (--before: an older one).
        addons = {"addon": (not args.no_payloads, ROOT)}
        if args.compare_payloads:
            addons[NO_PAYLOADS] = (False, ROOT)
        if args.before is not None:
            addons[BEFORE] = (not args.no_payloads, args.before.resolve())
        ports = {"direct": 0}
        while len(set(ports.values())) < len(addons) + 2:
            ports = {"direct": free_port(), "plain": free_port()} | {name: free_port() for name in addons}
        fake_port = ports["direct"]
        me = [sys.executable, str(Path(__file__).resolve())]
        fake = procs.start("fake", [*me, "--role", "fake", "--port", str(fake_port)], tmp / "fake.log")
        common = [mitmdump, "--mode", f"reverse:http://{HOST}:{fake_port}", "--listen-host", HOST, "-q"]
        proxies = {
            "plain": procs.start(
                "plain",
                [*common, "-p", str(ports["plain"]), "--set", f"confdir={tmp / 'conf-plain'}"],
                tmp / "plain.log",
                cwd=ROOT,
            )
        }
        recordings = {name: tmp / f"recordings-{name}" for name in addons}
        for name, (payloads, root) in addons.items():
            (tmp / f"rules-{name}.yaml").write_text(rules_yaml(fake_port, payloads, fmt))
            binary = [str(root / ".venv" / "bin" / "mitmdump"), *common[1:]] if root != ROOT else common
            proxies[name] = procs.start(name, [
                *binary, "-p", str(ports[name]), "--set", f"confdir={tmp / f'conf-{name}'}",
                "-s", str(root / "addon" / "ai_proxy.py"),
                "--set", f"ai_rules={tmp / f'rules-{name}.yaml'}", "--set", f"ai_recordings={recordings[name]}",
            ], tmp / f"{name}.log", cwd=root)  # fmt: skip
        wait_listening(procs, fake, "fake server", fake_port)
        for name, p in proxies.items():
            wait_listening(procs, p, f"mitmdump ({name})", ports[name])

        configs = ([] if args.no_direct else ["direct"]) + list(proxies)
        print(
            f"{fmt.name} client format, request body {len(body)} bytes; {args.warmup} warm-up + {args.requests} "
            f"measured requests per round, {args.concurrency} keep-alive connections; {os.cpu_count()} CPUs"
        )
        checks = {}
        for name in configs:
            payloads = addons[name][0] if name in addons else False
            checks[name] = check(name, ports[name], fake_port, body, recordings.get(name), payloads, fmt)
            print(f"check {name:<8} ok: {checks[name]}")

        schedule = (["direct"] if "direct" in configs else []) + list(proxies) * args.rounds
        rounds: list[dict[str, Any]] = []
        print()
        print(HEADER)
        for i, name in enumerate(schedule):
            rnd = sum(1 for n in schedule[: i + 1] if n == name)
            params = {
                "port": ports[name],
                "path": fmt.path,
                "body_hex": body.hex(),
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "requests": args.requests,
                "timeout": args.timeout,
                "proxy_pid": proxies[name].pid if name in proxies else None,
                "fake_pid": fake.pid,
            }
            client = procs.start(
                "client", [*me, "--role", "client"], None, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            try:
                out, _ = client.communicate(json.dumps(params).encode(), timeout=args.timeout + 15)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
                raise BenchError(f"{name} round {rnd}: load generator hung past {args.timeout + 15} s") from None
            try:
                result = json.loads(out)
            except ValueError:
                raise BenchError(f"{name} round {rnd}: load generator failed (exit {client.returncode})") from None
            if "fatal" in result:
                raise BenchError(f"{name} round {rnd}: {result['fatal']}")
            for pname, p in proxies.items():
                if p.poll() is not None:
                    raise BenchError(f"mitmdump ({pname}) died (exit {p.returncode}):\n{procs.log_tail(p)}")
            result.update(config=name, round=rnd)
            summary = summarize([result])
            print(fmt_row(name, str(rnd), summary))
            if result["errors"] or result["warmup_errors"]:
                raise BenchError(
                    f"{name} round {rnd}: {result['errors'] + result['warmup_errors']} failed requests, e.g. "
                    f"{result['error_samples']}\n{procs.log_tail(proxies[name]) if name in proxies else ''}"
                )
            rounds.append(result)

        summaries = {name: summarize([r for r in rounds if r["config"] == name]) for name in configs}
        print("-" * len(HEADER.splitlines()[0]))
        for name in configs:
            print(fmt_row(name, "all", summaries[name]))
        plain = summaries["plain"]
        all_ratios = {name: ratios_over(summaries[name], plain) for name in addons}
        ratios = all_ratios["addon"]
        print()
        for name, r in all_ratios.items():
            print(
                f"{name}/plain: throughput {r['throughput']:.3f}x  p50 {r['p50']:.3f}x  "
                f"p99 {r['p99']:.3f}x  proxy CPU/request {r['proxy_cpu_per_req']:.3f}x "
                f"(CPU-bound throughput ratio {1 / r['proxy_cpu_per_req']:.3f}x; target >= 0.90x)"
            )
        if "direct" in summaries and summaries["direct"]["rps"] < 1.5 * plain["rps"]:
            print(
                "warning: direct (client -> fake, no proxy) is under 1.5x plain's throughput: the load generator "
                "or the fake may be limiting the figures"
            )

        recorded = sum(len(f.read_text().splitlines()) for d in recordings.values() for f in d.glob("*.jsonl"))
        report = {
            "benchmark": "bench_chat",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1),
            "machine": machine_info(),
            "params": {
                "requests": args.requests,
                "warmup": args.warmup,
                "concurrency": args.concurrency,
                "rounds": args.rounds,
                "request_body_bytes": len(body),
                "body": args.body,
                "format": fmt.name,
                "log_payloads": not args.no_payloads,
                "compare_payloads": args.compare_payloads,
                "response_body_bytes": len(FAKE_BODY),
                "schedule": schedule,
            },
            "checks": checks,
            "rounds": [{k: v for k, v in r.items() if k != "latencies_ms"} | summarize([r]) for r in rounds],
            "summary": summaries,
            "ratios_addon_over_plain": ratios,
            "ratios_over_plain": all_ratios,
            "audit_records_written": recorded,
            "fake_server_counts": fake_stats(fake_port),
        }
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"bench_chat-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwritten {path.relative_to(ROOT)} ({report['duration_s']} s in all)")
        return 0
    finally:
        procs.stop_all()
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per round (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each round (default 200)")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    ap.add_argument("--rounds", type=int, default=2, help="plain/addon alternations (default 2)")
    ap.add_argument("--timeout", type=float, default=60, help="hard limit per round, seconds (default 60)")
    ap.add_argument("--no-direct", action="store_true", help="skip the client -> fake baseline round")
    ap.add_argument("--mitmdump", help="mitmdump to run (default: the one beside this Python)")
    ap.add_argument(
        "--body",
        choices=("chat", "agent"),
        default="chat",
        help="chat: the ~1 KB request (default); agent: ~200 KB, a coding agent's turn (bench/workloads.py)",
    )
    ap.add_argument("--no-payloads", action="store_true", help="the rule records statistics only (log_payloads off)")
    ap.add_argument(
        "--compare-payloads",
        action="store_true",
        help=f"also run the rule with log_payloads off ('{NO_PAYLOADS}'), alternating with the others in the same run",
    )
    ap.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help=f"also run the addon of another checkout with its own .venv ('{BEFORE}', e.g. a git worktree of an "
        "older commit after `make install` there), alternating in the same run: a before/after that machine noise "
        "moves alike",
    )
    ap.add_argument(
        "--format",
        choices=tuple(FORMATS),
        default="openai",
        help="the client's API (default openai chat; anthropic goes to the openai provider, the others to anthropic)",
    )
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, rules, audit records)")
    ap.add_argument("--role", choices=("fake", "client"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "fake":
        run_fake(args.port)
        return 0
    if args.role == "client":
        run_client(json.load(sys.stdin))
        return 0
    if min(args.requests, args.concurrency, args.rounds) < 1 or args.warmup < 0:
        ap.error("--requests, --concurrency and --rounds must be at least 1, --warmup at least 0")
    try:
        with sigterm_as_interrupt():
            return orchestrate(args)
    except BenchError as e:
        print(f"\nbench_chat: ABORTED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench_chat: interrupted; processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
