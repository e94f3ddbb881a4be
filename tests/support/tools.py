"""Tool-call round trips shared by the providers' tool tests: the conversation (two parallel tool calls, their
results, the final answer), stream helpers (raw bytes split every way, SSE parsed, accumulated by the openai SDK's
own stream state) and the two turns of the end-to-end round trip through a real mitmdump.

Turn 1: the user asks; the provider answers, natively, with TWO parallel tool calls; the SDK's own types parse
them. Turn 2: the client sends the history back (user, assistant with both tool calls, two `tool` results); the
final answer comes back. Streamed, the `delta.tool_calls` are accumulated by the SDK's own stream helper
(`ChatCompletionStreamState`, by `index`) and must equal the non-streamed tool calls.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.support.chunks import splits as splits
from tests.support.chunks import sse_events as chunk_events
from tests.support.mitmdump import Mitmdump

QUESTION = "What is the weather in Paris and in Oslo?"
PLAN = "Let me check both cities."
FINAL = "Paris: 22C and sunny. Oslo: 9C and rainy."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    },
}
CALLS = [("get_weather", {"city": "Paris", "unit": "C"}), ("get_weather", {"city": "Oslo"})]
RESULTS = ['{"temp": 22, "sky": "sunny"}', "9C, rainy"]
USER = [{"role": "user", "content": QUESTION}]


def history(tool_calls: list[dict[str, Any]], content: str | None = PLAN) -> list[dict[str, Any]]:
    """Turn 2's messages: the question, the assistant's tool calls, one tool message per call."""
    return [
        *USER,
        {"role": "assistant", "content": content, "tool_calls": tool_calls},
        *({"role": "tool", "tool_call_id": c["id"], "content": r} for c, r in zip(tool_calls, RESULTS, strict=True)),
    ]


def openai_calls(ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"id": i, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in zip(ids, CALLS, strict=True)
    ]


def meaning(tool_calls: Any) -> list[tuple[str, Any]]:
    """Names and parsed arguments: what must be equal streamed and not."""
    out = []
    for c in tool_calls:
        fn = c["function"] if isinstance(c, dict) else c.function
        name, arguments = (fn["name"], fn["arguments"]) if isinstance(fn, dict) else (fn.name, fn.arguments)
        assert isinstance(arguments, str)  # a JSON string, as OpenAI sends it (providers.md §12)
        out.append((name, json.loads(arguments)))
    return out


# --------------------------------------------------------------------------------------------------------------
# Stream helpers: raw bytes split every way, SSE parsed, accumulated by the openai SDK's own stream state
# --------------------------------------------------------------------------------------------------------------


RANDOM_CALL_ID = re.compile(r"call_[0-9a-f]{24}")


def normalised(events: list[Any]) -> list[Any]:
    """Without the per-response id and timestamp, and synthesised tool-call ids numbered in order."""
    out = []
    ids: dict[str, str] = {}
    for e in events:
        if isinstance(e, dict):
            e = {k: v for k, v in e.items() if k not in ("id", "created")}
            text = RANDOM_CALL_ID.sub(lambda m: ids.setdefault(m[0], f"call_{len(ids)}"), json.dumps(e))
            e = json.loads(text)
        out.append(e)
    return out


def sse_events(out: bytes) -> list[Any]:
    return chunk_events(out, keep_ids=True)


def translate(translator_of: Any, pieces: list[bytes]) -> list[Any]:
    t = translator_of()
    return sse_events(b"".join(t.feed(p) for p in pieces) + t.finish())


def assert_split_invariant(translator_of: Any, data: bytes) -> list[Any]:
    reference = normalised(translate(translator_of, [data]))
    for pieces in splits(data):
        got = normalised(translate(translator_of, pieces))
        assert got == reference, f"split {[len(p) for p in pieces][:3]}"
    return translate(translator_of, [data])


def sdk_accumulate(events: list[Any]) -> ChatCompletion:
    """What `client.chat.completions.stream()` builds from the chunks: accumulation by `index`."""
    assert events[-1] == "[DONE]"
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState(input_tools=[WEATHER])
    for e in events[:-1]:
        assert "error" not in e, e
        state.handle_chunk(ChatCompletionChunk.model_validate(e))
    return state.get_final_completion()


def assert_tool_deltas_well_formed(events: list[Any], count: int) -> None:
    """OpenAI's stream shape (LiteLLM's index/id bugs): `index` counts tool calls only, from 0; each call's id,
    type and name come once, in its first delta; later deltas carry only argument fragments."""
    seen: list[int] = []
    for e in events[:-1]:
        for choice in e["choices"]:
            for tc in choice["delta"].get("tool_calls") or []:
                index = tc["index"]
                if index not in seen:
                    assert index == len(seen), f"tool-call index {index} after {seen}"
                    seen.append(index)
                    assert tc["id"] and tc["type"] == "function" and tc["function"]["name"]
                else:
                    assert set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"}, tc
    assert seen == list(range(count))


# --------------------------------------------------------------------------------------------------------------
# End to end: the openai SDK -> mitmdump -> a fake provider, the multi-turn round trip
# --------------------------------------------------------------------------------------------------------------


def client_through(proxy: Mitmdump, host: str, api_key: str = "sk-client") -> openai.OpenAI:
    """The openai SDK pointed at `http://{host}/v1` through the proxy's regular mode, without retries."""
    http = httpx.Client(proxy=f"http://127.0.0.1:{proxy.port('regular')}", trust_env=False)
    return openai.OpenAI(base_url=f"http://{host}/v1", api_key=api_key, http_client=http, max_retries=0)


def as_history(message: Any) -> list[dict[str, Any]]:
    """Turn 2's messages built from the SDK's own parsed assistant message."""
    calls = [c.model_dump(exclude_none=True) for c in message.tool_calls]
    assert len(calls) == 2 and len({c["id"] for c in calls}) == 2
    return history(calls, content=message.content)


def turn1(client: openai.OpenAI, model: str, stream: bool) -> Any:
    """The client asks; returns the SDK's assistant message (streamed: accumulated by the SDK's stream helper)."""
    if stream:
        with client.chat.completions.stream(model=model, messages=USER, tools=[WEATHER]) as s:
            completion = s.get_final_completion()
    else:
        completion = client.chat.completions.create(model=model, messages=USER, tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert all(c.id and c.type == "function" for c in choice.message.tool_calls or [])
    assert meaning(choice.message.tool_calls) == [(n, a) for n, a in CALLS]
    return choice.message


def turn2(client: openai.OpenAI, model: str, stream: bool, messages: list[dict[str, Any]]) -> str:
    if stream:
        with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER]) as s:
            completion = s.get_final_completion()
    else:
        completion = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert completion.choices[0].finish_reason == "stop"
    return completion.choices[0].message.content or ""
