"""Valid upstream answers and streams of every provider wire format, as plain data, for the fuzz tests.

`answer(target)` is a 2xx body the provider set-up translates; `stream(target)` is (framing, events) for a
streamed answer, where framing is "sse" (events are (event name or None, object or raw string)), "ndjson",
"array" or "eventstream" (events are (event type, object)). `frame` turns events into the wire bytes.
"""

from __future__ import annotations

import binascii
import json
import struct
from typing import Any

from tests.support.rules import CHAT, EMBEDDINGS, Target

ARGS = '{"city": "Paris"}'
OPENAI_USAGE = {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}


def openai_chat() -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}
    message = {"role": "assistant", "content": "Hi", "tool_calls": [call]}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [choice],
        "usage": OPENAI_USAGE,
    }


def openai_completion() -> dict[str, Any]:
    choice = {"index": 0, "text": "Hi", "logprobs": None, "finish_reason": "stop"}
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [choice],
        "usage": OPENAI_USAGE,
    }


def openai_stream(chat: bool) -> list[tuple[str | None, Any]]:
    head = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": 1,
        "model": "m",
    }
    if chat:
        tool = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        deltas = [
            {"role": "assistant", "content": ""},
            {"content": "Hi"},
            {"tool_calls": [tool]},
            {"tool_calls": [{"index": 0, "function": {"arguments": ARGS}}]},
        ]
        choices = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        choices.append({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
    else:
        choices = [{"index": 0, "text": "Hi", "finish_reason": None}, {"index": 0, "text": "", "finish_reason": "stop"}]
    events: list[tuple[str | None, Any]] = [(None, {**head, "choices": [c]}) for c in choices]
    events.append((None, {**head, "choices": [], "usage": OPENAI_USAGE}))
    return [*events, (None, "[DONE]")]


def openai_embeddings() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}],
        "model": "m",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }


ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-fake",
    "content": [
        {"type": "thinking", "thinking": "hm"},
        {"type": "text", "text": "Hi"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 1},
}
ANTHROPIC_STREAM: list[tuple[str | None, Any]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude-fake",
                "content": [],
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
    ),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ARGS}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
    ("message_stop", {"type": "message_stop"}),
]
ANTHROPIC_LEGACY = {"type": "completion", "id": "c1", "completion": "Hi", "stop_reason": "stop_sequence", "model": "c"}
ANTHROPIC_LEGACY_STREAM: list[tuple[str | None, Any]] = [
    ("completion", {"type": "completion", "completion": "Hi", "stop_reason": None}),
    ("completion", {"type": "completion", "completion": "!", "stop_reason": "stop_sequence"}),
]

COHERE_USAGE = {
    "billed_units": {"input_tokens": 5, "output_tokens": 3},
    "tokens": {"input_tokens": 9, "output_tokens": 3},
}
COHERE_V2 = {
    "id": "c1",
    "finish_reason": "TOOL_CALL",
    "usage": COHERE_USAGE,
    "message": {
        "role": "assistant",
        "content": [{"type": "text", "text": "Hi"}, {"type": "thinking", "thinking": "hm"}],
        "tool_plan": "I will look.",
        "tool_calls": [{"id": "tc_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}],
    },
}
COHERE_V2_STREAM: list[tuple[str | None, Any]] = [
    ("message-start", {"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant"}}}),
    (
        "content-start",
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
    ),
    ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hi"}}}}),
    ("content-end", {"type": "content-end", "index": 0}),
    ("tool-plan-delta", {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}}),
    (
        "tool-call-start",
        {
            "type": "tool-call-start",
            "index": 0,
            "delta": {
                "message": {
                    "tool_calls": {
                        "id": "tc_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                }
            },
        },
    ),
    (
        "tool-call-delta",
        {
            "type": "tool-call-delta",
            "index": 0,
            "delta": {"message": {"tool_calls": {"function": {"arguments": ARGS}}}},
        },
    ),
    ("tool-call-end", {"type": "tool-call-end", "index": 0}),
    ("message-end", {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": COHERE_USAGE}}),
]
_V1_META = {"billed_units": {"input_tokens": 5, "output_tokens": 3}}
COHERE_V1_CHAT = {
    "text": "Hi",
    "generation_id": "g1",
    "finish_reason": "COMPLETE",
    "meta": _V1_META,
    "tool_calls": [{"name": "get_weather", "parameters": {"city": "Paris"}}],
}
COHERE_V1_STREAM = [
    {"event_type": "stream-start", "generation_id": "g1", "is_finished": False},
    {"event_type": "text-generation", "text": "Hi", "is_finished": False},
    {
        "event_type": "stream-end",
        "finish_reason": "COMPLETE",
        "is_finished": True,
        "response": {"text": "Hi", "generation_id": "g1", "meta": _V1_META},
    },
]
COHERE_GENERATE = {
    "id": "g1",
    "generations": [{"id": "g", "text": "Hi", "finish_reason": "COMPLETE"}],
    "meta": _V1_META,
}
COHERE_GENERATE_STREAM = [
    {"text": "Hi", "is_finished": False},
    {"is_finished": True, "finish_reason": "COMPLETE", "response": COHERE_GENERATE},
]

GEMINI_ANSWER = {
    "candidates": [
        {
            "index": 0,
            "finishReason": "STOP",
            "content": {
                "role": "model",
                "parts": [
                    {"text": "hm", "thought": True},
                    {"text": "Hi"},
                    {"functionCall": {"name": "get_weather", "args": {"a": 1}}},
                ],
            },
        }
    ],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    "modelVersion": "gemini-fake",
}
GEMINI_CHUNKS = [
    {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": "Hi"}]}}], "modelVersion": "g"},
    {
        "candidates": [
            {
                "index": 0,
                "content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    },
]

BEDROCK_CONVERSE = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "s"}}},
                {"text": "Hi"},
                {"toolUse": {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
}
BEDROCK_STREAM: list[tuple[str | None, Any]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "f"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ARGS}}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}, "metrics": {"latencyMs": 1}}),
]

