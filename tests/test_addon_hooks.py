"""The addon's hooks (proxy.py, with auth.py, audit.py, preserve.py) against what clients and upstreams really send:
credentials in odd places, absurd or compressed bodies, answers nobody asked for, rules reloads. Hook-level tests
with taddons/tflow, each pinning a bug found in review."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.net import encoding as encoding_module
from mitmproxy.test import tflow, tutils

from addon import flows
from addon.proxy import AIProxy
from tests.support.addon import client_flow, running
from tests.support.hooks import configured, records, run_request

RULE_KEY = "review-rule-secret-0001"
CLIENT_KEY = "sk-review-client-0002"

RULES = f"""
rules:
  - name: claude
    match: {{host: anthropic.internal, path: /v1/chat/completions}}
    max_request_body_size: 4096
    model:
      provider: anthropic
      name: claude-test
      options: {{upstream_url: "http://127.0.0.1:9/v1/messages"}}
    auth: {{header_name: x-api-key, header_value: {RULE_KEY}}}
    logging: {{log_payloads: true}}
  - name: gemini-override
    match: {{host: override.internal, path: /v1/chat/completions}}
    model:
      provider: openai
      name: m
      options: {{upstream_url: "http://127.0.0.1:9"}}
    auth: {{param_name: key, param_value: {RULE_KEY}, param_location: query, allow_override: true}}
    logging: {{log_payloads: true}}
  - name: apikey-param
    match: {{host: param.internal, path: /v1/chat/completions}}
    model:
      provider: openai
      name: m
      options: {{upstream_url: "http://127.0.0.1:9"}}
    auth: {{param_name: apikey, param_value: {RULE_KEY}, param_location: query}}
    logging: {{log_payloads: true}}
  - name: body-key
    match: {{host: body.internal, path: /v1/chat/completions}}
    model:
      provider: openai
      name: m
      options: {{upstream_url: "http://127.0.0.1:9"}}
    auth: {{param_name: api_key, param_value: {RULE_KEY}, param_location: body, allow_override: true}}
    logging: {{log_payloads: true}}
  - name: custom-param-override
    match: {{host: custom.internal, path: /v1/chat/completions}}
    model:
      provider: openai
      name: m
      options: {{upstream_url: "http://127.0.0.1:9"}}
    auth: {{param_name: apikey, param_value: {RULE_KEY}, param_location: query, allow_override: true}}
  - name: vertex
    match: {{host: vertex.internal, path: /v1/chat/completions}}
    model:
      provider: gemini
      name: gemini-test
      options: {{upstream_url: "http://127.0.0.1:9", gemini: {{project_id: p1, location_id: us-central1}}}}
    auth: {{gcp_use_service_account: true, gcp_service_account_json: "{{}}"}}
    logging: {{log_payloads: true}}
  - name: preserved
    match: {{host: preserve.internal}}
    route_type: preserve
    max_request_body_size: 4096
    model:
      provider: openai
      options: {{upstream_url: "http://127.0.0.1:9"}}
    auth: {{header_name: authorization, header_value: "Bearer {RULE_KEY}"}}
