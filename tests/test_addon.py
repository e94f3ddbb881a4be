"""Addon-level tests with mitmproxy's taddons/tflow: matching, fail-closed, reload, options, records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow, tutils

from addon.providers import anthropic as anthropic_module
from addon.proxy import AIProxy
from tests.support.hooks import configured, records, run_request

RULES = """
rules:
  - name: claude
    match: {host: anthropic.internal, path: /v1/chat/completions, methods: [POST]}
    model:
      provider: anthropic
      name: claude-test
      options: {upstream_url: "http://127.0.0.1:9/v1/messages"}
    auth: {header_name: x-api-key, header_value: "${ADDON_TEST_KEY}"}
    logging: {log_payloads: true}
  - name: team-only
    match: {host: "*.team.internal", filter: "~h x-team"}
    model: {provider: openai, name: m, options: {upstream_url: "http://127.0.0.1:9"}}
"""

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def chat_flow(
    host: str = "anthropic.internal", path: str = "/v1/chat/completions", body: dict | None = None, **headers: str
) -> http.HTTPFlow:
    content = json.dumps(CHAT if body is None else body).encode()
    hdrs = http.Headers([(b"content-type", b"application/json"), (b"authorization", b"Bearer sk-client")])
    for k, v in headers.items():
        hdrs[k.replace("_", "-")] = v
    req = tutils.treq(
        host=host, port=443, scheme=b"https", method=b"POST", path=path.encode(), headers=hdrs, content=content
    )
    return tflow.tflow(req=req)


@pytest.fixture
def addon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AIProxy, taddons.context, Path]]:
    monkeypatch.setenv("ADDON_TEST_KEY", "addon-test-secret")
    with configured(tmp_path, RULES) as running:
        yield running


def test_translates_and_rewrites_request(addon) -> None:
    proxy, _, _ = addon
    f = chat_flow()
    run_request(proxy, f)
    assert f.response is None
    assert f.request.url == "http://127.0.0.1:9/v1/messages"
    assert f.request.headers["x-api-key"] == "addon-test-secret"
    assert "authorization" not in f.request.headers
    assert f.request.headers["host"] == "127.0.0.1:9"
    assert json.loads(f.request.content)["model"] == "claude-test"


def test_unmatched_flows_are_untouched(addon) -> None:
    proxy, _, _ = addon
    for f in (
        chat_flow(host="api.example.com"),
        chat_flow(path="/v1/models"),
        chat_flow(host="x.team.internal"),  # the filter wants an x-team header
    ):
        before = f.request.get_state()
        run_request(proxy, f)
        assert f.response is None
        assert f.request.get_state() == before


def test_filter_expression_selects_flows(addon) -> None:
    proxy, _, _ = addon
    f = chat_flow(host="x.team.internal", body={"messages": [{"role": "user", "content": "hi"}]}, x_team="blue")
    run_request(proxy, f)
    assert f.request.host == "127.0.0.1"


def test_exception_in_translation_fails_closed(addon, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, _, _ = addon

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(anthropic_module.Anthropic, "build_request", explode)
    f = chat_flow()
    run_request(proxy, f)
    assert f.response is not None and f.response.status_code == 502
    assert json.loads(f.response.content)["error"]["code"] == "proxy_error"
    # mitmproxy never forwards a flow that already has a response: nothing reaches any host


def test_exception_in_response_translation_fails_closed(addon, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, _, _ = addon
    f = chat_flow()
    run_request(proxy, f)
    monkeypatch.setattr(anthropic_module.Anthropic, "parse_response", lambda *a: 1 / 0)
    f.response = tutils.tresp(content=b'{"content": []}')
    proxy.response(f)
    assert f.response.status_code == 502
    assert json.loads(f.response.content)["error"]["message"]


def test_record_on_success_and_comment(addon, tmp_path: Path) -> None:
    proxy, _, _ = addon
    f = chat_flow()
    run_request(proxy, f)
    upstream = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-test",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }
    f.response = tutils.tresp(
        content=json.dumps(upstream).encode(), headers=http.Headers(content_type="application/json")
    )
    proxy.responseheaders(f)
    proxy.response(f)
    body = json.loads(f.response.content)
    assert body["choices"][0]["message"]["content"] == "hello"
    assert f.response.headers["x-ai-proxy-model"] == "anthropic/claude-test"
    assert "anthropic/claude-test" in f.comment and "3+2 tokens" in f.comment
    # the injected key is gone from the flow once the request has left
    assert f.request.headers["x-api-key"] == "REDACTED"
    proxy.recorder.close()
    [record] = records(tmp_path / "rec")
    assert record["meta"]["rule"] == "claude"
    assert record["usage"]["total_tokens"] == 5
    assert "addon-test-secret" not in json.dumps(record)


def test_record_on_error_hook(addon, tmp_path: Path) -> None:
    proxy, _, _ = addon
    f = chat_flow()
    run_request(proxy, f)
    f.error = tflow.terr("connection refused")
    proxy.error(f)
    proxy.recorder.close()
    [record] = records(tmp_path / "rec")
    assert record["meta"]["status"] == 502
    assert record["meta"]["error"] == "the upstream could not be reached or did not answer: connection refused"
    # what the client gets instead of mitmproxy's HTML page: the OpenAI envelope
    assert f.response is not None and f.response.status_code == 502
    assert json.loads(f.response.content)["error"]["code"] == "upstream_unreachable"


def test_reload_applies_good_edits_and_refuses_bad_ones(addon, caplog: pytest.LogCaptureFixture) -> None:
    proxy, _, rules = addon
    assert [r.name for r in proxy.rules] == ["claude", "team-only"]
    rules.write_text(RULES.replace("name: claude", "name: claude-renamed"))
    assert proxy.reload_if_changed()
    assert proxy.rules[0].name == "claude-renamed"

    with caplog.at_level(logging.ERROR):
        rules.write_text(RULES.replace("max_tokens", "x") + "      bogus: 1\n")
        assert not proxy.reload_if_changed()
    assert proxy.rules[0].name == "claude-renamed"  # previous rules stay in force
    assert "refused" in caplog.text
    assert not proxy.reload_if_changed()  # the bad edit is reported once


def test_invalid_filter_is_refused(addon, tmp_path: Path) -> None:
    proxy, tctx, _ = addon
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("~h x-team", "~nonsense(("))
    proxy._running = True  # a change at run time is refused with an options error
    with pytest.raises(exceptions.OptionsError, match=r"team-only.*match\.filter"):
        tctx.configure(proxy, ai_rules=str(bad))
    assert [r.name for r in proxy.rules] == ["claude", "team-only"]


def test_recordings_option_validated(addon) -> None:
    proxy, tctx, _ = addon
    with pytest.raises(exceptions.OptionsError, match="ai_recordings"):
        tctx.configure(proxy, ai_recordings="")


def test_missing_env_loads_but_requests_get_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADDON_TEST_KEY", raising=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    proxy = AIProxy()
    with taddons.context(proxy) as tctx:
        tctx.configure(proxy, ai_rules=str(rules), ai_recordings=str(tmp_path / "rec"))
        f = chat_flow()
        run_request(proxy, f)
        assert f.response.status_code == 500
        assert "ADDON_TEST_KEY" in json.loads(f.response.content)["error"]["message"]
        proxy.done()


def test_shipped_rules_file_loads_without_any_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from addon.rules import load_rules_file

    rules = load_rules_file(Path(__file__).resolve().parents[1] / "rules.yaml", environ={})
    assert any(r.spec.match.host == "api.openai.com" and r.spec.auth and r.spec.auth.allow_override for r in rules)


def test_every_commented_rule_in_the_shipped_file_loads_when_uncommented() -> None:
    """The shipped examples must stay valid: uncomment them all and load the file."""
    import re

    from addon.rules import load_rules_text

    text = (Path(__file__).resolve().parents[1] / "rules.yaml").read_text()
    uncommented = re.sub(r"^  # (- name|  )", lambda m: "  " + m.group(1), text, flags=re.M)
    rules = load_rules_text(uncommented, environ={})
    providers = {r.spec.model.provider for r in rules}
    assert providers == {
        "openai",
        "azure",
        "anthropic",
        "cohere",
        "mistral",
        "llama2",
        "gemini",
        "bedrock",
        "huggingface",
    }
