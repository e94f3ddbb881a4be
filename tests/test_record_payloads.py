"""What the audit record holds of the bodies (record.py, audit.payload_value): the bytes the proxy already parsed or
serialised are embedded as they are (no second parse or serialisation on the writer thread), and the record stays
one JSON line, redacted, whatever the client's spelling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addon import jsonutil, record
from addon.proxy import AIProxy

RULES = """
rules:
  - name: claude
    match: {host: anthropic.internal, path: /v1/chat/completions}
    model:
      provider: anthropic
      name: claude-test
      options: {upstream_url: "http://127.0.0.1:9/v1/messages"}
    auth: {header_name: x-api-key, header_value: "configured/not-a-key"}
    logging: {log_payloads: true}
"""
ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[AIProxy]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    addon = AIProxy()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, ai_rules=str(rules), ai_recordings=str(tmp_path / "rec"))
        yield addon


def exchange(addon: AIProxy, content: bytes) -> None:
    headers = http.Headers([(b"content-type", b"application/json")])
    req = tutils.treq(
        host="anthropic.internal",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=b"/v1/chat/completions",
        headers=headers,
        content=content,
    )
    flow = tflow.tflow(req=req)
    asyncio.run(addon.request(flow))
    assert flow.response is None, flow.response and flow.response.content
    flow.response = tutils.tresp(
        content=json.dumps(ANSWER).encode(), headers=http.Headers(content_type="application/json")
    )
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.response.status_code == 200


def written(addon: AIProxy, tmp_path: Path) -> list[str]:
    addon.done()  # drains the writer thread
    text = "".join(p.read_text() for p in sorted((tmp_path / "rec").glob("*.jsonl")))
    assert text.endswith("\n")
    return text.splitlines()


def test_a_compact_client_body_is_embedded_byte_for_byte(proxy: AIProxy, tmp_path: Path) -> None:
    body = b'{"messages":[{"role":"user","content":"no escapes, sent as is"}],  "temperature": 0.5}'
    exchange(proxy, body)
    [line] = written(proxy, tmp_path)
    assert body.decode() in line  # not re-serialised: the client's own spacing is kept
    payload = json.loads(line)["payload"]
    assert payload["client_request"] == json.loads(body)
    assert payload["upstream_request"]["model"] == "claude-test"
    assert payload["upstream_request"]["messages"][0]["content"] == "no escapes, sent as is"


def test_a_body_with_the_usual_escapes_is_embedded_byte_for_byte(proxy: AIProxy, tmp_path: Path) -> None:
    # Quotes, tabs, backslashes and control characters (terminal colours in a tool's output) can spell no
    # secret otherwise than orjson writes it: every agent's body holds them, and they keep the fast path.
    body = b'{"messages":[{"role":"user","content":"tabs\\tand \\"quotes\\" \\\\ \\u001b[0m"}],  "temperature": 0.5}'
    exchange(proxy, body)
    [line] = written(proxy, tmp_path)
    assert body.decode() in line
    assert json.loads(line)["payload"]["client_request"] == json.loads(body)


@pytest.mark.parametrize("escape", ["\\u0041", "\\u00e9", "\\/"])
def test_a_body_with_an_escape_that_may_spell_a_secret_is_parsed_and_written_anew(
    proxy: AIProxy, tmp_path: Path, escape: str
) -> None:
    body = b'{"messages":[{"role":"user","content":"an escape: ' + escape.encode() + b'"}],  "temperature": 0.5}'
    exchange(proxy, body)
    [line] = written(proxy, tmp_path)
    assert body.decode() not in line
    assert json.loads(line)["payload"]["client_request"] == json.loads(body)


def test_a_body_with_line_breaks_is_rewritten_on_one_line(proxy: AIProxy, tmp_path: Path) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}, indent=2).encode().replace(b"\n", b"\r\n")
    exchange(proxy, body)
    lines = written(proxy, tmp_path)
    assert len(lines) == 1
    assert json.loads(lines[0])["payload"]["client_request"] == {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("spelling", ["configured/not-a-key", "configured\\/not-a-key", "configured\\u002fnot-a-key"])
def test_a_secret_in_the_client_body_is_redacted_however_it_is_escaped(
    proxy: AIProxy, tmp_path: Path, spelling: str
) -> None:
    # The configured key as a client's JSON encoder may spell it: plain, an escaped slash, a \\u escape.
    content = ('{"messages":[{"role":"user","content":"key: ' + spelling + '"}]}').encode()
    assert json.loads(content)["messages"][0]["content"] == "key: configured/not-a-key"
    exchange(proxy, content)
    [line] = written(proxy, tmp_path)
    assert "not-a-key" not in line
    assert json.loads(line)["payload"]["client_request"]["messages"][0]["content"] == "key: REDACTED"


def test_a_record_that_orjson_cannot_write_beside_embedded_bytes_is_written_without_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An integer beyond 64 bits sends jsonutil to the standard library, which cannot write an embedded fragment:
    # the record is then built again with parsed bodies.
    with pytest.raises(TypeError):
        jsonutil.dumps({"body": orjson.Fragment(b'{"a":1}'), "n": 2**70})

    def build(flow_id: str, ex: object, prices: object, embed: bool = True) -> dict:
        return {"body": orjson.Fragment(b'{"a":1}') if embed else {"a": 1}, "n": 2**70}

    monkeypatch.setattr(record, "build", build)
    assert json.loads(record.line("id", None, None)) == {"body": {"a": 1}, "n": 2**70}  # type: ignore[arg-type]


@pytest.mark.parametrize(("tail", "embedded"), [("", True), ("\\u0041", False)])
def test_a_body_with_many_escapes_is_checked_to_its_end(
    proxy: AIProxy, tmp_path: Path, tail: str, embedded: bool
) -> None:
    # Past the first few hundred escapes, looked at one by one, the rest is scanned at once: an escape that may
    # spell a secret is found there too.
    content = 'a \\"quoted\\" word\\t' * 300 + tail
    body = b'{"messages":[{"role":"user","content":"' + content.encode() + b'"}],  "temperature": 0.5}'
    exchange(proxy, body)
    [line] = written(proxy, tmp_path)
    assert (body.decode() in line) is embedded
    assert json.loads(line)["payload"]["client_request"] == json.loads(body)
