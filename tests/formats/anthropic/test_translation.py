"""The Anthropic client format, pure: requests decoded into the standard request (and refused naming the field),
answers encoded as Anthropic messages, and every provider's stream written as Anthropic events — split at every
byte offset, accumulated by the anthropic SDK's own accumulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event

from addon.errors import ProxyError
from addon.formats import ANTHROPIC
from addon.formats.anthropic import count_tokens, errors
from addon.formats.anthropic.request import effort_for_budget
from addon.providers import REGISTRY, Call
from addon.spec import ModelOptions
from addon.stream_bridge import client_translator
from addon.streams import SSEDecoder
from tests.support import replies
from tests.support.bedrock import converse_answer
from tests.support.fakes import STREAM_PIECES, anthropic_stream, openai_stream

CHAT = "llm/v1/chat"
EPHEMERAL = {"type": "ephemeral"}


def decode(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    dropped: list[str] = []
    return ANTHROPIC.decode(CHAT, "/v1/messages", {"model": "claude-x", "max_tokens": 10, **body}, dropped), dropped


def test_a_conversation_with_tools_maps_turn_by_turn() -> None:
    std, dropped = decode(
        {
            "system": [
                {"type": "text", "text": "A"},
                {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
            ],
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "and then"},
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": True},
                    ],
                },
            ],
            "tool_choice": {"type": "tool", "name": "f"},
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "stop_sequences": ["Z"],
            "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 20000},
            "unknown_field": 1,
        }
    )
    assert std["messages"] == [
        {
            "role": "system",  # blocks kept for the cache breakpoint (standard extension); joined, the same text
            "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "\n\nB", "cache_control": EPHEMERAL}],
        },
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}],
            "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],  # the extension
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},  # tool results first, as OpenAI wants
        {"role": "user", "content": "and then"},
    ]
    assert std["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert std["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert (std["stop"], std["top_k"], std["reasoning_effort"]) == (["Z"], 5, "high")
    assert dropped == ["tool_result.is_error", "unknown_field"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0].type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": ""}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "messages[0].content[0]"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"temperature": 1.5}, "temperature"),
        ({"model": "a\r\nb"}, "model"),
        ({"thinking": {"type": "enabled", "budget_tokens": -1}}, "thinking.budget_tokens"),
    ],
)
def test_malformed_requests_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    full = {"messages": [{"role": "user", "content": "hi"}], **body}
    with pytest.raises(ProxyError) as e:
        decode(full)
    assert e.value.status == 400 and e.value.param == param


def test_effort_for_budget() -> None:
    assert [effort_for_budget(b) for b in (None, 1024, 4096, 10000, 16384, 32000)] == [
        "medium", "low", "low", "medium", "medium", "high",
    ]  # fmt: skip


def test_structured_outputs_are_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    config = {"format": {"type": "json_schema", "schema": schema}, "effort": "high"}
    std, dropped = decode({"messages": [{"role": "user", "content": "n?"}], "output_config": config})
    assert std["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert dropped == ["output_config.effort"]
    with pytest.raises(ProxyError) as e:
        decode({"messages": [{"role": "user", "content": "n?"}], "output_config": {"format": {"type": "text"}}})
    assert e.value.param == "output_config.format.type"


def test_an_answer_with_reasoning_and_tools_as_a_message() -> None:
    standard = replies.standard_answer(
        {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 60}}
    )
    message = ANTHROPIC.encode(CHAT, standard)
    assert message["id"].startswith("msg_") and message["model"] == "gpt-x" and message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {"type": "thinking", "thinking": "think", "signature": ""},
        {"type": "text", "text": "Let me add."},
        {"type": "tool_use", "id": "call_1", "name": "add", "input": {"a": 1}},
    ]
    assert message["usage"] == {
        "input_tokens": 40,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
    }


@pytest.mark.parametrize(
    ("status", "mapped", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (429, 429, "rate_limit_error"),
        (503, 529, "overloaded_error"),
        (504, 504, "timeout_error"),
        (502, 502, "api_error"),
    ],
)
def test_errors_in_anthropics_envelope(status: int, mapped: int, kind: str) -> None:
    body, _ = ANTHROPIC.error_body(ProxyError(status, "why"))
    assert json.loads(body) == {"type": "error", "error": {"type": kind, "message": "why"}}
    assert ANTHROPIC.error_status(status) == mapped


def test_count_tokens_is_a_local_estimate() -> None:
    small = count_tokens(json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
    big = count_tokens(json.dumps({"model": "m", "messages": [{"role": "user", "content": "word " * 1000}]}).encode())
    assert 1 <= small["input_tokens"] < 20 and 1000 <= big["input_tokens"] < 1500
    with pytest.raises(ProxyError):
        count_tokens(b"{")


# ---- streams: every provider's translator writing Anthropic events ---------------------------------------------


def chunks_of(reply: Any) -> bytes:
    return b"".join(c for c in reply.chunks if isinstance(c, bytes))


STREAMS: dict[str, tuple[ModelOptions, bytes]] = {
    "openai": (ModelOptions(), b"".join(openai_stream(include_usage=True))),
    "anthropic": (ModelOptions(), b"".join(anthropic_stream())),
    "gemini": (ModelOptions(), chunks_of(replies.gemini_reply(True))),
    "cohere": (ModelOptions(), chunks_of(replies.cohere_reply(True))),
    "mistral": (ModelOptions(), chunks_of(replies.mistral_reply(True))),
    "llama2": (ModelOptions(llama2_format="ollama"), chunks_of(replies.ollama_reply(True))),
    "bedrock": (ModelOptions(), b"".join(converse_answer([("text", *STREAM_PIECES)])[1])),
}


def translate(provider: str, pieces: list[bytes]) -> bytes:
    options, _ = STREAMS[provider]
    call = Call(CHAT, {"messages": [], "stream": True}, "model-x", options, stream=True, writer=ANTHROPIC.writer)
    translator = client_translator(REGISTRY[provider], call, False, True)
    return b"".join(translator.feed(p) for p in pieces) + translator.finish()


def accumulate(raw: bytes) -> Any:
    decoder = SSEDecoder()
    snapshot, bufs = None, {}
    for event in decoder.feed(raw) + decoder.flush():
        data = json.loads(event.data)
        assert event.event == data["type"]
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


@pytest.mark.parametrize("provider", list(STREAMS))
def test_every_providers_stream_at_every_split_offset(provider: str) -> None:
    raw = STREAMS[provider][1]
    whole = accumulate(translate(provider, [raw]))
    assert whole.content[0].text == "".join(STREAM_PIECES) and whole.stop_reason == "end_turn"
    assert whole.usage.output_tokens == 12
    for cut in range(1, len(raw)):
        split = accumulate(translate(provider, [raw[:cut], raw[cut:]]))
        assert split.content == whole.content and split.usage == whole.usage, cut


def test_tool_arguments_stream_as_they_arrive() -> None:
    raw = b"".join(replies.openai_tool_calls_stream([("call_1", "f", ['{"a":', "1}"]), ("call_2", "g", ["{}"])]))
    call = Call(CHAT, {"messages": [], "stream": True}, "m", ModelOptions(), stream=True, writer=ANTHROPIC.writer)
    translator = client_translator(REGISTRY["openai"], call, False, False)
    decoder = SSEDecoder()
    events = [json.loads(e.data) for e in decoder.feed(translator.feed(raw) + translator.finish())]
    kinds = [(e["type"], e.get("index"), (e.get("delta") or {}).get("partial_json")) for e in events]
    assert kinds == [
        ("message_start", None, None),
        ("content_block_start", 0, None),
        ("content_block_delta", 0, '{"a":'),
        ("content_block_delta", 0, "1}"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "{}"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-2]["usage"]["output_tokens"] == 20


def test_a_broken_stream_ends_with_an_anthropic_error_event() -> None:
    out = translate("openai", [b"data: {not json}\n\n"])
    assert out.startswith(b"event: error\ndata: ")
    assert json.loads(out.split(b"data: ", 1)[1])["error"]["type"] == "api_error"
    cut = translate("openai", [b"".join(openai_stream())[:200]])
    assert b"event: error" in cut and b"message_stop" not in cut


def test_error_event_bytes() -> None:
    assert errors.event(ProxyError(429, "slow down")) == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}\n\n'
    )


def test_bedrock_signed_thinking_and_tools_at_every_split_offset() -> None:
    blocks = [("reasoning", "sig-1", "Let me ", "add."), ("text", "Adding."), ("tool", "tu_1", "add", '{"a":', "1}")]
    raw = b"".join(converse_answer(blocks, stop="tool_use")[1])
    whole = accumulate(translate("bedrock", [raw]))
    assert [(b.type, getattr(b, "signature", None)) for b in whole.content] == [
        ("thinking", "sig-1"),
        ("text", None),
        ("tool_use", None),
    ]
    assert whole.content[0].thinking == "Let me add." and whole.content[2].input == {"a": 1}
    assert whole.stop_reason == "tool_use"
    for cut in range(1, len(raw)):
        split = accumulate(translate("bedrock", [raw[:cut], raw[cut:]]))
        assert split.content == whole.content and split.usage == whole.usage, cut
