"""The addon in-process, under mitmproxy's taddons, configured with a rules text: for tests that drive its hooks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addon.proxy import AIProxy


@contextmanager
def running(tmp_path: Path, rules: str, **options: Any) -> Iterator[AIProxy]:
    """An AIProxy loaded (options registered, contentview added) and configured with `rules`; done() at the end."""
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    addon = AIProxy()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, ai_rules=str(path), ai_recordings=str(tmp_path / "rec"), **options)
        yield addon
        addon.done()


def client_flow(body: dict, host: str = "anthropic.internal", path: str = "/v1/chat/completions") -> http.HTTPFlow:
    """A client's POST with a JSON body, carrying credentials of its own (which must never show)."""
    secrets = [(b"authorization", b"Bearer sk-client-secret-1"), (b"x-api-key", b"sk-ant-client-9")]
    headers = http.Headers([(b"content-type", b"application/json"), *secrets])
    req = tutils.treq(host=host, port=80, scheme=b"http", method=b"POST", path=path.encode(), headers=headers)
    req.content = json.dumps(body).encode()
    f = tflow.tflow(req=req)
    f.request.timestamp_end = 1000.0
    return f


def exchange(proxy: AIProxy, body: dict, **kw: str) -> http.HTTPFlow:
    """A client's request through the request hook, sent upstream (not answered by the proxy)."""
    f = client_flow(body, **kw)
    asyncio.run(proxy.request(f))
    assert f.response is None, f.response and f.response.content
    return f


def answer(proxy: AIProxy, f: http.HTTPFlow, body: dict, status: int = 200) -> None:
    """The upstream's whole JSON answer, 250 ms after the request, through the response hooks."""
    f.response = tutils.tresp(
        status_code=status, content=json.dumps(body).encode(), headers=http.Headers(content_type="application/json")
    )
    f.response.timestamp_end = 1000.25
    proxy.responseheaders(f)
    proxy.response(f)


def stream_answer(proxy: AIProxy, f: http.HTTPFlow, events: list[bytes], seconds: float) -> bytes:
    """The upstream's SSE answer through the hooks and the stream callable, as mitmproxy runs them (the request
    ended now, the stream `seconds` later); returns what the client got."""
    f.request.timestamp_end = time.time()
    f.response = tutils.tresp(content=b"", headers=http.Headers(content_type="text/event-stream"))
    proxy.responseheaders(f)
    out = [f.response.stream(chunk) for chunk in [*events, b""]]
    f.response.data.content = None  # what mitmproxy keeps of a streamed body
    f.response.timestamp_end = f.request.timestamp_end + seconds
    proxy.response(f)
    return b"".join(c if isinstance(c, bytes) else b"".join(c) for c in out)
