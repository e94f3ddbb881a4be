"""Misbehaving upstreams below HTTP: servers that hang, close early or never accept, for the fault tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Handler = Callable[[socket.socket, threading.Event], None]


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP/1.1 request (head and a Content-Length body) from a connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class RawUpstream:
    """A TCP server on 127.0.0.1 that runs `handler(conn, release)` for each connection, on a thread of its own.
    `release` is set at close, so a handler that holds a connection open ends with the test."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.release = threading.Event()
        self.accepted = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self.release.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, self.release)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.release.set()
        self._sock.close()
        self._thread.join(5)


def never_answers(conn: socket.socket, release: threading.Event) -> None:
    read_request(conn)
    release.wait(30)


def closes_mid_body(conn: socket.socket, release: threading.Event) -> None:
    """Promises 1,000 bytes of JSON, sends a few, and closes."""
    read_request(conn)
    conn.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"id": "chat')


def stream_then_close(events: list[bytes]) -> Handler:
    """A chunked SSE response whose connection is closed after `events`, with no final chunk."""

    def handler(conn: socket.socket, release: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for event in events:
            conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))

    return handler


class Blackhole:
    """A port whose connects hang: a listener with a backlog of one, filled by a connection nobody accepts."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._filler = socket.create_connection(("127.0.0.1", self.port), timeout=2)

    def close(self) -> None:
        self._filler.close()
        self._sock.close()


def closed_port() -> int:
    """A port nothing listens on (connects are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
