"""Usage that arrived before a stream was cut off is in the record (DESIGN.md: record what had arrived).

Every provider's stream translator and every native recorder is fed a prefix of a stream, as when the client, the
upstream or the proxy ends it early, and `result.usage` (what the audit record is built from) must then hold every
count the upstream had sent: the input tokens as soon as they arrive, the output tokens as known so far (null when
none was sent, never a guess). Where a provider sends no usage until its last event, the test says so: null stays
null. The client's side does not change: its usage chunk still comes only at the end.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from addon import native
from addon.exchange import ClientRequest, prepare_call, provider_for
from addon.providers import REGISTRY
from addon.streaming import StreamTranslator
from tests.support.bedrock import event, frame
from tests.support.fakes import anthropic_stream, openai_stream, sse
from tests.support.rules import one_rule

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
USER = [{"role": "user", "content": "Hi"}]
UP = "http://127.0.0.1:9"  # never contacted: the translators are pure
FAKE_AWS = {"aws_access_key_id": "AKIDSTREAMUSAGEFAKE1", "aws_secret_access_key": "stream/usage/fake/secret/0001"}


def translator(provider: str, route: str = CHAT, **options: Any) -> StreamTranslator:
    if provider == "bedrock":
        rule = one_rule(provider, "m-1", route, {"bedrock": {"aws_region": "us-east-1"}, **options}, auth=FAKE_AWS)
    else:
        rule = one_rule(provider, "m-1", route, {"upstream_url": UP, **options})
    body = {"messages": USER} if route == CHAT else {"prompt": "Hi"}
    raw = json.dumps({**body, "stream": True}).encode()
    call = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw))
    # include_usage: the client asked for the usage chunk, so the test can check it still comes only at the end.
    return provider_for(rule).stream_translator(call, True, True)


def cut(t: StreamTranslator, *events: bytes) -> bytes:
    """Feed a stream's first events and no more: the client hung up, finish() is never called."""
    return b"".join(t.feed(e) for e in events)


def no_usage_chunk(out: bytes) -> None:
    """What the client got so far carries no usage: the usage chunk still comes only with the finish chunk."""
    datas = [line[6:] for line in out.decode().split("\n") if line.startswith("data: ")]
    assert all(json.loads(d).get("usage") is None for d in datas if d != "[DONE]"), out


def usage(prompt: int, completion: int | None, cached: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + (completion or 0),
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


# ---- Anthropic -----------------------------------------------------------------------------------------------


def test_anthropic_input_tokens_are_recorded_from_message_start() -> None:
    t = translator("anthropic")
    out = cut(t, *anthropic_stream()[:4])  # message_start, block start, ping, the first text delta
    assert t.result.usage == usage(25, 1)
    no_usage_chunk(out)


def test_anthropic_output_tokens_so_far_from_message_delta_and_cache_counts() -> None:
    t = translator("anthropic")
    start = {"input_tokens": 10, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 2}
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}
    out = cut(t, sse({"type": "message_start", "message": {"model": "c", "usage": start}}), sse(delta))
    assert t.result.usage == usage(18, 7, cached=5)
    no_usage_chunk(out)


