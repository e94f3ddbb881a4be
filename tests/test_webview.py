"""The "AI Exchange" contentview and the flow's summary: exchanges driven through the addon's hooks (taddons), the
view's text read through mitmproxy's own contentview machinery (auto selection, as mitmweb and the console do)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import contentviews, flowfilter, http, io
from mitmproxy.test import tflow, tutils

from addon import exchange_view, webview
from addon.exchange_view import STAND_IN_NOTE
from addon.proxy import AIProxy
from tests.support.addon import answer, client_flow, exchange, running, stream_answer
from tests.support.fakes import anthropic_message, anthropic_stream, openai_chat
from tests.support.views import sides

KEY = "webview-provider-key-0042"
RULES = f"""
rules:
  - name: claude
    match: {{host: anthropic.internal}}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "http://127.0.0.1:9/v1/messages", input_cost: 3.0, output_cost: 15.0}}
    auth: {{header_name: x-api-key, header_value: {KEY}}}
    logging: {{log_payloads: true}}  # a stream's answer is assembled only then
  - name: team
    match: {{host: team.internal}}
    model:
      provider: openai
      name: gpt-fake-1
      options: {{upstream_url: "http://127.0.0.1:9/v1/chat/completions"}}
    auth: {{header_name: x-team-key, header_value: {KEY}}}
  - name: native
    match: {{host: native.internal}}
    llm_format: anthropic
    model: {{provider: anthropic, name: claude-fake-1, options: {{upstream_url: "http://127.0.0.1:9/v1/messages"}}}}
    auth: {{header_name: x-api-key, header_value: {KEY}}}
  - name: keep
    match: {{host: keep.internal}}
    route_type: preserve
    model: {{provider: openai, options: {{upstream_url: "http://127.0.0.1:9"}}}}
    auth: {{header_name: Authorization, header_value: "Bearer {KEY}"}}
  - name: claude-code
    match: {{host: claude.internal}}
    llm_format: anthropic
    model:
      provider: openai
      aliases: {{"claude-*": gpt-fake-1}}
      options: {{upstream_url: "http://127.0.0.1:9/v1/chat/completions"}}
    auth: {{header_name: Authorization, header_value: "Bearer {KEY}"}}
