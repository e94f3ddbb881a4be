"""End to end: the google-genai SDK through a real mitmdump, three tool turns with thinking to fakes that sign their
reasoning and refuse a history without it (Claude on Anthropic and on Bedrock): Gemini's format has no place for
Claude's signatures (its thought parts come back unsigned and are dropped), so the proxy's signature store puts them
back by the functionCall ids the client echoes; the provider gets every signature on turns two and three, plain and
streamed."""

from __future__ import annotations

import pytest

from addon.providers import REGISTRY
from tests.support.signed import FINAL
from tests.support.signed_clients import SignedEnv, gemini_loop, signed_fixtures

pytestmark = pytest.mark.e2e
env_module, env = signed_fixtures("e2e-signatures-gemini")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_gemini_clients_send_the_signatures_back_on_turns_two_and_three(
    env: SignedEnv, provider: str, stream: bool
) -> None:
    if "reasoning_effort" not in REGISTRY[provider].optional_fields:  # Gemini's thinkingConfig arrives as an effort
        pytest.skip(f"provider {provider} maps no reasoning_effort yet: Gemini clients get no thinking there")
    clients = env.gemini_clients(provider, ["gemini-client-key"] * 3)
    assert gemini_loop(clients, stream) == FINAL
    first, second = env.issued(provider)
    assert env.received(provider) == [[], [first], [first, second]]