def test_anthropic_input_only_leaves_completion_null_and_survives_the_end() -> None:
    t = translator("anthropic")
    cut(t, sse({"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 9}}}))
    assert t.result.usage == usage(9, None)
    # The upstream ends without ever counting the output: the client's usage chunk is null, as before, and the
    # record keeps the input count that had arrived.
    out = cut(t, sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}), sse({"type": "message_stop"}))
    assert t.result.completed and t.result.usage == usage(9, None)
    usage_chunks = [json.loads(line[6:]) for line in out.decode().split("\n") if '"choices":[]' in line]
    assert [c["usage"] for c in usage_chunks] == [None]


def test_anthropic_usage_stays_when_the_upstream_breaks_off() -> None:
    t = translator("anthropic")
    cut(t, *anthropic_stream(complete=False))
    t.finish()  # the upstream ended early: an error event for the client, and the record keeps the usage
    assert t.result.error is not None and t.result.usage == usage(25, 1)


def test_anthropic_legacy_complete_sends_no_usage() -> None:
    """/v1/complete streams carry no token counts at all: null stays null."""
    t = translator("anthropic", COMPLETIONS, upstream_url=f"{UP}/v1/complete")
    cut(t, sse({"type": "completion", "completion": "Hel", "stop_reason": None}, "completion"))
    assert t.result.usage is None


# ---- OpenAI-format passthroughs (OpenAI, Azure, Llama openai, Hugging Face Messages API, Mistral chat) -----------


PASSTHROUGHS = [
    ("openai", {}),
    ("azure", {"azure_deployment_id": "d"}),
    ("llama2", {"llama2_format": "openai"}),
    ("huggingface", {}),
    ("mistral", {}),
]


@pytest.mark.parametrize(("provider", "options"), PASSTHROUGHS, ids=[p for p, _ in PASSTHROUGHS])
def test_openai_format_usage_chunk_before_done(provider: str, options: dict[str, Any]) -> None:
    """These send usage only in their last chunk (include_usage); once it arrived, a cut before [DONE] keeps it."""
    t = translator(provider, **options)
    events = openai_stream(include_usage=True)
    cut(t, *events[:2])
    assert t.result.usage is None  # nothing counted yet: null, not a guess
    cut(t, *events[2:-1])  # everything but [DONE]
    assert t.result.usage == usage(25, 12)


# ---- Gemini --------------------------------------------------------------------------------------------------


def test_gemini_usage_metadata_of_each_chunk_is_recorded_at_once() -> None:
    t = translator("gemini")
    first = {
        "candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5},
    }
    out = cut(t, sse(first))
    assert t.result.usage == usage(4, 1)
    second = {**first, "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "thoughtsTokenCount": 2}}
    out += cut(t, sse(second))
    assert t.result.usage == {**usage(4, 5), "completion_tokens_details": {"reasoning_tokens": 2}}
    no_usage_chunk(out)


def test_gemini_json_array_form_too() -> None:
    t = translator("gemini")
    obj = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "usageMetadata": {"promptTokenCount": 6}}
    cut(t, b"[" + json.dumps(obj).encode() + b",\n")
    assert t.result.usage == usage(6, 0)  # proto3 JSON omits a zero candidatesTokenCount


# ---- Bedrock ConverseStream -----------------------------------------------------------------------------------


def test_bedrock_sends_usage_only_in_metadata() -> None:
    """ConverseStream counts tokens only in `metadata`, after messageStop: a cut before it leaves null."""
    t = translator("bedrock")
    cut(t, event("messageStart", {"role": "assistant"}), event("contentBlockDelta", {"delta": {"text": "hi"}}))
    cut(t, event("messageStop", {"stopReason": "end_turn"}))
    assert t.result.usage is None


def test_bedrock_metadata_before_message_stop_is_recorded_at_once() -> None:
    t = translator("bedrock")
    out = cut(
        t,
        event("messageStart", {"role": "assistant"}),
        event("metadata", {"usage": {"inputTokens": 8, "outputTokens": 2, "totalTokens": 10}}),
    )
    assert t.result.usage == usage(8, 2)
    no_usage_chunk(out)


# ---- Cohere ---------------------------------------------------------------------------------------------------


def _v2(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, kind)


def test_cohere_v2_sends_usage_only_in_message_end() -> None:
    t = translator("cohere")
    text = {"message": {"content": {"text": "Hel"}}}
    cut(t, _v2("message-start", id="x"), _v2("content-delta", index=0, delta=text))
    assert t.result.usage is None


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_cohere_v2_usage_of_a_failed_generation_is_kept(reason: str) -> None:
    t = translator("cohere")
    end = {"finish_reason": reason, "usage": {"tokens": {"input_tokens": 21, "output_tokens": 3}}}
    cut(t, _v2("message-start", id="x"), _v2("message-end", delta=end))
    assert t.result.error is not None and t.result.usage == usage(21, 3)


def test_cohere_v1_usage_of_a_failed_generation_is_kept() -> None:
    t = translator("cohere", cohere_api="v1")
    end = {
        "event_type": "stream-end",
        "finish_reason": "ERROR",
        "response": {"meta": {"tokens": {"input_tokens": 11, "output_tokens": 2}}},
    }
    cut(t, b'{"event_type": "stream-start", "generation_id": "g"}\n', json.dumps(end).encode() + b"\n")
    assert t.result.error is not None and t.result.usage == usage(11, 2)


# ---- Mistral ---------------------------------------------------------------------------------------------------


def _mistral_chunk(text: str, reason: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": reason}
    return sse({"id": "m", "object": "chat.completion.chunk", "model": "m-1", "choices": [choice], **extra})


def test_mistral_completions_usage_on_the_last_chunk_before_done() -> None:
    t = translator("mistral", COMPLETIONS)
    out = cut(t, _mistral_chunk("Hel"), _mistral_chunk("lo", "stop", usage=usage(5, 2)))
    assert t.result.usage == usage(5, 2)
    no_usage_chunk(out)


def test_mistral_completions_usage_of_an_error_finish_is_kept() -> None:
    t = translator("mistral", COMPLETIONS)
    cut(t, _mistral_chunk("Hel", "error", usage=usage(5, 1)))
    assert t.result.error is not None and t.result.usage == usage(5, 1)


# ---- Ollama (llama2 and mistral) and TGI (llama2 raw, Hugging Face native) ------------------------------------


OLLAMA = [("llama2", {"llama2_format": "ollama"}), ("mistral", {"mistral_format": "ollama"})]


@pytest.mark.parametrize(("provider", "options"), OLLAMA, ids=[p for p, _ in OLLAMA])
def test_ollama_counts_come_only_in_the_done_line(provider: str, options: dict[str, Any]) -> None:
    t = translator(provider, **options)
    cut(t, b'{"model":"m-1","message":{"role":"assistant","content":"Hel"},"done":false}\n')
    assert t.result.usage is None  # Ollama counts nothing before its final line
    bad_tools = {"role": "assistant", "content": "", "tool_calls": [{"function": "not an object"}]}
    done = {"model": "m-1", "message": bad_tools, "done": True, "prompt_eval_count": 26, "eval_count": 4}
    cut(t, json.dumps(done).encode() + b"\n")
    # The final line could not be translated (an error for the client), but its counts had arrived.
    assert t.result.error is not None and t.result.usage == usage(26, 4)


@pytest.mark.parametrize(
    ("provider", "route"), [("llama2", CHAT), ("huggingface", COMPLETIONS)], ids=["llama2-raw", "hf"]
)
def test_tgi_sends_usage_only_in_its_last_event(provider: str, route: str) -> None:
    t = translator(provider, route, upstream_url=f"{UP}/generate_stream")
    cut(t, sse({"index": 1, "token": {"id": 1, "text": "Hel", "special": False}, "generated_text": None}))
    assert t.result.usage is None  # TGI's counts are in the last event's details only: null stays null


# ---- native passthrough recorders --------------------------------------------------------------------------------


def recorded(fmt: str, *pieces: bytes) -> native.NativeRecorder:
    rec = native.adapter(REGISTRY[fmt]).recorder(keep_payload=False)
    for p in pieces:
        assert rec.feed(p) == p  # the client's bytes are never changed
    return rec


def test_native_anthropic_input_only_message_start() -> None:
    rec = recorded("anthropic", sse({"type": "message_start", "message": {"usage": {"input_tokens": 9}}}))
    assert rec.usage == usage(9, None)


def test_native_anthropic_prefix() -> None:
    assert recorded("anthropic", *anthropic_stream()[:4]).usage == usage(25, 1)


def _invoke_chunk(obj: dict[str, Any]) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(obj).encode()).decode(), "p": "abc"}).encode()
    return frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)


