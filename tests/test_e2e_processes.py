"""Several proxy processes on one machine (mitmproxy runs one event loop per process): their audit records in one
folder, whole and complete, and HAProxy in TCP mode spreading connections over them (skipped without haproxy)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import Mitmdump, free_ports

RULES = """
rules:
  - name: shared
    match: {{host: 127.0.0.1, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-test
      options: {{upstream_url: "{url}/v1/messages"}}
    auth: {{header_name: x-api-key, header_value: processes-not-a-key}}
    logging: {{log_payloads: true}}
"""
# Large enough that a record is several hundred KB: many write() calls' worth if lines could interleave.
BIG_TURN = "words of a long agent history " * 4000


def chat(port: int, n: int) -> int:
    body = json.dumps({"messages": [{"role": "user", "content": f"request {n}: {BIG_TURN}"}]})
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def records(folder: Path, expected: int) -> dict[str, list[dict]]:
    """Every record in the folder by file, once `expected` are there; every line must be one whole record."""
    deadline = time.monotonic() + 20
    while True:
        by_file = {}
        for path in sorted(folder.glob("*.jsonl")):
            text = path.read_text()
            complete = text[: text.rfind("\n") + 1]
            by_file[path.name] = [json.loads(line) for line in complete.splitlines()]
        if sum(map(len, by_file.values())) >= expected or time.monotonic() > deadline:
            return by_file
        time.sleep(0.05)


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream("anthropic")
    yield upstream
    upstream.close()


def proxies(tmp_path: Path, fake: FakeUpstream, folder: Path, tags: list[str]) -> list[Mitmdump]:
    started = []
    for i, tag in enumerate(tags):
        proxy = Mitmdump(
            tmp_path / f"p{i}",
            RULES.format(url=fake.url),
            modes=[f"reverse:{fake.url}"],
            extra_args=["--set", f"ai_recordings_tag={tag}"] if tag else [],
            recordings=folder,
        )
        started.append(proxy.start())
    return started


def test_two_processes_append_whole_records_to_one_file(tmp_path: Path, fake: FakeUpstream) -> None:
    folder = tmp_path / "recordings"
    running = proxies(tmp_path, fake, folder, ["", ""])
    try:
        ports = [p.ports[0] for p in running]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda n: chat(ports[n % 2], n), range(40)))
        assert statuses == [200] * 40
        by_file = records(folder, 40)
    finally:
        for proxy in running:
            proxy.stop()
    assert len(by_file) == 1  # one file for the day, shared
    [lines] = by_file.values()
    sent = sorted(int(r["payload"]["client_request"]["messages"][0]["content"].split()[1][:-1]) for r in lines)
    assert sent == list(range(40))  # each record exactly once, none torn


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (Debian package haproxy)")
def test_haproxy_in_tcp_mode_spreads_connections_over_processes(tmp_path: Path, fake: FakeUpstream) -> None:
    folder = tmp_path / "recordings"
    running = proxies(tmp_path, fake, folder, ["p1", "p2"])
    [front] = free_ports(1)
    config = tmp_path / "haproxy.cfg"
    backends = "\n".join(f"    server p{i} 127.0.0.1:{p.ports[0]}" for i, p in enumerate(running))
    config.write_text(
        "global\n    maxconn 256\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
        f"    timeout server 60s\nfrontend ai\n    bind 127.0.0.1:{front}\n    default_backend proxies\n"
        f"backend proxies\n    balance roundrobin\n{backends}\n"
    )
    haproxy = subprocess.Popen(["haproxy", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:  # ready when it accepts a connection
            try:
                HTTPConnection("127.0.0.1", front, timeout=1).connect()
                break
            except OSError:
                assert haproxy.poll() is None and time.monotonic() < deadline, haproxy.stdout and haproxy.stdout.read()
                time.sleep(0.05)
        assert [chat(front, n) for n in range(10)] == [200] * 10  # a new connection each: round robin
        by_file = records(folder, 10)
    finally:
        haproxy.terminate()
        haproxy.wait(5)
        for proxy in running:
            proxy.stop()
    assert sorted(by_file) == [
        f"ai-proxy-{time.strftime('%Y-%m-%d', time.gmtime())}.{tag}.jsonl" for tag in ("p1", "p2")
    ]
    counts = [len(lines) for lines in by_file.values()]
    # Round robin over connections (the readiness probe took one too): both processes served, nothing lost.
    assert sum(counts) == 10 and min(counts) >= 3, counts
