"""The Chat validator's fast path (openai_validate._plainly_valid) never accepts a message that the full check
(_check_message) refuses: seeded mutations of typical messages, each judged by both."""

from __future__ import annotations

import copy
import random

import pytest

from addon import openai_validate as v
from addon.errors import ProxyError
from tests.support.fuzzing import Mutator

SEEDS = [
    {"role": "user", "content": "hello"},
    {"role": "system", "content": "be brief", "name": "policy"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": "{\"path\": \"a\"}"}},
    ]},
    {"role": "assistant", "content": "thinking done", "reasoning_content": "because"},
    {"role": "tool", "tool_call_id": "call_1", "content": "file text"},
    {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]},
]  # fmt: skip


def full_check_accepts(message: object) -> bool:
    try:
        v._check_message(message, "messages[0]")
    except ProxyError:
        return False
    return True


def test_the_typical_messages_take_the_fast_path() -> None:
    assert [v._plainly_valid(m) for m in SEEDS] == [True, True, True, True, True, False]  # parts: the full check
    assert all(full_check_accepts(m) for m in SEEDS)


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_never_accepts_what_the_full_check_refuses(seed: int) -> None:
    rng = random.Random(seed)
    mutator = Mutator(rng)
    fast = 0
    for _ in range(500):
        message = copy.deepcopy(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 3)):
            message = mutator.mutate(message)
        if v._plainly_valid(message):
            fast += 1
            assert full_check_accepts(message), message
    assert fast > 20  # the mutations leave enough messages on the fast path for the comparison to mean something
