"""What mitmproxy does by itself when an upstream fails, made to answer in our envelope; and closing an upstream.

When an upstream cannot be reached, closes early, or is closed by one of our timeouts, mitmproxy runs the `error`
hook and then answers the client itself: an HTML 502 page before the response started, an aborted connection
after. No hook can change that answer (mitmproxy 12.3, `HttpStream.handle_protocol_error`), so this module wraps
that one method: when the addon has registered an answer for the flow in its `error` hook, the client gets that
answer instead — a whole response (our JSON envelope) before anything was sent, or the last bytes of a stream (an
error event) and a clean end after. Flows without a registered answer are left exactly as mitmproxy handles them.

The wrapper only replaces the one command that sends mitmproxy's own error to the client; everything else the
original method yields passes through unchanged. If mitmproxy's internals differ from what this expects, nothing
is patched and a warning says so: the proxy still works, with mitmproxy's own error pages.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from mitmproxy import http

log = logging.getLogger("ai_proxy")


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client gets instead of mitmproxy's own error: a whole response, or the tail of a started stream."""

    response: http.Response | None = None
    tail: bytes = b""


_answers: weakref.WeakKeyDictionary[http.HTTPFlow, Answer] = weakref.WeakKeyDictionary()
_installed = False


def answer_with(flow: http.HTTPFlow, answer: Answer) -> None:
    """Register the answer for a flow whose upstream failed; call it from the `error` hook."""
    if answer.response is not None:
        flow.response = answer.response  # mitmweb shows what the client got
    _answers[flow] = answer


def installed() -> bool:
    return _installed


def install() -> bool:
    """Wrap mitmproxy's protocol-error handling once; returns whether answers can be replaced."""
    global _installed
    if _installed:
        return True
    try:
        from mitmproxy.proxy.layers import http as layers_http

        stream_cls = layers_http.HttpStream
        original = stream_cls.handle_protocol_error
        needed = (layers_http.SendHttp, layers_http.ResponseProtocolError, layers_http.ResponseHeaders)
        needed += (layers_http.ResponseData, layers_http.ResponseEndOfMessage)
    except (ImportError, AttributeError):
        log.warning("AI proxy: this mitmproxy's HTTP layer is not the one expected; upstream failures get its HTML")
        return False
    if getattr(original, "_ai_proxy_wrapped", False):
        _installed = True
        return True
    send_http, protocol_error, headers_event, data_event, end_event = needed

    def handle_protocol_error(self: Any, event: Any) -> Generator[Any, Any, None]:
        commands = original(self, event)
        reply: Any = None
        while True:
            try:
                command = commands.send(reply)
            except StopIteration:
                return
            if (
                isinstance(command, send_http)
                and isinstance(command.event, protocol_error)
                and command.connection is self.context.client
            ):
                answer = _answers.pop(self.flow, None)
                if answer is not None:
                    client, sid = self.context.client, self.stream_id
                    if answer.response is not None:
                        body = answer.response.raw_content or b""
                        yield send_http(headers_event(sid, answer.response, end_stream=not body), client)
                        if body:
                            yield send_http(data_event(sid, body), client)
                    elif answer.tail:
                        yield send_http(data_event(sid, answer.tail), client)
                    yield send_http(end_event(sid), client)
                    reply = None
                    continue
            reply = yield command

    handle_protocol_error._ai_proxy_wrapped = True  # type: ignore[attr-defined]
    stream_cls.handle_protocol_error = handle_protocol_error  # type: ignore[method-assign]
    _installed = True
    return True


def close_upstream(flow: http.HTTPFlow, proxyserver: Any) -> bool:
    """Close the flow's upstream connection (or cancel its connect), so mitmproxy ends the flow with an error and
    the `error` hook answers the client. Returns False if the connection could not be found."""
    handler = getattr(proxyserver, "connections", {}).get(flow.client_conn.id)
    if handler is None:
        return False
    transports = getattr(handler, "transports", None)
    if transports is None:
        return False
    server = flow.server_conn
    if server in transports and transports[server].writer is not None:
        handler.close_connection(server)
        return True
    # Still connecting: the connection object is not the flow's yet; find it by address and cancel its connect.
    address = (flow.request.host, flow.request.port)
    for conn, io in list(transports.items()):
        if conn is not flow.client_conn and io.writer is None and conn.address == address and io.handler:
            io.handler.cancel("ai_proxy: connect timeout")
            return True
    return False
