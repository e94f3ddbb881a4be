"""Review of the OpenAI-format validation and of the openai/azure translations: each test pins a bug a real client
hit (pure: no network, no mitmdump). Hugging Face's, Mistral's and llama2's own are in tests/providers/<name>/
(test_review_*.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call
from addon.openai_format import validate_chat
from addon.rules import Rule
from addon.streaming import OpenAIPassthrough
from tests.support.selfhosted import make_rule

CHAT = "llm/v1/chat"


def up_body(rule: Rule, body: Any) -> dict[str, Any]:
    req = ClientRequest({}, {}, "application/json", json.dumps(body).encode())
    up = build_upstream(rule, prepare_call(rule, {}, req))
    assert up.body is not None
    return up.body


def split_feed(translator_factory: Any, raw: bytes) -> list[bytes]:
    """The output for the stream fed whole, in 1-byte pieces and split at every offset: all must agree."""
    outs = []
    t = translator_factory()
    outs.append(t.feed(raw) + t.finish())
    t = translator_factory()
    outs.append(b"".join(t.feed(raw[i : i + 1]) for i in range(len(raw))) + t.finish())
    for cut in range(1, len(raw)):
        t = translator_factory()
        outs.append(t.feed(raw[:cut]) + t.feed(raw[cut:]) + t.finish())
    return outs


# ---- validation: a text part without a string `text` crashed the translators (TypeError -> 5xx), not a 400 ------


@pytest.mark.parametrize("part", [{"type": "text"}, {"type": "text", "text": None}, {"type": "text", "text": 3}])
def test_text_part_without_string_text_is_a_400(part: dict[str, Any]) -> None:
    with pytest.raises(ProxyError) as e:
        validate_chat({"messages": [{"role": "user", "content": [part]}]})
    assert e.value.status == 400
    assert e.value.param == "messages[0].content[0].text"


def test_text_part_crash_reaches_no_provider() -> None:
    rule = make_rule("mistral", "mistral-small-latest")
    with pytest.raises(ProxyError) as e:
        up_body(rule, {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]})
    assert e.value.status == 400


# ---- passthrough: `"error": null` in a chunk is not an error (the OpenAI SDK raises only on a truthy error) --------


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
    for out in split_feed(lambda: OpenAIPassthrough(CHAT, True, True), raw):
        assert out == raw


def test_passthrough_error_null_result() -> None:
    chunk = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}], "error": None}
    t = OpenAIPassthrough(CHAT, True, True)
    t.feed(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
    t.finish()
    assert t.result.error is None
    assert t.result.completed
    assert t.result.text == ["Hi"]


# ---- azure: api-version preview/latest is the v1 surface (/openai/v1/..., the deployment as the body's model) -----
# openai-python lib/azure.py: `/deployments/{model}` is put in the path unless api_version is "preview" or "latest";
# a deployments URL with api-version=preview is refused by Azure.


@pytest.mark.parametrize("version", ["preview", "latest", "Preview"])
def test_azure_v1_surface(version: str) -> None:
    rule = make_rule("azure", None, azure_instance="res", azure_deployment_id="gpt4o", azure_api_version=version)
    req = ClientRequest(
        {}, {}, "application/json", json.dumps({"messages": [{"role": "user", "content": "Hi"}]}).encode()
    )
    up = build_upstream(rule, prepare_call(rule, {}, req))
    assert up.url == f"https://res.openai.azure.com/openai/v1/chat/completions?api-version={version}"
    assert up.body is not None and up.body["model"] == "gpt4o"


def test_azure_v1_surface_from_the_client_query() -> None:
    rule = make_rule("azure", None, azure_instance="res", azure_deployment_id="gpt4o")
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    req = ClientRequest({}, {"api-version": "preview"}, "application/json", json.dumps(body).encode())
    up = build_upstream(rule, prepare_call(rule, {}, req))
    assert up.url == "https://res.openai.azure.com/openai/v1/chat/completions?api-version=preview"
    assert up.body is not None and up.body["model"] == "gpt4o"
    assert up.body["stream_options"] == {"include_usage": True}


def test_azure_dated_version_keeps_the_deployment_path() -> None:
    rule = make_rule("azure", None, azure_instance="res", azure_deployment_id="gpt4o")
    req = ClientRequest(
        {}, {}, "application/json", json.dumps({"messages": [{"role": "user", "content": "Hi"}]}).encode()
    )
    up = build_upstream(rule, prepare_call(rule, {}, req))
    assert up.url == "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"


# ---- openai/azure: an upstream error already in the OpenAI envelope lost its extra fields ---------------------------
# Azure's prompt filter answers 400 with error.innererror.content_filter_result (docs/providers.md §2.3); apps read it.

AZURE_FILTERED = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
        },
    }
}


def test_azure_content_filter_error_keeps_innererror() -> None:
    from addon.exchange import provider_for, translate_response

    rule = make_rule("azure", None, azure_instance="res", azure_deployment_id="gpt4o")
    req = ClientRequest(
        {}, {}, "application/json", json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode()
    )
    c = prepare_call(rule, {}, req)
    status, out = translate_response(
        provider_for(rule), c, 400, json.dumps(AZURE_FILTERED).encode(), "application/json"
    )
    assert status == 400
    err = out["error"]
    assert err["innererror"] == AZURE_FILTERED["error"]["innererror"]
    assert err["code"] == "content_filter" and err["param"] == "prompt"
    assert err["message"].startswith("The response was filtered")
    assert err["type"] == "invalid_request_error"  # a null type gets OpenAI's for the status


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


def test_function_result_may_have_null_content() -> None:
    validate_chat({"messages": [{"role": "function", "name": "f", "content": None}]})
    with pytest.raises(ProxyError):
        validate_chat({"messages": [{"role": "user", "content": None}]})


# ---- checked and right: Azure's stream start, chunks without delta and the hidden usage chunk -----------------------

AZURE_STREAM = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
    b'"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}\n\n'
    b'data: {"choices":[{"content_filter_results":{},"delta":{"role":"assistant","content":""},"finish_reason":null,'
    b'"index":0,"logprobs":null}],"created":1736407895,"id":"chatcmpl-A","model":"gpt-4o-mini","object":'
    b'"chat.completion.chunk","usage":null}\n\n'
    b'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null,"index":0}],"created":1736407895,'
    b'"id":"chatcmpl-A","model":"gpt-4o-mini","object":"chat.completion.chunk","usage":null}\n\n'
    b'data: {"choices":[{"content_filter_results":{"hate":{"filtered":false}},"finish_reason":null,"index":0}],'
    b'"created":1736407895,"id":"chatcmpl-A","model":"gpt-4o-mini","object":"chat.completion.chunk"}\n\n'
    b'data: {"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":1736407895,"id":"chatcmpl-A",'
    b'"model":"gpt-4o-mini","object":"chat.completion.chunk","usage":null}\n\n'
)
AZURE_USAGE = (
    b'data: {"choices":[],"created":1736407895,"id":"chatcmpl-A","model":"gpt-4o-mini","object":'
    b'"chat.completion.chunk","usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n'
)


@pytest.mark.parametrize("client_asked_usage", [True, False])
def test_azure_stream_passthrough(client_asked_usage: bool) -> None:
    raw = AZURE_STREAM + AZURE_USAGE + b"data: [DONE]\n\n"
    expected = raw if client_asked_usage else AZURE_STREAM + b"data: [DONE]\n\n"
    for out in split_feed(lambda: OpenAIPassthrough(CHAT, not client_asked_usage, True), raw):
        assert out == expected
    t = OpenAIPassthrough(CHAT, not client_asked_usage, True)
    t.feed(raw)
    t.finish()
    r = t.result
    assert (r.model, r.finish_reason, r.text, r.completed, r.error) == ("gpt-4o-mini", "stop", ["Hi"], True, None)
    assert r.usage == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}


# ---- validation: negative token limits and n < 1 were let through (Ollama reads num_predict -1 as "no limit") -------


@pytest.mark.parametrize(("field", "value"), [("max_tokens", -1), ("max_completion_tokens", -2), ("n", 0), ("n", -1)])
def test_negative_limits_are_refused(field: str, value: int) -> None:
    with pytest.raises(ProxyError) as e:
        validate_chat({"messages": [{"role": "user", "content": "Hi"}], field: value})
    assert e.value.status == 400 and e.value.param == field


def test_zero_max_tokens_still_valid_for_completions_echo() -> None:
    from addon.openai_format import validate_completions

    validate_completions({"prompt": "Hi", "max_tokens": 0, "echo": True})


def test_mistral_and_huggingface_streams_error_null_is_not_an_error() -> None:
    from addon.providers.huggingface import HFOpenAIStream
    from addon.providers.mistral import MistralChatStream

    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
        "error": None,
    }
    raw = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    for factory in (lambda: MistralChatStream(False, True), lambda: HFOpenAIStream(CHAT, True, True)):
        for out in split_feed(factory, raw):
            assert b'"Hi"' in out and out.endswith(b"data: [DONE]\n\n")
        t = factory()
        t.feed(raw)
        t.finish()
        assert t.result.error is None and t.result.completed and t.result.text == ["Hi"]
