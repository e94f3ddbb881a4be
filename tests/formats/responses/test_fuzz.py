"""Seeded fuzz: Responses bodies (Codex- and Agents SDK-shaped), mutated every way tests/support/fuzzing.py knows,
through the Responses client format to every provider set-up: each ends in a valid upstream request or a 400-class
ProxyError naming the field, never another exception. FUZZ_SEED replays a run."""

from __future__ import annotations

import json
import os
from typing import Any

from addon.errors import ProxyError
from addon.formats import RESPONSES
from tests.support import format_fuzz
from tests.support.format_fuzz import no_last_resort  # noqa: F401 (an autouse fixture)

SEED = int(os.environ.get("FUZZ_SEED", "20261212"))
CASES = 1200
SHELL = {
    "type": "function",
    "name": "shell",
    "description": "Run a command",
    "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}},
    "strict": False,
}
BODIES: list[dict[str, Any]] = [
    {"input": "Hi"},
    {
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: on"}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "ls"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}],
             "encrypted_content": "b3BhcXVl"},
            {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a b"},
            {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
        ],
        "tools": [SHELL, {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark",
                                                                             "definition": "start: /.+/"}}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "k",
        "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}, "verbosity": "low"},
        "max_output_tokens": 4000,
        "temperature": 0.5,
        "metadata": {"a": "b"},
    },
]  # fmt: skip


def check(err: ProxyError, body: bytes) -> None:
    """A 400 names the field (a body that is not JSON, or not an object, has none to name)."""
    assert err.status != 400 or err.param or "JSON" in err.message or "body" in err.message, err.message
    assert json.loads(body)["error"]["message"] == err.message


def test_responses_bodies_never_crash() -> None:
    accepted = format_fuzz.run(RESPONSES, BODIES, SEED, CASES, "/v1/responses", check)
    assert accepted > CASES // 10  # the mutations start from bodies the providers take


def test_any_sequence_of_writer_calls_gives_events_the_sdk_accepts() -> None:
    """Provider translators may call the writer in any order (text after tools, reasoning between, a tool index
    started twice, arguments for an unknown index, an error at any point): every event still validates against the
    SDK's types, sequence numbers count up, and a completed stream accumulates into the same output."""
    import random

    from addon.errors import ProxyError as Err
    from addon.formats.responses.stream import ResponsesWriter
    from tests.formats.responses.test_translation import accumulate, events_of

    rng = random.Random(SEED)
    for case in range(300):
        writer = ResponsesWriter("llm/v1/chat", "m", True, case % 2 == 0)
        writer.custom_tools = frozenset({"patch"})
        out = b""
        for _ in range(rng.randint(0, 12)):
            step = rng.randrange(5)
            index = rng.randrange(3)
            if step == 0:
                out += writer.text(rng.choice(["a", "", "é\\n", '"q"']))
            elif step == 1:
                out += writer.reasoning(rng.choice(["think", ""]))
            elif step == 2:
                out += writer.tool_call_start(index, rng.choice(["", f"call_{index}"]), rng.choice(["f", "patch"]))
            else:
                out += writer.tool_call_arguments(index, rng.choice(['{"input": "x', '"}', "{}", "", "\\\\u00"]))
        if rng.random() < 0.2:
            out += writer.error(Err(502, "broken"))
            assert [e.type for e in events_of(out)][-2:] == ["error", "response.failed"], case
            continue
        out += writer.finish(rng.choice(["stop", "length", "tool_calls", None]), None)
        events = events_of(out)
        if events[-1].type == "response.completed":
            final = accumulate(out)
            assert [o.type for o in final.output] == [o.type for o in events[-1].response.output], case
