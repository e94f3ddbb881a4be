"""The pure request/response pipeline: prepare_call -> build_upstream -> translate_response, for what every
provider shares (upstream errors, models, streaming policy, body checks), Azure and the OpenAI passthrough.
Anthropic's own request and response mapping is in tests/providers/anthropic/test_provider_anthropic.py.

Rules are built with load_rules_text (tests/support/pipeline.py), so every test also exercises the configuration a
user would write.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from addon.exchange import build_upstream, prepare_call, provider_for, translate_response
from addon.rules import load_rules_text
from tests.support.pipeline import (
    CHAT,
    COMPLETIONS,
    USER,
    assert_envelope,
    call,
    client,
    make_rule,
    refused,
    respond,
    up_body,
    upstream,
)

# ==============================================================================================================
# Upstream errors -> envelope
# ==============================================================================================================

ANTHROPIC_ERROR = b'{"type":"error","error":{"type":"%s","message":"%s"},"request_id":"req_1"}'
HTML_500 = b"<!DOCTYPE html><html><head><title>Oops</title></head><body><h1>Server &amp; error</h1></body></html>"

UPSTREAM_ERRORS = [
    # (id, status, body, content type, client status, message fragment, type, code)
    (
        "anthropic-400",
        400,
        ANTHROPIC_ERROR % (b"invalid_request_error", b"roles must alternate"),
        "application/json",
        400,
        "roles must alternate",
        "invalid_request_error",
        None,
    ),
    (
        "anthropic-401",
        401,
        ANTHROPIC_ERROR % (b"authentication_error", b"invalid x-api-key"),
        "application/json",
        401,
        "invalid x-api-key",
        "authentication_error",
        None,
    ),
    (
        "anthropic-429",
        429,
        ANTHROPIC_ERROR % (b"rate_limit_error", b"slow down"),
        "application/json",
        429,
        "slow down",
        "rate_limit_error",
        None,
    ),
    (
        "anthropic-529",
        529,
        ANTHROPIC_ERROR % (b"overloaded_error", b"Overloaded"),
        "application/json",
        503,
        "Overloaded",
        "server_error",  # what OpenAI clients know; Anthropic's own type stays as the code
        "overloaded_error",
    ),
    (
        "openai-401",
        401,
        b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,'
        b'"code":"invalid_api_key"}}',
        "application/json",
        401,
        "Incorrect API key",
        "invalid_request_error",
        "invalid_api_key",
    ),
    (
        "openai-429",
        429,
        b'{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
        "application/json",
        429,
        "Rate limit reached",
        "requests",
        "rate_limit_exceeded",
    ),
    ("html-500", 500, HTML_500, "text/html; charset=utf-8", 500, "Server & error", "server_error", None),
    ("html-no-ctype", 502, HTML_500, "", 502, "Oops", "server_error", None),
    ("empty-500", 500, b"", "", 500, "empty body", "server_error", None),
    ("empty-404", 404, b"", "application/json", 404, "HTTP 404", "not_found_error", None),
    ("text-503", 503, b"upstream connect error", "text/plain", 503, "upstream connect error", "server_error", None),
    ("text-401", 401, b"Unauthorized", "text/plain", 401, "Unauthorized", "authentication_error", None),
    ("message-only", 400, b'{"message":"Malformed input"}', "application/json", 400, "Malformed input", None, None),
    ("string-error", 500, b'{"error":"model crashed"}', "application/json", 500, "model crashed", None, None),
]


@pytest.mark.parametrize(
    ("status", "raw", "ctype", "out_status", "fragment", "etype", "code"),
    [c[1:] for c in UPSTREAM_ERRORS],
    ids=[c[0] for c in UPSTREAM_ERRORS],
)
@pytest.mark.parametrize("provider", ["anthropic", "openai", "azure"])
def test_upstream_errors_become_the_envelope(provider, status, raw, ctype, out_status, fragment, etype, code):
    rule = make_rule(provider)
    out, data = translate_response(provider_for(rule), call(rule, {"messages": USER}), status, raw, ctype)
    err = assert_envelope(out, data, out_status)
    assert fragment in err["message"]
    assert "<" not in err["message"]  # never raw HTML
    if etype is not None:
        assert err["type"] == etype
    assert err["code"] == code


def test_redirect_is_502():
    rule = make_rule()
    out, data = translate_response(provider_for(rule), call(rule, {"messages": USER}), 302, b"", "")
    assert_envelope(out, data, 502)


def test_long_text_error_is_truncated():
    rule = make_rule()
    out, data = translate_response(provider_for(rule), call(rule, {"messages": USER}), 500, b"x" * 10_000, "text/plain")
    err = assert_envelope(out, data, 500)
    assert len(err["message"]) < 500


# ==============================================================================================================
# Azure
# ==============================================================================================================


def azure_url(options: dict[str, Any], *, name: str | None = None, route: str = CHAT, query=None, body=None) -> str:
    rule = make_rule("azure", name=name, route=route, options=options)
    request = body or ({"messages": USER} if route == CHAT else {"prompt": "x"})
    return upstream(rule, request, query=query).url


@pytest.mark.parametrize(
    ("options", "route", "query", "expected"),
    [
        (
            {"azure_instance": "res", "azure_deployment_id": "gpt4o"},
            CHAT,
            None,
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
        ),
        (
            {"azure_instance": "res", "azure_deployment_id": "gpt4o", "azure_api_version": "2025-01-01-preview"},
            CHAT,
            None,
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2025-01-01-preview",
        ),
        (
            {"azure_instance": "res", "azure_deployment_id": "gpt4o", "azure_api_version": "2025-01-01-preview"},
            CHAT,
            {"api-version": "2023-05-15"},
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2023-05-15",
        ),
        (
            {"azure_instance": "res", "azure_deployment_id": "instruct"},
            COMPLETIONS,
            None,
            "https://res.openai.azure.com/openai/deployments/instruct/completions?api-version=2024-10-21",
        ),
        (
            {"upstream_url": "http://127.0.0.1:9000", "azure_deployment_id": "d1"},
            CHAT,
            None,
            "http://127.0.0.1:9000/openai/deployments/d1/chat/completions?api-version=2024-10-21",
        ),
        (
            {"upstream_url": "http://127.0.0.1:9000/", "azure_deployment_id": "d1", "azure_api_version": "v9"},
            CHAT,
            {"api-version": "v10"},
            "http://127.0.0.1:9000/openai/deployments/d1/chat/completions?api-version=v10",
        ),
        (
            {"upstream_url": "http://127.0.0.1:9000/custom/path", "azure_deployment_id": "d1"},
            CHAT,
            None,
            "http://127.0.0.1:9000/custom/path?api-version=2024-10-21",
        ),
        (
            {"upstream_url": "http://127.0.0.1:9000/p?api-version=2025-03-01", "azure_deployment_id": "d1"},
            CHAT,
            None,
            "http://127.0.0.1:9000/p?api-version=2025-03-01",
        ),
        (
            {"azure_instance": "res", "upstream_url": "http://127.0.0.1:9000", "azure_deployment_id": "d1"},
            CHAT,
            None,
            "http://127.0.0.1:9000/openai/deployments/d1/chat/completions?api-version=2024-10-21",
        ),
    ],
)
def test_azure_url(options, route, query, expected):
    assert azure_url(options, route=route, query=query) == expected


def test_azure_deployment_defaults_to_the_model():
    url = azure_url({"azure_instance": "res"}, name="gpt-4o-mini")
    assert urlsplit(url).path == "/openai/deployments/gpt-4o-mini/chat/completions"
    url = azure_url({"azure_instance": "res"}, body={"model": "client-model", "messages": USER})
    assert urlsplit(url).path == "/openai/deployments/client-model/chat/completions"


def test_azure_without_deployment_or_model_is_400():
    rule = make_rule("azure", name=None, options={"azure_instance": "res"})
    assert refused(call, rule, {"messages": USER}).param == "model"


@pytest.mark.parametrize(("model", "segment"), [("a/b", "a%2Fb"), ("x?y#z", "x%3Fy%23z"), ("my model", "my%20model")])
def test_azure_deployment_from_the_client_stays_one_segment(model, segment):
    url = azure_url({"azure_instance": "res"}, body={"model": model, "messages": USER})
    parts = urlsplit(url)
    assert parts.hostname == "res.openai.azure.com"
    assert parts.path == f"/openai/deployments/{segment}/chat/completions"
    assert parse_qs(parts.query) == {"api-version": ["2024-10-21"]}


@pytest.mark.parametrize("model", ["..", "."])
def test_azure_dot_segment_deployment_is_refused(model):
    rule = make_rule("azure", name=None, options={"azure_instance": "res"})
    refused(upstream, rule, {"model": model, "messages": USER})


def test_azure_templated_deployment():
    rule = make_rule(
        "azure", name=None, options={"azure_instance": "res", "azure_deployment_id": "$(uri_captures.dep)"}
    )
    c = call(rule, {"messages": USER}, captures={"dep": "gpt-4o"})
    assert urlsplit(build_upstream(rule, c).url).path == "/openai/deployments/gpt-4o/chat/completions"
    c = call(rule, {"messages": USER}, captures={"dep": "../admin"})
    assert urlsplit(build_upstream(rule, c).url).path == "/openai/deployments/..%2Fadmin/chat/completions"


def test_azure_body_is_the_openai_body():
    rule = make_rule("azure", name="gpt-4", options={"azure_deployment_id": "d", "max_tokens": 512, "temperature": 0.5})
    body = up_body(rule, {"messages": USER, "seed": 7, "response_format": {"type": "json_object"}})
    assert body == {
        "messages": USER,
        "model": "gpt-4",
        "seed": 7,
        "response_format": {"type": "json_object"},
        "max_tokens": 512,
        "temperature": 0.5,
        "stream": False,
    }


def test_azure_response_passes_through():
    rule = make_rule("azure")
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "prompt_filter_results": [{"prompt_index": 0}],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
    assert respond(rule, response) == (200, response)


# ==============================================================================================================
# OpenAI passthrough and the shared request checks (exchange.prepare_call)
# ==============================================================================================================


def test_openai_passthrough_keeps_unknown_fields():
    rule = make_rule("openai", name=None)
    body = {
        "model": "gpt-4o",
        "messages": USER,
        "seed": 1,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "logprobs": True,
        "n": 3,
        "x_vendor_extension": {"keep": ["me"]},
        "reasoning_effort": "low",
    }
    up = upstream(rule, body)
    assert up.url == "https://api.openai.com/v1/chat/completions"
    assert up.body == {**body, "stream": False}


def test_openai_completions_url_and_override():
    rule = make_rule("openai", name="gpt-3.5-turbo-instruct", route=COMPLETIONS)
    up = upstream(rule, {"prompt": "x"})
    assert up.url == "https://api.openai.com/v1/completions"
    assert up.body == {"prompt": "x", "model": "gpt-3.5-turbo-instruct", "stream": False}
    rule = make_rule("openai", route=COMPLETIONS, options={"upstream_url": "http://127.0.0.1:9000"})
    assert upstream(rule, {"prompt": "x"}).url == "http://127.0.0.1:9000/v1/completions"


@pytest.mark.parametrize(
    ("options", "client_fields", "expected"),
    [
        ({"max_tokens": 512}, {"max_tokens": 10}, {"max_tokens": 512}),
        ({"max_tokens": 512}, {}, {"max_tokens": 512}),
        ({"max_tokens": 512}, {"max_completion_tokens": 10}, {"max_completion_tokens": 512}),
        ({"temperature": 0.5}, {"temperature": 1.9}, {"temperature": 0.5}),
        ({"top_p": 0.3}, {"top_p": 1}, {"top_p": 0.3}),
        ({"top_k": 7}, {"top_k": 40}, {}),  # OpenAI refuses top_k: a rule's top_k never reaches it
        ({}, {"temperature": 1.9, "max_tokens": 10}, {"temperature": 1.9, "max_tokens": 10}),
    ],
)
def test_openai_rule_tuning_overrides_the_client(options, client_fields, expected):
    rule = make_rule("openai", name="gpt-4o", options=options)
    body = up_body(rule, {"messages": USER, **client_fields})
    assert {k: body[k] for k in expected} == expected
    if "top_k" in options:
        assert "top_k" not in body
    if "max_completion_tokens" in expected:
        assert "max_tokens" not in body  # o-series models refuse max_tokens: keep the client's field


@pytest.mark.parametrize("provider", ["openai", "anthropic", "azure"])
def test_configured_model_wins(provider):
    rule = make_rule(provider, name="configured-model")
    assert call(rule, {"messages": USER}).model == "configured-model"
    assert call(rule, {"model": "configured-model", "messages": USER}).model == "configured-model"
    assert call(rule, {"model": "", "messages": USER}).model == "configured-model"
    err = refused(call, rule, {"model": "gpt-4o", "messages": USER})
    assert err.param == "model"
    assert "gpt-4o" in err.message and "configured-model" in err.message


def test_client_model_used_when_none_configured():
    rule = make_rule("openai", name=None)
    assert up_body(rule, {"model": "gpt-4o-mini", "messages": USER})["model"] == "gpt-4o-mini"
    rule = make_rule("anthropic", name=None)
    assert up_body(rule, {"model": "claude-haiku-4-5", "messages": USER})["model"] == "claude-haiku-4-5"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_no_model_anywhere_is_400(provider):
    assert refused(call, make_rule(provider, name=None), {"messages": USER}).param == "model"


def test_templated_model_from_a_header():
    rule = make_rule("anthropic", name="$(headers.x-model)")
    assert call(rule, {"messages": USER}, headers={"x-model": "claude-opus"}).model == "claude-opus"
    err = refused(call, rule, {"messages": USER})
    assert "$(headers.x-model)" in err.message


@pytest.mark.parametrize(
    ("policy", "client_stream", "outcome"),
    [
        ("allow", None, False),
        ("allow", False, False),
        ("allow", True, True),
        ("deny", None, False),
        ("deny", False, False),
        ("deny", True, 400),
        ("always", None, True),
        ("always", False, True),
        ("always", True, True),
    ],
)
def test_response_streaming_policy(policy, client_stream, outcome):
    rule = make_rule("openai", name="gpt-4o", response_streaming=policy)
    body: dict[str, Any] = {"messages": USER}
    if client_stream is not None:
        body["stream"] = client_stream
    if outcome == 400:
        err = refused(call, rule, body)
        assert (err.param, err.code) == ("stream", "streaming_denied")
        return
    c = call(rule, body)
    assert c.stream is outcome
    up = build_upstream(rule, c)
    assert up.body is not None and up.body["stream"] is outcome
    assert up.headers["accept"] == ("text/event-stream" if outcome else "application/json")


def test_body_size_limit():
    rule = make_rule("openai", name="gpt-4o", max_request_body_size=200)
    body = {"messages": [{"role": "user", "content": "x" * 150}]}
    size = len(json.dumps(body).encode())
    assert size <= 200
    call(rule, body)  # at or under the limit: fine
    big = {"messages": [{"role": "user", "content": "x" * 250}]}
    err = refused(call, rule, big, status=413)
    assert "200" in err.message


def test_body_size_is_checked_before_parsing():
    rule = make_rule("openai", name="gpt-4o", max_request_body_size=10)
    err = refused(prepare_call, rule, {}, client(raw=b"this is not json and it is long"), status=413)
    assert err.code == "request_too_large"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.x+json",
        "text/json",
        "",
    ],
)
def test_json_content_types_accepted(content_type):
    call(make_rule("openai", name="gpt-4o"), {"messages": USER}, content_type=content_type)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_other_content_types_are_400(content_type):
    err = refused(call, make_rule("openai", name="gpt-4o"), {"messages": USER}, content_type=content_type)
    assert err.code == "unsupported_media_type"


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"{'single': 'quotes'}", b"\xff\xfe"])
def test_invalid_json_is_400(raw):
    err = refused(prepare_call, make_rule("openai", name="gpt-4o"), {}, client(raw=raw))
    assert err.code == "invalid_json"


CHAT_BODY_ERRORS = [
    # (id, body, param)
    ("array", [1, 2], None),
    ("string", "hello", None),
    ("no-messages", {"segassem": USER}, "messages"),
    ("messages-empty", {"messages": []}, "messages"),
    ("messages-object", {"messages": {"role": "user"}}, "messages"),
    ("message-not-object", {"messages": ["hi"]}, "messages[0]"),
    ("bad-role", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ("no-content", {"messages": [{"role": "user"}]}, "messages[0].content"),
    ("content-number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("part-without-type", {"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0]"),
    ("model-number", {"messages": USER, "model": 4}, "model"),
    ("stream-string", {"messages": USER, "stream": "yes"}, "stream"),
    ("temperature-string", {"messages": USER, "temperature": "hot"}, "temperature"),
    ("max-tokens-bool", {"messages": USER, "max_tokens": True}, "max_tokens"),
    ("max-tokens-float", {"messages": USER, "max_tokens": 1.5}, "max_tokens"),
    ("stop-number", {"messages": USER, "stop": 3}, "stop"),
    ("stop-list-of-numbers", {"messages": USER, "stop": [1]}, "stop"),
    ("stream-options", {"messages": USER, "stream_options": True}, "stream_options"),
]


@pytest.mark.parametrize(("body", "param"), [c[1:] for c in CHAT_BODY_ERRORS], ids=[c[0] for c in CHAT_BODY_ERRORS])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_invalid_chat_bodies_are_400(provider, body, param):
    assert refused(call, make_rule(provider), body).param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tpmorp": "x"}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"messages": USER}, "prompt"),
    ],
)
def test_invalid_completions_bodies_are_400(body, param):
    assert refused(call, make_rule("openai", route=COMPLETIONS), body).param == param


def test_missing_env_is_500_before_anything_else():
    spec = {
        "name": "needs-key",
        "match": {"host": "h"},
        "model": {"provider": "anthropic", "name": "c"},
        "auth": {"header_name": "x-api-key", "header_value": "${NOT_SET_ANYWHERE}"},
    }
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={})
    err = refused(call, rule, {"messages": USER}, status=500)
    assert "NOT_SET_ANYWHERE" in err.message


def test_openai_response_passes_through_and_bad_shape_is_502():
    rule = make_rule("openai", name="gpt-4o")
    good = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "system_fingerprint": "fp_1",
    }
    assert respond(rule, good) == (200, good)
    status, data = respond(rule, {"object": "chat.completion", "choices": "nope"})
    assert_envelope(status, data, 502)


def test_client_body_is_not_mutated():
    rule = make_rule(options={"max_tokens": 100, "temperature": 0.1})
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "user", "content": "v"}]
    body = {"messages": messages, "temperature": 1.5}
    snapshot = json.loads(json.dumps(body))
    c = prepare_call(rule, {}, client(body))
    provider_for(rule).build_request(c)
    assert c.body["messages"] == snapshot["messages"]
