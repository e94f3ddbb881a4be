"""Native answers of the providers whose fakes need queued replies (the OpenAI family is answered by the fake's
defaults): Gemini, Cohere v2 and Ollama, whole and streamed, text and tool calls. Shared by the client-format
end-to-end tests."""

from __future__ import annotations

import json
from typing import Any

from tests.support.fakes import ANSWER, STREAM_PIECES, Reply, anthropic_message_start, openai_chat, sse

NDJSON = {"content-type": "application/x-ndjson"}


def gemini(parts: list[dict[str, Any]] | None = None, finish: str | None = "STOP", out: int = 12) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts or [{"text": ANSWER}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 25, "candidatesTokenCount": out, "totalTokenCount": 25 + out}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-fake-1"}


def gemini_reply(stream: bool, parts: list[dict[str, Any]] | None = None) -> Reply:
    if not stream:
        return Reply(json=gemini(parts))
    if parts is not None:
        return Reply(chunks=[b"data: " + json.dumps(gemini(parts)).encode() + b"\r\n\r\n"])
    objs = [gemini([{"text": p}], None, 4) for p in STREAM_PIECES[:-1]] + [gemini([{"text": STREAM_PIECES[-1]}])]
    return Reply(chunks=[b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objs])


COHERE_USAGE = {"tokens": {"input_tokens": 25, "output_tokens": 12}, "billed_units": {"input_tokens": 25}}


