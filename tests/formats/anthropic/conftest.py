"""The Anthropic-client e2e environment (tests/support/anthropic_sdk.py): one mitmdump per test module with a rule
per provider and its fake (`env`), or the Bedrock rule and the fake Bedrock (`bedrock_env`); fakes reset before each
test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import format_e2e
from tests.support.anthropic_bedrock import KEY_ID, REGION, SECRET
from tests.support.anthropic_bedrock import Env as BedrockEnv
from tests.support.anthropic_bedrock import rules_yaml as bedrock_rules
from tests.support.anthropic_sdk import CLIENT_KEY, PROVIDERS, Env, rules_yaml
from tests.support.bedrock import bedrock_behind_proxy

env_module, env = format_e2e.fixtures(Env, PROVIDERS, rules_yaml, CLIENT_KEY, "e2e-anthropic-client")


@pytest.fixture(scope="module")
def bedrock_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedrockEnv]:
    workdir = tmp_path_factory.mktemp("e2e-anthropic-bedrock")
    env = {"E2E_AWS_KEY_ID": KEY_ID, "E2E_AWS_SECRET": SECRET}
    with bedrock_behind_proxy(workdir, {KEY_ID: SECRET}, REGION, bedrock_rules, env) as (proxy, fake):
        yield BedrockEnv(proxy, fake)


@pytest.fixture
def bedrock_env(bedrock_module: BedrockEnv) -> BedrockEnv:
    bedrock_module.fake.reset()
    return bedrock_module
