"""Review of the OpenAI provider (an OpenAI-format upstream, passed through): each test pins a bug a real client
hit. Pure: no network, no mitmdump."""

from __future__ import annotations

import json

from addon.exchange import ClientRequest, prepare_call
from addon.streaming import OpenAIPassthrough
from tests.support.chunks import every_split
from tests.support.selfhosted import make_rule

CHAT = "llm/v1/chat"


# ---- `"error": null` in a chunk is not an error (the OpenAI SDK raises only on a truthy error) -------------------


def test_passthrough_error_null_is_not_an_error() -> None:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
        "error": None,
    }
    done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    raw = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in (chunk, done)) + b"data: [DONE]\n\n"
    for out in every_split(lambda: OpenAIPassthrough(CHAT, True, True), raw):
        assert out == raw


def test_passthrough_error_null_result() -> None:
    chunk = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}], "error": None}
    t = OpenAIPassthrough(CHAT, True, True)
    t.feed(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
    t.finish()
    assert t.result.error is None
    assert t.result.completed
    assert t.result.text == ["Hi"]


# ---- an upstream error already in the OpenAI envelope is passed on as it is ---------------------------------------


def test_openai_plain_error_unchanged() -> None:
    from addon.exchange import provider_for, translate_response

    rule = make_rule("openai", None)
    req = ClientRequest(
        {}, {}, "application/json", json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    )
    c = prepare_call(rule, {}, req)
    body = {"error": {"message": "Rate limit", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    status, out = translate_response(provider_for(rule), c, 429, json.dumps(body).encode(), "application/json")
    assert (status, out) == (429, body)
    status, out = translate_response(provider_for(rule), c, 502, b"<html>bad gateway</html>", "text/html")
    assert status == 502 and set(out["error"]) == {"message", "type", "param", "code"}