def cohere_reply(stream: bool, finish: str = "COMPLETE") -> Reply:
    if not stream:
        return Reply(
            json={
                "id": "c14c80c3",
                "finish_reason": finish,
                "message": {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
                "usage": COHERE_USAGE,
            }
        )
    events = [
        {"id": "a8fc", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
        *({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}} for p in STREAM_PIECES),
        {"type": "content-end", "index": 0},
        {"type": "message-end", "delta": {"finish_reason": finish, "usage": COHERE_USAGE}},
    ]
    return Reply(chunks=[sse(e, e["type"]) for e in events])


def ollama_reply(stream: bool) -> Reply:
    def line(message: dict[str, Any], done: bool) -> dict[str, Any]:
        extra = {"done_reason": "stop", "prompt_eval_count": 25, "eval_count": 12} if done else {}
        return {"model": "llama3.2", "created_at": "2024-08-04T08:52:19Z", "message": message, "done": done, **extra}

    if not stream:
        return Reply(json=line({"role": "assistant", "content": ANSWER}, True), headers=NDJSON)
    lines = [line({"role": "assistant", "content": p}, False) for p in STREAM_PIECES]
    lines.append(line({"role": "assistant", "content": ""}, True))
    return Reply(chunks=[json.dumps(x).encode() + b"\n" for x in lines], headers=NDJSON)


def openai_tool_calls_stream(calls: list[tuple[str, str, list[str]]], hold: Any = None) -> list[Any]:
    """An OpenAI stream of tool calls (id, name, argument pieces); `hold` (a callable) runs after the first
    argument piece, so a test can check what the client has before the stream goes on."""
    base = {"id": "chatcmpl-tools", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-fake-1"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    out: list[Any] = [chunk({"role": "assistant", "content": None})]
    for i, (call_id, name, pieces) in enumerate(calls):
        start = {"index": i, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        out.append(chunk({"tool_calls": [start]}))
        for j, piece in enumerate(pieces):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
            if hold is not None and i == 0 and j == 0:
                out.append(hold)
    out.append(chunk({}, "tool_calls"))
    usage = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}
    out.append(sse({**base, "choices": [], "usage": usage}))
    return [*out, b"data: [DONE]\n\n"]


def openai_tool_calls(calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    tool_calls = [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        for call_id, name, arguments in calls
    ]
    return {
        "id": "chatcmpl-tools",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-fake-1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": tool_calls},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
    }


def mistral_reply(stream: bool) -> Reply:
    """Mistral's OpenAI-style answer; streamed, its usage rides on the last content chunk (no stream_options)."""
    if not stream:
        return Reply(json=openai_chat(model="mistral-fake"))
    base = {"id": "cmpl-m", "object": "chat.completion.chunk", "created": 1700000000, "model": "mistral-fake"}
    usage = {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}
    events = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    for i, piece in enumerate(STREAM_PIECES):
        last = i == len(STREAM_PIECES) - 1
        chunk: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": "stop" if last else None}],
        }
        if last:
            chunk["usage"] = usage
        events.append(sse(chunk))
    return Reply(chunks=[*events, b"data: [DONE]\n\n"])


def anthropic_tool_use(calls: list[tuple[str, str, dict[str, Any]]]) -> Reply:
    """An Anthropic message that calls tools (id, name, input)."""
    content = [{"type": "tool_use", "id": i, "name": n, "input": args} for i, n, args in calls]
    body = {
        "id": "msg_tools",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 20},
    }
    return Reply(json=body)


def anthropic_tool_stream(call_id: str, name: str, pieces: list[str], hold: Any = None) -> Reply:
    """An Anthropic stream of one tool call whose input arrives in `pieces`; `hold` runs after the first piece."""
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    chunks: list[Any] = [
        anthropic_message_start("msg_tools", 40),
        sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
    ]
    for j, piece in enumerate(pieces):
        delta = {"type": "input_json_delta", "partial_json": piece}
        chunks.append(sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"))
        if hold is not None and j == 0:
            chunks.append(hold)
    end = {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}}
    chunks += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({**end, "usage": {"output_tokens": 20}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return Reply(chunks=chunks)


def chunks_of(reply: Reply) -> bytes:
    """A queued stream reply's bytes (the test's hold points left out)."""
    return b"".join(c for c in reply.chunks or () if isinstance(c, bytes))


def provider_streams() -> dict[str, tuple[Any, bytes]]:
    """Every stream-translating provider's text stream of STREAM_PIECES (25 tokens in, 12 out): provider ->
    (its ModelOptions, the upstream bytes)."""
    from addon.spec import ModelOptions
    from tests.support.fakes import anthropic_stream, openai_stream

    return {
        "openai": (ModelOptions(), b"".join(openai_stream(include_usage=True))),
        "anthropic": (ModelOptions(), b"".join(anthropic_stream())),
        "gemini": (ModelOptions(), chunks_of(gemini_reply(True))),
        "cohere": (ModelOptions(), chunks_of(cohere_reply(True))),
        "mistral": (ModelOptions(), chunks_of(mistral_reply(True))),
        "llama2": (ModelOptions(llama2_format="ollama"), chunks_of(ollama_reply(True))),
    }


def standard_answer(usage: dict[str, Any]) -> dict[str, Any]:
    """A standard (OpenAI chat) answer with reasoning, text and a tool call, what a client format encodes."""
    call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}
    message = {"role": "assistant", "content": "Let me add.", "reasoning_content": "think", "tool_calls": [call]}
    return {
        "id": "chatcmpl-1",
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": usage,
    }


TWO_CALLS = [("call_1", {"a": 1, "b": 1}), ("call_2", {"a": 2, "b": 2})]


def two_tool_calls(provider: str) -> Reply:
    """The provider's own answer calling `add` twice (TWO_CALLS), in its wire format: Gemini functionCall parts,
    Cohere v2 tool_calls, Ollama's object arguments without ids, OpenAI-style tool_calls elsewhere."""
    if provider == "gemini":
        parts = [{"functionCall": {"name": "add", "args": args}} for _, args in TWO_CALLS]
        return gemini_reply(False, parts=parts)
    if provider == "cohere":
        calls = [
            {"id": i, "type": "function", "function": {"name": "add", "arguments": json.dumps(a)}} for i, a in TWO_CALLS
        ]
        message = {"role": "assistant", "tool_plan": "I will add.", "tool_calls": calls}
        return Reply(json={"id": "c1", "finish_reason": "TOOL_CALL", "message": message, "usage": COHERE_USAGE})
    if provider == "llama2":  # Ollama: arguments as objects, no call ids
        calls = [{"function": {"name": "add", "arguments": a}} for _, a in TWO_CALLS]
        message = {"role": "assistant", "content": "", "tool_calls": calls}
        line = {"model": "llama3.2", "created_at": "2024-08-04T08:52:19Z", "message": message, "done": True,
                "done_reason": "stop", "prompt_eval_count": 25, "eval_count": 12}  # fmt: skip
        return Reply(json=line, headers=NDJSON)
    return Reply(json=openai_tool_calls([(i, "add", json.dumps(a)) for i, a in TWO_CALLS]))


def strings_in(value: Any) -> Any:
    """Every string and number (as text) in a JSON value, keys excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
