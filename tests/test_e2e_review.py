"""End to end review tests: credentials never in mitmdump's output, the envelope and a record when the upstream
is unreachable."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.fakes import FakeUpstream, Reply, openai_chat, sse
from tests.support.mitmdump import Mitmdump, free_ports

pytestmark = pytest.mark.e2e

HEADER_KEY = "review-header-secret-4711"
PARAM_KEY = "review-param-secret-4712"
CLIENT_KEY = "sk-review-client-key-4713"


def test_unreachable_upstream_envelope_record_and_no_secret_in_output(tmp_path: Path) -> None:
    (dead_port,) = free_ports(1)  # nothing listens there
    rules = f"""
rules:
  - name: dead
    match: {{host: dead.internal, path: /v1/chat/completions}}
    model:
      provider: openai
      name: gpt-fake-1
      options: {{upstream_url: "http://127.0.0.1:{dead_port}"}}
    auth: {{header_name: x-api-key, header_value: {HEADER_KEY}, param_name: key, param_value: {PARAM_KEY},
            param_location: query}}
    logging: {{log_payloads: true}}
"""
    proxy = Mitmdump(tmp_path, rules, extra_args=["--set", "flow_detail=3"]).start()
    try:
        http_client = httpx.Client(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False)
        client = openai.OpenAI(
            base_url="http://dead.internal/v1", api_key=CLIENT_KEY, http_client=http_client, max_retries=0
        )
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gpt-fake-1", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 502  # mitmproxy's own page: see the report (no hook can replace it)
        records = proxy.wait_records(1)
    finally:
        proxy.stop()
    assert len(records) == 1 and records[0]["meta"]["status"] == 502 and records[0]["meta"]["error"]
    out = proxy.log()
    for secret in (HEADER_KEY, PARAM_KEY, CLIENT_KEY):
        assert secret not in out, f"{secret} printed by mitmdump:\n{out}"


def test_client_disconnect_mid_stream_and_shutdown_leave_one_record_each(tmp_path: Path) -> None:
    provider = FakeUpstream("openai")
    release = threading.Event()
    first = sse(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-fake-1",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hel"}, "finish_reason": None}],
        }
    )
    provider.queue(Reply(chunks=[first, lambda: release.wait(10), first]))
    rules = f"""
rules:
  - name: live
    match: {{host: live.internal, path: /v1/chat/completions}}
    model: {{provider: openai, name: gpt-fake-1, options: {{upstream_url: "{provider.url}"}}}}
    auth: {{header_name: authorization, header_value: "Bearer {HEADER_KEY}"}}
    logging: {{log_payloads: true}}
"""
    proxy = Mitmdump(tmp_path, rules).start()
    try:
        with httpx.Client(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False) as http_client:
            body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
            with http_client.stream("POST", "http://live.internal/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                assert b"hel" in next(response.iter_raw())
            # the client hung up before the end
        records = proxy.wait_records(1)
        release.set()
        assert len(records) == 1, records
        assert records[0]["meta"]["error"]
        # a plain exchange just before shutdown is on disk after it
        provider.queue(Reply(json=openai_chat()))
        with httpx.Client(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False) as http_client:
            out = http_client.post("http://live.internal/v1/chat/completions", json={**body, "stream": False})
            assert out.status_code == 200
    finally:
        release.set()
        proxy.stop()
        provider.close()
    records = proxy.records()
    assert len(records) == 2 and records[1]["meta"]["status"] == 200
    assert HEADER_KEY not in proxy.log()
