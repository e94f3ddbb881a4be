"""Seeded fuzz: Anthropic Messages bodies (Claude Code-shaped), mutated every way tests/support/fuzzing.py knows,
through the Anthropic client format to every provider set-up: each ends in a valid upstream request or a 400-class
ProxyError that Anthropic's envelope can carry, never another exception. FUZZ_SEED replays a run."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from addon import exchange, jsonutil, streaming
from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for
from addon.formats import ANTHROPIC
from addon.rules import Rule
from tests.support.fuzzing import Mutator
from tests.support.rules import CHAT, TARGETS, Target

SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
CASES = 1200
TOOL = {
    "name": "Bash",
    "description": "Run",
    "input_schema": {"type": "object", "properties": {"c": {"type": "string"}}},
}
BODIES: list[dict[str, Any]] = [
    {"max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]},
    {
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "ls"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "c2ln"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"c": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a b"}]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            },
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stream": True,
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_k": 4,
    },
]
_RULES: dict[str, Rule] = {}


@pytest.fixture(autouse=True)
def no_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(message: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"last-resort guard reached: {message % args}")

    for module in (exchange, streaming):
        monkeypatch.setattr(module.log, "debug", refuse)


def send(target: Target, data: bytes) -> None:
    if target.label not in _RULES:
        _RULES[target.label] = target.rule()
    rule = _RULES[target.label]
    call = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", data), ANTHROPIC)
    up = build_upstream(rule, call)
    body = jsonutil.dumps(up.body) if up.body is not None else b""
    provider_for(rule).sign(call, up, body)
    if up.body is not None:
        json.loads(body.decode("utf-8"))


def test_anthropic_bodies_never_crash() -> None:
    targets = [t for t in TARGETS if t.route == CHAT]
    rng = random.Random(SEED)
    mutator = Mutator(rng)
    accepted = 0
    for case in range(CASES):
        target = targets[case % len(targets)]
        base = {**rng.choice(BODIES), "model": target.name or target.client_model}
        data = mutator.body(base) if case % 10 else json.dumps(base).encode()
        try:
            send(target, data)
            accepted += 1
        except ProxyError as e:
            assert e.status in (400, 413, 415), (SEED, case, target.label, e.status, e.message)
            body, _ = ANTHROPIC.error_body(e)
            assert json.loads(body)["type"] == "error"
        except Exception as e:  # the bug this test exists to find
            pytest.fail(f"seed {SEED} case {case} target {target.label}: {type(e).__name__}: {e} body {data[:300]!r}")
    assert accepted > CASES // 10  # the mutations start from bodies the providers take
