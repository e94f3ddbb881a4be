"""The pure request/response pipeline: prepare_call -> build_upstream -> translate_response, per provider.

Rules are built with load_rules_text, so every test also exercises the configuration a user would write.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call, UpstreamRequest
from addon.rules import Rule, load_rules_text

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
USER = [{"role": "user", "content": "Hi"}]


def make_rule(provider: str = "anthropic", name: str | None = "claude-test", route: str = CHAT, **extra: Any) -> Rule:
    options = extra.pop("options", {})
    if provider == "azure" and "azure_instance" not in options and "upstream_url" not in options:
        options = {"azure_instance": "my-resource", **options}
    spec: dict[str, Any] = {
        "name": "r",
        "match": {"host": "llm.internal"},
        "route_type": route,
        "model": {"provider": provider, "name": name, "options": options},
        **extra,
    }
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={})
    return rule


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


# ==============================================================================================================
# Anthropic: requests
# ==============================================================================================================


def test_anthropic_plain_chat_request():
    up = upstream(make_rule(), {"messages": [{"role": "system", "content": "Be terse."}, *USER]})
    assert up.url == "https://api.anthropic.com/v1/messages"
    assert up.method == "POST"
    assert up.headers["anthropic-version"] == "2023-06-01"
    assert up.headers["content-type"] == "application/json"
    assert up.body == {
        "model": "claude-test",
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4096,
        "stream": False,
    }


def test_anthropic_version_and_url_from_options():
    rule = make_rule(options={"anthropic_version": "2024-01-01", "upstream_url": "http://127.0.0.1:9000"})
    up = upstream(rule, {"messages": USER})
    assert up.url == "http://127.0.0.1:9000/v1/messages"  # a bare host gets the provider's path
    assert up.headers["anthropic-version"] == "2024-01-01"
    rule = make_rule(options={"upstream_url": "http://127.0.0.1:9000/custom/messages?beta=1"})
    assert upstream(rule, {"messages": USER}).url == "http://127.0.0.1:9000/custom/messages?beta=1"


def test_system_and_developer_become_top_level_system():
    body = up_body(
        make_rule(),
        {
            "messages": [
                {"role": "system", "content": "One."},
                {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": "Three."},
            ]
        },
    )
    assert body["system"] == "One.\n\nTwo.\n\nThree."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])


def test_no_system_key_without_system_messages():
    assert "system" not in up_body(make_rule(), {"messages": USER})


def test_system_message_with_an_image_is_refused():
    messages = [
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}]},
        *USER,
    ]
    err = refused(upstream, make_rule(), {"messages": messages})
    assert err.param == "messages[0]"


def test_consecutive_same_role_messages_merge():
    body = up_body(
        make_rule(),
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": "d"},
                {"role": "user", "content": "e"},
            ]
        },
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
        {"role": "user", "content": "e"},
    ]


def test_empty_text_is_dropped_and_an_empty_conversation_refused():
    body = up_body(make_rule(), {"messages": [{"role": "user", "content": ""}, {"role": "user", "content": "x"}]})
    assert body["messages"] == [{"role": "user", "content": "x"}]
    err = refused(upstream, make_rule(), {"messages": [{"role": "system", "content": "only system"}]})
    assert err.param == "messages"


def test_tool_round_trip_mapping():
    body = up_body(
        make_rule(),
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Lyon?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Lyon", "days": [1, 2]}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "19C"}]},
                {"role": "user", "content": "And tomorrow?"},
            ]
        },
    )
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Lyon", "days": [1, 2]}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "22C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "19C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_tool_results_come_first_even_after_user_text():
    body = up_body(
        make_rule(),
        {
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "user", "content": "by the way"},
                {"role": "tool", "tool_call_id": "t1", "content": "done"},
            ]
        },
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
    }
    assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "text"]


def test_invalid_tool_call_arguments_are_refused():
    messages = [
        *USER,
        {"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{not json"}}]},
        {"role": "tool", "tool_call_id": "t", "content": "x"},
    ]
    err = refused(upstream, make_rule(), {"messages": messages})
    assert err.param == "messages[1].tool_calls[0]"


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}),
        ("data:image/jpeg;base64,/9j/4AAQ", {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}),
        ("https://example.com/cat.png", {"type": "url", "url": "https://example.com/cat.png"}),
    ],
)
def test_image_parts(url, source):
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]
    body = up_body(make_rule(), {"messages": [{"role": "user", "content": content}]})
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image", "source": source}]}
    ]


@pytest.mark.parametrize(
    "url",
    ["data:image/png,rawbytes", "data:text/plain;base64,aGk=", "ftp://example.com/x.png", "file:///etc/passwd", None],
)
def test_bad_image_urls_are_refused(url):
    content = [{"type": "image_url", "image_url": {"url": url}}]
    err = refused(upstream, make_rule(), {"messages": [{"role": "user", "content": content}]})
    assert err.param == "messages[0].content[0]"


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "video_url", "video_url": {"url": "https://x"}},
    ],
)
def test_unsupported_content_parts_are_refused(part):
    content = [{"type": "text", "text": "hi"}, part]
    err = refused(upstream, make_rule(), {"messages": [{"role": "user", "content": content}]})
    assert err.param == "messages[0].content[1]"
    assert part["type"] in err.message


def test_function_role_is_refused():
    messages = [*USER, {"role": "function", "name": "f", "content": "x"}]
    err = refused(upstream, make_rule(), {"messages": messages})
    assert err.param == "messages[1].role"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("logit_bias", {"50256": -100}),
        ("presence_penalty", 0.5),
        ("frequency_penalty", -1),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("prediction", {"type": "content", "content": "x"}),
    ],
)
def test_unsupported_parameters_are_refused(key, value):
    err = refused(upstream, make_rule(), {"messages": USER, key: value})
    assert err.param == key
    assert key in err.message


def test_neutral_values_of_unsupported_parameters_are_accepted_and_dropped():
    body = up_body(
        make_rule(),
        {"messages": USER, "n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0.0, "audio": None},
    )
    for key in ("n", "logprobs", "presence_penalty", "frequency_penalty", "audio"):
        assert key not in body


@pytest.mark.parametrize(("given", "sent"), [(0, 0.0), (0.3, 0.3), (1, 1.0), (1.7, 1.0), (2, 1.0)])
def test_temperature_is_clamped_to_anthropic_range(given, sent):
    assert up_body(make_rule(), {"messages": USER, "temperature": given})["temperature"] == sent


def test_sampling_stop_and_user_mapping():
    body = up_body(make_rule(), {"messages": USER, "top_p": 0.8, "top_k": 5, "stop": "END", "user": "user-42"})
    assert body["top_p"] == 0.8
    assert body["top_k"] == 5
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    for key in ("stop", "user", "temperature"):
        assert key not in body
    body = up_body(make_rule(), {"messages": USER, "stop": ["a", "b"]})
    assert body["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize(
    ("client_fields", "rule_max", "expected"),
    [
        ({}, None, 4096),
        ({"max_tokens": 77}, None, 77),
        ({"max_completion_tokens": 99}, None, 99),
        ({"max_tokens": 10, "max_completion_tokens": 99}, None, 99),
        ({"max_tokens": 10}, 512, 512),
        ({"max_completion_tokens": 10}, 512, 512),
        ({}, 512, 512),
    ],
)
def test_max_tokens(client_fields, rule_max, expected):
    options = {"max_tokens": rule_max} if rule_max else {}
    body = up_body(make_rule(options=options), {"messages": USER, **client_fields})
    assert body["max_tokens"] == expected
    assert "max_completion_tokens" not in body


def test_rule_tuning_overrides_the_client():
    rule = make_rule(options={"temperature": 0.2, "top_p": 0.5, "top_k": 3})
    body = up_body(rule, {"messages": USER, "temperature": 0.9, "top_p": 0.9, "top_k": 50})
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.5, 3)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tools_mapping():
    bare = {"type": "function", "function": {"name": "ping"}}
    body = up_body(make_rule(), {"messages": USER, "tools": [WEATHER_TOOL, bare]})
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize("tool", [{"type": "function"}, {"type": "function", "function": {"description": "x"}}, "f"])
def test_malformed_tools_are_refused(tool):
    err = refused(upstream, make_rule(), {"messages": USER, "tools": [WEATHER_TOOL, tool]})
    assert err.param == "tools[1]"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"type": "tool", "name": "get_weather"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"tool_choice": "auto", "parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"tool_choice": "required", "parallel_tool_calls": False}, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": False},
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        ({"parallel_tool_calls": True}, None),
        ({}, None),
    ],
)
def test_tool_choice_mapping(fields, expected):
    body = up_body(make_rule(), {"messages": USER, "tools": [WEATHER_TOOL], **fields})
    assert body.get("tool_choice") == expected


@pytest.mark.parametrize("choice", ["none", "auto"])
def test_harmless_tool_choice_without_tools_is_dropped(choice):
    # Anthropic answers 400 to a tool_choice without tools.
    body = up_body(make_rule(), {"messages": USER, "tool_choice": choice, "parallel_tool_calls": False})
    assert "tool_choice" not in body and "tools" not in body


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "f"}}])
def test_forced_tool_choice_without_tools_is_refused(choice):
    assert refused(upstream, make_rule(), {"messages": USER, "tool_choice": choice}).param == "tool_choice"


def test_unknown_tool_choice_is_refused():
    body = {"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "sometimes"}
    assert refused(upstream, make_rule(), body).param == "tool_choice"


def test_json_schema_without_a_schema_is_refused():
    err = refused(upstream, make_rule(), {"messages": USER, "response_format": {"type": "json_schema"}})
    assert err.param == "response_format"


def test_text_response_format_is_fine():
    assert "response_format" not in up_body(make_rule(), {"messages": USER, "response_format": {"type": "text"}})


# ---- completions route ----------------------------------------------------------------------------------------


def test_completions_use_the_messages_api_by_default():
    up = upstream(make_rule(route=COMPLETIONS), {"prompt": "Say hi", "max_tokens": 20, "stop": ["\n"]})
    assert up.url == "https://api.anthropic.com/v1/messages"
    assert up.body == {
        "model": "claude-test",
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 20,
        "stop_sequences": ["\n"],
        "stream": False,
    }


@pytest.mark.parametrize(
    "options", [{"upstream_path": "/v1/complete"}, {"upstream_url": "http://127.0.0.1:9000/v1/complete"}]
)
def test_completions_legacy_endpoint(options):
    rule = make_rule(name="claude-2.1", route=COMPLETIONS, options=options)
    up = upstream(rule, {"prompt": "Why is the sky blue?", "max_tokens": 300, "temperature": 0.4})
    assert urlsplit(up.url).path == "/v1/complete"
    assert up.body == {
        "model": "claude-2.1",
        "prompt": "\n\nHuman: Why is the sky blue?\n\nAssistant:",
        "max_tokens_to_sample": 300,
        "temperature": 0.4,
        "stream": False,
    }


def test_legacy_endpoint_defaults_max_tokens_to_sample():
    rule = make_rule(route=COMPLETIONS, options={"upstream_path": "/v1/complete"})
    body = up_body(rule, {"prompt": "x"})
    assert body["max_tokens_to_sample"] == 4096
    assert "max_tokens" not in body and "messages" not in body


def test_chat_on_the_legacy_endpoint_builds_a_human_assistant_prompt():
    rule = make_rule(options={"upstream_path": "/v1/complete"})
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    body = up_body(rule, {"messages": messages})
    assert body["prompt"] == "Be kind.\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:"


@pytest.mark.parametrize("prompt", [["one", "two"], [[1, 2, 3]], [1, 2]])
def test_batched_or_token_prompts_are_refused(prompt):
    assert refused(upstream, make_rule(route=COMPLETIONS), {"prompt": prompt}).param == "prompt"


def test_single_element_prompt_list_is_fine():
    body = up_body(make_rule(route=COMPLETIONS), {"prompt": ["just one"]})
    assert body["messages"] == [{"role": "user", "content": "just one"}]


# ==============================================================================================================
# Anthropic: responses
# ==============================================================================================================


def anthropic_message(content: list[dict[str, Any]], stop_reason: str | None = "end_turn", **extra: Any) -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7},
        **extra,
    }


def test_text_response():
    status, data = respond(
        make_rule(), anthropic_message([{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}])
    )
    assert status == 200
    assert data["object"] == "chat.completion"
    assert data["id"] == "msg_01"
    assert data["model"] == "claude-sonnet-4-5-20250929"
    assert isinstance(data["created"], int) and data["created"] > 0
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["message"] == {"role": "assistant", "content": "Hello!"}
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def test_model_falls_back_to_the_requested_one_and_id_is_generated():
    message = anthropic_message([{"type": "text", "text": "x"}])
    del message["model"], message["id"]
    _, data = respond(make_rule(), message)
    assert data["model"] == "claude-test"
    assert data["id"].startswith("chatcmpl-")


def test_tool_use_response():
    content = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Lyon", "units": ["C"]}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
    ]
    _, data = respond(make_rule(), anthropic_message(content, "tool_use"))
    (choice,) = data["choices"]
    message = choice["message"]
    assert choice["finish_reason"] == "tool_calls"
    assert message["content"] == "Checking."
    calls = message["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        ("toolu_1", "function", "get_weather"),
        ("toolu_2", "function", "now"),
    ]
    for c, block in zip(calls, content[1:], strict=True):
        assert isinstance(c["function"]["arguments"], str)  # OpenAI's arguments are a JSON string
        assert json.loads(c["function"]["arguments"]) == block["input"]


def test_tool_use_only_response_has_null_content():
    content = [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]
    _, data = respond(make_rule(), anthropic_message(content, "tool_use"))
    message = data["choices"][0]["message"]
    assert message["content"] is None
    assert len(message["tool_calls"]) == 1


def test_thinking_becomes_reasoning_content():
    content = [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "xyz"},
        {"type": "text", "text": "42"},
    ]
    _, data = respond(make_rule(), anthropic_message(content))
    message = data["choices"][0]["message"]
    assert message["content"] == "42"
    assert message["reasoning_content"] == "Let me think."


def test_no_reasoning_content_without_thinking():
    _, data = respond(make_rule(), anthropic_message([{"type": "text", "text": "x"}]))
    assert "reasoning_content" not in data["choices"][0]["message"]
    assert "tool_calls" not in data["choices"][0]["message"]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_stop_reason_mapping(stop_reason, finish_reason):
    _, data = respond(make_rule(), anthropic_message([{"type": "text", "text": "x"}], stop_reason))
    assert data["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"input_tokens": 10, "output_tokens": 5},
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        ),
        (
            {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        ),
        (
            {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100},
            {
                "prompt_tokens": 130,
                "completion_tokens": 5,
                "total_tokens": 135,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
        ),
        (
            {"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": 40, "cache_read_input_tokens": None},
            {"prompt_tokens": 43, "completion_tokens": 1, "total_tokens": 44},
        ),
    ],
)
def test_usage_mapping(usage, expected):
    _, data = respond(make_rule(), anthropic_message([{"type": "text", "text": "x"}], usage=usage))
    assert data["usage"] == expected


@pytest.mark.parametrize(
    "usage", [None, {}, {"foo": 1}, {"input_tokens": "10", "output_tokens": 5}, {"input_tokens": 1}, [1, 2], "x"]
)
def test_missing_or_malformed_usage_is_left_out(usage):
    message = anthropic_message([{"type": "text", "text": "x"}], usage=usage)
    status, data = respond(make_rule(), message)
    assert status == 200
    assert "usage" not in data
    assert data["choices"][0]["message"]["content"] == "x"


def test_completions_route_response_via_messages_api():
    status, data = respond(
        make_rule(route=COMPLETIONS), anthropic_message([{"type": "text", "text": "Paris."}], "max_tokens")
    )
    assert status == 200
    assert data["object"] == "text_completion"
    (choice,) = data["choices"]
    assert choice == {"index": 0, "text": "Paris.", "logprobs": None, "finish_reason": "length"}
    assert data["usage"]["total_tokens"] == 19


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"), [("stop_sequence", "stop"), ("max_tokens", "length"), (None, "stop")]
)
def test_legacy_completion_response(stop_reason, finish_reason):
    rule = make_rule(route=COMPLETIONS, options={"upstream_path": "/v1/complete"})
    legacy = {
        "type": "completion",
        "id": "compl_1",
        "completion": " Hello!",
        "stop_reason": stop_reason,
        "model": "claude-2.1",
    }
    status, data = respond(rule, legacy)
    assert status == 200
    assert data["object"] == "text_completion"
    assert data["model"] == "claude-2.1"
    assert data["choices"][0]["text"] == " Hello!"
    assert data["choices"][0]["finish_reason"] == finish_reason
    assert "usage" not in data  # the legacy API reports no tokens


def test_legacy_completion_on_chat_route():
    rule = make_rule(options={"upstream_path": "/v1/complete"})
    status, data = respond(rule, {"completion": " Hi", "stop_reason": "stop_sequence", "model": "claude-2.1"})
    assert status == 200
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": " Hi"}
    assert data["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"null",
        b"[]",
        b'"a string"',
        b'{"nothing_object": {"and_an_array": [1]}}',
        b'{"content": "not a list"}',
        b'{"completion": 42}',
        b'{"type": "message", "content": [',
    ],
)
def test_malformed_upstream_body_is_502(raw):
    for rule in (make_rule(), make_rule(route=COMPLETIONS), make_rule("openai"), make_rule("azure")):
        status, data = respond(rule, raw)
        err = assert_envelope(status, data, 502)
        assert err["code"] == "bad_upstream_response"


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


def test_anthropic_stream_request_matches_the_provider_capability():
    rule = make_rule()
    provider = provider_for(rule)
    if provider.supports_streaming:
        c = call(rule, {"messages": USER, "stream": True})
        assert c.stream is True
        assert build_upstream(rule, c).body["stream"] is True  # type: ignore[index]
    else:
        err = refused(call, rule, {"messages": USER, "stream": True})
        assert (err.param, err.code) == ("stream", "streaming_unsupported")


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
