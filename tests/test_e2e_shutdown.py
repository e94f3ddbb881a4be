"""End to end: mitmdump stopped under load (SIGTERM, SIGINT) loses no audit record and writes none twice.

Each round starts a mitmdump, holds three exchanges at the fake upstreams (two streams after their first delta,
one plain answer before its body), runs 16 clients against the proxy (plain and streamed, OpenAI and Anthropic
upstreams) and signals the proxy while they keep sending. After it has exited, the records are counted per
exchange against what the clients received and what the fakes were asked. Exchanges are told apart by a tag in
the client's message, which the records keep (log_payloads) and the fakes receive.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fakes import FakeUpstream, Recorded, Reply, anthropic_stream, openai_chat, openai_stream
from tests.support.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

ROUNDS = 5
CLIENTS = 16
ANSWERED_BEFORE_SIGNAL = 100  # load requests answered before the signal; more are on their way when it lands
GRACES_MS = (0, 300)  # rounds alternate: cut at once, or after a grace period the held exchanges outlast
HOLD_SECONDS = 30  # upper bound only: the gate is opened as soon as the proxy has exited
KINDS = [("openai", False), ("openai", True), ("anthropic", False), ("anthropic", True)]
TAG = re.compile(r"xchg-[a-z]+-[0-9a-f]{32}")
SHUT_DOWN = "proxy shut down"


def rules(openai_fake: FakeUpstream, anthropic_fake: FakeUpstream) -> str:
    return f"""
