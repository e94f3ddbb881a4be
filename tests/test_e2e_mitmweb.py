"""End to end: what a user watching mitmweb sees — the flow's comment sums up the exchange, the request as it went
upstream shows no credential, and the "AI Exchange" view (read through mitmweb's own HTTP API, as the UI reads it)
shows both sides of the translation."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import browser, mitmweb
from tests.support.fakes import FakeUpstream
from tests.support.views import sides

pytestmark = pytest.mark.e2e
KEY = "mitmweb-test-secret-0042"


def claude_rules(tmp_path: Path, fake: FakeUpstream, extra: str = "") -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""
rules:
  - name: claude
    match: {{host: anthropic.internal, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{fake.url}/v1/messages", input_cost: 3.0, output_cost: 15.0}}
    auth: {{header_name: x-api-key, header_value: {KEY}}}
{extra}""")
    return rules


def test_mitmweb_shows_a_summary_and_no_secret(tmp_path: Path) -> None:
    fake = FakeUpstream("anthropic")
    rules = claude_rules(tmp_path, fake)
    with mitmweb.running(tmp_path, rules) as web:
        http_client = httpx.Client(proxy=web.proxy_url, trust_env=False)
        client = openai.OpenAI(
            base_url="http://anthropic.internal/v1", api_key="sk-client", http_client=http_client, max_retries=0
        )
        client.chat.completions.create(model="claude-fake-1", messages=[{"role": "user", "content": "hi"}])

        flows = web.api("/flows")
        [flow] = flows
        assert re.fullmatch(
            r"anthropic/claude-fake-1 \[claude\] · 25\+12 tokens · \$0\.000255 · \d+ ms", flow["comment"]
        ), flow["comment"]
        headers = dict(flow["request"]["headers"])
        assert headers["x-api-key"] == "REDACTED"
        assert KEY not in str(flows) and "sk-client" not in str(flows)
        assert (flow["request"]["host"], flow["request"]["path"]) == ("127.0.0.1", "/v1/messages")
    fake.close()


def test_mitmweb_ai_exchange_view(tmp_path: Path) -> None:
    fake = FakeUpstream("anthropic")
    rules = claude_rules(tmp_path, fake, "    logging: {log_payloads: true}\n")
    try:
        with mitmweb.running(tmp_path, rules) as web:
            http_client = httpx.Client(proxy=web.proxy_url, trust_env=False)
            client = openai.OpenAI(
                base_url="http://anthropic.internal/v1", api_key="sk-client", http_client=http_client, max_retries=0
            )
            messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 1 + 1?"}]
            client.chat.completions.create(model="claude-fake-1", messages=messages)
            stream = client.chat.completions.create(model="claude-fake-1", messages=messages, stream=True)
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            httpx.get("http://example.invalid/", proxy=web.proxy_url, trust_env=False)  # not handled: a 502

            plain, streamed_flow, other = web.api("/flows")
            views = {v.lower() for v in web.api("/state")["contentViews"]}
            assert "ai exchange" in views

            request = web.content_view(plain["id"], "request")  # "auto": the default view
            assert request["view_name"] == "AI Exchange"
            text = request["text"]
            assert (
                "AI proxy · rule claude · anthropic/claude-fake-1\nopenai client → anthropic · translated llm/v1/chat"
                in text
            )
            assert "[system]\n  Be terse.\n[user]\n  What is 1 + 1?" in text
            assert "─── Answer ───\n[assistant]\n  The sum of 1 + 1 is 2.\n  finish: stop" in text
            assert "Tokens: 25 prompt + 12 completion = 37" in text and "Cost: $0.000255" in text
            client_sent, sent_upstream, titles = sides(text, "Requests")  # side by side
            assert re.fullmatch(r"client sent \(openai\) +│ sent upstream \(anthropic\)", titles)
            assert client_sent[0] == "POST http://anthropic.internal/v1/chat/completions"
            assert sent_upstream[0] == f"POST {fake.url}/v1/messages"
            assert "authorization: REDACTED" in client_sent and "x-api-key: REDACTED" in sent_upstream
            response = web.content_view(plain["id"], "response", "AI Exchange")  # chosen by name
            provider, received, _ = sides(response["text"], "Answers")
            assert '  "stop_reason": "end_turn",' in provider and '  "object": "chat.completion",' in received

            text = web.content_view(streamed_flow["id"], "request")["text"]
            assert streamed == "The sum of 1 + 1 is 2."
            assert "· streamed" in text and re.search(r"TTFT [\d.]+ ms", text)
            assert "─── Answer ───\n[assistant]\n  The sum of 1 + 1 is 2." in text
            # mitmproxy keeps no body of a stream: the proxy's stand-in lets mitmweb show the view there too
            assert streamed_flow["response"]["contentLength"] > 0
            streamed_response = web.content_view(streamed_flow["id"], "response")
            assert streamed_response["view_name"] == "AI Exchange", streamed_response
            provider, received, _ = sides(streamed_response["text"], "Answers")
            assert provider[0] == "HTTP 200 (streamed: its events are not kept)"
            assert received[0] == "HTTP 200 (streamed: assembled here)"
            assert '        "content": "The sum of 1 + 1 is 2."' in received
            raw = web.content_view(streamed_flow["id"], "response", "Raw")["text"]
            assert raw.startswith("[AI proxy] A streamed response:") and "  The sum of 1 + 1 is 2." in raw

            assert web.content_view(other["id"], "request")["view_name"] != "AI Exchange"
            everything = str(web.api("/flows")) + text + request["text"] + response["text"] + raw
            assert KEY not in everything and "sk-client" not in everything
    finally:
        fake.close()


