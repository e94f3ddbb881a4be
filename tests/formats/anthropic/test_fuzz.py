"""Seeded fuzz: Anthropic Messages bodies (Claude Code-shaped), mutated every way tests/support/fuzzing.py knows,
through the Anthropic client format to every provider set-up: each ends in a valid upstream request or a 400-class
ProxyError that Anthropic's envelope can carry, never another exception. FUZZ_SEED replays a run."""

from __future__ import annotations

import json
import os
from typing import Any

from addon.errors import ProxyError
from addon.formats import ANTHROPIC
from tests.support import format_fuzz
from tests.support.format_fuzz import no_last_resort  # noqa: F401 (an autouse fixture)

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


def check(e: ProxyError, body: bytes) -> None:
    assert json.loads(body)["type"] == "error"


def test_anthropic_bodies_never_crash() -> None:
    accepted = format_fuzz.run(ANTHROPIC, BODIES, SEED, CASES, "", check)
    assert accepted > CASES // 10  # the mutations start from bodies the providers take
