"""Amazon Bedrock on the wire, for the tests: SigV4 checked as AWS checks it, eventstream frames with valid CRCs,
and a fake Bedrock server (Converse JSON and ConverseStream) that refuses a request whose signature is wrong."""

from __future__ import annotations

import binascii
import datetime
import hashlib
import hmac
import json
import re
import struct
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.fakes import ANSWER, JsonBody, ReplyQueue
from tests.support.fakes import STREAM_PIECES as PIECES

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def verify_sigv4(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    keys: dict[str, str],
    region: str,
    now: datetime.datetime | None = None,
) -> str | None:
    """None if the request carries a valid SigV4 signature for service `bedrock`, else why not.

    `path` is the raw request target as received (percent-encoding intact, query included), `headers` lower-cased.
    The canonical request is rebuilt by botocore from what arrived, as AWS does: the proxy's own signing code
    plays no part, and a body or path that differs from what was signed fails.
    """
    match = _AUTH.match(headers.get("authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    secret = keys.get(match["key"])
    if secret is None:
        return f"unknown access key {match['key']}"
    if (match["region"], match["service"]) != (region, "bedrock"):
        return f"credential scope {match['region']}/{match['service']}, expected {region}/bedrock"
    amz_date = headers.get("x-amz-date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or amz_date[:8] != match["date"]:
        return "x-amz-date missing or not the credential date"
    if now is not None:
        stamp = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        if abs((now - stamp).total_seconds()) > 15 * 60:
            return "request time too skewed"
    signed_names = match["signed"].split(";")
    required = {"host", "x-amz-date"} | ({"x-amz-security-token"} if "x-amz-security-token" in headers else set())
    if not required <= set(signed_names) or any(n not in headers for n in signed_names):
        return f"signed headers {signed_names} do not cover {sorted(required)} or name absent headers"
    if "x-amz-content-sha256" in headers and headers["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 does not match the body"
    request = AWSRequest(
        method=method, url=f"https://{headers['host']}{path}", data=body, headers={n: headers[n] for n in signed_names}
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret), "bedrock", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS eventstream message (string headers), with valid prelude and message CRCs."""
    raw = b"".join(
        bytes([len(k.encode())]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 16 + len(raw) + len(payload), len(raw))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(kind: str, body: dict[str, Any], pad: str = "abcdefgh") -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps({**body, "p": pad}, ensure_ascii=False).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


@dataclass
class Seen(JsonBody):
    path: str  # the raw request target, percent-encoding intact
    headers: dict[str, str]
    body: bytes
    rejected: str | None  # why the signature was refused, if it was


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


class FakeBedrock(ReplyQueue):
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

    def last(self) -> Seen:
        assert self.requests, "the fake Bedrock received no request"
        return self.requests[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
