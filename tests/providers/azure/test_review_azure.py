"""Review of the Azure OpenAI provider: each test pins a bug a real client hit. Pure: no network, no mitmdump."""

from __future__ import annotations

import json

import pytest

from addon.exchange import ClientRequest, build_upstream, prepare_call
from addon.streaming import OpenAIPassthrough
from tests.support.chunks import every_split
from tests.support.selfhosted import make_rule

CHAT = "llm/v1/chat"


# ---- api-version preview/latest is the v1 surface (/openai/v1/..., the deployment as the body's model) ------------
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


# ---- an upstream error already in the OpenAI envelope lost its extra fields ---------------------------------------
# Azure's prompt filter answers 400 with error.innererror.content_filter_result; apps read it.

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
    for out in every_split(lambda: OpenAIPassthrough(CHAT, not client_asked_usage, True), raw):
        assert out == expected
    t = OpenAIPassthrough(CHAT, not client_asked_usage, True)
    t.feed(raw)
    t.finish()
    r = t.result
    assert (r.model, r.finish_reason, r.text, r.completed, r.error) == ("gpt-4o-mini", "stop", ["Hi"], True, None)
    assert r.usage == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