TGI_DETAILS = {"finish_reason": "eos_token", "generated_tokens": 2, "input_length": 3, "prefill": []}
TGI_ANSWER = {"generated_text": "Hi", "details": TGI_DETAILS}
TGI_STREAM: list[tuple[str | None, Any]] = [
    (None, {"token": {"id": 1, "text": "H", "special": False}, "generated_text": None, "details": None}),
    (None, {"token": {"id": 2, "text": "i", "special": False}, "generated_text": "Hi", "details": TGI_DETAILS}),
]
OLLAMA_CHAT = {
    "model": "m",
    "message": {
        "role": "assistant",
        "content": "Hi",
        "thinking": "hm",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    },
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 3,
    "eval_count": 2,
}
OLLAMA_GENERATE = {
    "model": "m",
    "response": "Hi",
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 3,
    "eval_count": 2,
}


def _ollama_stream(chat: bool) -> list[Any]:
    if chat:
        first = {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": False}
        last = {**OLLAMA_CHAT, "message": {**OLLAMA_CHAT["message"], "content": ""}}
        return [first, last]
    return [{"model": "m", "response": "Hi", "done": False}, {**OLLAMA_GENERATE, "response": ""}]


def _openai_shaped(t: Target) -> bool:
    return (
        t.provider in ("openai", "azure")
        or t.label in ("llama2-openai", "huggingface-openai")
        or (t.provider == "mistral" and "ollama" not in t.label)
        or (t.provider == "huggingface" and t.route == CHAT)
    )


def answer(t: Target) -> Any:
    """A valid 2xx body for the target's route."""
    if t.route == EMBEDDINGS:
        return _embeddings_answer(t)
    if _openai_shaped(t):  # Mistral serves completions from its chat (or chat-shaped FIM) endpoint
        return openai_chat() if t.route == CHAT or t.provider == "mistral" else openai_completion()
    if t.label == "anthropic-legacy":
        return ANTHROPIC_LEGACY
    if t.provider == "anthropic":
        return ANTHROPIC_MESSAGE
    if t.provider == "cohere":
        return COHERE_V2 if t.label == "cohere-v2" else COHERE_V1_CHAT if t.route == CHAT else COHERE_GENERATE
    if "ollama" in t.label:
        return OLLAMA_CHAT if t.route == CHAT else OLLAMA_GENERATE
    if t.provider == "gemini":
        return GEMINI_ANSWER
    if t.provider == "bedrock":
        return BEDROCK_CONVERSE
    return [TGI_ANSWER] if t.provider == "huggingface" else TGI_ANSWER


def _embeddings_answer(t: Target) -> Any:
    if t.label == "cohere-v2":
        return {"id": "e", "embeddings": {"float": [[0.25, -0.5]]}, "meta": {"billed_units": {"input_tokens": 2}}}
    if t.label == "cohere-v1" or t.label == "bedrock-cohere":
        return {"id": "e", "embeddings": [[0.25, -0.5]], "meta": {"billed_units": {"input_tokens": 2}}}
    if "ollama" in t.label:
        return {"model": "m", "embeddings": [[0.25, -0.5]], "prompt_eval_count": 2}
    if t.provider == "gemini":
        return {"embeddings": [{"values": [0.25, -0.5]}]}
    if t.label == "bedrock-titan":
        return {"embedding": [0.25, -0.5], "inputTextTokenCount": 2}
    if t.label == "huggingface-tei":
        return [[0.25, -0.5]]
    return openai_embeddings()


def stream(t: Target) -> tuple[str, list[Any]]:
    """(framing, events) of a valid streamed answer for a chat or completions target."""
    chat = t.route == CHAT
    if _openai_shaped(t):
        return "sse", openai_stream(chat or t.provider == "mistral")
    if t.label == "anthropic-legacy":
        return "sse", ANTHROPIC_LEGACY_STREAM
    if t.provider == "anthropic":
        return "sse", ANTHROPIC_STREAM
    if t.label == "cohere-v2":
        return "sse", COHERE_V2_STREAM
    if t.provider == "cohere":
        return "ndjson", COHERE_V1_STREAM if chat else COHERE_GENERATE_STREAM
    if "ollama" in t.label:
        return "ndjson", _ollama_stream(chat)
    if t.provider == "gemini":
        return "sse", [(None, c) for c in GEMINI_CHUNKS]
    if t.provider == "bedrock":
        return "eventstream", BEDROCK_STREAM
    return "sse", TGI_STREAM


def frame(framing: str, events: list[Any]) -> bytes:
    """The wire bytes of a stream's events."""
    if framing == "sse":
        return b"".join(
            (f"event: {name}\n" if name else "").encode() + b"data: " + _raw(data) + b"\n\n" for name, data in events
        )
    if framing == "ndjson":
        return b"".join(_raw(e) + b"\n" for e in events)
    if framing == "array":
        return b"[" + b",\n".join(_raw(e) for e in events) + b"]"
    return b"".join(eventstream_frame(kind, _raw(body)) for kind, body in events)


def _raw(data: Any) -> bytes:
    """An event's payload: bytes as they are (a fuzzer's), a string as the SSE data ([DONE]), else JSON."""
    if isinstance(data, bytes):
        return data
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def eventstream_frame(kind: str, payload: bytes, message_type: str = "event") -> bytes:
    """One AWS eventstream message with string headers and valid CRCs."""
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": message_type}
    raw = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 16 + len(raw) + len(payload), len(raw))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw + payload
    return message + struct.pack(">I", binascii.crc32(message))
