"""CPU cost of the addon's hooks per exchange, in-process (no sockets): request -> responseheaders -> response
for an Anthropic-translated chat call with recording on, plus the writer thread's work (process CPU time covers
all threads). A quick, low-noise figure for the per-request overhead that bench_chat.py measures end to end.

    bench_hooks.py [N] [--agent] [--no-payloads] [--format openai|anthropic|responses|gemini]

--agent sends an agent-sized request (~200 KB: long history, twelve tools; bench/workloads.py) instead of the
983-byte chat; --no-payloads records statistics only; --format: the client's API, translated as in bench_chat."""

from __future__ import annotations

import argparse
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
from bench.bench_chat import rules_yaml
from bench.formats import FORMATS, MODEL, OPENAI_ANSWER
from bench.workloads import agent_body

MESSAGES = [{"role": "system", "content": "You are a careful assistant. " * 6}] + [
    {"role": r, "content": f"Turn {i}: " + "some words of context " * 6}
    for i, r in enumerate(["user", "assistant", "user", "assistant", "user"])
]
CHAT = json.dumps({"model": MODEL, "messages": MESSAGES, "temperature": 0.2}).encode()
FORMAT = FORMATS["openai"]
REQUEST = CHAT
ANTHROPIC_RESPONSE = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "An answer of a reasonable length. " * 4}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 250, "output_tokens": 40},
    }
).encode()
RESPONSE = ANTHROPIC_RESPONSE
RULES = rules_yaml(9, True, FORMAT)


def configure(fmt: str = "openai", agent: bool = False, payloads: bool = True) -> None:
    """The exchange to run: the client format (bench/formats.py, each to its translated provider as in bench_chat),
    the ~200 KB agent request or the short chat, and whether the rule records payloads."""
    global FORMAT, REQUEST, RESPONSE, RULES
    FORMAT = FORMATS[fmt]
    REQUEST = FORMAT.body(agent_body(MODEL) if agent else CHAT)
    RESPONSE = OPENAI_ANSWER if FORMAT.provider == "openai" else ANTHROPIC_RESPONSE
    RULES = rules_yaml(9, payloads, FORMAT)


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
    path = FORMAT.path.encode()
    req = tutils.treq(host="127.0.0.1", port=8080, method=b"POST", path=path, headers=headers, content=REQUEST)
    f = tflow.tflow(req=req)
    res = proxy.request(f) if hooks else None
    if res is not None:
        LOOP.run_until_complete(res)
    f.response = tutils.tresp(content=RESPONSE, headers=http.Headers(content_type="application/json"))
    if hooks:
        if FORMAT.name == "responses":  # its store saves on an executor thread: the hooks want a running loop
            LOOP.run_until_complete(_respond(proxy, f))
        else:
            _respond_now(proxy, f)
        assert f.response.status_code == 200, f.response.content


def _respond_now(proxy: AIProxy, f: http.HTTPFlow) -> None:
    proxy.responseheaders(f)
    proxy.response(f)


async def _respond(proxy: AIProxy, f: http.HTTPFlow) -> None:
    _respond_now(proxy, f)


LOOP = asyncio.new_event_loop()


def measure(proxy: AIProxy, n: int, hooks: bool) -> tuple[float, float]:
    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(n):
        one_exchange(proxy, hooks)
    if hooks:
        proxy.done()  # drains the writer: its CPU counts too
    return time.process_time() - start_cpu, time.perf_counter() - start


def main(n: int = 3000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES)
        proxy = AIProxy()
        with taddons.context(proxy) as tctx:
            tctx.configure(proxy, ai_rules=str(rules), ai_recordings=str(Path(tmp) / "rec"))
            for _ in range(300):
                one_exchange(proxy)
            base_cpu, _ = measure(proxy, n, hooks=False)  # building test flows costs more than the hooks
            cpu, _wall = measure(proxy, n, hooks=True)
        lines = sum(1 for p in (Path(tmp) / "rec").glob("*.jsonl") for _ in p.open())
    cost = (cpu - base_cpu) / n * 1e6
    print(f"{FORMAT.name}: {n} exchanges ({lines} records): hooks + recording cost {cost:.0f} us CPU each")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, nargs="?", help="exchanges (default 3000, 300 with --agent)")
    ap.add_argument("--agent", action="store_true", help="the ~200 KB agent-sized request")
    ap.add_argument("--no-payloads", action="store_true", help="the rule records statistics only")
    ap.add_argument("--format", choices=tuple(FORMATS), default="openai", help="the client's API (bench/formats.py)")
    args = ap.parse_args()
    configure(args.format, args.agent, not args.no_payloads)
    main(args.n or (300 if args.agent else 3000))
