"""Fixtures shared by the end-to-end tests: one mitmdump and the fake providers for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.e2e_env import ANTHROPIC_KEY, AZURE_KEY, OPENAI_KEY, Env, rules_yaml
from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import Mitmdump, running


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fakes = FakeUpstream("openai"), FakeUpstream("azure"), FakeUpstream("anthropic")
    with running(
        Mitmdump(
            tmp_path_factory.mktemp("e2e"),
            rules_yaml(*fakes),
            modes=[
                "regular",
                "reverse:https://api.openai.com",
                "reverse:http://azure.internal",
                "reverse:http://anthropic.internal",
            ],
            env={"E2E_OPENAI_KEY": OPENAI_KEY, "E2E_AZURE_KEY": AZURE_KEY, "E2E_ANTHROPIC_KEY": ANTHROPIC_KEY},
            # Dump every flow with headers and bodies: the secret-leak test reads this log.
            extra_args=["--set", "flow_detail=3"],
        ),
        *fakes,
    ) as proxy:
        yield Env(proxy, *fakes)


@pytest.fixture
def e(env: Env) -> Env:
    env.reset()
    return env
