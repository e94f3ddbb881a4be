"""Anthropic through the pure pipeline: the Messages (and legacy /v1/complete) request body built from an OpenAI
request, and the answer translated back (moved from tests/test_providers.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from addon.exchange import build_upstream, provider_for
from tests.support.pipeline import (
    COMPLETIONS,
    USER,
    assert_envelope,
    call,
    make_rule,
    refused,
    respond,
    up_body,
    upstream,
)

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
                "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 20, "cache_write_tokens": 20},
            },
        ),
        (
            {"input_tokens": 3, "output_tokens": 1, "cache_creation_input_tokens": 40, "cache_read_input_tokens": None},
            {
                "prompt_tokens": 43,
                "completion_tokens": 1,
                "total_tokens": 44,
                "prompt_tokens_details": {"cache_creation_tokens": 40, "cache_write_tokens": 40},
            },
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
