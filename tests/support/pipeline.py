"""Builders for the pure request/response pipeline tests: prepare_call -> build_upstream -> translate_response.

Rules are built with load_rules_text, so every test also exercises the configuration a user would write. The
default rule is an Anthropic one (claude-test); pass another provider by name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call, UpstreamRequest
from addon.rules import Rule
from tests.support.rules import one_rule

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
USER = [{"role": "user", "content": "Hi"}]


def make_rule(provider: str = "anthropic", name: str | None = "claude-test", route: str = CHAT, **extra: Any) -> Rule:
    options = extra.pop("options", {})
    if provider == "azure" and "azure_instance" not in options and "upstream_url" not in options:
        options = {"azure_instance": "my-resource", **options}
    return one_rule(provider, name, route, options, **extra)


def client(
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> ClientRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return ClientRequest(headers or {}, query or {}, content_type, data)


def call(rule: Rule, body: Any, captures: dict[str, str] | None = None, **kw: Any) -> Call:
    return prepare_call(rule, captures or {}, client(body, **kw))


def upstream(rule: Rule, body: Any, **kw: Any) -> UpstreamRequest:
    return build_upstream(rule, call(rule, body, **kw))


def up_body(rule: Rule, body: Any, **kw: Any) -> dict[str, Any]:
    up = upstream(rule, body, **kw)
    assert up.body is not None
    return up.body


def refused(fn, *args: Any, status: int = 400, **kw: Any) -> ProxyError:
    with pytest.raises(ProxyError) as e:
        fn(*args, **kw)
    assert e.value.status == status, e.value.message
    envelope = e.value.envelope()
    assert set(envelope) == {"error"}
    assert set(envelope["error"]) == {"message", "type", "param", "code"}
    assert isinstance(envelope["error"]["message"], str) and envelope["error"]["message"]
    return e.value


def refused_request(rule: Rule, body: Any, status: int = 400) -> ProxyError:
    """The error that building the upstream request for `body` raises (a 400 unless `status`), enveloped."""
    return refused(upstream, rule, body, status=status)


def respond(rule: Rule, data: Any, *, body: Any = None, status: int = 200) -> tuple[int, dict[str, Any]]:
    request = body if body is not None else ({"messages": USER} if rule.spec.route_type == CHAT else {"prompt": "Hi"})
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return translate_response(provider_for(rule), call(rule, request), status, raw, "application/json")


def assert_envelope(status: int, data: dict[str, Any], expected_status: int) -> dict[str, Any]:
    assert status == expected_status
    assert set(data) == {"error"}
    err = data["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    return err


def image_messages(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


# A final assistant message (prefill) ending in whitespace.
PREFILL = [*USER, {"role": "assistant", "content": "Sure, here it is:\n "}]