rules:
  - name: openai
    match: {{host: openai.internal, path: /v1/chat/completions}}
    model: {{provider: openai, name: gpt-fake-1, options: {{upstream_url: "{openai_fake.url}"}}}}
    auth: {{header_name: Authorization, header_value: "Bearer shutdown-fake-key-0001"}}
    logging: {{log_payloads: true}}
  - name: anthropic
    match: {{host: anthropic.internal, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{anthropic_fake.url}/v1/messages", max_tokens: 64}}
    auth: {{header_name: x-api-key, header_value: "shutdown-fake-key-0002"}}
    logging: {{log_payloads: true}}
"""


@dataclass
class Outcome:
    """What one client got."""

    tag: str
    stream: bool
    status: int | None = None
    complete: bool = False  # a whole answer: a plain body, or a stream up to [DONE]
    usage: dict[str, Any] | None = None


def new_tag(label: str) -> str:
    return f"xchg-{label}-{uuid.uuid4().hex}"


def exchange(
    client: httpx.Client, provider: str, tag: str, stream: bool, first_delta: Callable[[], Any] | None = None
) -> Outcome:
    url = f"http://{provider}.internal/v1/chat/completions"
    body: dict[str, Any] = {"messages": [{"role": "user", "content": tag}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    out = Outcome(tag, stream)
    try:
        if not stream:
            response = client.post(url, json=body)
            out.status, out.usage, out.complete = response.status_code, response.json().get("usage"), True
            return out
        with client.stream("POST", url, json=body) as response:
            out.status = response.status_code
            if response.status_code != 200:
                response.read()
                out.complete = True
                return out
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    out.complete = True  # what follows (the end of the body) is read as the openai SDK does
                if not line.startswith("data: {"):
                    continue
                chunk = json.loads(line[6:])
                out.usage = chunk.get("usage") or out.usage
                if first_delta is not None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                    first_delta()
                    first_delta = None
    except (httpx.HTTPError, ValueError):
        pass  # cut off by the shutdown: `complete` stays False
    return out


def held_replies(gate: threading.Event, arrived: threading.Event) -> Callable[[Recorded], Reply | None]:
    """Held exchanges stop at the fake until `gate` opens: streams after their first delta, a plain answer after
    its headers (the proxy buffers a plain body, so the client gets nothing)."""

    def hold() -> None:
        gate.wait(HOLD_SECONDS)

    def reply(req: Recorded) -> Reply | None:
        if b"xchg-holdstream-" in req.body:
            anthropic = req.path.endswith("/v1/messages")
            events = anthropic_stream() if anthropic else openai_stream(include_usage=True)
            first = 4 if anthropic else 2  # up to and including the first text delta
            return Reply(chunks=[*events[:first], hold, *events[first:]])
        if b"xchg-holdplain-" in req.body:
            body = json.dumps(openai_chat()).encode()
            return Reply(headers={"content-type": "application/json"}, chunks=[arrived.set, hold, body])
        return None

    return reply


class Load:
    """CLIENTS threads sending one request after another until the proxy is gone."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: list[Outcome] = []
        self.answered = threading.Event()  # ANSWERED_BEFORE_SIGNAL complete answers so far
        self._count = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def client(self) -> httpx.Client:
        return httpx.Client(proxy=f"http://127.0.0.1:{self.port}", trust_env=False, timeout=HOLD_SECONDS)

    def _run(self, index: int) -> None:
        with self.client() as client:
            for n in range(index, 1_000_000):
                provider, stream = KINDS[n % len(KINDS)]
                out = exchange(client, provider, new_tag("load"), stream)
                with self._lock:
                    self.outcomes.append(out)
                    self._count += out.complete
                    if self._count >= ANSWERED_BEFORE_SIGNAL:
                        self.answered.set()
                if not out.complete:
                    return  # the proxy is going away (a failure before the signal shows as too few answers)


@dataclass
class Round:
    proxy: Mitmdump
    outcomes: list[Outcome]
    fakes: tuple[FakeUpstream, ...]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    pair = FakeUpstream("openai"), FakeUpstream("anthropic")
    yield pair
    for fake in pair:
        fake.close()


def run_round(workdir: Path, fakes: tuple[FakeUpstream, FakeUpstream], sig: signal.Signals, grace_ms: int) -> Round:
    gate, plain_arrived = threading.Event(), threading.Event()
    for fake in fakes:
        fake.reset()
        fake.responder = held_replies(gate, plain_arrived)
    proxy = Mitmdump(
        workdir,
        rules(*fakes),
        extra_args=["--set", f"ai_shutdown_grace_ms={grace_ms}", "--set", "flow_detail=0"],
    ).start()
    load = Load(proxy.port("regular"))
    held: list[Outcome] = []
    started = [threading.Event(), threading.Event()]

    def hold(provider: str, stream: bool, first_delta: Callable[[], Any] | None) -> None:
        tag = new_tag("holdstream" if stream else "holdplain")
        with load.client() as client:
            held.append(exchange(client, provider, tag, stream, first_delta))

    holders = [
        threading.Thread(target=hold, args=("openai", True, started[0].set), daemon=True),
        threading.Thread(target=hold, args=("anthropic", True, started[1].set), daemon=True),
        threading.Thread(target=hold, args=("openai", False, None), daemon=True),
    ]
    try:
        for t in holders:
            t.start()
        assert all(e.wait(10) for e in (*started, plain_arrived)), "the held exchanges did not start"
        for t in load.threads:
            t.start()
        assert load.answered.wait(30), f"only {sum(o.complete for o in load.outcomes)} load requests answered"
        assert proxy.proc is not None
        proxy.proc.send_signal(sig)
        proxy.proc.wait(20)
    finally:
        gate.set()
        proxy.stop()  # kills it if the signal did not stop it
        for t in (*holders, *load.threads):
            t.join(HOLD_SECONDS)
    assert proxy.proc.returncode == 0, proxy.log()[-3000:]
    return Round(proxy, [*held, *load.outcomes], fakes)


def records_by_tag(proxy: Mitmdump) -> dict[str, list[dict[str, Any]]]:
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in proxy.recordings.glob("*.jsonl"):
        text = path.read_text()
        assert not text or text.endswith("\n"), "the last record is not a whole line"
        for line in text.splitlines():
            record = json.loads(line)  # a half-written or interleaved line fails here
            by_tag[record["payload"]["client_request"]["messages"][0]["content"]].append(record)
    return by_tag


def check(r: Round) -> None:
    by_tag = records_by_tag(r.proxy)
    twice = {tag: len(recs) for tag, recs in by_tag.items() if len(recs) > 1}
    assert not twice, f"exchanges with more than one record: {twice}"
    received = [m.group() for fake in r.fakes for req in fake.requests if (m := TAG.search(req.body.decode()))]
    unrecorded = sorted(set(received) - by_tag.keys())
    assert not unrecorded, f"{len(unrecorded)} of {len(received)} exchanges reached the upstream without a record"
    for out in r.outcomes:
        if not out.complete:
            continue
        assert out.tag in by_tag, f"a client got a whole answer ({out}) and there is no record of it"
        [record] = by_tag[out.tag]
        assert record["meta"]["status"] == out.status, (out, record["meta"])
        if out.status == 200:
            assert record["meta"]["error"] is None, (out, record["meta"])
        if out.usage:
            assert record["usage"]["total_tokens"] == out.usage["total_tokens"], (out, record["usage"])
    held = {out.tag: out for out in r.outcomes if "-hold" in out.tag}
    assert len(held) == 3 and not any(out.complete for out in held.values())
    for tag, out in held.items():
        [record] = by_tag[tag]
        meta = record["meta"]
        if out.stream:  # the client had the headers and the first delta
            assert (meta["status"], meta["stream"]) == (200, True), meta
            assert SHUT_DOWN in meta["error"] and "mid-stream" in meta["error"], meta
            assert record["payload"]["client_response"]["choices"][0]["message"]["content"], record["payload"]
        else:  # the client got no answer
            assert meta["status"] == 502 and SHUT_DOWN in meta["error"], meta


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_no_record_lost_or_doubled_at_shutdown_under_load(
    tmp_path: Path, fakes: tuple[FakeUpstream, FakeUpstream], sig: signal.Signals
) -> None:
    for n in range(ROUNDS):
        check(run_round(tmp_path / f"round-{n}", fakes, sig, GRACES_MS[n % len(GRACES_MS)]))
