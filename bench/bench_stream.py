"""Long streams through the proxy: memory growth, throughput and time to first token.

A fake Anthropic server streams a long answer (default 30 MB of SSE) as fast as it can. The same bytes go
through plain mitmdump in reverse mode with streaming on (`stream_large_bodies=1`, the ceiling) and through
mitmdump with the addon translating them to OpenAI chunks. For each: MB/s of upstream bytes, time to first
byte, and the proxy's resident memory before and at its peak (sampled from /proc while the stream runs).

    .venv/bin/python bench/bench_stream.py [MB]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fakes import FakeUpstream, Reply, sse
from tests.support.mitmdump import Mitmdump

DELTA = "A reasonably long streamed sentence of model output, repeated. " * 2  # ~130 characters per event


EVENTS_PER_WRITE = 32  # --events-per-write: 1 is how model APIs flush; 32 stresses per-event CPU


def anthropic_events(total_bytes: int):
    head = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_b",
                    "model": "claude-bench",
                    "content": [],
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                },
            },
            "message_start",
        ),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
    ]
    yield b"".join(head)
    event = sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": DELTA}},
        "content_block_delta",
    )
    batch = event * EVENTS_PER_WRITE
    for _ in range(max(1, total_bytes // len(batch))):
        yield batch
    yield sse(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 99}}, "message_delta"
    ) + sse({"type": "message_stop"}, "message_stop")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run(proxy: Mitmdump, fake: FakeUpstream, total: int, url: str, body: dict) -> dict:
    fake.queue(Reply(chunks=anthropic_events(total)))
    assert proxy.proc is not None
    pid = proxy.proc.pid
    before = peak = rss_kb(pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = 0
    start = time.perf_counter()
    first = None
    with httpx.Client(trust_env=False, timeout=120) as client, client.stream("POST", url, json=body) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            received += len(chunk)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    return {
        "seconds": elapsed,
        "ttfb_ms": (first or 0) * 1000,
        "received_mb": received / 1e6,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": peak / 1024,
    }


def ttfb_ms(url: str, fake: FakeUpstream, body: dict, n: int = 60) -> float:
    """Median time to the first body byte of a short stream (an ordinary answer), after a warm-up."""
    times = []
    with httpx.Client(trust_env=False, timeout=30) as client:
        for _ in range(n):
            fake.queue(Reply(chunks=[*anthropic_events(0)]))
            start = time.perf_counter()
            with client.stream("POST", url, json=body) as response:
                chunks = response.iter_raw()
                next(chunks)
                times.append(time.perf_counter() - start)
                for _ in chunks:
                    pass
    return statistics.median(times[n // 6 :]) * 1000


def main() -> None:
    global EVENTS_PER_WRITE
    args = sys.argv[1:]
    if "--events-per-write" in args:
        at = args.index("--events-per-write")
        EVENTS_PER_WRITE = int(args[at + 1])
        del args[at : at + 2]
    total = int(float(args[0]) * 1_000_000) if args else 30_000_000
    fake = FakeUpstream("anthropic")
    body = {"model": "claude-bench", "messages": [{"role": "user", "content": "go"}], "stream": True}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        rules = f"""
rules:
  - name: bench
    match: {{host: 127.0.0.1, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-bench
      options: {{upstream_url: "{fake.url}/v1/messages"}}
    auth: {{header_name: x-api-key, header_value: bench-not-a-key}}
    logging: {{log_statistics: true, log_payloads: false}}
"""
        quiet = ["--set", "flow_detail=0"]
        plain = Mitmdump(
            Path(tmp) / "plain",
            "",
            modes=[f"reverse:{fake.url}"],
            with_addon=False,
            extra_args=[*quiet, "--set", "stream_large_bodies=1"],
        )
        addon = Mitmdump(Path(tmp) / "addon", rules, modes=[f"reverse:{fake.url}"], extra_args=quiet)
        try:
            plain.start()
            addon.start()
            targets = {"plain": (plain, "/v1/messages"), "addon": (addon, "/v1/chat/completions")}
            for name, (proxy, path) in targets.items():
                url = f"http://127.0.0.1:{proxy.port('reverse')}{path}"
                run(proxy, fake, 2_000_000, url, body)  # warm-up
                results[name] = run(proxy, fake, total, url, body)
            for name, (proxy, path) in [*targets.items(), *targets.items()]:  # alternated, twice
                url = f"http://127.0.0.1:{proxy.port('reverse')}{path}"
                results[name].setdefault("short_ttfb_ms", []).append(ttfb_ms(url, fake, body))
        finally:
            plain.stop()
            addon.stop()
            fake.close()
    mb = total / 1e6
    print(f"{mb:.0f} MB upstream stream, one client, {EVENTS_PER_WRITE} event(s) per upstream write")
    print(f"{'':6} {'MB/s':>7} {'TTFB ms':>8} {'RSS before':>11} {'RSS peak':>9} {'growth':>7}")
    for name, r in results.items():
        growth = r["rss_peak_mb"] - r["rss_before_mb"]
        print(
            f"{name:6} {mb / r['seconds']:7.1f} {r['ttfb_ms']:8.1f} {r['rss_before_mb']:9.1f}MB "
            f"{r['rss_peak_mb']:7.1f}MB {growth:6.1f}MB"
        )
    ratio = results["plain"]["seconds"] / results["addon"]["seconds"]
    print(f"addon/plain streaming throughput: {ratio:.2f}x")
    plain_ttfb, addon_ttfb = (min(results[k]["short_ttfb_ms"]) for k in ("plain", "addon"))
    print(
        f"short streams, median time to first byte: plain {plain_ttfb:.2f} ms, addon {addon_ttfb:.2f} ms "
        f"(+{addon_ttfb - plain_ttfb:.2f} ms; target within 0.3 ms)"
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"bench_stream-{int(time.time())}.json").write_text(json.dumps({"mb": mb, **results}, indent=1))


if __name__ == "__main__":
    main()
