"""End to end: the anthropic SDK through a real mitmdump, three tool turns with thinking to fakes that sign their
reasoning and refuse a history without it (Claude on Bedrock, Gemini 3; Claude on Anthropic is the native
passthrough): the client sends every content block back as it came, and the provider gets every signature back on
turns two and three (Claude's in the thinking blocks, Gemini's in the tool_use ids), plain and streamed. Each turn
uses another client key, so the proxy's signature store (scoped by key) plays no part."""

from __future__ import annotations

import pytest

from tests.support.signed import FINAL
from tests.support.signed_clients import SignedEnv, anthropic_loop, signed_fixtures

pytestmark = pytest.mark.e2e
KEYS = ["sk-ant-turn-1", "sk-ant-turn-2", "sk-ant-turn-3"]


env_module, env = signed_fixtures("e2e-signatures-anthropic")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", ["anthropic", "bedrock", "gemini"])
def test_anthropic_clients_send_the_signatures_back_on_turns_two_and_three(
    env: SignedEnv, provider: str, stream: bool
) -> None:
    clients = env.anthropic_clients(provider, KEYS)
    assert anthropic_loop(clients, "claude-sonnet-4-5", stream) == FINAL
    first, second = env.issued(provider)
    assert env.received(provider) == [[], [first], [first, second]]
