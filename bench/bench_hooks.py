"""CPU cost of the addon's hooks per exchange, in-process (no sockets): request -> responseheaders -> response
for an Anthropic-translated chat call with recording on, plus the writer thread's work (process CPU time covers
all threads). A quick, low-noise figure for the per-request overhead that bench_chat.py measures end to end.

    bench_hooks.py [N] [--agent] [--no-payloads]

--agent sends an agent-sized request (~200 KB: long history, twelve tools; bench/workloads.py) instead of the
983-byte chat; --no-payloads records statistics only."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addon.proxy import AIProxy
from bench.workloads import agent_body

RULES = """
rules:
  - name: bench
    match: {host: 127.0.0.1, path: /v1/chat/completions}
    model:
      provider: anthropic
      name: claude-bench
      options: {upstream_url: "http://127.0.0.1:9/v1/messages"}
    auth: {header_name: x-api-key, header_value: bench-not-a-key}
    logging: {log_statistics: true, log_payloads: true}
"""
MESSAGES = [{"role": "system", "content": "You are a careful assistant. " * 6}] + [
    {"role": r, "content": f"Turn {i}: " + "some words of context " * 6}
    for i, r in enumerate(["user", "assistant", "user", "assistant", "user"])
]
REQUEST = json.dumps({"model": "claude-bench", "messages": MESSAGES, "temperature": 0.2}).encode()
RESPONSE = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [{"type": "text", "text": "An answer of a reasonable length. " * 4}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 250, "output_tokens": 40},
    }
).encode()


def one_exchange(proxy: AIProxy, hooks: bool = True) -> None:
    headers = http.Headers(
        [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer sk-x"),
            (b"user-agent", b"OpenAI/Python 1.0"),
            (b"accept", b"application/json"),
        ]
    )
    req = tutils.treq(
        host="127.0.0.1", port=8080, method=b"POST", path=b"/v1/chat/completions", headers=headers, content=REQUEST
    )
    f = tflow.tflow(req=req)
    res = proxy.request(f) if hooks else None
    if res is not None:
        LOOP.run_until_complete(res)
    f.response = tutils.tresp(content=RESPONSE, headers=http.Headers(content_type="application/json"))
    if hooks:
        proxy.responseheaders(f)
        proxy.response(f)
        assert f.response.status_code == 200, f.response.content


LOOP = asyncio.new_event_loop()


def measure(proxy: AIProxy, n: int, hooks: bool) -> tuple[float, float]:
    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(n):
        one_exchange(proxy, hooks)
    if hooks:
        proxy.done()  # drains the writer: its CPU counts too
    return time.process_time() - start_cpu, time.perf_counter() - start


def main(n: int = 3000, payloads: bool = True) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES if payloads else RULES.replace("log_payloads: true", "log_payloads: false"))
        proxy = AIProxy()
        with taddons.context(proxy) as tctx:
            tctx.configure(proxy, ai_rules=str(rules), ai_recordings=str(Path(tmp) / "rec"))
            for _ in range(300):
                one_exchange(proxy)
            base_cpu, _ = measure(proxy, n, hooks=False)  # building test flows costs more than the hooks
            cpu, _wall = measure(proxy, n, hooks=True)
        lines = sum(1 for p in (Path(tmp) / "rec").glob("*.jsonl") for _ in p.open())
    print(f"{n} exchanges ({lines} records): hooks + recording cost {(cpu - base_cpu) / n * 1e6:.0f} us CPU each")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--agent" in sys.argv:
        REQUEST = agent_body("claude-bench")
    main(int(args[0]) if args else (300 if "--agent" in sys.argv else 3000), "--no-payloads" not in sys.argv)
