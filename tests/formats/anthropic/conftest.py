"""The Anthropic-client e2e environment (tests/support/anthropic_sdk.py): one mitmdump per test module with a rule
per provider and its fake, the fakes reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.anthropic_sdk import PROVIDERS, Env, rules_yaml
from tests.support.fakes import FakeUpstream
from tests.support.mitmdump import Mitmdump


@pytest.fixture(scope="module")
def env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fakes = {name: FakeUpstream(name) for name in PROVIDERS}
    proxy = Mitmdump(tmp_path_factory.mktemp("e2e-anthropic-client"), rules_yaml(fakes)).start()
    try:
        yield Env(proxy, fakes)
    finally:
        proxy.stop()
        for fake in fakes.values():
            fake.close()


@pytest.fixture
def env(env_module: Env) -> Env:
    for fake in env_module.fakes.values():
        fake.reset()
    return env_module
