"""A fake Amazon Bedrock Runtime for end-to-end tests, and the wire pieces it is built of.

The fake speaks Converse JSON and ConverseStream's binary eventstream (frames with valid CRCs, cut across chunk
boundaries), and checks every request's SigV4 signature the way AWS does: `verify_sigv4` rebuilds the canonical
request with botocore from the path, headers and body received, with the test credentials, and the fake answers
403 InvalidSignatureException on a mismatch or a missing Authorization header, as Bedrock does. It also serves
CountTokens (`/model/{id}/count-tokens`).
"""

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import schema_refusals
from tests.support.fakes import ANSWER, STREAM_PIECES, ReplyQueue
from tests.support.mitmdump import Mitmdump

PIECES = STREAM_PIECES
COUNTED_TOKENS = 4321  # what the fake's CountTokens answers

# ==============================================================================================================
# SigV4 as the server checks it
# ==============================================================================================================

NO_AUTHORIZATION = "no SigV4 Authorization header"
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
        return NO_AUTHORIZATION
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


# ==============================================================================================================
# AWS eventstream frames
# ==============================================================================================================


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


# ==============================================================================================================
# The fake Bedrock
# ==============================================================================================================


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


class FakeBedrock(ReplyQueue):
    def __init__(self, keys: dict[str, str], region: str) -> None:
        self.keys = keys
        self.region = region
        self.requests: list[Seen] = []
        self._queue: deque[BedrockReply] = deque()
        # Picks the reply to a signed request when nothing is queued (None: the default reply), e.g. a fake Claude
        # that checks what it is sent back.
        self.responder: Callable[[Seen], BedrockReply | None] | None = None
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
                # A schema the real API refuses: its 400 before any queued answer is used.
                refused = schema_refusals.refusal(self.path, json.loads(body) if body.startswith(b"{") else None)
                seen = Seen(self.path, headers, body, rejected)
                with fake._lock:
                    fake.requests.append(seen)
                    ok = rejected is None and refused is None
                    queued = fake._queue.popleft() if fake._queue and ok else None
                    responder = fake.responder
                if queued is None and ok and responder is not None:
                    queued = responder(seen)
                if rejected == NO_AUTHORIZATION:
                    reply = BedrockReply(
                        403,
                        {"message": "Missing Authentication Token"},
                        {"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
                    )
                elif rejected is not None:
                    reply = BedrockReply(
                        403,
                        {"message": rejected},
                        {"x-amzn-ErrorType": "InvalidSignatureException:http://internal.amazon.com/coral/"},
                    )
                elif refused is not None:
                    reply = BedrockReply(
                        400, schema_refusals.refusal_body(*refused), {"x-amzn-ErrorType": "ValidationException"}
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
        match = re.fullmatch(r"/model/[^/?]+/(converse|converse-stream|count-tokens)", path)
        if match is None:
            return BedrockReply(404, {"message": f"no route {path}"}, {"x-amzn-ErrorType": "UnknownOperationException"})
        if match[1] == "count-tokens":
            return BedrockReply(json={"inputTokens": COUNTED_TOKENS})
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


# Variables of the machine's AWS set-up that a proxy under test must never read (unless the test sets them).
AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


@contextmanager
def proxy_for_bedrock(
    workdir: Path, rules: str, env: dict[str, str], extra_args: list[str] | None = None
) -> Iterator[Mitmdump]:
    """A started mitmdump with `env`, which never reads the machine's AWS set-up nor reaches instance metadata."""
    isolated = {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
    }
    proxy = Mitmdump(workdir, rules, env={**env, **isolated}, extra_args=extra_args)
    for var in AWS_VARS:
        if var not in env:
            proxy.env.pop(var, None)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@contextmanager
def bedrock_behind_proxy(
    workdir: Path,
    keys: dict[str, str],
    region: str,
    rules: Callable[[FakeBedrock], str],
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[tuple[Mitmdump, FakeBedrock]]:
    """A fake Bedrock in `region` that knows `keys` (key id -> secret) and a `proxy_for_bedrock` with the rules
    `rules(fake)` names; both stopped after."""
    fake = FakeBedrock(keys, region)
    try:
        with proxy_for_bedrock(workdir, rules(fake), env or {}, extra_args) as proxy:
            yield proxy, fake
    finally:
        fake.close()


def converse_answer(
    blocks: list[tuple[Any, ...]], stop: str = "end_turn", fields: dict[str, Any] | None = None, **usage: int
) -> tuple[dict[str, Any], list[bytes]]:
    """One answer both ways: the Converse JSON and the ConverseStream frames that say the same. `blocks`:
    ("text", text pieces...), ("reasoning", signature, text pieces...), ("redacted", data),
    ("tool", toolUseId, name, input pieces...).
    `fields`: additionalModelResponseFields. `usage` adds to (or overrides) 25 input and 12 output tokens (e.g.
    cacheReadInputTokens=100)."""
    counts = {"inputTokens": 25, "outputTokens": 12, **usage}
    counts["totalTokens"] = counts["inputTokens"] + counts["outputTokens"]
    content: list[dict[str, Any]] = []
    frames = [event("messageStart", {"role": "assistant"})]
    for index, (kind, *rest) in enumerate(blocks):
        if kind == "text":
            content.append({"text": "".join(rest)})
            frames += [event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": p}}) for p in rest]
        elif kind == "redacted":
            redacted = {"reasoningContent": {"redactedContent": rest[0]}}
            content.append(redacted)
            frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": redacted}))
        elif kind == "reasoning":
            signature, *pieces = rest
            content.append({"reasoningContent": {"reasoningText": {"text": "".join(pieces), "signature": signature}}})
            deltas = [{"reasoningContent": {"text": p}} for p in pieces] + [
                {"reasoningContent": {"signature": signature}}
            ]
            frames += [event("contentBlockDelta", {"contentBlockIndex": index, "delta": d}) for d in deltas]
        else:
            tool_id, name, *pieces = rest
            content.append({"toolUse": {"toolUseId": tool_id, "name": name, "input": json.loads("".join(pieces))}})
            start = {"toolUse": {"toolUseId": tool_id, "name": name}}
            frames.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            frames += [
                event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": p}}})
                for p in pieces
            ]
        frames.append(event("contentBlockStop", {"contentBlockIndex": index}))
    stop_event: dict[str, Any] = {"stopReason": stop, **({"additionalModelResponseFields": fields} if fields else {})}
    frames += [event("messageStop", stop_event), event("metadata", {"usage": counts, "metrics": {}})]
    answer = {
        "output": {"message": {"role": "assistant", "content": content}},
        **stop_event,
        "usage": counts,
        "metrics": {"latencyMs": 120},
    }
    return answer, frames
