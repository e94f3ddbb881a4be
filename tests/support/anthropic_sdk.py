"""The real anthropic SDK as an end-to-end client of a mitmdump under test (plain HTTP virtual hosts through the
proxy; the SDK here builds on httpx2, hence its own DefaultHttpxClient)."""

from __future__ import annotations

import anthropic

from tests.support.mitmdump import Mitmdump

CLIENT_KEY = "sk-ant-client-key-must-not-travel"


def anthropic_client(proxy: Mitmdump, host: str, api_key: str = CLIENT_KEY) -> anthropic.Anthropic:
    """An anthropic client of `http://{host}` through the proxy's regular mode, without retries."""
    http = anthropic.DefaultHttpxClient(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False)
    return anthropic.Anthropic(base_url=f"http://{host}", api_key=api_key, http_client=http, max_retries=0)
