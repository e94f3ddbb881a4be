"""bench_chat's two roles in their own processes: the fake Anthropic server (a fixed answer to any POST, counts at
GET /_bench/stats) and the load generator (raw asyncio sockets, N keep-alive connections). Standard library only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from typing import Any

from bench.formats import ANTHROPIC_ANSWER, API_KEY, OPENAI_ANSWER
from bench.harness import HOST, cpu_seconds, http_call

STATS_PATH = "/_bench/stats"
FAKE_BODY = ANTHROPIC_ANSWER
KEY_STAT = "rule-key"  # the fake's count of requests that carried the rule's key

# ----------------------------------------------------------------------------------------------------------------
# Role: fake Anthropic server
# ----------------------------------------------------------------------------------------------------------------


class FakeAnthropic(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; any POST gets the fixed Messages answer, GET /_bench/stats the
    counts per path, of connections, and of requests that carried the bench API key."""

    RESPONSE, OPENAI_RESPONSE = (
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: application/json\r\n"
        b"request-id: req_bench\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        for body in (FAKE_BODY, OPENAI_ANSWER)
    )
    KEY = API_KEY.encode()  # in x-api-key, or in authorization: Bearer
    stats: dict[str, int] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()
        self.stats["connections"] = self.stats.get("connections", 0) + 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[: end + 2])
            lower = head.lower()
            length = 0
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                length = int(head[i + 17 : head.index(b"\r\n", i + 2)])
            elif b"\r\ntransfer-encoding:" in lower:
                self._reply(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()
                return
            total = end + 4 + length
            if len(self.buf) < total:
                return
            del self.buf[:total]
            method, path = head.split(b" ", 2)[:2]
            stats = self.stats
            key = path.decode("latin-1")
            stats[key] = stats.get(key, 0) + 1
            if self.KEY in head:
                stats[KEY_STAT] = stats.get(KEY_STAT, 0) + 1
            if method == b"POST":
                self._reply(self.OPENAI_RESPONSE if path.startswith(b"/openai/") else self.RESPONSE)
            elif path == STATS_PATH.encode():
                body = json.dumps(stats).encode()
                reply = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                self._reply(reply.encode() + body)
            else:
                self._reply(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            if b"\r\nconnection: close" in lower:
                self.transport.close()
                return

    def _reply(self, data: bytes) -> None:
        self.transport.write(data)


def run_fake(port: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(FakeAnthropic, HOST, port, backlog=256, reuse_address=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


# ----------------------------------------------------------------------------------------------------------------
# Role: load generator
# ----------------------------------------------------------------------------------------------------------------


class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None

    async def request(self, raw: bytes) -> int:
        """Send one request, read one whole response; the status code."""
        if self.writer is None:
            await self.open()
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            await reader.readexactly(int(head[i + 17 : head.index(b"\r\n", i + 2)]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.read()  # delimited by close
            self.close()
            return status
        if b"\r\nconnection: close" in lower:
            self.close()
        return status


async def load(params: dict[str, Any]) -> dict[str, Any]:
    port, concurrency = params["port"], params["concurrency"]
    body = bytes.fromhex(params["body_hex"])
    raw = (
        f"POST {params['path']} HTTP/1.1\r\n"
        f"host: {HOST}:{port}\r\n"
        "content-type: application/json\r\n"
        "accept: application/json\r\n"
        "authorization: Bearer sk-bench-client-key\r\n"
        "user-agent: bench_chat/1\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    pids = {"proxy": params.get("proxy_pid"), "fake": params["fake_pid"]}
    conns = [Conn(port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    errors: list[str] = []
    latencies: list[float] = []

    async def worker(conn: Conn, left: list[int], record: bool) -> None:
        perf = time.perf_counter
        while left[0] > 0:
            left[0] -= 1
            t0 = perf()
            try:
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                if len(errors) > 20:
                    raise RuntimeError("too many errors: " + "; ".join(errors[:5])) from None
                continue
            if record:
                latencies.append(perf() - t0)
            if status != 200:
                errors.append(f"HTTP {status}")

    async def phase(count: int, record: bool) -> None:
        left = [count]
        await asyncio.gather(*(worker(c, left, record) for c in conns))

    await phase(params["warmup"], record=False)
    warmup_errors = len(errors)
    before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
    client_before = time.process_time()
    t0 = time.perf_counter()
    await phase(params["requests"], record=True)
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - client_before
    after = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
    for c in conns:
        c.close()
    cpu = {name: after[name] - before[name] for name in before}
    cpu["client"] = client_cpu
    return {
        "requests": len(latencies),
        "wall_s": wall,
        "cpu_s": cpu,
        "errors": len(errors),
        "warmup_errors": warmup_errors,
        "error_samples": sorted(set(errors))[:5],
        "latencies_ms": [round(x * 1000, 4) for x in latencies],
    }


def run_client(params: dict[str, Any]) -> None:
    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(params["timeout"]):
            return await load(params)

    try:
        result = asyncio.run(bounded())
    except TimeoutError:
        result = {"fatal": f"client did not finish within {params['timeout']} s"}
    except Exception as e:
        result = {"fatal": f"{type(e).__name__}: {e}"}
    json.dump(result, sys.stdout)


def fake_stats(fake_port: int) -> dict[str, int]:
    return json.loads(http_call(fake_port, "GET", STATS_PATH)[2])
