"""Builders for the stream-usage tests: a translator for a provider set-up, a stream cut after some events, the usage
the record must then hold, and the upstream events of each provider."""

from __future__ import annotations

import base64
import json
from typing import Any

from addon import native
from addon.exchange import ClientRequest, prepare_call, provider_for
from addon.providers import REGISTRY
from addon.streaming import StreamTranslator
from tests.support.bedrock import frame
from tests.support.fakes import sse
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


def usage(prompt: int, completion: int | None, cached: int | None = None, written: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + (completion or 0),
    }
    if cached or written:
        out["prompt_tokens_details"] = {"cached_tokens": cached} if cached else {}
        if written:
            out["prompt_tokens_details"].update(cache_creation_tokens=written, cache_write_tokens=written)
    return out


PASSTHROUGHS = [
    ("openai", {}),
    ("azure", {"azure_deployment_id": "d"}),
    ("llama2", {"llama2_format": "openai"}),
    ("huggingface", {}),
    ("mistral", {}),
]


def _v2(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, kind)


def _mistral_chunk(text: str, reason: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": reason}
    return sse({"id": "m", "object": "chat.completion.chunk", "model": "m-1", "choices": [choice], **extra})


OLLAMA = [("llama2", {"llama2_format": "ollama"}), ("mistral", {"mistral_format": "ollama"})]


def recorded(fmt: str, *pieces: bytes) -> native.NativeRecorder:
    rec = native.adapter(REGISTRY[fmt]).recorder(keep_payload=False)
    for p in pieces:
        assert rec.feed(p) == p  # the client's bytes are never changed
    return rec


def _invoke_chunk(obj: dict[str, Any]) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(obj).encode()).decode(), "p": "abc"}).encode()
    return frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)
