"""Faults end to end (real mitmdump): upstream timeouts, unreachable and misbehaving upstreams, a stream that
cannot be translated, header injection from an upstream, and Connection: close. In every case the client gets
the OpenAI envelope (or an error event and a clean end of its stream) and the record says what happened."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support import raw_upstream as raw
from tests.support.fakes import FakeUpstream, Reply, anthropic_stream, openai_chat, sse
from tests.support.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

KEY = "faults-fake-anthropic-key"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Faults:
    proxy: Mitmdump
    anthropic: FakeUpstream
    openai: FakeUpstream
    hang: raw.RawUpstream
    short: raw.RawUpstream
    cut: raw.RawUpstream
    blackhole: raw.Blackhole

    def client(self) -> httpx.Client:
        return httpx.Client(proxy=f"http://127.0.0.1:{self.proxy.port('regular')}", trust_env=False, timeout=20)

    def record_for(self, rule: str, before: int) -> dict:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [r for r in self.proxy.records()[before:] if r["meta"]["rule"] == rule]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no record for rule {rule}")


def _rule(name: str, upstream: str, provider: str = "anthropic", **keys: int) -> str:
    extra = "".join(f"\n    {k}: {v}" for k, v in keys.items())
    path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    return f"""
  - name: {name}
    match: {{host: {name}.internal, path: /v1/chat/completions}}{extra}
    model:
      provider: {provider}
      options: {{upstream_url: "{upstream}{path}", max_tokens: 64}}
    auth: {{header_name: x-api-key, header_value: {KEY}}}
    logging: {{log_payloads: true}}"""


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    anthropic, openai_fake = FakeUpstream("anthropic"), FakeUpstream("openai")
    hang, short = raw.RawUpstream(raw.never_answers), raw.RawUpstream(raw.closes_mid_body)
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}
    cut = raw.RawUpstream(raw.stream_then_close([*anthropic_stream()[:3], sse(delta, "content_block_delta")]))
    blackhole = raw.Blackhole()
    rules = "rules:" + "".join(
        [
            _rule("read", hang.url, read_timeout=300),
            _rule("connect", blackhole.url, connect_timeout=300),
            _rule("refused", f"http://127.0.0.1:{raw.closed_port()}"),
            _rule("short", short.url),
            _rule("cut", cut.url),
            _rule("idle", anthropic.url, idle_timeout=300),
            _rule("total", anthropic.url, total_timeout=500),
            _rule("plain", anthropic.url),
            _rule("openai", openai_fake.url, provider="openai"),
        ]
    )
    proxy = Mitmdump(tmp_path_factory.mktemp("faults"), rules).start()
    try:
        yield Faults(proxy, anthropic, openai_fake, hang, short, cut, blackhole)
    finally:
        proxy.stop()
        for server in (anthropic, openai_fake, hang, short, cut, blackhole):
            server.close()


def _post(faults: Faults, rule: str, **extra: object) -> httpx.Response:
    with faults.client() as client:
        return client.post(f"http://{rule}.internal/v1/chat/completions", json={**BODY, **extra})


def _stream(faults: Faults, rule: str) -> tuple[int, list[str]]:
    """The data lines of a streamed answer; the stream must end cleanly (httpx raises on an aborted body)."""
    url = f"http://{rule}.internal/v1/chat/completions"
    with faults.client() as client, client.stream("POST", url, json={**BODY, "stream": True}) as r:
        return r.status_code, [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


def _envelope(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/json", response.text[:200]
    return response.json()["error"]


def test_read_timeout_answers_504_and_closes_the_upstream(faults: Faults) -> None:
    before = len(faults.proxy.records())
    response = _post(faults, "read")
    assert response.status_code == 504
    error = _envelope(response)
    assert error["code"] == "upstream_timeout" and "read_timeout (300 ms)" in error["message"]
    record = faults.record_for("read", before)
    assert record["meta"]["timeout"] == "read_timeout" and record["meta"]["status"] == 504


def test_connect_timeout_answers_504(faults: Faults) -> None:
    before = len(faults.proxy.records())
    response = _post(faults, "connect")
    assert response.status_code == 504
    assert "connect_timeout (300 ms)" in _envelope(response)["message"]
    assert faults.record_for("connect", before)["meta"]["timeout"] == "connect_timeout"


def test_unreachable_upstream_gets_the_envelope_not_mitmproxys_page(faults: Faults) -> None:
    before = len(faults.proxy.records())
    response = _post(faults, "refused")
    assert response.status_code == 502
    error = _envelope(response)
    assert error["code"] == "upstream_unreachable" and "connect call failed" in error["message"].lower()
    record = faults.record_for("refused", before)
    assert record["meta"]["status"] == 502 and record["meta"]["timeout"] is None


@pytest.mark.parametrize("rule", ["refused", "read"])
def test_http2_clients_get_the_envelope_too(faults: Faults, rule: str) -> None:
    """curl: httpx offers http/1.1 first in ALPN, and mitmproxy takes the client's first choice."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    proxy = f"http://127.0.0.1:{faults.proxy.port('regular')}"
    args = ["-sS", "--http2", "--max-time", "20", "--noproxy", "", "-x", proxy, "--cacert", str(faults.proxy.ca)]
    args += ["-H", "content-type: application/json", "-d", json.dumps(BODY), "-D", "-"]
    out = subprocess.run(
        [curl, *args, f"https://{rule}.internal/v1/chat/completions"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    *_, head, body = out.replace("\r\n", "\n").split("\n\n")  # after the proxy's CONNECT answer
    assert head.startswith("HTTP/2 50"), out
    assert "content-type: application/json" in head.lower() and "connection:" not in head.lower()
    assert json.loads(body)["error"]["code"] in ("upstream_unreachable", "upstream_timeout")


def test_body_shorter_than_its_content_length_gets_the_envelope(faults: Faults) -> None:
    response = _post(faults, "short")
    assert response.status_code == 502
    assert _envelope(response)["code"] == "upstream_broken"


def test_upstream_closing_mid_stream_ends_the_clients_stream_with_an_error_event(faults: Faults) -> None:
    before = len(faults.proxy.records())
    status, events = _stream(faults, "cut")
    assert status == 200
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    assert chunks[-2]["choices"][0]["delta"]["content"] == "Hel"
    assert chunks[-1]["error"]["code"] == "upstream_broken"
    record = faults.record_for("cut", before)
    assert "broke off" in record["meta"]["error"]


def test_idle_timeout_mid_stream_ends_with_an_error_event(faults: Faults) -> None:
    hold = threading.Event()
    events = anthropic_stream()
    faults.anthropic.queue(Reply(chunks=[*events[:3], lambda: hold.wait(20), *events[3:]]))
    before = len(faults.proxy.records())
    try:
        status, lines = _stream(faults, "idle")
    finally:
        hold.set()
    assert status == 200
    last = json.loads(lines[-1])
    assert last["error"]["code"] == "upstream_timeout" and "idle_timeout (300 ms)" in last["error"]["message"]
    record = faults.record_for("idle", before)
    assert record["meta"]["timeout"] == "idle_timeout"


def test_total_timeout_cuts_a_stream_that_never_ends(faults: Faults) -> None:
    ping = sse({"type": "ping"}, "ping")
    chunks: list = anthropic_stream()[:2]
    for _ in range(200):  # at most ~10 s; the 500 ms total deadline ends it long before
        chunks += [lambda: time.sleep(0.05), ping]
    faults.anthropic.queue(Reply(chunks=chunks))
    before = len(faults.proxy.records())
    status, lines = _stream(faults, "total")
    assert status == 200
    assert json.loads(lines[-1])["error"]["code"] == "upstream_timeout"
    assert faults.record_for("total", before)["meta"]["timeout"] == "total_timeout"


def test_a_stream_that_cannot_be_translated_ends_with_one_error_event(faults: Faults) -> None:
    # Labelled gzip, sent plain: decoding fails inside the stream callable.
    faults.anthropic.queue(Reply(chunks=anthropic_stream(), headers={"content-encoding": "gzip"}))
    before = len(faults.proxy.records())
    status, lines = _stream(faults, "plain")
    assert status == 200
    [error] = [json.loads(line) for line in lines]
    assert error["error"]["code"] == "bad_upstream_response" and "labelled gzip" in error["error"]["message"]
    assert faults.record_for("plain", before)["meta"]["error"]
    assert "mitmproxy has crashed" not in faults.proxy.log()


def test_upstream_model_with_crlf_cannot_add_response_headers(faults: Faults) -> None:
    answer = openai_chat()
    answer["model"] = "gpt\r\nx-injected: yes\x00"
    faults.openai.queue(Reply(json=answer))
    response = _post(faults, "openai")
    assert response.status_code == 200
    assert "x-injected" not in response.headers
    assert response.headers["x-ai-proxy-model"] == "openai/gpt??x-injected: yes?"


def _raw_exchange(faults: Faults, rule: str, body: dict) -> bytes:
    """A whole HTTP/1.1 exchange with Connection: close; returns what arrived before the proxy closed."""
    payload = json.dumps(body).encode()
    head = (
        f"POST http://{rule}.internal/v1/chat/completions HTTP/1.1\r\nHost: {rule}.internal\r\n"
        f"Connection: close\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", faults.proxy.port("regular")), timeout=10) as sock:
        sock.sendall(head.encode() + payload)
        data = b""
        while chunk := sock.recv(65536):  # a proxy that kept the connection open would time out here
            data += chunk
    return data


@pytest.mark.parametrize("stream", [False, True])
def test_connection_close_is_honoured_after_a_translated_answer(faults: Faults, stream: bool) -> None:
    data = _raw_exchange(faults, "plain", {**BODY, "stream": stream})
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    assert (b"[DONE]" in body) if stream else (b"chat.completion" in body)


def test_log_has_no_traceback(faults: Faults) -> None:
    """Every fault above is the upstream's: none of them may log a traceback or crash mitmproxy."""
    log = faults.proxy.log()
    assert "Traceback" not in log and "mitmproxy has crashed" not in log, log[-3000:]
