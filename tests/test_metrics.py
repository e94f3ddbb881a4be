"""The Prometheus endpoint: exchanges through the addon's hooks, then the endpoint scraped over HTTP and its text
parsed with prometheus_client's own parser, the values checked against the exchanges."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from mitmproxy import ctx, exceptions
from mitmproxy.test import tflow
from prometheus_client.parser import text_string_to_metric_families

from addon import metrics
from addon.proxy import AIProxy
from tests.support.addon import answer, exchange, running, stream_answer
from tests.support.fakes import FakeUpstream, anthropic_message, anthropic_stream
from tests.support.mitmdump import Mitmdump, free_ports

RULES = """
rules:
  - name: claude
    match: {host: anthropic.internal}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {upstream_url: "http://127.0.0.1:9/v1/messages", input_cost: 3.0, output_cost: 15.0}
    auth: {header_name: x-api-key, header_value: metrics-test-key}
  - name: claude-code
    match: {host: claude.internal}
    llm_format: anthropic
    model:
      provider: anthropic
      name: claude-fake-1
      options: {upstream_url: "http://127.0.0.1:9/v1/messages"}
    auth: {header_name: x-api-key, header_value: metrics-test-key}
"""
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
BASE = {
    "gen_ai_operation_name": "chat",
    "gen_ai_provider_name": "anthropic",
    "gen_ai_request_model": "claude-fake-1",
    "ai_proxy_rule": "claude",
    "ai_proxy_client_format": "openai",
}


@pytest.fixture
def listen() -> str:
    return f"127.0.0.1:{free_ports(1)[0]}"


@pytest.fixture
def proxy(tmp_path: Path, listen: str) -> Iterator[AIProxy]:
    with running(tmp_path, RULES, ai_metrics_listen=listen) as addon:
        yield addon


def scrape(listen: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://{listen}/metrics", trust_env=False).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({**BASE, **labels}.items())))


def test_exchanges_are_counted(proxy: AIProxy, listen: str) -> None:
    assert not [k for k in scrape(listen) if k[0].startswith("ai_proxy_requests")]  # nothing yet
    for _ in range(2):  # 25 + 12 tokens each, at $3 / $15 per million
        answer(proxy, exchange(proxy, CHAT), anthropic_message(cache_read_input_tokens=5))
    streamed = exchange(proxy, {**CHAT, "stream": True})
    stream_answer(proxy, streamed, anthropic_stream(), seconds=3.0)
    refused = exchange(proxy, CHAT)
    answer(proxy, refused, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, 429)
    timed_out = exchange(proxy, CHAT)
    proxy._expired(timed_out, proxy._exchanges[timed_out.id], "read_timeout")  # as the watchdog does
    timed_out.error = tflow.terr("connection closed")
    proxy.error(timed_out)
    other = exchange(proxy, {"model": "claude-fake-1", "max_tokens": 5, "messages": [CHAT["messages"][0]]},
                     host="claude.internal", path="/v1/messages")  # fmt: skip
    answer(proxy, other, anthropic_message())

    s = scrape(listen)
    assert value(s, "ai_proxy_requests_total", http_response_status_code="200") == 3
    assert value(s, "ai_proxy_requests_total", http_response_status_code="429") == 1
    assert value(s, "ai_proxy_requests_total", http_response_status_code="504") == 1
    assert value(s, "ai_proxy_requests_total", http_response_status_code="200", ai_proxy_rule="claude-code",
                 ai_proxy_client_format="anthropic") == 1  # fmt: skip
    # tokens: cached input (5 of the 30 prompt tokens, twice) counted apart; the stream's 25 + 12
    assert value(s, "ai_proxy_tokens_total", gen_ai_token_type="input") == 30 + 30 + 25
    assert value(s, "ai_proxy_tokens_total", gen_ai_token_type="output") == 12 * 3
    assert value(s, "ai_proxy_tokens_total", gen_ai_token_type="cached_input") == 10
    usage = {"gen_ai_response_model": "claude-fake-1", "gen_ai_token_type": "output"}
    assert value(s, "gen_ai_client_token_usage_count", **usage) == 3
    assert value(s, "gen_ai_client_token_usage_sum", **usage) == 36
    assert value(s, "gen_ai_client_token_usage_bucket", **usage, le="16.0") == 3
    assert value(s, "gen_ai_client_token_usage_bucket", **usage, le="4.0") == 0
    cost = value(s, "ai_proxy_cost_usd_total")
    assert cost == pytest.approx(2 * (30 * 3 + 12 * 15) / 1e6 + (25 * 3 + 12 * 15) / 1e6)
    # durations: 250 ms for the plain answers and the 429, 3 s for the stream; TTFT for the stream only
    ok = {"gen_ai_response_model": "claude-fake-1", "error_type": ""}
    assert value(s, "gen_ai_client_operation_duration_seconds_count", **ok) == 3
    assert value(s, "gen_ai_client_operation_duration_seconds_sum", **ok) == pytest.approx(0.25 + 0.25 + 3.0)
    assert value(s, "gen_ai_client_operation_duration_seconds_bucket", **ok, le="0.32") == 2
    ttft = {"gen_ai_response_model": "claude-fake-1"}
    assert value(s, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **ttft) == 1
    assert value(s, "gen_ai_client_operation_time_to_first_chunk_seconds_sum", **ttft) < 3.0
    # errors and timeouts
    assert value(s, "ai_proxy_errors_total", error_type="429") == 1
    assert value(s, "ai_proxy_errors_total", error_type="timeout") == 1
    assert value(s, "ai_proxy_timeouts_total", ai_proxy_timeout="read_timeout") == 1


def test_listen_option(tmp_path: Path, listen: str) -> None:
    with running(tmp_path, RULES) as proxy:
        assert proxy.telemetry.metrics is None and proxy.telemetry.otel is None  # off by default
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{listen}/metrics", trust_env=False)
        for bad in ("9464", "127.0.0.1:http", "127.0.0.1:70000", ":9464"):
            with pytest.raises(exceptions.OptionsError, match="ai_metrics_listen"):
                ctx.options.update(ai_metrics_listen=bad)
        ctx.options.update(ai_metrics_listen=listen)
        assert proxy.telemetry.metrics is not None and "ai_proxy_requests" in httpx.get(f"http://{listen}/metrics").text
        with pytest.raises(exceptions.OptionsError, match="cannot listen"):  # the port is taken (by us)
            metrics.start(listen)
        ctx.options.update(ai_metrics_listen="")
        assert proxy.telemetry.metrics is None
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{listen}/metrics", trust_env=False)


@pytest.mark.parametrize(("value", "parsed"), [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464))])
def test_parse_listen(value: str, parsed: tuple[str, int]) -> None:
    assert metrics.parse_listen(value) == parsed


def test_provider_and_operation_names() -> None:
    assert metrics.provider_name("bedrock", None) == "aws.bedrock"
    assert metrics.provider_name("gemini", "https://us-central1-aiplatform.googleapis.com/v1/x") == "gcp.vertex_ai"
    assert metrics.provider_name("gemini", "https://generativelanguage.googleapis.com/v1beta/x") == "gcp.gemini"
    assert metrics.provider_name("llama2", None) == "llama2"
    assert metrics.operation_name("llm/v1/completions") == "text_completion"
    assert metrics.error_type({"status": 200, "error": "cut off"}) == "_OTHER"


def test_exporters_are_imported_only_when_their_option_is_set(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from mitmproxy.test import taddons\n"
        "from addon.proxy import AIProxy\n"
        "p = AIProxy()\n"
        "with taddons.context(p) as t:\n"
        f"    t.configure(p, ai_rules='/nonexistent/rules.yaml', ai_recordings={str(tmp_path)!r})\n"
        "    assert 'prometheus_client' not in sys.modules\n"
        "    assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).parent.parent)


@pytest.mark.e2e
def test_mitmdump_serves_metrics(tmp_path: Path, listen: str) -> None:
    fake = FakeUpstream("anthropic")
    rules = RULES.replace("http://127.0.0.1:9", fake.url)
    proxy = Mitmdump(tmp_path, rules, extra_args=["--set", f"ai_metrics_listen={listen}"]).start()
    try:
        client = openai.OpenAI(
            base_url="http://anthropic.internal/v1", api_key="sk-x", max_retries=0,
            http_client=httpx.Client(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False),
        )  # fmt: skip
        for _ in range(3):
            client.chat.completions.create(model="claude-fake-1", messages=CHAT["messages"])
        s = scrape(listen)
        assert value(s, "ai_proxy_requests_total", http_response_status_code="200") == 3
        assert value(s, "ai_proxy_tokens_total", gen_ai_token_type="input") == 75
        assert f"Prometheus metrics on http://{listen}/metrics" in proxy.log()
    finally:
        proxy.stop()
        fake.close()