"""
PNG = base64.b64encode(b"\x89PNG" + b"\0" * 12 * 1024).decode()
CHAT = {
    "model": "claude-fake-1",
    "max_tokens": 100,
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture, and the weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[AIProxy]:
    with running(tmp_path, RULES) as addon:
        yield addon


def view(f: http.HTTPFlow, tab: str = "request") -> contentviews.ContentviewResult:
    return contentviews.prettify_message(getattr(f, tab), f)


def secrets_absent(*texts: str) -> None:
    for text in texts:
        for secret in (KEY, "sk-client-secret-1", "sk-ant-client-9"):
            assert secret not in text


def test_translated_chat_shows_both_sides(proxy: AIProxy) -> None:
    f = exchange(proxy, CHAT)
    answer(proxy, f, anthropic_message("It is a PNG; Paris is sunny."))
    req, resp = view(f), view(f, "response")
    assert req.view_name == resp.view_name == "AI Exchange"
    text = req.text
    assert (
        "AI proxy · rule claude · anthropic/claude-fake-1\nopenai client → anthropic · translated llm/v1/chat" in text
    )
    assert "Status 200 (upstream 200) · latency 250 ms" in text and "TTFT" not in text  # not a stream
    assert "Tokens: 25 prompt + 12 completion = 37" in text and "Cost: $0.000255" in text
    assert "Loss report: nothing dropped" in text
    assert "Tools offered: weather" in text
    assert "[system]\n  You are terse." in text
    assert "[user]\n  What is in this picture, and the weather?\n  [image: image/png, 12 KB]" in text
    assert '[assistant]\n  → tool call weather (call_1): {"city":"Paris"}' in text
    assert "[tool result call_1]\n  sunny, 21 C" in text
    assert "[assistant]\n  It is a PNG; Paris is sunny.\n  finish: stop" in text
    # the client's request as it came beside the one sent to Anthropic, in columns; the image's bytes not shown
    client, upstream, titles = sides(text, "Requests")
    assert re.fullmatch(r"client sent \(openai\) +│ sent upstream \(anthropic\)", titles)
    assert client[0] == "POST http://anthropic.internal/v1/chat/completions"
    assert upstream[0] == "POST http://127.0.0.1:9/v1/messages"
    assert "authorization: REDACTED" in client and '      "tool_call_id": "call_1",' in client
    assert "x-api-key: REDACTED" in upstream and '          "tool_use_id": "call_1",' in upstream
    assert client.index("{") == upstream.index("{")  # the bodies start on the same row
    assert PNG[:100] not in text and '            "url": "[data: image/png, 12 KB]"' in client
    assert '          "source": {' in upstream and '            "data": "[base64: 12 KB]"' in upstream
    # the response tab: Anthropic's message beside the chat.completion the client got
    provider, received, titles = sides(resp.text, "Answers")
    assert re.fullmatch(r"provider answered \(anthropic\) +│ client received \(openai\)", titles)
    assert provider[0] == received[0] == "HTTP 200" and '  "stop_reason": "end_turn",' in provider
    assert '  "object": "chat.completion",' in received and "content-type: application/json" in received
    r = resp.text
    secrets_absent(text, r, json.dumps(f.metadata[webview.META]))
    # the summary is JSON and other addons can read it
    s = json.loads(json.dumps(f.metadata[webview.META]))
    assert (s["rule"], s["provider"], s["model"], s["client_format"], s["status"]) == (
        "claude", "anthropic", "claude-fake-1", "openai", 200,
    )  # fmt: skip
    assert s["usage"] == {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}
    assert s["cost"] == pytest.approx(0.000255) and s["latency_ms"] == 250.0 and not f.marked


def test_streamed_answer_is_assembled(proxy: AIProxy) -> None:
    f = exchange(proxy, {**CHAT, "stream": True})
    assert b"The sum " in stream_answer(proxy, f, anthropic_stream(), seconds=0.5)
    text = view(f).text
    assert re.search(r"latency 500 ms · TTFT [\d.]+ ms", text), text[:500]
    assert "· streamed" in text and "Tokens: 25 prompt + 12 completion = 37" in text
    assert "─── Answer ───\n[assistant]\n  The sum of 1 + 1 is 2.\n  finish: stop" in text
    assert '"stream": true' in text
    # mitmproxy keeps no body of a stream, and shows "Content is missing" without asking any view: the proxy puts
    # a stand-in there once the stream is over, saying what it kept, and the response tab is the AI Exchange
    body = f.response.content.decode()
    assert body.startswith("[AI proxy] A streamed response:") and "Tokens: 25 prompt + 12 completion = 37" in body
    assert "[assistant]\n  The sum of 1 + 1 is 2.\n  finish: stop" in body
    resp = view(f, "response")
    assert resp.view_name == "AI Exchange"
    provider, received, _ = sides(resp.text, "Answers")
    assert provider[0] == "HTTP 200 (streamed: its events are not kept)" and "(not kept)" in provider
    assert received[:2] == ["HTTP 200 (streamed: assembled here)", "content-type: text/event-stream; charset=utf-8"]
    assert '        "content": "The sum of 1 + 1 is 2."' in received and STAND_IN_NOTE not in resp.text


def test_errors_stand_out_and_filter(proxy: AIProxy) -> None:
    refused = exchange(proxy, CHAT)
    answer(proxy, refused, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, 429)
    broken = exchange(proxy, CHAT)
    broken.error = tflow.terr("connection refused")
    proxy.error(broken)
    local = client_flow({"messages": "not a list"})
    asyncio.run(proxy.request(local))
    proxy.response(local)
    fine = exchange(proxy, CHAT)
    answer(proxy, fine, anthropic_message())
    assert (refused.marked, broken.marked, local.marked, fine.marked) == (
        ":red_circle:",
        ":red_circle:",
        ":red_circle:",
        "",
    )
    text = view(refused).text
    assert "Status 429 (upstream 429)" in text and "ERROR: slow down" in text
    assert "[error rate_limit_error" in text
    assert "ERROR: the upstream could not be reached or did not answer: connection refused" in view(broken).text
    t = view(local).text
    assert "Status 400 (upstream ?)" in t and "ERROR: " in t and "messages" in t
    assert "(nothing was sent upstream: the proxy answered itself)" in t and "authorization: REDACTED" in t
    secrets_absent(t, view(local, "response").text)
    code = exchange(proxy, {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
                    host="claude.internal", path="/v1/messages")  # fmt: skip
    answer(proxy, code, openai_chat())
    flows = [refused, broken, local, fine, code]

    def matching(expr: str) -> list[http.HTTPFlow]:
        match = flowfilter.parse(expr)
        return [f for f in flows if match(f)]

    # the expressions the README gives, as a user types them
    assert matching("~marked") == matching("~marker red_circle") == [refused, broken, local]
    assert matching("~c 429") == [refused]
    assert matching('~comment "HTTP [0-9]+:"') == [refused, broken, local]
    assert matching('~comment "^anthropic/"') == [refused, broken, local, fine]
    assert matching('~comment "/claude-fake-1 "') == [refused, broken, fine]  # the model is known once sent
    assert matching(r"~comment \[claude\]") == matching("~meta \"'rule': 'claude'\"") == [refused, broken, local, fine]
    assert matching("~meta \"'provider': 'openai'\"") == matching("~meta \"'client_format': 'anthropic'\"") == [code]
    assert matching("~meta \"'status': 5\"") == [broken]
    assert matching('~comment "^anthropic/" & ~marked & !~c 429') == [broken, local]
    assert matching("~meta \"'status': 429\"") == [refused]


def test_anthropic_client_conversation_and_loss_report(proxy: AIProxy) -> None:
    body = {
        "model": "claude-sonnet-4",
        "max_tokens": 50,
        "top_k": 5,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe it"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
                ],
            }
        ],
    }
    f = exchange(proxy, body, host="claude.internal", path="/v1/messages")
    answer(proxy, f, openai_chat("A picture."))
    text = view(f).text
    assert "rule claude-code · openai/gpt-fake-1 (client asked claude-sonnet-4)\nanthropic client → openai" in text
    assert "Loss report: not carried to the provider: top_k" in text
    assert "[system]\n  Be brief.\n[user]\n  Describe it\n  [image: image/jpeg, 12 KB]" in text
    client, upstream, _ = sides(text, "Requests")
    assert client[0] == "POST http://claude.internal/v1/messages" and '  "system": "Be brief.",' in client
    assert "x-api-key: REDACTED" in client and upstream[0] == "POST http://127.0.0.1:9/v1/chat/completions"
    r = view(f, "response").text
    provider, received, _ = sides(r, "Answers")
    assert '  "object": "chat.completion",' in provider  # the provider's answer
    assert '  "type": "message",' in received  # what the anthropic client got
    secrets_absent(text, r)


def test_unhandled_flows_keep_their_views(proxy: AIProxy) -> None:
    f = client_flow({"hello": "world"}, host="example.com")
    asyncio.run(proxy.request(f))
    f.response = tutils.tresp(content=b'{"a": 1}', headers=http.Headers(content_type="application/json"))
    proxy.response(f)
    assert webview.META not in f.metadata and not f.marked and not f.comment
    assert view(f).view_name == "JSON" and view(f, "response").view_name == "JSON"
    assert webview.VIEW.render_priority(b"{}", contentviews.Metadata()) < 0
    handled = exchange(proxy, CHAT)  # in flight: not yet summarised, the usual views
    assert view(handled).view_name == "JSON"


def test_register_and_unregister() -> None:
    webview.register()
    assert contentviews.registry["ai exchange"] is webview.VIEW
    webview.unregister()
    assert "ai exchange" not in contentviews.registry
    webview.unregister()  # twice is harmless


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (f"data:image/png;base64,{PNG}", "[image: image/png, 12 KB]"),
        ("https://example.com/cat.png", "[image: https://example.com/cat.png]"),
        (PNG, "[image: 12 KB]"),
        ("data:image/gif;base64,R0lGOD==", "[image: image/gif, 4 B]"),
    ],
)
def test_image_placeholders(data: str, shown: str) -> None:
    assert exchange_view.placeholder("image", None, data) == shown


def test_audio_file_and_unknown_parts() -> None:
    audio = {"type": "input_audio", "input_audio": {"format": "wav", "data": base64.b64encode(b"x" * 3000).decode()}}
    file = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,QUJD"}}
    assert exchange_view.content_text([audio, file, {"type": "video"}]) == (
        "[audio: wav, 3 KB]\n[file: application/pdf, 3 B a.pdf]\n[video]"
    )


@pytest.mark.parametrize("model", ["gpt-fake-1", "refused-model"])
def test_the_rules_own_auth_header_is_redacted_on_the_client_side(proxy: AIProxy, model: str) -> None:
    f = client_flow({**CHAT, "model": model}, host="team.internal")
    f.request.headers["x-team-key"] = "client-team-secret-7"
    asyncio.run(proxy.request(f))
    if f.response is None:
        answer(proxy, f, openai_chat())
    else:  # refused by the proxy
        proxy.response(f)
    text = view(f).text
    assert ("Status 200" in text) == (model == "gpt-fake-1")
    assert "x-team-key: REDACTED" in sides(text, "Requests")[0]
    assert "client-team-secret-7" not in text + repr(f.metadata)
    secrets_absent(text, repr(f.metadata))


def test_saved_flows_keep_the_view(proxy: AIProxy, tmp_path: Path) -> None:
    f = exchange(proxy, CHAT)
    answer(proxy, f, anthropic_message("Saved."))
    path = tmp_path / "flows.mitm"
    with path.open("wb") as out:
        io.FlowWriter(out).add(f)  # what mitmweb's save and mitmdump -w write
    with path.open("rb") as saved:
        [loaded] = list(io.FlowReader(saved).stream())
    assert loaded.metadata[webview.META] == f.metadata[webview.META] and loaded.marked == f.marked
    assert view(loaded).text == view(f).text and view(loaded, "response").text == view(f, "response").text


def test_a_failing_summary_never_costs_the_record(proxy: AIProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(webview, "_finish", broken)
    f = exchange(proxy, CHAT)
    answer(proxy, f, anthropic_message())
    assert f.response is not None and f.response.status_code == 200 and "25+12 tokens" in f.comment
    assert proxy.recorder is not None
    proxy.recorder.close()
    assert len(list((Path(proxy.recorder.folder)).glob("*.jsonl"))) == 1
    assert view(f).view_name == "JSON"  # no summary: the usual views


def test_native_and_preserved_flows(proxy: AIProxy) -> None:
    body = {
        "model": "claude-fake-1",
        "max_tokens": 5,
        "system": "Sys.",
        "messages": [{"role": "user", "content": "hi"}],
    }
    native = exchange(proxy, body, host="native.internal", path="/v1/messages")
    answer(proxy, native, anthropic_message())
    text, r = view(native).text, view(native, "response").text
    assert "AI proxy · rule native · anthropic/claude-fake-1\nanthropic client → anthropic · native llm/v1/chat" in text
    assert "[system]\n  Sys.\n[user]\n  hi" in text  # decoded by the anthropic client format
    assert "─── Answer ───\n(as the provider sent it" in text
    assert r.count('"text": "The sum of 1 + 1 is 2."') == 2  # the provider's answer, passed on unchanged
    embeddings = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    kept = exchange(proxy, embeddings, host="keep.internal", path="/v1/embeddings")
    answer(
        proxy,
        kept,
        {"object": "list", "data": [{"embedding": [0.5]}], "usage": {"prompt_tokens": 2, "total_tokens": 2}},
    )
    text = view(kept).text
    assert "openai client → openai · preserve\n" in text and "Tokens: 2 prompt + 0 completion = 2" in text
    assert '[embeddings input: 2 item(s)]\n  ["a", "b"]' in text
    assert '"embedding": [\n' in view(kept, "response").text
    secrets_absent(text, view(kept, "response").text, view(native).text, r)


def test_the_text_is_a_function_of_summary_and_bodies() -> None:
    summary = {
        "rule": "r", "provider": "bedrock", "model": "m-2", "request_model": "m-1", "client_model": "gpt-4o",
        "client_format": "openai", "route": "translated", "route_type": "llm/v1/chat", "stream": True,
        "status": 504, "upstream_status": None, "error": "no answer within read_timeout", "timeout": "read_timeout",
        "dropped": ["logprobs", "seed"], "latency_ms": None, "ttft_ms": None, "cost": None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "cached_tokens": 6,
                  "cache_write_tokens": 3, "reasoning_tokens": 2},
    }  # fmt: skip
    client = exchange_view.Message("POST http://x/v1/chat/completions", [("authorization", "REDACTED")], b"{}")
    text = exchange_view.request_text(summary, client, None, {"messages": []}, None)
    assert text.splitlines()[:8] == [
        "AI proxy · rule r · bedrock/m-2 (requested m-1) (client asked gpt-4o)",
        "openai client → bedrock · translated llm/v1/chat · streamed",
        "Status 504 (upstream ?) · latency ? · TTFT ?",
        "Tokens: 10 prompt + 4 completion = 14 (6 cached, 3 cache write, 2 reasoning)",
        "Cost: unknown (no price for this model)",
        "Loss report: not carried to the provider: logprobs, seed",
        "ERROR (timeout read_timeout): no answer within read_timeout",
        "",
    ]
    assert "(nothing was sent upstream: the proxy answered itself)" in text
    assert exchange_view.pretty_body(b"\xff\xfe" * 10, "audio/wav") == "[binary: audio/wav, 20 B]"
    assert exchange_view.pretty_body(None) == "(not kept)" and exchange_view.pretty_body(b"") == "(empty)"


def test_prose_is_not_taken_for_base64() -> None:
    prose = "the weather in Paris is sunny and warm " * 20  # letters and spaces only, over BASE64_MIN
    assert exchange_view.elide({"content": prose}) == {"content": prose}
    mime = "\n".join(["QUJD" * 19] * 10)  # base64 as MIME wraps it, in 76-character lines
    assert exchange_view.elide(mime) == "[base64: 570 B]"
