"""A fake Amazon Bedrock on 127.0.0.1: Converse JSON and ConverseStream's binary eventstream (frames with valid
CRCs, cut across chunk boundaries), checking every request's SigV4 signature the way AWS does (403 on a mismatch).
Shared by the Bedrock provider's end-to-end tests and the client formats' ones."""

from __future__ import annotations

import datetime
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.providers.bedrock.test_provider_bedrock import event, verify_sigv4

ANSWER = "The sum of 1 + 1 is 2."
PIECES = ["The sum ", "of 1 + 1 ", "is 2."]


@dataclass
class Seen:
    path: str  # the raw request target, percent-encoding intact
    headers: dict[str, str]
    body: bytes
    rejected: str | None  # why the signature was refused, if it was

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class BedrockReply:
    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    frames: list[bytes | Callable[[], Any]] | None = None  # an eventstream body; callables run in between


def converse_json(text: str = ANSWER) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 25, "outputTokens": 12, "totalTokens": 37},
        "metrics": {"latencyMs": 120},
    }


def converse_frames(pieces: list[str] = PIECES, complete: bool = True) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"}, pad="abcdefghijklmnopqrstuvwxyz")]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
    if complete:
        frames += [
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event("metadata", {"usage": {"inputTokens": 25, "outputTokens": 12, "totalTokens": 37}}),
        ]
    return frames


class FakeBedrock:
    def __init__(self, keys: dict[str, str], region: str) -> None:
        self.keys = keys
        self.region = region
        self.requests: list[Seen] = []
        self._queue: deque[BedrockReply] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                now = datetime.datetime.now(datetime.UTC)
                rejected = verify_sigv4("POST", self.path, headers, body, fake.keys, fake.region, now=now)
                with fake._lock:
                    fake.requests.append(Seen(self.path, headers, body, rejected))
                    queued = fake._queue.popleft() if fake._queue and rejected is None else None
                if rejected is not None:
                    reply = BedrockReply(
                        403,
                        {"message": rejected},
                        {"x-amzn-ErrorType": "InvalidSignatureException:http://internal.amazon.com/coral/"},
                    )
                else:
                    reply = queued or fake.default_reply(self.path)
                fake.send(self, reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="fake-bedrock", daemon=True).start()

    @staticmethod
    def default_reply(path: str) -> BedrockReply:
        match = re.fullmatch(r"/model/[^/?]+/(converse|converse-stream)", path)
        if match is None:
            return BedrockReply(404, {"message": f"no route {path}"}, {"x-amzn-ErrorType": "UnknownOperationException"})
        return (
            BedrockReply(frames=converse_frames())
            if match[1] == "converse-stream"
            else BedrockReply(json=converse_json())
        )

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, reply: BedrockReply) -> None:
        handler.send_response(reply.status)
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), **reply.headers}
        if reply.frames is None:
            body = json.dumps(reply.json).encode()
            headers.update({"content-type": "application/json", "content-length": str(len(body))})
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(body)
            return
        headers.update({"content-type": "application/vnd.amazon.eventstream", "transfer-encoding": "chunked"})
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        sizes = (7, 61, 1, 23, 200)  # cut frames (and their headers and CRCs) across chunk boundaries
        try:
            n = 0
            for item in reply.frames:
                if callable(item):
                    item()
                    continue
                pos = 0
                while pos < len(item):
                    piece = item[pos : pos + sizes[n % len(sizes)]]
                    n, pos = n + 1, pos + len(piece)
                    handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def queue(self, *replies: BedrockReply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queue.clear()

    def last(self) -> Seen:
        assert self.requests, "the fake Bedrock received no request"
        return self.requests[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
