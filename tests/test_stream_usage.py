"""Usage that arrived before a stream was cut off is in the record (DESIGN.md: record what had arrived).

Every provider's stream translator and every native recorder is fed a prefix of a stream, as when the client, the
upstream or the proxy ends it early, and `result.usage` (what the audit record is built from) must then hold every
count the upstream had sent: the input tokens as soon as they arrive, the output tokens as known so far (null when
none was sent, never a guess). Where a provider sends no usage until its last event, the test says so: null stays
null. The client's side does not change: its usage chunk still comes only at the end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.bedrock import event
from tests.support.fakes import openai_stream, sse
from tests.support.stream_usage import (
    CHAT,
    COMPLETIONS,
    OLLAMA,
    PASSTHROUGHS,
    UP,
    _v2,
    cut,
    recorded,
    translator,
    usage,
)


@pytest.mark.parametrize(("provider", "options"), PASSTHROUGHS, ids=[p for p, _ in PASSTHROUGHS])
def test_openai_format_usage_chunk_before_done(provider: str, options: dict[str, Any]) -> None:
    """These send usage only in their last chunk (include_usage); once it arrived, a cut before [DONE] keeps it."""
    t = translator(provider, **options)
    events = openai_stream(include_usage=True)
    cut(t, *events[:2])
    assert t.result.usage is None  # nothing counted yet: null, not a guess
    cut(t, *events[2:-1])  # everything but [DONE]
    assert t.result.usage == usage(25, 12)


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


def test_native_formats_that_count_only_at_the_end() -> None:
    """Bedrock ConverseStream (metadata), Cohere (message-end / stream-end) and Hugging Face (TGI's last details,
    the Messages API's usage chunk) send no count before their last event: null stays null."""
    bedrock = recorded("bedrock", event("messageStart", {"role": "assistant"}), event("messageStop", {}))
    cohere = recorded("cohere", _v2("message-start", id="x"), _v2("content-delta", delta={}))
    tgi = recorded("huggingface", sse({"token": {"id": 1, "text": "a", "special": False}, "generated_text": None}))
    chat = recorded("huggingface", *openai_stream(include_usage=True)[:2])
    assert [r.usage for r in (bedrock, cohere, tgi, chat)] == [None, None, None, None]
