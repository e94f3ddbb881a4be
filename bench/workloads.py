"""Request bodies the benchmarks send: a short chat (983 bytes) and an agent-sized one (~200 KB: a 30 KB system
prompt, a dozen tools, a long history of tool calls and results, as a coding agent sends on every turn)."""

from __future__ import annotations

import json
from typing import Any

_WORDS = [
    "the", "proxy", "reads", "every", "request", "once", "and", "writes", "it", "once", "per", "direction",
    "while", "keeping", "records",
]  # fmt: skip


def _prose(n_bytes: int, seed: int) -> str:
    words: list[str] = []
    size = 0
    i = seed
    while size < n_bytes:
        word = _WORDS[i % len(_WORDS)]
        words.append(word)
        size += len(word) + 1
        i = i * 7 + 3
    return " ".join(words)


def _tool(i: int) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": _prose(600, i),
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "a file path"},
                    "pattern": {"type": "string", "description": "what to look for"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "flags": {"type": "array", "items": {"type": "string", "enum": ["i", "m", "s"]}},
                },
                "required": ["path"],
            },
        },
    }


def agent_messages(target_bytes: int = 200_000) -> list[dict[str, Any]]:
    """A system prompt of 30 KB, then turns of user text, assistant tool calls and tool results up to the size."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": _prose(30_000, 1)}]
    size, turn = 30_000, 0
    while size < target_bytes:
        call_id = f"call_{turn:04d}"
        result = _prose(3_000, turn + 5)
        messages += [
            {"role": "user", "content": _prose(400, turn + 2)},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": f"tool_{turn % 12}", "arguments": json.dumps({"path": f"src/f{turn}.py"})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": result},
            {"role": "assistant", "content": _prose(300, turn + 9)},
        ]
        size += 3_900
        turn += 1
    messages.append({"role": "user", "content": "Go on with the next step."})
    return messages


def agent_body(model: str, target_bytes: int = 200_000) -> bytes:
    """An OpenAI chat request of about `target_bytes` with twelve tools."""
    body = {"model": model, "messages": agent_messages(target_bytes), "tools": [_tool(i) for i in range(12)]}
    return json.dumps(body).encode()