"""

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def flow(
    host: str,
    path: str = "/v1/chat/completions",
    content: bytes | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> http.HTTPFlow:
    hdrs = http.Headers([(b"content-type", b"application/json"), *(headers or [])])
    req = tutils.treq(
        host=host,
        port=80,
        scheme=b"http",
        method=b"POST",
        path=path.encode(),
        headers=hdrs,
        content=json.dumps(CHAT).encode() if content is None else content,
    )
    return tflow.tflow(req=req)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[AIProxy]:
    with configured(tmp_path, RULES) as (addon, _, _):
        yield addon


def openai_reply() -> http.Response:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return tutils.tresp(content=json.dumps(body).encode(), headers=http.Headers(content_type="application/json"))


# ---- fail closed ----------------------------------------------------------------------------------------------


def test_odd_host_header_with_a_query_still_fails_closed(proxy: AIProxy) -> None:
    # Regular mode: the URL names the host, the Host header is whatever the client wrote.
    f = flow("anthropic.internal", path="/v1/chat/completions?x=1", headers=[(b"host", b"[anthropic.internal")])
    run_request(proxy, f)  # must not raise: an exception in a hook forwards the flow unchanged
    assert f.response is not None or f.request.host == "127.0.0.1"
    assert f.request.host != "anthropic.internal"


# ---- the client's own key in a query param ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["key", "api_key", "access_token"])
def test_client_query_key_on_override_route_is_scrubbed_after_sending(proxy: AIProxy, name: str) -> None:
    f = flow("override.internal", path=f"/v1/chat/completions?{name}={CLIENT_KEY}")
    run_request(proxy, f)
    assert f.response is None
    assert f.request.query[name] == CLIENT_KEY  # allow_override: the client's key goes upstream
    f.response = openai_reply()
    proxy.responseheaders(f)
    assert CLIENT_KEY not in f.request.url
    assert CLIENT_KEY not in json.dumps(f.metadata["ai_proxy"])
    proxy.response(f)
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert CLIENT_KEY not in json.dumps(record)


def test_client_key_under_the_rules_param_name_is_redacted_in_records(proxy: AIProxy) -> None:
    f = flow("param.internal", path=f"/v1/chat/completions?apikey={CLIENT_KEY}")
    run_request(proxy, f)
    assert CLIENT_KEY not in json.dumps(f.metadata["ai_proxy"])
    f.response = openai_reply()
    proxy.responseheaders(f)
    proxy.response(f)
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert CLIENT_KEY not in json.dumps(record)


def test_client_query_key_is_redacted_when_answered_locally(proxy: AIProxy) -> None:
    f = flow("anthropic.internal", path=f"/v1/chat/completions?key={CLIENT_KEY}", content=b"not json")
    run_request(proxy, f)
    assert f.response is not None and f.response.status_code == 400
    assert CLIENT_KEY not in f.request.url


# ---- absurd bodies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["anthropic.internal", "preserve.internal"])
def test_compressed_body_is_not_inflated_beyond_the_limit(proxy: AIProxy, host: str) -> None:
    # ~50 KB on the wire, 50 MB inflated; a different bomb per test (mitmproxy caches what it decoded)
    bomb = gzip.compress(b" " * (50_000_000 + len(host)), compresslevel=9)
    f = flow(host, content=bomb, headers=[(b"content-encoding", b"gzip")])
    tracemalloc.start()
    try:
        run_request(proxy, f)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f.response is not None and f.response.status_code == 413
    assert json.loads(f.response.content)["error"]["code"] == "request_too_large"
    assert peak < 5_000_000, f"{peak} bytes allocated for a 4 KB route limit"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
@pytest.mark.parametrize("host", ["anthropic.internal", "preserve.internal"])
def test_compressed_body_within_the_limit_is_decoded(proxy: AIProxy, host: str, encoding: str) -> None:
    raw = json.dumps(CHAT).encode()
    f = flow(host, content=encoding_module.encode(raw, encoding), headers=[(b"content-encoding", encoding.encode())])
    run_request(proxy, f)
    assert f.response is None, f.response and f.response.content
    assert f.request.host == "127.0.0.1"
    # the body goes upstream decoded, and says so: no content-encoding left from the client
    assert "content-encoding" not in f.request.headers
    sent = json.loads(f.request.raw_content)
    assert sent["messages"] == CHAT["messages"]


def test_undecodable_body_is_a_400(proxy: AIProxy) -> None:
    f = flow("anthropic.internal", content=b"not gzip at all", headers=[(b"content-encoding", b"gzip")])
    run_request(proxy, f)
    assert f.response is not None and f.response.status_code == 400


def test_non_utf8_client_header_does_not_break_the_request(proxy: AIProxy) -> None:
    f = flow("anthropic.internal", headers=[(b"user-agent", b"caf\xe9-client/1.0")])
    run_request(proxy, f)
    assert f.response is None, f.response and f.response.content
    assert f.request.host == "127.0.0.1"


def test_client_body_key_on_override_route_stays_out_of_the_record(proxy: AIProxy) -> None:
    content = json.dumps({**CHAT, "api_key": CLIENT_KEY}).encode()
    f = flow("body.internal", content=content)
    run_request(proxy, f)
    assert f.response is None, f.response and f.response.content
    f.response = openai_reply()
    proxy.responseheaders(f)
    assert CLIENT_KEY not in (f.request.raw_content or b"").decode()
    proxy.response(f)
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert CLIENT_KEY not in json.dumps(record)


def test_client_key_under_a_custom_param_name_on_override_reaches_upstream_then_is_scrubbed(proxy: AIProxy) -> None:
    f = flow("custom.internal", path=f"/v1/chat/completions?apikey={CLIENT_KEY}")
    run_request(proxy, f)
    assert f.response is None, f.response and f.response.content
    assert f.request.query.get("apikey") == CLIENT_KEY  # allow_override: the client's key wins
    f.response = openai_reply()
    proxy.responseheaders(f)
    assert CLIENT_KEY not in f.request.url
    f2 = flow("custom.internal")  # no client key: the rule's
    run_request(proxy, f2)
    assert f2.request.query.get("apikey") == RULE_KEY


def test_error_hook_failure_still_writes_the_record(proxy: AIProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    f = flow("anthropic.internal")
    run_request(proxy, f)
    monkeypatch.setattr(flows, "scrub_request", lambda *a: 1 / 0)
    f.error = tflow.terr("connection reset")
    proxy.error(f)  # must not raise
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert record["meta"]["error"] == "connection reset" and record["meta"]["status"] == 502


def test_client_key_under_the_rules_param_name_is_redacted_when_answered_locally(proxy: AIProxy) -> None:
    f = flow("param.internal", path=f"/v1/chat/completions?apikey={CLIENT_KEY}", content=b"not json")
    run_request(proxy, f)
    assert f.response is not None and f.response.status_code == 400
    assert CLIENT_KEY not in f.request.url


# ---- upstream answers that were not asked for -------------------------------------------------------------------

OPENAI_SSE = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"hel"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
    b"data: [DONE]\n\n"
)


def streamed(proxy: AIProxy, f: http.HTTPFlow, chunks: list[bytes], headers: http.Headers) -> bytes:
    f.response = tutils.tresp(content=b"", headers=headers)
    proxy.responseheaders(f)
    assert callable(f.response.stream)
    out = b""
    for piece in [*chunks, b""]:
        got = f.response.stream(piece)
        out += got if isinstance(got, bytes) else b"".join(got)
    proxy.response(f)
    return out


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_stream_from_an_upstream_that_ignored_identity(proxy: AIProxy, encoding: str) -> None:
    f = flow("override.internal", content=json.dumps({**CHAT, "stream": True}).encode())
    run_request(proxy, f)
    assert f.request.headers["accept-encoding"] == "identity"
    packed = encoding_module.encode(OPENAI_SSE, encoding)
    chunks = [packed[i : i + 7] for i in range(0, len(packed), 7)]
    headers = http.Headers(content_type="text/event-stream", content_encoding=encoding)
    out = streamed(proxy, f, chunks, headers)
    assert "content-encoding" not in f.response.headers
    text = out.decode()
    assert '"hel"' in text and '"lo"' in text and text.rstrip().endswith("data: [DONE]"), text


def test_html_instead_of_a_stream_ends_in_an_error_event_and_a_record(proxy: AIProxy) -> None:
    f = flow("override.internal", content=json.dumps({**CHAT, "stream": True}).encode())
    run_request(proxy, f)
    html = b"<html><body>Service temporarily unavailable</body></html>"
    out = streamed(proxy, f, [html], http.Headers(content_type="text/html"))
    assert b'"error"' in out
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert record["meta"]["error"]


# ---- rules reload ------------------------------------------------------------------------------------------------


def test_reload_of_a_non_utf8_file_is_refused_and_the_old_rules_stay(
    proxy: AIProxy, caplog: pytest.LogCaptureFixture
) -> None:
    path = proxy.rules_path
    assert path is not None
    before = [r.name for r in proxy.rules]
    path.write_bytes(RULES.encode() + b"\n# caf\xe9\n")
    assert proxy.reload_if_changed() is False  # must not raise: it would end the watcher task for good
    assert [r.name for r in proxy.rules] == before
    assert "refused" in caplog.text
    path.write_text(RULES.replace("name: claude", "name: claude2"))
    assert proxy.reload_if_changed() is True
    assert proxy.rules[0].name == "claude2"


def test_rules_watcher_survives_an_unexpected_error(proxy: AIProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk hiccup")
        raise asyncio.CancelledError

    monkeypatch.setattr(proxy, "reload_if_changed", flaky)
    monkeypatch.setattr("addon.proxy.RULES_POLL_SECONDS", 0)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(proxy._watch_rules())
    assert len(calls) == 2


def test_gcp_access_token_is_scrubbed_from_the_flow_and_redacted_from_the_record(proxy: AIProxy) -> None:
    token = "ya29.review-access-token-0003"

    class Tokens:
        async def token(self, auth: object) -> str:
            return token

    proxy._gcp = Tokens()
    f = flow("vertex.internal")
    run_request(proxy, f)
    assert f.response is None, f.response and f.response.content
    assert f.request.headers["authorization"] == f"Bearer {token}"
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": token}]}, "finishReason": "STOP"}]}
    f.response = tutils.tresp(content=json.dumps(body).encode(), headers=http.Headers(content_type="application/json"))
    proxy.responseheaders(f)
    assert token not in str(f.request.headers)
    proxy.response(f)
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert token not in json.dumps(record)  # even where an upstream echoed it


def test_compressed_client_body_is_recorded_decoded(proxy: AIProxy) -> None:
    f = flow("anthropic.internal", content=gzip.compress(json.dumps(CHAT).encode()))
    f.request.headers["content-encoding"] = "gzip"
    run_request(proxy, f)
    f.response = tutils.tresp(content=b'{"error": {"type": "overloaded_error", "message": "busy"}}', status_code=529)
    proxy.responseheaders(f)
    proxy.response(f)
    proxy.recorder.close()
    [record] = records(Path(proxy.recorder.folder))
    assert record["payload"]["client_request"] == CHAT


def test_a_refused_request_shows_no_client_key_under_the_rules_own_header(tmp_path: Path) -> None:
    """Answered by the proxy itself (here: a model the rule does not serve), the flow mitmweb shows keeps no client
    key: neither under the usual header names nor under the rule's own key header."""
    rules = """
rules:
  - name: team
    match: {host: anthropic.internal, path: /v1/chat/completions}
    model: {provider: anthropic, name: claude-test, options: {upstream_url: "http://127.0.0.1:9/v1/messages"}}
    auth: {header_name: x-team-key, header_value: team-not-a-key, allow_override: true}
"""
    with running(tmp_path, rules) as proxy:
        f = client_flow({"model": "another-model", "messages": [{"role": "user", "content": "hi"}]})
        f.request.headers["x-team-key"] = "client-own-team-key-1"
        asyncio.run(proxy.request(f))
    assert f.response is not None and f.response.status_code == 400
    assert f.request.headers["x-team-key"] == "REDACTED"
    assert f.request.headers["authorization"] == "REDACTED"
