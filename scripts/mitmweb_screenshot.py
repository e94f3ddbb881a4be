"""Generate the README's screenshot of the "AI Exchange" view: a real mitmweb with the addon, one exchange from the
openai SDK through it to a fake Anthropic server on 127.0.0.1, and the flow opened in headless Chromium.

    .venv/bin/python scripts/mitmweb_screenshot.py [docs/mitmweb-ai-exchange.png]

Needs Chromium (Debian: apt-get install chromium). Nothing leaves the machine."""

from __future__ import annotations

import base64
import sys
import tempfile
from pathlib import Path

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import browser, mitmweb  # noqa: E402
from tests.support.fakes import FakeUpstream, Reply, anthropic_message  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "mitmweb-ai-exchange.png"
IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(14 * 1024)).decode()


def main(out: Path) -> None:
    if browser.chromium() is None:
        raise SystemExit("no Chromium installed (Debian: apt-get install chromium)")
    fake = FakeUpstream("anthropic")
    fake.queue(Reply(json=anthropic_message("A blank 1x1 PNG. Paris: sunny, 21 °C.")))
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(f"""
rules:
  - name: claude
    match: {{host: anthropic.internal}}
    model:
      provider: anthropic
      name: claude-sonnet-4-5
      options: {{upstream_url: "{fake.url}/v1/messages", input_cost: 3.0, output_cost: 15.0}}
    auth: {{header_name: x-api-key, header_value: fake-provider-key}}
""")
        with mitmweb.running(Path(tmp), rules) as web:
            client = openai.OpenAI(
                base_url="http://anthropic.internal/v1", api_key="sk-client-key", max_retries=0,
                http_client=httpx.Client(proxy=web.proxy_url, trust_env=False),
            )  # fmt: skip
            client.chat.completions.create(
                model="claude-sonnet-4-5",
                max_tokens=200,
                messages=[
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is in this picture, and what is the weather in Paris?"},
                        {"type": "image_url", "image_url": {"url": IMAGE}},
                    ]},
                    {"role": "assistant", "content": None, "tool_calls": [{
                        "id": "call_1", "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
                ],
                tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            )  # fmt: skip
            [flow] = web.api("/flows")
            browser.screenshot(web.page(f"/flows/{flow['id']}/request"), out, 1960, 2000)
    fake.close()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