def one_exchange_in_mitmweb(web: mitmweb.Mitmweb) -> dict:
    """A system prompt and a question through the proxy; the flow as mitmweb's API lists it."""
    http_client = httpx.Client(proxy=web.proxy_url, trust_env=False)
    client = openai.OpenAI(
        base_url="http://anthropic.internal/v1", api_key="sk-client", http_client=http_client, max_retries=0
    )
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 1 + 1?"}]
    client.chat.completions.create(model="claude-fake-1", messages=messages)
    [flow] = web.api("/flows")
    return flow


@pytest.mark.skipif(browser.chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_view_in_a_real_browser(tmp_path: Path) -> None:
    fake = FakeUpstream("anthropic")
    rules = claude_rules(tmp_path, fake, "    logging: {log_payloads: true}\n")
    try:
        with mitmweb.running(tmp_path, rules) as web:
            flow = one_exchange_in_mitmweb(web)
            page = web.page(f"/flows/{flow['id']}/request")
            rendered = browser.dom(page)
            for text in (
                "AI Exchange",
                "─── Conversation ───",
                "Be terse.",
                "What is 1 + 1?",
                "The sum of 1 + 1 is 2.",
                "client sent (openai)",
                "sent upstream (anthropic)",
            ):
                assert text in rendered, text
            shot = browser.screenshot(page, tmp_path / "mitmweb.png", 1960, 2000)  # the detail pane: half of it
        text = browser.ocr(shot)
        if text is None:
            pytest.skip(
                "the page rendered the view; no tesseract to read the screenshot back (apt-get install tesseract-ocr)"
            )
        for seen in (
            "Conversation",
            "Be terse.",
            "Tokens: 25 prompt + 12 completion = 37",
            "REDACTED",
            "client sent (openai)",  # the two requests side by side: their titles and first lines on one row
            "sent upstream (anthropic)",
            "POST http://anthropic.internal/v1/chat/completions",
        ):
            assert seen.replace(" ", "") in text.replace(" ", ""), (seen, text)  # OCR adds a space here and there
    finally:
        fake.close()
