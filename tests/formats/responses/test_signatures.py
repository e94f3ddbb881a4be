"""Signed reasoning in the Responses client format, pure: the provider's thinking blocks sealed in a reasoning item's
`encrypted_content` (answers and streams, split at every byte offset, read by the SDK's own types and accumulator),
and unsealed back into the next assistant turn's `thinking_blocks` when the client replays the item."""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response

from addon.formats import RESPONSES
from addon.formats.responses.sealed import PREFIX, seal, unseal
from addon.providers import REGISTRY, Call
from addon.spec import ModelOptions
from addon.stream_bridge import client_translator
from tests.formats.responses.test_translation import ROUTE, accumulate
from tests.support.bedrock import converse_answer

BLOCKS = [
    {"type": "thinking", "thinking": "I shall add", "signature": "sig-A"},
    {"type": "redacted_thinking", "data": "opaque"},
]
CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}


def decode(items: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    dropped: list[str] = []
    body = RESPONSES.decode(ROUTE, "/v1/responses", {"model": "m", "input": items}, dropped)
    return body["messages"], dropped


def test_sealing_round_trips_and_refuses_what_it_did_not_seal() -> None:
    text = seal(BLOCKS)
    assert text.startswith(PREFIX) and "sig-A" not in text and unseal(text) == BLOCKS
    assert unseal("gAAAAABopenai-encrypted") is None and unseal(PREFIX + "!!!") is None
    assert unseal(seal([{"type": "thinking", "thinking": "no signature"}])) is None


def test_an_answer_seals_its_signed_reasoning_in_the_reasoning_item() -> None:
    message = {"role": "assistant", "content": None, "reasoning_content": "I shall add", "tool_calls": [CALL]}
    standard = {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "message": {**message, "thinking_blocks": BLOCKS}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    response = Response.model_validate(RESPONSES.encode(ROUTE, standard))
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "I shall add"
    assert reasoning.encrypted_content is not None and unseal(reasoning.encrypted_content) == BLOCKS
    plain = RESPONSES.encode(ROUTE, {**standard, "choices": [{**standard["choices"][0], "message": message}]})
    assert "encrypted_content" not in plain["output"][0]  # no signed reasoning: a summary only, as before


def test_replayed_reasoning_goes_back_to_the_assistant_turn_that_follows_it() -> None:
    items = [
        {"role": "user", "content": "1+1?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": seal(BLOCKS)},
        {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "2"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": seal(BLOCKS[:1])},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is 2."}]},
        {"role": "user", "content": "thanks"},
    ]
    messages, dropped = decode(items)
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [CALL], "thinking_blocks": BLOCKS}
    assert messages[3] == {"role": "assistant", "content": "It is 2.", "thinking_blocks": BLOCKS[:1]}
    assert dropped == []


def test_reasoning_of_another_origin_or_without_a_turn_is_dropped_and_reported() -> None:
    foreign = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai"}
    messages, dropped = decode([{"role": "user", "content": "hi"}, foreign])
    assert dropped == ["reasoning"] and len(messages) == 1
    ours = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": seal(BLOCKS)}
    messages, dropped = decode([ours, {"role": "user", "content": "hi"}])
    assert dropped == ["reasoning"] and messages == [{"role": "user", "content": "hi"}]


def test_a_stream_seals_the_signatures_at_every_split_offset() -> None:
    _, frames = converse_answer(
        [("reasoning", "sig-A", "I shall ", "add"), ("redacted", "opaque"), ("tool", "tu_1", "add", '{"a":', "1}")],
        stop="tool_use",
    )
    raw = b"".join(frames)
    for cut in range(len(raw)):
        call = Call("llm/v1/chat", {"messages": [], "stream": True}, "anthropic.claude", ModelOptions(), stream=True)
        call.writer = RESPONSES.writer
        translator = client_translator(REGISTRY["bedrock"], call, False, True)
        final = accumulate(translator.feed(raw[:cut]) + translator.feed(raw[cut:]) + translator.finish())
        reasoning, function_call = final.output
        assert reasoning.summary[0].text == "I shall add" and function_call.call_id == "tu_1", cut
        assert unseal(reasoning.encrypted_content) == BLOCKS, cut
