"""Kong Gateway's ai-proxy fixtures, run in place from ../shared/conformance/kong (skipped when absent).

We compare on meaning, not bytes (see ../shared/conformance/kong/README.md):
- requests: model, max tokens, temperature, top_p, stream flag, system text, and every message's role and text
  (or the legacy prompt). We also check we send no field Kong does not. Deliberately not compared: the leading
  "\\n\\n" of the legacy Anthropic prompt. Kong sends "Human: ...", but /v1/complete documents (and requires)
  "\\n\\nHuman: ..." (docs/providers.md §3.6), so we send that.
- responses: object type, role, text, model, finish_reason, and usage when present. Kong leaves Anthropic's
  stop reasons unmapped ("stop_sequence", "end_turn"). We map them to OpenAI's vocabulary, so Kong's value is
  mapped before comparing. Ids and `created` are not compared: Anthropic sends no `created` and the Kong fixture
  has no id, so both are generated.
- Kong has no Azure-specific llm-v1 fixtures: Azure speaks the OpenAI format, so the OpenAI ones are run through
  an Azure rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.openai_format import FINISH_REASONS
from addon.rules import Rule
from tests.support.rules import one_rule

KONG = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "kong"
FIXTURES = KONG / "ai-proxy"
if not FIXTURES.is_dir():
    pytest.skip(f"Kong conformance fixtures not found at {KONG}", allow_module_level=True)

UNIT = FIXTURES / "unit"
PROVIDERS = ("openai", "azure", "anthropic")
ROUTES = ("chat", "completions")
# Kong's finish reasons where it does not map to OpenAI's vocabulary.
KONG_FINISH_REASONS = {"stop_sequence": "stop", "end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def rule_for(provider: str, route: str, model: str | None, options: dict[str, Any]) -> Rule:
    return one_rule(
        provider, model, f"llm/v1/{route}", options, rule_name=f"kong-{provider}-{route}", host="kong.internal"
    )


def client(body: bytes, query: dict[str, str] | None = None) -> ClientRequest:
    return ClientRequest({"content-type": "application/json"}, query or {}, "application/json", body)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


# ==============================================================================================================
# unit/: requests -> expected-requests, real-responses -> expected-responses
# ==============================================================================================================

# Configured like Kong's unit tests: the model names and options its expected upstream bodies show.
UNIT_RULES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("openai", "chat"): ("gpt-4", {"max_tokens": 512, "temperature": 0.5}),
    ("openai", "completions"): ("gpt-3.5-turbo-instruct", {"max_tokens": 512, "temperature": 0.5}),
    ("azure", "chat"): (
        "gpt-4",
        {
            "max_tokens": 512,
            "temperature": 0.5,
            "top_p": 1,
            "azure_instance": "001-kong-t",
            "azure_deployment_id": "gpt-4",
        },
    ),
    ("azure", "completions"): (
        "gpt-3.5-turbo-instruct",
        {
            "max_tokens": 512,
            "temperature": 0.5,
            "top_p": 1,
            "azure_instance": "001-kong-t",
            "azure_deployment_id": "gpt-3.5-custom",
        },
    ),
    ("anthropic", "chat"): ("claude-2.1", {"max_tokens": 512, "temperature": 0.5}),
    ("anthropic", "completions"): (
        "claude-2.1",
        {"max_tokens": 512, "temperature": 0.5, "upstream_path": "/v1/complete"},
    ),
}
UNIT_CASES = [pytest.param(p, r, id=f"{p}-{r}") for p in PROVIDERS for r in ROUTES]


def request_meaning(body: dict[str, Any]) -> dict[str, Any]:
    """What an upstream request body means, independent of field order and prompt framing."""
    max_tokens = body.get("max_tokens", body.get("max_tokens_to_sample", body.get("max_completion_tokens")))
    meaning: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": max_tokens,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "stream": bool(body.get("stream")),
    }
    if "messages" in body:
        meaning["system"] = body.get("system")
        meaning["messages"] = [(m["role"], text_of(m.get("content"))) for m in body["messages"]]
    if "prompt" in body:
        meaning["prompt"] = body["prompt"].lstrip("\n")
    return meaning


@pytest.mark.parametrize(("provider", "route"), UNIT_CASES)
def test_unit_request_translation(provider, route):
    model, options = UNIT_RULES[provider, route]
    rule = rule_for(provider, route, model, options)
    request = (UNIT / "requests" / f"llm-v1-{route}.json").read_bytes()
    expected = read_json(UNIT / "expected-requests" / provider / f"llm-v1-{route}.json")

    up = build_upstream(rule, prepare_call(rule, {}, client(request)))
    assert up.body is not None
    assert request_meaning(up.body) == request_meaning(expected)
    assert set(up.body) == set(expected), "fields beyond (or short of) what Kong sends"

    parts = urlsplit(up.url)
    if provider == "openai":
        assert up.url == f"https://api.openai.com/v1/{'chat/completions' if route == 'chat' else 'completions'}"
    elif provider == "azure":
        operation = "chat/completions" if route == "chat" else "completions"
        assert parts.hostname == "001-kong-t.openai.azure.com"
        assert parts.path == f"/openai/deployments/{options['azure_deployment_id']}/{operation}"
        assert parse_qs(parts.query)["api-version"]
    else:
        assert parts.hostname == "api.anthropic.com"
        assert parts.path == ("/v1/messages" if route == "chat" else "/v1/complete")
        assert up.headers["anthropic-version"]
        if route == "completions":
            # The legacy API's documented framing, which Kong leaves out.
            assert up.body["prompt"].startswith("\n\nHuman: ")
            assert up.body["prompt"].endswith("\n\nAssistant:")


def test_unit_chat_request_system_message_lifted_for_anthropic():
    rule = rule_for("anthropic", "chat", *UNIT_RULES["anthropic", "chat"])
    request = read_json(UNIT / "requests" / "llm-v1-chat.json")
    up = build_upstream(rule, prepare_call(rule, {}, client(json.dumps(request).encode())))
    assert up.body is not None
    system = [m["content"] for m in request["messages"] if m["role"] == "system"]
    assert up.body["system"] == "\n\n".join(system)
    assert [m["content"] for m in up.body["messages"]] == [
        m["content"] for m in request["messages"] if m["role"] != "system"
    ]


def test_unit_prompt_template_request_is_not_a_completions_body():
    # Kong's prompt-template plugin input: `prompt` is an object, which the completions route refuses.
    rule = rule_for("openai", "completions", *UNIT_RULES["openai", "completions"])
    with pytest.raises(ProxyError) as e:
        prepare_call(rule, {}, client((UNIT / "requests" / "llm-v1-completion-template.json").read_bytes()))
    assert e.value.status == 400
    assert e.value.param == "prompt"


def response_meaning(data: dict[str, Any]) -> dict[str, Any]:
    (choice,) = data["choices"]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    return {
        "object": data.get("object"),
        "model": data.get("model"),
        "role": message.get("role") if "message" in choice else None,
        "text": message.get("content") if "message" in choice else choice.get("text"),
        "finish_reason": KONG_FINISH_REASONS.get(finish, finish),
    }


@pytest.mark.parametrize(("provider", "route"), UNIT_CASES)
def test_unit_response_translation(provider, route):
    model, options = UNIT_RULES[provider, route]
    rule = rule_for(provider, route, model, options)
    request = (UNIT / "requests" / f"llm-v1-{route}.json").read_bytes()
    real = (UNIT / "real-responses" / provider / f"llm-v1-{route}.json").read_bytes()
    expected = read_json(UNIT / "expected-responses" / provider / f"llm-v1-{route}.json")

    call = prepare_call(rule, {}, client(request))
    status, ours = translate_response(provider_for(rule), call, 200, real, "application/json")
    assert status == 200, ours
    assert response_meaning(ours) == response_meaning(expected)
    assert ours["choices"][0]["finish_reason"] in FINISH_REASONS  # OpenAI's vocabulary only
    assert ours["choices"][0]["index"] == 0
    if "usage" in expected:
        assert ours["usage"] == expected["usage"]
    elif "usage" in ours:
        # Kong drops Anthropic's usage; ours comes from the provider's own counts.
        raw_usage = json.loads(real)["usage"]
        assert ours["usage"]["prompt_tokens"] == raw_usage["input_tokens"]
        assert ours["usage"]["completion_tokens"] == raw_usage["output_tokens"]
        assert ours["usage"]["total_tokens"] == raw_usage["input_tokens"] + raw_usage["output_tokens"]


# ==============================================================================================================
# <provider>/llm-v1-{chat,completions}/{requests,responses}/
# ==============================================================================================================

# Configured like Kong's integration tests: a configured model, max_tokens 256, temperature 1.0.
FIXTURE_RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("gpt-3.5-turbo", {"max_tokens": 256, "temperature": 1.0}),
    "azure": ("gpt-3.5-turbo", {"max_tokens": 256, "temperature": 1.0, "azure_instance": "001-kong-t"}),
    "anthropic": ("claude-2.1", {"max_tokens": 256, "temperature": 1.0}),
}
# Where each provider's fixtures live: Azure speaks OpenAI's format and has none of its own.
FIXTURE_DIRS = {"openai": "openai", "azure": "openai", "anthropic": "anthropic"}
BAD_REQUEST_MESSAGES = {
    "chat": "'messages' is a required property",
    "completions": "you must provide a 'prompt' parameter",
}


def fixture_rule(provider: str, route: str, *, configured_model: bool = True) -> Rule:
    model, options = FIXTURE_RULES[provider]
    if provider == "anthropic" and route == "completions":
        options = {**options, "upstream_path": "/v1/complete"}  # the fixtures are legacy text completions
    return rule_for(provider, route, model if configured_model else None, options)


def fixture_files(kind: str, pattern: str) -> list[Any]:
    params = []
    for provider in PROVIDERS:
        for route in ROUTES:
            folder = FIXTURES / FIXTURE_DIRS[provider] / f"llm-v1-{route}" / kind
            for path in sorted(folder.glob(pattern)):
                params.append(pytest.param(provider, route, path, id=f"{provider}-{route}-{path.name}"))
    return params


REQUEST_FILES = fixture_files("requests", "*.json")
RESPONSE_FILES = fixture_files("responses", "*")


def test_fixture_sets_are_present():
    # Guards against a silent no-op if the fixture layout changes.
    assert len(REQUEST_FILES) >= 20
    assert len(RESPONSE_FILES) >= 25


def check_meaning_kept(provider: str, request: dict[str, Any], body: dict[str, Any]) -> None:
    if "prompt" in request:
        assert request["prompt"] in body["prompt"]
        return
    if provider in ("openai", "azure"):
        assert body["messages"] == request["messages"]
        return
    system = "\n\n".join(text_of(m["content"]) for m in request["messages"] if m["role"] == "system")
    assert body.get("system", "") == system
    sent = [(m["role"], text_of(m["content"])) for m in body["messages"]]
    assert sent == [(m["role"], text_of(m["content"])) for m in request["messages"] if m["role"] != "system"]


@pytest.mark.parametrize(("provider", "route", "path"), REQUEST_FILES)
def test_fixture_request(provider, route, path):
    raw = path.read_bytes()
    request = json.loads(raw)
    rule = fixture_rule(provider, route)

    if path.stem == "bad_request":
        with pytest.raises(ProxyError) as e:
            prepare_call(rule, {}, client(raw))
        assert e.value.status == 400
        assert e.value.message == BAD_REQUEST_MESSAGES[route]  # the words OpenAI itself uses
        assert e.value.envelope()["error"]["type"] == "invalid_request_error"
        return

    if request.get("model"):
        # A client may not pick another model than the rule's ...
        with pytest.raises(ProxyError) as e:
            prepare_call(rule, {}, client(raw))
        assert (e.value.status, e.value.param) == (400, "model")
        # ... and gets its own when the rule names none.
        rule = fixture_rule(provider, route, configured_model=False)
        expected_model = request["model"]
    else:
        expected_model = FIXTURE_RULES[provider][0]

    if request.get("stream") and not provider_for(rule).supports_streaming:
        with pytest.raises(ProxyError) as e:
            prepare_call(rule, {}, client(raw))
        assert (e.value.status, e.value.code) == (400, "streaming_unsupported")
        return

    call = prepare_call(rule, {}, client(raw))
    assert call.model == expected_model
    assert call.stream is bool(request.get("stream"))
    up = build_upstream(rule, call)
    assert up.body is not None
    assert up.body["model"] == expected_model
    assert up.body["stream"] is call.stream
    # The rule's tuning wins over the client's (Kong semantics).
    assert up.body["temperature"] == FIXTURE_RULES[provider][1]["temperature"]
    assert up.body.get("max_tokens", up.body.get("max_tokens_to_sample")) == 256
    check_meaning_kept(provider, request, up.body)


# OpenAI's richer request fixtures, translated to Anthropic: what each must become.
OPENAI_CHAT = FIXTURES / "openai" / "llm-v1-chat" / "requests"
TO_ANTHROPIC = [
    ("good.json", {"system": "You are a helpful assistant.", "tool_choice": None, "tools": None}),
    ("good_own_model.json", {"model": "try-to-override-the-model"}),
    ("tool_choice_auto.json", {"tool_choice": {"type": "auto"}, "tool_names": ["get_current_weather"]}),
    ("tool_choice_none.json", {"tool_choice": None, "tools": None}),  # no tools: Anthropic refuses a bare choice
    ("tool_choice_required.json", {"tool_choice": {"type": "any"}, "tool_names": ["get_current_weather"]}),
    ("tool_choice_object_function.json", {"tool_choice": {"type": "tool", "name": "my_function"}}),
    ("good_multi_modal.json", {"user_blocks": ["text", "image"]}),
]


@pytest.mark.parametrize(("name", "expect"), TO_ANTHROPIC, ids=[c[0] for c in TO_ANTHROPIC])
def test_openai_request_fixtures_through_anthropic(name, expect):
    path = OPENAI_CHAT / name
    if not path.is_file():
        pytest.skip(f"{path} not in this fixture set")
    request = read_json(path)
    rule = fixture_rule("anthropic", "chat", configured_model=False)
    if not request.get("model"):
        rule = fixture_rule("anthropic", "chat")
    body = build_upstream(rule, prepare_call(rule, {}, client(path.read_bytes()))).body
    assert body is not None
    if "model" in expect:
        assert body["model"] == expect["model"]
    if "system" in expect:
        assert body["system"] == expect["system"]
    if "tool_choice" in expect:
        assert body.get("tool_choice") == expect["tool_choice"]
    if "tools" in expect:
        assert body.get("tools") == expect["tools"]
    if "tool_names" in expect:
        assert [t["name"] for t in body["tools"]] == expect["tool_names"]
        for tool, original in zip(body["tools"], request["tools"], strict=True):
            assert tool["input_schema"] == original["function"]["parameters"]
    if "user_blocks" in expect:
        (user,) = [m for m in body["messages"] if m["role"] == "user"]
        assert [b["type"] for b in user["content"]] == expect["user_blocks"]
        image = user["content"][1]["source"]
        original = request["messages"][1]["content"][1]["image_url"]["url"]
        assert image == {"type": "url", "url": original}


def test_openai_stream_with_functions_fixture_through_anthropic():
    path = OPENAI_CHAT / "good-stream-with-functions.json"
    if not path.is_file():
        pytest.skip(f"{path} not in this fixture set")
    rule = fixture_rule("anthropic", "chat")
    if not provider_for(rule).supports_streaming:
        with pytest.raises(ProxyError) as e:
            prepare_call(rule, {}, client(path.read_bytes()))
        assert e.value.code == "streaming_unsupported"
        return
    body = build_upstream(rule, prepare_call(rule, {}, client(path.read_bytes()))).body
    assert body is not None and body["stream"] is True
    assert [t["name"] for t in body["tools"]] == ["add", "multiply"]
    assert "n" not in body  # n=1 is neutral


# ---- responses ------------------------------------------------------------------------------------------------

# The HTTP status Kong's mock upstream answers each response fixture with.
RESPONSE_STATUS = {
    "good": 200,
    "bad_upstream_response": 200,
    "malformed_usage_response": 200,
    "no_usage_response": 200,
    "bad_request": 400,
    "unauthorized": 401,
    "internal_server_error": 500,
}


def fixture_text(provider: str, raw: dict[str, Any]) -> str:
    if provider == "anthropic":
        if "completion" in raw:
            return raw["completion"]
        return "".join(b["text"] for b in raw["content"] if b.get("type") == "text")
    choice = raw["choices"][0]
    return choice["message"]["content"] if "message" in choice else choice["text"]


def fixture_finish(provider: str, raw: dict[str, Any]) -> str:
    if provider == "anthropic":
        return KONG_FINISH_REASONS.get(raw["stop_reason"], raw["stop_reason"])
    return raw["choices"][0]["finish_reason"]


def fixture_usage(provider: str, raw: dict[str, Any]) -> dict[str, int] | None:
    usage = raw.get("usage")
    if not isinstance(usage, dict):
        return None
    if provider != "anthropic":
        return usage
    if not {"input_tokens", "output_tokens"} <= set(usage):
        return None
    prompt, completion = usage["input_tokens"], usage["output_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@pytest.mark.parametrize(("provider", "route", "path"), RESPONSE_FILES)
def test_fixture_response(provider, route, path):
    assert path.stem in RESPONSE_STATUS, f"unclassified fixture {path.name}: say what the mock answers it with"
    upstream_status = RESPONSE_STATUS[path.stem]
    raw = path.read_bytes()
    content_type = "text/html" if path.suffix == ".html" else "application/json"
    rule = fixture_rule(provider, route)
    request = {"messages": [{"role": "user", "content": "What is 1 + 1?"}]} if route == "chat" else {"prompt": "Hi"}
    call = prepare_call(rule, {}, client(json.dumps(request).encode()))

    status, data = translate_response(provider_for(rule), call, upstream_status, raw, content_type)

    if upstream_status >= 400:
        assert status == upstream_status
        assert set(data) == {"error"}
        err = data["error"]
        assert set(err) == {"message", "type", "param", "code"}
        if path.suffix == ".html":
            assert "Fake Internal Server Error" in err["message"]
            assert "<" not in err["message"]
            assert err["type"] == "server_error"
        else:
            upstream_error = json.loads(raw)["error"]
            assert err["message"] == upstream_error["message"]
            assert err["type"] == upstream_error["type"]
        return

    if path.stem == "bad_upstream_response":
        assert status == 502
        assert data["error"]["code"] == "bad_upstream_response"
        return

    fixture = json.loads(raw)
    assert status == 200, data
    assert data["object"] == ("chat.completion" if route == "chat" else "text_completion")
    (choice,) = data["choices"]
    if route == "chat":
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"] == fixture_text(provider, fixture)
    else:
        assert choice["text"] == fixture_text(provider, fixture)
    assert choice["finish_reason"] == fixture_finish(provider, fixture)
    assert choice["finish_reason"] in FINISH_REASONS
    assert data["model"] == fixture["model"]
    usage = fixture_usage(provider, fixture)
    if usage is None:
        assert "usage" not in data  # malformed or absent upstream usage: left out, never invented
    else:
        assert data["usage"] == usage
