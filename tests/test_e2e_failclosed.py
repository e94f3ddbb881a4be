"""End to end: an exception inside the addon answers 502 and nothing reaches any host, neither the provider
nor the flow's original host."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e


def test_exception_in_translation_fails_closed(tmp_path: Path) -> None:
    origin = FakeUpstream("origin")  # where the client's request was addressed
    provider = FakeUpstream("anthropic")
    rules = f"""
rules:
  - name: local-origin
    match: {{host: 127.0.0.1, path: /v1/chat/completions}}
    model:
      provider: anthropic
      name: claude-fake-1
      options: {{upstream_url: "{provider.url}/v1/messages"}}
    auth: {{header_name: x-api-key, header_value: fake-key-for-tests}}
"""
    proxy = Mitmdump(tmp_path, rules, scripts=[Path(__file__).parent / "support" / "explode_script.py"]).start()
    try:
        http_client = httpx.Client(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False)
        client = openai.OpenAI(base_url=f"{origin.url}/v1", api_key="sk-client", http_client=http_client, max_retries=0)
        messages = [{"role": "user", "content": "hi"}]

        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="claude-fake-1", messages=messages, user="explode")
        assert info.value.status_code == 502
        assert info.value.response.json()["error"]["code"] == "proxy_error"
        assert origin.requests == [] and provider.requests == []

        # the same route still works for other requests
        out = client.chat.completions.create(model="claude-fake-1", messages=messages)
        assert out.choices[0].message.content
        assert len(provider.requests) == 1 and origin.requests == []
        assert "forced failure inside translation" in proxy.log()  # logged with its traceback
    finally:
        proxy.stop()
        origin.close()
        provider.close()
