"""Fake provider servers on 127.0.0.1 that speak each wire format and record every request they receive.

Each fake runs a threaded HTTP/1.1 server in the test process. By default it answers with a canned, valid
response of its provider's format (chosen by path); a test can queue specific replies, including streamed
bodies whose chunks may wait on events the test controls.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support import schema_refusals

ANSWER = "The sum of 1 + 1 is 2."
GEMINI_COUNTED_TOKENS = 1234  # what a fake's Gemini countTokens answers


class JsonBody:
    """A received request's body, parsed."""

    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ReplyQueue:
    """A fake server's replies to come (`queue`) and the requests it received; `reset` forgets both."""

    requests: list[Any]
    _queue: Any  # a deque of replies
    _lock: Any

    def queue(self, *replies: Any) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queue.clear()


@dataclass
class Recorded(JsonBody):
    method: str
    path: str  # without query
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body: each item is bytes to send as one chunk, or a callable run in between (e.g. an
    # Event.wait) so a test can hold the stream at a point of its choosing.
    chunks: Iterable[bytes | Callable[[], Any]] | None = None


def anthropic_message(text: str = ANSWER, stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 12, **usage},
    }


def chat_completion(
    message: dict[str, Any],
    finish: str,
    *,
    id: str,
    created: int,
    model: str,
    usage: dict[str, Any],
    with_logprobs: bool = False,
    **top: Any,
) -> dict[str, Any]:
    """An OpenAI-format chat.completion with one choice, as OpenAI-compatible servers answer (`top`: more
    top-level fields, before the choices; with_logprobs: the choice's `"logprobs": null`)."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", **message}}
    if with_logprobs:
        choice["logprobs"] = None
    choice["finish_reason"] = finish
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        **top,
        "choices": [choice],
        "usage": usage,
    }


def openai_chat(text: str = ANSWER, model: str = "gpt-fake-1", finish_reason: str = "stop") -> dict[str, Any]:
    usage = {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}
    return chat_completion(
        {"content": text},
        finish_reason,
        id="chatcmpl-fake01",
        created=1700000000,
        model=model,
        usage=usage,
        with_logprobs=True,
    )


def openai_completion(text: str = ANSWER, model: str = "gpt-fake-instruct") -> dict[str, Any]:
    return {
        "id": "cmpl-fake01",
        "object": "text_completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 16, "total_tokens": 20},
    }


def sse(event: dict[str, Any] | str, name: str | None = None) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event)
    return (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()


STREAM_PIECES = ["The sum ", "of 1 + 1 ", "is 2."]  # joined: ANSWER


def anthropic_message_start(message_id: str = "msg_fake01", input_tokens: int = 25, **usage: int) -> bytes:
    """The message_start event of an Anthropic stream (`usage`: more counts, e.g. cache_read_input_tokens)."""
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
    }
    return sse({"type": "message_start", "message": message}, "message_start")


def anthropic_stream(
    pieces: list[str] = STREAM_PIECES, stop_reason: str = "end_turn", complete: bool = True, **usage: int
) -> list[bytes]:
    """An Anthropic Messages SSE stream, one event per list item (a ping included, as the API sends); `usage`: the
    message_start's counts (input_tokens, cache_read_input_tokens, ...)."""
    events = [
        anthropic_message_start(**usage),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    events += [
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
            "content_block_delta",
        )
        for p in pieces
    ]
    if complete:
        events += [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": 12},
                },
                "message_delta",
            ),
            sse({"type": "message_stop"}, "message_stop"),
        ]
    return events


