"""End to end: what a user watching mitmweb sees — the flow's comment sums up the exchange, and the request as
it went upstream shows no credential."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import ENTRY, free_ports

pytestmark = pytest.mark.e2e
KEY = "mitmweb-test-secret-0042"


def test_mitmweb_shows_a_summary_and_no_secret(tmp_path: Path) -> None:
    fake = FakeUpstream("anthropic")
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
""")
    proxy_port, web_port = free_ports(2)
    log = tmp_path / "mitmweb.log"
    cmd = [
        str(Path(sys.executable).with_name("mitmweb")), "--no-web-open-browser", "--listen-host", "127.0.0.1",
        "-p", str(proxy_port), "--set", f"web_port={web_port}", "--set", f"confdir={tmp_path / 'conf'}",
        "-s", str(ENTRY), "--set", f"ai_rules={rules}", "--set", f"ai_recordings={tmp_path / 'rec'}",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        token = None
        for _ in range(300):
            match = re.search(r"token=([0-9a-f]+)", log.read_text(errors="replace"))
            if match and "HTTP(S) proxy listening" in log.read_text(errors="replace"):
                token = match.group(1)
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert token, log.read_text()
        http_client = httpx.Client(proxy=f"http://127.0.0.1:{proxy_port}", trust_env=False)
        client = openai.OpenAI(
            base_url="http://anthropic.internal/v1", api_key="sk-client", http_client=http_client, max_retries=0
        )
        client.chat.completions.create(model="claude-fake-1", messages=[{"role": "user", "content": "hi"}])

        flows = httpx.get(
            f"http://127.0.0.1:{web_port}/flows", headers={"Authorization": f"Bearer {token}"}, trust_env=False
        ).json()
        [flow] = flows
        assert re.fullmatch(
            r"anthropic/claude-fake-1 \[claude\] · 25\+12 tokens · \$0\.000255 · \d+ ms", flow["comment"]
        ), flow["comment"]
        headers = dict(flow["request"]["headers"])
        assert headers["x-api-key"] == "REDACTED"
        assert KEY not in str(flows) and "sk-client" not in str(flows)
        assert (flow["request"]["host"], flow["request"]["path"]) == ("127.0.0.1", "/v1/messages")
    finally:
        proc.terminate()
        proc.wait(10)
        fake.close()
