"""End to end: the openai SDK's Responses API through a real mitmdump, three tool turns with reasoning to fakes that
sign their reasoning and refuse a history without it (Claude on Anthropic and on Bedrock, Gemini 3): the provider
gets every signature back on turns two and three, whether the client replays the items (the signed reasoning rides
in the reasoning items' encrypted_content, Gemini's in the call ids) or chains them by previous_response_id (the
proxy's conversation store keeps those items), plain and streamed. Each turn uses another client key, so the
proxy's signature store (scoped by key) plays no part."""

from __future__ import annotations

import pytest

from tests.support.signed import FINAL
from tests.support.signed_clients import SignedEnv, responses_loop, signed_fixtures

pytestmark = pytest.mark.e2e
KEYS = ["sk-responses-turn-1", "sk-responses-turn-2", "sk-responses-turn-3"]


env_module, env = signed_fixtures("e2e-signatures-responses")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("chained", [False, True], ids=["replayed", "previous_response_id"])
@pytest.mark.parametrize("provider", ["anthropic", "bedrock", "gemini"])
def test_responses_clients_send_the_signatures_back_on_turns_two_and_three(
    env: SignedEnv, provider: str, chained: bool, stream: bool
) -> None:
    clients = env.openai_clients(provider, "responses", KEYS)
    assert responses_loop(clients, "gpt-5", stream, chained) == FINAL
    first, second = env.issued(provider)
    assert env.received(provider) == [[], [first], [first, second]]