def openai_stream(
    pieces: list[str] = STREAM_PIECES, include_usage: bool = False, completions: bool = False, model: str = "gpt-fake-1"
) -> list[bytes]:
    """An OpenAI chat (or legacy completions) SSE stream ending in [DONE]."""
    base = {"id": "chatcmpl-fake01", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    if completions:
        base = {**base, "id": "cmpl-fake01", "object": "text_completion"}

    def chunk(choice_extra: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, **choice_extra, "logprobs": None, "finish_reason": finish}
        body = {**base, "choices": [choice]}
        if include_usage:
            body["usage"] = None
        return sse(body)

    if completions:
        events = [chunk({"text": p}) for p in pieces] + [chunk({"text": ""}, "stop")]
    else:
        events = [chunk({"delta": {"role": "assistant", "content": ""}})]
        events += [chunk({"delta": {"content": p}}) for p in pieces] + [chunk({"delta": {}}, "stop")]
    if include_usage:
        events.append(
            sse({**base, "choices": [], "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}})
        )
    return [*events, b"data: [DONE]\n\n"]


def default_reply(req: Recorded) -> Reply:
    """A valid answer of the format the path implies (streamed when the request asks for a stream)."""
    path = req.path
    body = req.json if req.body.startswith(b"{") else {}
    if body.get("stream"):
        if path.endswith(("/v1/messages", "/v1/complete")):
            return Reply(chunks=anthropic_stream())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Reply(
            chunks=openai_stream(include_usage=include_usage, completions=not path.endswith("/chat/completions"))
        )
    if path.endswith(":countTokens"):  # Gemini's token counter
        return Reply(json={"totalTokens": GEMINI_COUNTED_TOKENS})
    if path.endswith("/v1/messages"):
        return Reply(json=anthropic_message())
    if path.endswith("/v1/complete"):
        return Reply(
            json={
                "type": "completion",
                "id": "compl_fake",
                "completion": ANSWER,
                "stop_reason": "max_tokens",
                "model": "claude-2.1",
            }
        )
    if path.endswith("/chat/completions"):
        return Reply(json=openai_chat())
    if path.endswith("/completions"):
        return Reply(json=openai_completion())
    return Reply(status=404, json={"error": {"message": f"fake has no route {path}", "type": "not_found"}})


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.startswith(b"{") else None
    except ValueError:
        return None


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client (the proxy) that hangs up is part of the tests (shutdown, disconnects): no traceback for it.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeUpstream(ReplyQueue):
    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        # Picks the reply for a request when nothing is queued (None: the default reply); lets concurrent
        # tests choose per request instead of relying on the order of a shared queue.
        self.responder: Callable[[Recorded], Reply | None] | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and delayed ACKs add
                # ~40 ms to every response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                rec = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                refused = schema_refusals.refusal(rec.path, _json_or_none(body))
                if refused is not None:  # what the real API refuses, before any queued answer is used
                    with fake._lock:
                        fake.requests.append(rec)
                    fake._send(self, Reply(status=400, json=schema_refusals.refusal_body(*refused)))
                    return
                with fake._lock:
                    fake.requests.append(rec)
                    reply = fake._queue.popleft() if fake._queue else None
                    responder = fake.responder
                if reply is None and responder is not None:
                    reply = responder(rec)
                fake._send(self, reply or default_reply(rec))

            do_POST = do_GET = do_PUT = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"fake-{name}", daemon=True)
        self._thread.start()

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        headers = dict(reply.headers)
        if reply.chunks is not None:
            headers.setdefault("content-type", "text/event-stream")
            headers["transfer-encoding"] = "chunked"
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            try:
                for item in reply.chunks:
                    if callable(item):
                        item()
                        continue
                    if item:
                        handler.wfile.write(f"{len(item):x}\r\n".encode() + item + b"\r\n")
                        handler.wfile.flush()
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        body = (
            reply.body if reply.body is not None else json.dumps(reply.json).encode() if reply.json is not None else b""
        )
        if reply.json is not None:
            headers.setdefault("content-type", "application/json")
        headers["content-length"] = str(len(body))
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(body)

    def reset(self) -> None:
        super().reset()
        self.responder = None

    def last(self) -> Recorded:
        assert self.requests, f"fake {self.name} received no request"
        return self.requests[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