def test_native_bedrock_invoke_stream_of_an_anthropic_model() -> None:
    """InvokeModelWithResponseStream wraps the model's own events: Claude's message_start counts the input."""
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 14, "output_tokens": 1}}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
    rec = recorded("bedrock", _invoke_chunk(start), _invoke_chunk(delta))
    assert rec.usage == usage(14, 1)
    rec.feed(_invoke_chunk({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 6}}))
    assert rec.usage == usage(14, 6)
    metrics = {"inputTokenCount": 14, "outputTokenCount": 7}  # Bedrock's own count wins at the end
    rec.feed(_invoke_chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}))
    assert rec.usage == usage(14, 7) and rec.result.completed


def test_native_bedrock_invoke_stream_of_a_llama_model() -> None:
    first = {"generation": "Hel", "prompt_token_count": 12, "generation_token_count": 1, "stop_reason": None}
    rec = recorded("bedrock", _invoke_chunk(first))
    assert rec.usage == usage(12, 1)
    rec.feed(_invoke_chunk({"generation": "lo", "prompt_token_count": None, "generation_token_count": 2}))
    assert rec.usage == usage(12, 2)
    rec.feed(_invoke_chunk({"generation": "!"}))  # a chunk without counts loses none of those that came
    assert rec.usage == usage(12, 2)


def test_native_gemini_usage_of_an_intermediate_chunk() -> None:
    obj = {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": {"promptTokenCount": 3}}
    assert recorded("gemini", sse(obj)).usage == usage(3, 0)


def test_native_formats_that_count_only_at_the_end() -> None:
    """Bedrock ConverseStream (metadata), Cohere (message-end / stream-end) and Hugging Face (TGI's last details,
    the Messages API's usage chunk) send no count before their last event: null stays null."""
    bedrock = recorded("bedrock", event("messageStart", {"role": "assistant"}), event("messageStop", {}))
    cohere = recorded("cohere", _v2("message-start", id="x"), _v2("content-delta", delta={}))
    tgi = recorded("huggingface", sse({"token": {"id": 1, "text": "a", "special": False}, "generated_text": None}))
    chat = recorded("huggingface", *openai_stream(include_usage=True)[:2])
    assert [r.usage for r in (bedrock, cohere, tgi, chat)] == [None, None, None, None]
