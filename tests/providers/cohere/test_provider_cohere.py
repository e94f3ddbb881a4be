"""Cohere, pure core: OpenAI requests -> Cohere v2 /v2/chat (default) or v1 /v1/chat, /v1/generate; responses,
errors and streams (v2 SSE, v1 NDJSON) -> OpenAI. Streams are fed whole, in 1-byte pieces and split in two at
every byte offset, and must give the same OpenAI events each time.

Kong's cohere fixtures (../shared/conformance/kong, skipped when absent) are compared on meaning. Where Kong
differs from Cohere's documented semantics (docs/providers.md §6, §11), the documented semantics win:
- system messages become the v1 `preamble` (Kong sends them as USER turns of chat_history);
- /v1/generate `finish_reason: MAX_TOKENS` is `length` (Kong reports every finish as "stop");
- stream usage comes from `meta.tokens` when present (Kong reads `billed_units`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers.cohere import COHERE, GenerationFailed
from addon.rules import Rule
from tests.support.chunks import sse_events
from tests.support.pipeline import call, up_body, upstream
from tests.support.pipeline import refused_request as refused
from tests.support.rules import one_rule

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
USER = [{"role": "user", "content": "Hi"}]
KONG = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "kong"
needs_kong = pytest.mark.skipif(not (KONG / "ai-proxy").is_dir(), reason=f"Kong fixtures not found at {KONG}")


def make_rule(route: str = CHAT, name: str | None = "command-r", **options: Any) -> Rule:
    auth = {"header_name": "Authorization", "header_value": "Bearer co-fake-key"}
    return one_rule("cohere", name, route, options, rule_name="cohere-test", host="cohere.internal", auth=auth)


def request(body: Any) -> ClientRequest:
    return ClientRequest({}, {}, "application/json", json.dumps(body).encode())


def respond(rule: Rule, data: Any, status: int = 200, ctype: str = "application/json") -> tuple[int, dict[str, Any]]:
    body = {"messages": USER} if rule.spec.route_type == CHAT else {"prompt": "Hi"}
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return translate_response(provider_for(rule), call(rule, body), status, raw, ctype)


# ==============================================================================================================
# Requests: v2 (default)
# ==============================================================================================================


def test_v2_is_the_default_with_openai_like_messages():
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "What is 1 + 1?"},
        {"role": "assistant", "content": "2"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": [{"type": "text", "text": "And 2 + 2?"}]},
    ]
    up = upstream(make_rule(), {"messages": messages})
    assert up.url == "https://api.cohere.com/v2/chat"
    assert up.method == "POST"
    assert up.body == {
        "model": "command-r",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is 1 + 1?"},
            {"role": "assistant", "content": "2"},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "text", "text": "And 2 + 2?"}]},
        ],
        "stream": False,
    }
    assert "authorization" not in {k.lower() for k in up.headers}  # the glue injects the rule's key afterwards


def test_v2_sampling_parameters():
    body = up_body(
        make_rule(),
        {
            "messages": USER,
            "max_completion_tokens": 300,
            "temperature": 0.4,
            "top_p": 0.9,
            "top_k": 40,
            "seed": 7,
            "stop": "END",
            "frequency_penalty": 0.5,
            "presence_penalty": 0,
            "user": "end-user-1",
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert body == {
        "model": "command-r",
        "messages": USER,
        "max_tokens": 300,
        "temperature": 0.4,
        "p": 0.9,
        "k": 40,
        "seed": 7,
        "stop_sequences": ["END"],
        "frequency_penalty": 0.5,
        "stream": True,
    }


def test_max_tokens_and_stop_list():
    body = up_body(make_rule(), {"messages": USER, "max_tokens": 12, "stop": ["a", "b"]})
    assert (body["max_tokens"], body["stop_sequences"]) == (12, ["a", "b"])


def test_rule_tuning_overrides_the_client():
    rule = make_rule(max_tokens=99, temperature=0.1, top_p=0.5, top_k=3)
    body = up_body(rule, {"messages": USER, "max_tokens": 500, "temperature": 1.5, "top_p": 1, "top_k": 50})
    assert (body["max_tokens"], body["temperature"], body["p"], body["k"]) == (99, 0.1, 0.5, 3)


@pytest.mark.parametrize("api", ["v2", "v1"])
@pytest.mark.parametrize("top_p, p", [(1, 0.99), (1.0, 0.99), (0, 0.01), (0.5, 0.5)])
def test_cohere_top_p_is_clamped_to_the_documented_range(api: str, top_p: float, p: float):
    """Cohere documents `p` as "min value of 0.01, max value of 0.99" (cohere-python chat and v2 chat); Command R
    refuses 1.0 (aws-samples/bedrock-access-gateway#12). OpenAI's common `top_p: 1` (no nucleus filtering) was
    forwarded as is and the client got a 400; it is now the widest p Cohere takes."""
    body = up_body(make_rule(cohere_api=api), {"messages": USER, "top_p": top_p})
    assert body["p"] == p


def test_client_model_used_when_rule_names_none_and_required_for_v2():
    assert up_body(make_rule(name=None), {"model": "command-a-03-2025", "messages": USER})["model"] == (
        "command-a-03-2025"
    )
    with pytest.raises(ProxyError) as e:
        call(make_rule(name=None), {"messages": USER})
    assert (e.value.status, e.value.param) == (400, "model")


def test_v1_needs_no_model():
    body = up_body(make_rule(name=None, cohere_api="v1"), {"messages": USER})
    assert "model" not in body and body["message"] == "Hi"


@pytest.mark.parametrize(
    ("options", "url"),
    [
        ({"upstream_url": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000/v2/chat"),
        ({"upstream_url": "http://127.0.0.1:9000/"}, "http://127.0.0.1:9000/v2/chat"),
        ({"upstream_url": "http://127.0.0.1:9000/proxy/v2/chat?x=1"}, "http://127.0.0.1:9000/proxy/v2/chat?x=1"),
        ({"upstream_path": "/custom/chat"}, "https://api.cohere.com/custom/chat"),
        ({"upstream_url": "https://api.cohere.ai", "cohere_api": "v1"}, "https://api.cohere.ai/v1/chat"),
    ],
)
def test_upstream_url(options, url):
    assert upstream(make_rule(**options), {"messages": USER}).url == url


def test_streaming_uses_the_same_url():
    # Cohere streams from the same operation (the body says stream): a whole URL is kept as given.
    rule = make_rule(upstream_url="http://127.0.0.1:9000/v2/chat")
    up = upstream(rule, {"messages": USER, "stream": True})
    assert up.url == "http://127.0.0.1:9000/v2/chat" and up.body is not None and up.body["stream"] is True
    assert up.headers["accept"] == "text/event-stream"


def test_v2_images_pass_through_and_other_parts_are_refused():
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    body = up_body(make_rule(), {"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == content
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    err = refused(make_rule(), {"messages": [{"role": "user", "content": [audio]}]})
    assert err.param == "messages[0].content[0]"
    err = refused(make_rule(), {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})
    assert err.param == "messages[0].content[0]"


def test_system_message_with_an_image_is_refused():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    err = refused(make_rule(), {"messages": [{"role": "system", "content": [image]}, *USER]})
    assert err.param == "messages[0].content[0]"


def test_function_role_is_refused():
    err = refused(make_rule(), {"messages": [{"role": "function", "name": "f", "content": "x"}, *USER]})
    assert err.param == "messages[0].role"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_v2_tool_round_trip():
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"X"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "22C"}]},
    ]
    body = up_body(make_rule(), {"messages": messages, "tools": [WEATHER], "tool_choice": "required"})
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == "REQUIRED"
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"X"}'}}
            ],
            "tool_plan": "Let me look.",
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
    ]


def test_strict_tools():
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    body = up_body(make_rule(), {"messages": USER, "tools": [strict]})
    assert body["strict_tools"] is True
    assert "strict" not in body["tools"][0]["function"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tools": [WEATHER]}, None),
        ({"tools": [WEATHER], "tool_choice": "auto"}, None),
        ({"tools": [WEATHER], "tool_choice": "none"}, "NONE"),
        ({"tool_choice": "none"}, None),
        ({"tool_choice": "auto"}, None),
    ],
)
def test_v2_tool_choice(fields, expected):
    assert up_body(make_rule(), {"messages": USER, **fields}).get("tool_choice") == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"tool_choice": "required"},
        {"tools": [WEATHER], "tool_choice": "sometimes"},
        {"tools": [{"type": "function", "function": {}}]},
        {"tools": [{"type": "code_interpreter"}]},
    ],
)
def test_v2_unmappable_tool_requests_are_refused(fields):
    assert refused(make_rule(), {"messages": USER, **fields}).param in ("tool_choice", "tools", "tools[0]")


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}


@pytest.mark.parametrize(
    ("api", "response_format", "expected"),
    [
        ("v2", {"type": "text"}, None),
        ("v2", {"type": "json_object"}, {"type": "json_object"}),
        ("v2", JSON_SCHEMA, {"type": "json_object", "json_schema": SCHEMA}),
        ("v1", {"type": "json_object"}, {"type": "json_object"}),
        ("v1", JSON_SCHEMA, {"type": "json_object", "schema": SCHEMA}),
    ],
)
def test_response_format(api, response_format, expected):
    body = up_body(make_rule(cohere_api=api), {"messages": USER, "response_format": response_format})
    assert body.get("response_format") == expected


@pytest.mark.parametrize(
    "response_format",
    [{"type": "json_schema"}, {"type": "grammar"}, "json", {"type": "json_schema", "json_schema": {}}],
)
def test_bad_response_format_is_refused(response_format):
    assert refused(make_rule(), {"messages": USER, "response_format": response_format}).param == "response_format"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("logit_bias", {"50256": -100}),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("prediction", {"type": "content", "content": "x"}),
        ("functions", [{"name": "f"}]),
        ("function_call", "auto"),
        ("web_search_options", {}),
    ],
)
def test_unsupported_parameters_are_refused(key, value):
    assert refused(make_rule(), {"messages": USER, key: value}).param == key


def test_neutral_values_of_unsupported_parameters_are_accepted_and_dropped():
    neutral = {"n": 1, "logprobs": False, "modalities": ["text"], "metadata": {"a": "b"}, "store": False, "user": "u"}
    body = up_body(make_rule(), {"messages": USER, **neutral})
    assert not set(neutral) & set(body)


# ==============================================================================================================
# Requests: v1
# ==============================================================================================================


@pytest.mark.parametrize(
    "options",
    [
        {"cohere_api": "v1"},
        {"upstream_path": "/v1/chat"},
        {"upstream_url": "http://127.0.0.1:9000/v1/chat"},
        {"upstream_url": "http://127.0.0.1:9000/v1/chat/"},
        {"upstream_url": "http://127.0.0.1:9000", "upstream_path": "/v1/chat"},  # a Kong configuration
    ],
)
def test_v1_chat_is_chosen_by_the_rule(options):
    up = upstream(make_rule(**options), {"messages": USER})
    assert urlsplit(up.url).path.rstrip("/") == "/v1/chat"
    assert up.body == {"model": "command-r", "message": "Hi", "stream": False}


def test_v1_chat_mapping():
    messages = [
        {"role": "system", "content": "You are a mathematician."},
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": "What is 1 + 2?"},
        {"role": "assistant", "content": [{"type": "text", "text": "3"}]},
        {"role": "system", "content": "Now answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "Multiply "}, {"type": "text", "text": "by 2"}]},
    ]
    body = up_body(
        make_rule(cohere_api="v1"),
        {"messages": messages, "max_tokens": 50, "top_p": 0.5, "top_k": 9, "seed": 1, "stop": "x", "stream": True},
    )
    assert body == {
        "model": "command-r",
        "preamble": "You are a mathematician.\n\nBe terse.",
        "chat_history": [
            {"role": "USER", "message": "What is 1 + 2?"},
            {"role": "CHATBOT", "message": "3"},
            {"role": "SYSTEM", "message": "Now answer in French."},
        ],
        "message": "Multiply by 2",
        "max_tokens": 50,
        "p": 0.5,
        "k": 9,
        "seed": 1,
        "stop_sequences": ["x"],
        "stream": True,
    }


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([*USER, {"role": "assistant", "content": "prefill"}], "messages[1].role"),
        ([{"role": "system", "content": "only a system prompt"}], "messages[0].role"),
        ([{"role": "tool", "tool_call_id": "a", "content": "x"}, *USER], "messages[0].role"),
        (
            [
                {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "function": {"name": "f"}}]},
                *USER,
            ],
            "messages[0].tool_calls",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
            "messages[0].content[0]",
        ),
    ],
)
def test_v1_chat_refuses_what_it_cannot_take(messages, param):
    assert refused(make_rule(cohere_api="v1"), {"messages": messages}).param == param


def test_v1_tool_choice_without_tools_is_refused():
    assert refused(make_rule(cohere_api="v1"), {"messages": USER, "tool_choice": "required"}).param == "tool_choice"


def test_explicit_v2_wins_over_a_v1_path():
    up = upstream(make_rule(cohere_api="v2", upstream_path="/v1/chat"), {"messages": USER})
    assert urlsplit(up.url).path == "/v1/chat" and up.body is not None and up.body["messages"] == USER


# ==============================================================================================================
# Requests: completions route
# ==============================================================================================================


def test_completions_default_to_v2_chat_with_one_user_message():
    up = upstream(make_rule(COMPLETIONS), {"prompt": "Say hi", "max_tokens": 5, "stop": ["\n"]})
    assert up.url == "https://api.cohere.com/v2/chat"
    assert up.body == {
        "model": "command-r",
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 5,
        "stop_sequences": ["\n"],
        "stream": False,
    }


@pytest.mark.parametrize(
    "options",
    [{"cohere_api": "v1"}, {"upstream_path": "/v1/generate"}, {"upstream_url": "http://127.0.0.1:9/v1/generate"}],
)
def test_completions_on_v1_generate(options):
    up = upstream(make_rule(COMPLETIONS, **options), {"prompt": ["Say hi"], "n": 2, "top_k": 5, "temperature": 0})
    assert urlsplit(up.url).path == "/v1/generate"
    assert up.body == {
        "model": "command-r",
        "prompt": "Say hi",
        "num_generations": 2,
        "temperature": 0,
        "k": 5,
        "stream": False,
    }


def test_completions_on_v1_chat():
    body = up_body(make_rule(COMPLETIONS, upstream_path="/v1/chat"), {"prompt": "Say hi"})
    assert body == {"model": "command-r", "message": "Say hi", "stream": False}


@pytest.mark.parametrize(
    ("options", "fields", "param"),
    [
        ({}, {"n": 2}, "n"),  # v2 chat has no n
        ({"cohere_api": "v1"}, {"n": 2, "stream": True}, "n"),  # several generations cannot be streamed
        ({}, {"echo": True}, "echo"),
        ({}, {"suffix": "x"}, "suffix"),
        ({}, {"best_of": 3}, "best_of"),
        ({}, {"logprobs": 2}, "logprobs"),
        ({}, {"prompt": ["a", "b"]}, "prompt"),
        ({}, {"prompt": [1, 2, 3]}, "prompt"),
        ({"cohere_api": "v1"}, {"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_completions_refusals(options, fields, param):
    assert refused(make_rule(COMPLETIONS, **options), {"prompt": "Hi", **fields}).param == param


def test_chat_route_on_v1_generate_is_refused():
    err = refused(make_rule(upstream_path="/v1/generate"), {"messages": USER})
    assert "/v1/generate" in err.message


# ==============================================================================================================
# Responses
# ==============================================================================================================


def tokens(prompt: float, completion: float) -> dict[str, float]:
    return {"input_tokens": prompt, "output_tokens": completion}


def v2_response(content: list[dict[str, Any]], finish: str = "COMPLETE", **extra: Any) -> dict[str, Any]:
    return {
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "finish_reason": finish,
        "message": {"role": "assistant", "content": content, **extra},
        "usage": {
            "billed_units": {"input_tokens": 21, "output_tokens": 9},
            "tokens": {"input_tokens": 186, "output_tokens": 9},
        },
    }


def test_v2_text_response():
    status, data = respond(
        make_rule(), v2_response([{"type": "text", "text": "Hello "}, {"type": "text", "text": "!"}])
    )
    assert status == 200
    assert data["object"] == "chat.completion"
    assert data["id"] == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert data["model"] == "command-r"
    assert data["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello !"}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert data["usage"] == {"prompt_tokens": 186, "completion_tokens": 9, "total_tokens": 195}


def test_v2_thinking_becomes_reasoning_content():
    content = [{"type": "thinking", "thinking": "Hmm."}, {"type": "text", "text": "2"}]
    _, data = respond(make_rule(), v2_response(content))
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "2", "reasoning_content": "Hmm."}


def test_v2_tool_call_response():
    calls = [
        {
            "id": "get_weather_1byjy",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"P"}'},
        },
        {"type": "function", "function": {"name": "other", "arguments": {"a": 1}}},
    ]
    raw = v2_response([], "TOOL_CALL", tool_plan="I will look up the weather.", tool_calls=calls)
    _, data = respond(make_rule(), raw)
    (choice,) = data["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "I will look up the weather."
    assert message["tool_calls"][0] == calls[0]
    second = message["tool_calls"][1]
    assert second["id"].startswith("call_") and second["function"] == {"name": "other", "arguments": '{"a": 1}'}


def test_v2_tool_calls_without_plan_have_null_content():
    calls = [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    _, data = respond(make_rule(), v2_response([], "TOOL_CALL", tool_calls=calls))
    assert data["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR_TOXIC", "content_filter"),
        ("ERROR_LIMIT", "length"),
        ("SOMETHING_NEW", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason_mapping(reason, finish):
    _, v2 = respond(make_rule(), v2_response([{"type": "text", "text": "x"}], reason))
    _, v1 = respond(make_rule(cohere_api="v1"), {"text": "x", "finish_reason": reason})
    assert v2["choices"][0]["finish_reason"] == v1["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("reason", "status"), [("ERROR", 502), ("TIMEOUT", 504), ("USER_CANCEL", 502)])
def test_failed_generation_is_an_error(reason, status):
    raw = v2_response([{"type": "text", "text": "partial"}], reason)
    with pytest.raises(GenerationFailed) as e:
        COHERE.parse_response(call(make_rule(), {"messages": USER}), raw)
    assert e.value.status == status and reason in e.value.message
    # Through the glue: an error envelope, never a 200 with a truncated answer.
    got, data = respond(make_rule(), raw)
    assert got >= 502
    assert set(data) == {"error"} and reason in data["error"]["message"]
    got, data = respond(make_rule(cohere_api="v1"), {"text": "partial", "finish_reason": reason})
    assert got >= 502 and reason in data["error"]["message"]


@pytest.mark.parametrize(
    ("raw_usage", "expected"),
    [
        ({"tokens": tokens(10, 2), "billed_units": tokens(1, 2)}, (10, 2)),
        ({"billed_units": tokens(5.0, 3.0)}, (5, 3)),
        ({"tokens": {"input_tokens": 10}, "billed_units": tokens(4, 1)}, (4, 1)),
        ({"tokens": {"input_tokens": True, "output_tokens": 1}}, None),
        ({}, None),
        (None, None),
        ("12", None),
    ],
)
def test_v2_usage(raw_usage, expected):
    raw = v2_response([{"type": "text", "text": "x"}])
    raw["usage"] = raw_usage
    _, data = respond(make_rule(), raw)
    if expected is None:
        assert "usage" not in data
    else:
        prompt, completion = expected
        assert data["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        assert all(type(v) is int for v in data["usage"].values())


def test_v1_chat_response_and_usage_preference():
    raw = {
        "response_id": "r1",
        "generation_id": "g1",
        "text": "It is 22C.",
        "finish_reason": "COMPLETE",
        "meta": {"billed_units": tokens(21, 5), "tokens": tokens(186, 5)},
        "token_count": {"prompt_tokens": 100, "response_tokens": 5},
    }
    _, data = respond(make_rule(cohere_api="v1"), raw)
    assert data["id"] == "g1"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "It is 22C."}
    assert data["usage"]["prompt_tokens"] == 186
    del raw["meta"]["tokens"]
    assert respond(make_rule(cohere_api="v1"), raw)[1]["usage"]["prompt_tokens"] == 100  # token_count next
    del raw["token_count"]
    assert respond(make_rule(cohere_api="v1"), raw)[1]["usage"]["prompt_tokens"] == 21  # billed units last


def test_completions_route_on_v2():
    _, data = respond(make_rule(COMPLETIONS), v2_response([{"type": "text", "text": "Hi!"}], "MAX_TOKENS"))
    assert data["object"] == "text_completion"
    assert data["choices"] == [{"index": 0, "text": "Hi!", "logprobs": None, "finish_reason": "length"}]
    assert data["usage"]["prompt_tokens"] == 186


def test_generate_response_with_several_generations():
    raw = {
        "id": "gen-1",
        "prompt": "Hi",
        "generations": [
            {"id": "a", "text": "One", "finish_reason": "COMPLETE"},
            {"id": "b", "text": "Two", "finish_reason": "MAX_TOKENS"},
        ],
        "meta": {"billed_units": {"input_tokens": 2, "output_tokens": 6}},
    }
    _, data = respond(make_rule(COMPLETIONS, cohere_api="v1"), raw)
    assert data["id"] == "gen-1" and data["object"] == "text_completion"
    assert [(c["index"], c["text"], c["finish_reason"]) for c in data["choices"]] == [
        (0, "One", "stop"),
        (1, "Two", "length"),
    ]
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b"not json",
        b'{"message": "a string where v2 has an object"}',
        b'{"generations": []}',
        b'{"generations": [{"id": "x"}]}',
        b'{"text": 42}',
        b'{"nothing_object": {}}',
    ],
)
def test_malformed_upstream_body_is_502(raw):
    status, data = respond(make_rule(), raw)
    assert status == 502 and data["error"]["code"] == "bad_upstream_response"


# ==============================================================================================================
# Errors
# ==============================================================================================================


@pytest.mark.parametrize(
    ("status", "out_status", "etype", "code"),
    [
        (400, 400, "invalid_request_error", None),
        (401, 401, "authentication_error", "invalid_api_key"),
        (402, 402, "invalid_request_error", None),
        (404, 404, "not_found_error", None),
        (422, 422, "invalid_request_error", None),
        (429, 429, "rate_limit_error", None),
        (498, 401, "authentication_error", "invalid_api_key"),  # Cohere's "invalid token"
        (499, 499, "invalid_request_error", "request_cancelled"),
        (500, 500, "server_error", None),
        (503, 503, "server_error", None),
        (504, 504, "server_error", None),
    ],
)
def test_cohere_error_bodies_become_the_envelope(status, out_status, etype, code):
    raw = json.dumps({"id": "e-1", "message": f"cohere says {status}"}).encode()
    got, data = respond(make_rule(), raw, status)
    assert got == out_status
    assert data == {"error": {"message": f"cohere says {status}", "type": etype, "param": None, "code": code}}


def test_html_and_empty_error_bodies():
    got, data = respond(make_rule(), b"<html><body><h1>Bad gateway</h1></body></html>", 502, "text/html")
    assert got == 502 and "Bad gateway" in data["error"]["message"] and "<" not in data["error"]["message"]
    got, data = respond(make_rule(), b"", 503)
    assert got == 503 and "empty body" in data["error"]["message"]


# ==============================================================================================================
# Streams
# ==============================================================================================================


def args_delta(fragment: str) -> dict[str, Any]:
    return {
        "type": "tool-call-delta",
        "index": 0,
        "delta": {"message": {"tool_calls": {"function": {"arguments": fragment}}}},
    }


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def v2_stream(pieces: list[str], finish: str = "COMPLETE", **end: Any) -> bytes:
    events = [
        {"id": "a8fc192e", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
    ]
    events += [{"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}} for p in pieces]
    events += [
        {"type": "content-end", "index": 0},
        {
            "type": "message-end",
            "delta": {
                "finish_reason": finish,
                "usage": {
                    "billed_units": {"input_tokens": 21, "output_tokens": 105},
                    "tokens": {"input_tokens": 186, "output_tokens": 105},
                },
                **end,
            },
        },
    ]
    return b"".join(sse(e) for e in events)


PIECES = ["Coca", "-Cola ", "naïve 👋🏽", " end."]
V2_STREAM = v2_stream(PIECES)

V2_TOOL_STREAM = b"".join(
    sse(e)
    for e in [
        {"id": "x", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will add."}}},
        {
            "type": "tool-call-start",
            "index": 0,
            "delta": {
                "message": {
                    "tool_calls": {"id": "add_1", "type": "function", "function": {"name": "add", "arguments": ""}}
                }
            },
        },
        args_delta('{"a"'),
        args_delta(": 1}"),
        {"type": "tool-call-end", "index": 0},
        {
            "type": "tool-call-start",
            "index": 1,
            "delta": {
                "message": {
                    "tool_calls": {"id": "add_2", "type": "function", "function": {"name": "add", "arguments": "{}"}}
                }
            },
        },
        {"type": "tool-call-end", "index": 1},
        {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": {"billed_units": tokens(9, 4)}}},
    ]
)

V2_THINKING_STREAM = b"".join(
    sse(e)
    for e in [
        {"type": "message-start", "delta": {"message": {"role": "assistant"}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}},
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "Let me think."}}}},
        {"type": "content-end", "index": 0},
        {"type": "content-start", "index": 1, "delta": {"message": {"content": {"type": "text", "text": "4"}}}},
        {"type": "citation-start", "index": 0, "delta": {"message": {"citations": {"start": 0, "end": 1}}}},
        {"type": "debug", "prompt": "secret template"},
        {"type": "message-end", "delta": {"finish_reason": "COMPLETE"}},
    ]
)


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def v1_stream(pieces: list[str], finish: str = "COMPLETE") -> bytes:
    return ndjson(
        {"is_finished": False, "event_type": "stream-start", "generation_id": "b1c2"},
        *({"is_finished": False, "event_type": "text-generation", "text": p} for p in pieces),
        {
            "is_finished": True,
            "event_type": "stream-end",
            "finish_reason": finish,
            "response": {
                "response_id": "r",
                "text": "".join(pieces),
                "generation_id": "b1c2",
                "meta": {
                    "billed_units": {"input_tokens": 21, "output_tokens": 5},
                    "tokens": {"input_tokens": 186, "output_tokens": 5},
                },
            },
        },
    )


V1_STREAM = v1_stream(PIECES)

GENERATE_STREAM = ndjson(
    {"event_type": "text-generation", "text": "One, ", "is_finished": False},
    {"event_type": "text-generation", "text": "two", "is_finished": False},
    {
        "event_type": "stream-end",
        "is_finished": True,
        "finish_reason": "MAX_TOKENS",
        "response": {
            "id": "g",
            "generations": [{"id": "a", "text": "One, two", "finish_reason": "MAX_TOKENS"}],
            "meta": {"billed_units": {"input_tokens": 3, "output_tokens": 2}},
        },
    },
)


def split_variants(data: bytes) -> Iterator[list[bytes]]:
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def translate(rule: Rule, pieces: list[bytes], include_usage: bool = False, body: Any = None) -> list[Any]:
    """Feed the pieces to a fresh translator; the OpenAI events it wrote, without their random id and time."""
    if body is None:
        body = {"messages": USER} if rule.spec.route_type == CHAT else {"prompt": "Hi"}
    translator = COHERE.stream_translator(call(rule, {**body, "stream": True}), include_usage, True)
    out = b"".join(translator.feed(p) for p in pieces) + translator.finish()
    return parse_sse(out)


def parse_sse(out: bytes) -> list[Any]:
    return sse_events(out)


def assert_split_invariant(rule: Rule, data: bytes, include_usage: bool = False) -> list[Any]:
    expected = translate(rule, [data], include_usage)
    for pieces in split_variants(data):
        got = translate(rule, pieces, include_usage)
        if got != expected:
            pytest.fail(f"split {[len(p) for p in pieces][:3]}: {got!r:.1500}\n!=\n{expected!r:.1500}")
    return expected


def meaning(events: list[Any]) -> dict[str, Any]:
    """Text, reasoning, tool calls, finish reasons, usage and errors of translated OpenAI events."""
    text, reasoning, finishes, usages, errors, roles = [], [], [], [], [], []
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if e == "[DONE]":
            continue
        if "error" in e:
            errors.append(e["error"])
            continue
        if e.get("usage"):
            usages.append(e["usage"])
        for c in e["choices"]:
            delta = c.get("delta", c)
            if delta.get("role"):
                roles.append(delta["role"])
            text.append(delta.get("content") or delta.get("text") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                slot["name"] = (tc.get("function") or {}).get("name") or slot["name"]
                slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            if c.get("finish_reason"):
                finishes.append(c["finish_reason"])
    return {
        "roles": roles,
        "text": "".join(text),
        "reasoning": "".join(reasoning),
        "tool_calls": calls,
        "finish": finishes,
        "usage": usages,
        "errors": errors,
        "done": events[-1] == "[DONE]" if events else False,
    }


def test_v2_stream_at_every_split():
    events = assert_split_invariant(make_rule(), V2_STREAM, include_usage=True)
    m = meaning(events)
    assert m["roles"] == ["assistant"] and events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert m["text"] == "".join(PIECES)
    assert m["finish"] == ["stop"]
    assert m["usage"] == [{"prompt_tokens": 186, "completion_tokens": 105, "total_tokens": 291}]
    assert events[-2]["choices"] == [] and m["done"] and m["errors"] == []
    assert all(e["object"] == "chat.completion.chunk" and e["model"] == "command-r" for e in events[:-1])


def test_stream_without_include_usage_has_no_usage_chunk_but_records_it():
    rule = make_rule()
    translator = COHERE.stream_translator(call(rule, {"messages": USER, "stream": True}), False, True)
    m = meaning(parse_sse(translator.feed(V2_STREAM) + translator.finish()))
    assert m["usage"] == [] and m["finish"] == ["stop"] and m["done"]
    result = translator.result
    assert result.completed and result.finish_reason == "stop" and result.error is None
    assert result.usage == {"prompt_tokens": 186, "completion_tokens": 105, "total_tokens": 291}
    assert "".join(result.text or []) == "".join(PIECES)
    assert result.first_token_at is not None


def test_v2_tool_call_stream_at_every_split():
    m = meaning(assert_split_invariant(make_rule(), V2_TOOL_STREAM, include_usage=True))
    assert m["text"] == "I will add."
    assert m["tool_calls"] == {
        0: {"id": "add_1", "name": "add", "arguments": '{"a": 1}'},
        1: {"id": "add_2", "name": "add", "arguments": "{}"},
    }
    assert m["finish"] == ["tool_calls"]
    assert m["usage"] == [{"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}]


def test_v2_thinking_stream_and_ignored_events():
    m = meaning(assert_split_invariant(make_rule(), V2_THINKING_STREAM))
    assert (m["reasoning"], m["text"], m["finish"], m["errors"]) == ("Let me think.", "4", ["stop"], [])


def test_v2_stream_tolerates_a_done_sentinel_and_crlf():
    data = V2_STREAM.replace(b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n"
    m = meaning(assert_split_invariant(make_rule(), data))
    assert (m["text"], m["finish"], m["errors"]) == ("".join(PIECES), ["stop"], [])


def test_v1_stream_at_every_split():
    rule = make_rule(cohere_api="v1")
    m = meaning(assert_split_invariant(rule, V1_STREAM, include_usage=True))
    assert m["roles"] == ["assistant"]
    assert (m["text"], m["finish"], m["errors"], m["done"]) == ("".join(PIECES), ["stop"], [], True)
    assert m["usage"] == [{"prompt_tokens": 186, "completion_tokens": 5, "total_tokens": 191}]


def test_v1_stream_with_blank_lines_crlf_and_a_bom():
    data = b"\xef\xbb\xbf\r\n" + V1_STREAM.replace(b"\n", b"\r\n\r\n")
    m = meaning(assert_split_invariant(make_rule(cohere_api="v1"), data))
    assert (m["text"], m["finish"], m["errors"]) == ("".join(PIECES), ["stop"], [])


def test_v1_stream_served_as_sse_is_understood_too():
    data = b"".join(b"data: " + line + b"\n\n" for line in V1_STREAM.splitlines())
    m = meaning(assert_split_invariant(make_rule(cohere_api="v1"), data))
    assert (m["text"], m["finish"], m["errors"]) == ("".join(PIECES), ["stop"], [])


def test_generate_stream_at_every_split():
    rule = make_rule(COMPLETIONS, cohere_api="v1")
    events = assert_split_invariant(rule, GENERATE_STREAM, include_usage=True)
    assert all(e["object"] == "text_completion" for e in events[:-1])
    m = meaning(events)
    assert m["roles"] == []
    assert (m["text"], m["finish"]) == ("One, two", ["length"])
    assert m["usage"] == [{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}]


def test_older_generate_stream_without_event_types():
    data = ndjson(
        {"text": "Hel", "is_finished": False},
        {"text": "lo", "is_finished": False},
        {"is_finished": True, "finish_reason": "COMPLETE", "response": {"id": "g", "generations": []}},
    )
    m = meaning(assert_split_invariant(make_rule(COMPLETIONS, cohere_api="v1"), data))
    assert (m["text"], m["finish"], m["errors"]) == ("Hello", ["stop"], [])


def test_completions_stream_on_v2():
    events = assert_split_invariant(make_rule(COMPLETIONS), V2_STREAM)
    assert all(e["object"] == "text_completion" for e in events[:-1])
    assert meaning(events)["text"] == "".join(PIECES)


# ---- mid-stream errors --------------------------------------------------------------------------------------


def assert_error_ends_stream(rule: Rule, data: bytes, text: str, fragment: str) -> dict[str, Any]:
    events = assert_split_invariant(rule, data)
    m = meaning(events)
    assert m["text"] == text
    assert m["finish"] == [] and not m["done"]
    (err,) = m["errors"]
    assert "error" in events[-1]  # the stream ends with the error event
    assert set(err) == {"message", "type", "param", "code"} and fragment in err["message"], err
    return err


@pytest.mark.parametrize(("reason", "status"), [("ERROR", 502), ("TIMEOUT", 504)])
def test_v2_failed_generation_mid_stream(reason, status):
    data = v2_stream(["Par", "tial"], reason, error="model overloaded")
    err = assert_error_ends_stream(make_rule(), data, "Partial", reason)
    assert "model overloaded" in err["message"] and err["code"] == "generation_failed"
    translator = COHERE.stream_translator(call(make_rule(), {"messages": USER, "stream": True}), False, False)
    translator.feed(data)
    translator.finish()
    assert translator.result.error is not None and translator.result.error.status == status
    assert not translator.result.completed


def test_v1_failed_generation_mid_stream():
    assert_error_ends_stream(make_rule(cohere_api="v1"), v1_stream(["Par", "tial"], "ERROR"), "Partial", "ERROR")


def test_v1_error_events_mid_stream():
    start = v1_stream(["Par", "tial"]).splitlines(keepends=True)[:3]
    rule = make_rule(COMPLETIONS, cohere_api="v1")
    err = {"event_type": "stream-error", "is_finished": True, "finish_reason": "ERROR", "err": "internal failure"}
    assert_error_ends_stream(rule, b"".join(start) + ndjson(err), "Partial", "internal failure")
    assert_error_ends_stream(rule, b"".join(start) + ndjson({"message": "quota exceeded"}), "Partial", "quota")


@pytest.mark.parametrize(
    ("rule_options", "data", "fragment"),
    [
        ({}, V2_STREAM[: V2_STREAM.index(b"event: message-end")], "ended before message-end"),
        ({"cohere_api": "v1"}, V1_STREAM[: V1_STREAM.rindex(b"\n{") + 1], "ended before stream-end"),
        ({"cohere_api": "v1"}, V1_STREAM[:-30], "malformed"),  # a last line cut in the middle
        ({"cohere_api": "v1"}, V1_STREAM[:100] + b"\nnot json\n", "malformed"),
        ({}, V2_STREAM[:200] + b"\n\ndata: {not json}\n\n", "not JSON"),
        ({}, b'event: error\ndata: {"message": "upstream exploded"}\n\n', "upstream exploded"),
    ],
)
def test_broken_streams_end_with_an_error_event(rule_options, data, fragment):
    events = assert_split_invariant(make_rule(**rule_options), data)
    m = meaning(events)
    assert not m["done"] and m["finish"] == []
    assert len(m["errors"]) == 1 and fragment in m["errors"][0]["message"]


def test_empty_stream_is_an_error():
    (event,) = translate(make_rule(), [b"", b"\n"])
    assert "without any event" in event["error"]["message"]


def test_nothing_after_the_end_is_translated():
    data = V2_STREAM + sse({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "late"}}}})
    m = meaning(assert_split_invariant(make_rule(), data))
    assert m["text"] == "".join(PIECES) and m["done"]


# ==============================================================================================================
# Kong's fixtures (in place, meaning for meaning)
# ==============================================================================================================

# Kong's unit-test configuration for cohere: the values its expected upstream bodies show.
KONG_UNIT_OPTIONS = {
    "chat": {"max_tokens": 512, "temperature": 0.5, "top_p": 1.0},
    "completions": {"max_tokens": 512, "temperature": 0.5, "top_p": 0.75, "top_k": 5},
}


def kong_json(*parts: str) -> Any:
    return json.loads((KONG / "ai-proxy" / Path(*parts)).read_text(encoding="utf-8"))


def kong_rule(route: str, name: str | None = "command", **options: Any) -> Rule:
    return make_rule(CHAT if route == "chat" else COMPLETIONS, name, cohere_api="v1", **options)


@needs_kong
@pytest.mark.parametrize("route", ["chat", "completions"])
def test_kong_unit_requests_on_v1(route):
    rule = kong_rule(route, **KONG_UNIT_OPTIONS[route])
    up = upstream(rule, kong_json("unit", "requests", f"llm-v1-{route}.json"))
    expected = kong_json("unit", "expected-requests", "cohere", f"llm-v1-{route}.json")
    assert urlsplit(up.url).path == ("/v1/chat" if route == "chat" else "/v1/generate")
    if route == "chat":
        # Kong sends the system message as a USER turn; Cohere documents `preamble` for it.
        first = expected["chat_history"].pop(0)
        assert first == {"role": "USER", "message": "You are a mathematician."}
        expected["preamble"] = first["message"]
    if expected.get("p") == 1.0:
        expected["p"] = 0.99  # Kong forwards top_p 1.0; Cohere documents p in [0.01, 0.99] and refuses 1.0
    assert up.body == expected


@needs_kong
@pytest.mark.parametrize("route", ["chat", "completions"])
def test_kong_unit_requests_on_v2_keep_their_meaning(route):
    rule = make_rule(CHAT if route == "chat" else COMPLETIONS, "command", **KONG_UNIT_OPTIONS[route])
    client_body = kong_json("unit", "requests", f"llm-v1-{route}.json")
    body = up_body(rule, client_body)
    expected = kong_json("unit", "expected-requests", "cohere", f"llm-v1-{route}.json")
    if expected.get("p") == 1.0:
        expected["p"] = 0.99  # Kong forwards top_p 1.0; Cohere documents p in [0.01, 0.99] and refuses 1.0
    for key in ("model", "max_tokens", "temperature", "p", "k", "stream"):
        assert body.get(key) == expected.get(key), key
    if route == "chat":
        assert body["messages"] == [
            {"role": m["role"], "content": m["content"]} for m in client_body["messages"]
        ]  # roles and texts as the client sent them
    else:
        assert body["messages"] == [{"role": "user", "content": client_body["prompt"]}]


@needs_kong
@pytest.mark.parametrize("route", ["chat", "completions"])
def test_kong_unit_responses(route):
    rule = kong_rule(route, **KONG_UNIT_OPTIONS[route])
    raw = (KONG / "ai-proxy" / "unit" / "real-responses" / "cohere" / f"llm-v1-{route}.json").read_bytes()
    expected = kong_json("unit", "expected-responses", "cohere", f"llm-v1-{route}.json")
    status, data = respond(rule, raw)
    assert status == 200, data
    (choice,) = data["choices"]
    (kong_choice,) = expected["choices"]
    assert (data["object"], data["model"], data["id"]) == (expected["object"], expected["model"], expected["id"])
    assert data["usage"] == expected["usage"]
    if route == "chat":
        assert choice["message"] == kong_choice["message"]
        assert choice["finish_reason"] == kong_choice["finish_reason"] == "stop"
    else:
        assert choice["text"] == kong_choice["text"]
        # The generation reports MAX_TOKENS: OpenAI's word for it is "length" (Kong says "stop").
        assert choice["finish_reason"] == "length"


@needs_kong
@pytest.mark.parametrize("name", ["good.json", "good-stream.json", "good_own_model.json", "bad_request.json"])
def test_kong_chat_request_fixtures(name):
    # Kong's integration tests configure model "command", max_tokens 256, temperature 1.0 and a /v1/chat upstream.
    raw = (KONG / "ai-proxy" / "cohere" / "llm-v1-chat" / "requests" / name).read_bytes()
    client_body = json.loads(raw)
    rule = kong_rule("chat", max_tokens=256, temperature=1.0, upstream_path="/v1/chat")
    if name == "bad_request.json":
        with pytest.raises(ProxyError) as e:
            prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw))
        assert (e.value.status, e.value.message) == (400, "'messages' is a required property")
        return
    if name == "good_own_model.json":
        with pytest.raises(ProxyError) as e:
            prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw))
        assert (e.value.status, e.value.param) == (400, "model")
        rule = kong_rule("chat", None, max_tokens=256, temperature=1.0, upstream_path="/v1/chat")
    up = build_upstream(rule, prepare_call(rule, {}, ClientRequest({}, {}, "application/json", raw)))
    assert up.url == "https://api.cohere.com/v1/chat"
    assert up.body == {
        "model": client_body.get("model", "command"),
        "preamble": "You are a helpful assistant.",
        "message": "What is 1 + 1?",
        "max_tokens": 256,
        "temperature": 1.0,
        "stream": bool(client_body.get("stream")),
    }


@needs_kong
def test_kong_completions_request_fixtures():
    folder = KONG / "ai-proxy" / "cohere" / "llm-v1-completions" / "requests"
    rule = kong_rule("completions", max_tokens=256, temperature=1.0)
    body = up_body(rule, json.loads((folder / "good.json").read_bytes()))
    assert body == {
        "model": "command",
        "prompt": "What are you?",
        "max_tokens": 256,
        "temperature": 1.0,
        "stream": False,
    }
    with pytest.raises(ProxyError) as e:
        call(rule, json.loads((folder / "bad_request.json").read_bytes()))
    assert (e.value.status, e.value.param) == (400, "prompt")


@needs_kong
@pytest.mark.parametrize(
    ("route", "name", "status", "check"),
    [
        ("chat", "good.json", 200, {"text": "The sum of 1 + 1 is 2.", "usage": (102, 258)}),
        ("chat", "bad_request.json", 400, {"message": "bad request", "type": "invalid_request_error"}),
        ("chat", "unauthorized.json", 401, {"message": "invalid api token", "type": "authentication_error"}),
        ("chat", "internal_server_error.html", 500, {"message_part": "Fake Internal Server", "type": "server_error"}),
        ("chat", "bad_upstream_response.json", 200, {"status": 502, "code": "bad_upstream_response"}),
        ("completions", "good.json", 200, {"text": "1 + 1 is 2.", "usage": (0, 0)}),
        ("completions", "bad_request.json", 400, {"message": "Invalid request", "type": "invalid_request_error"}),
        ("completions", "unauthorized.json", 401, {"message": "invalid api token", "type": "authentication_error"}),
    ],
)
def test_kong_response_fixtures(route, name, status, check):
    path = KONG / "ai-proxy" / "cohere" / f"llm-v1-{route}" / "responses" / name
    ctype = "text/html" if name.endswith(".html") else "application/json"
    got, data = respond(kong_rule(route), path.read_bytes(), status, ctype)
    if "text" in check:
        assert got == 200
        (choice,) = data["choices"]
        assert (choice.get("message") or {}).get("content", choice.get("text")) == check["text"]
        assert choice["finish_reason"] == "stop"
        prompt, completion = check["usage"]
        assert data["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return
    assert set(data) == {"error"} and set(data["error"]) == {"message", "type", "param", "code"}
    if "code" in check:
        assert (got, data["error"]["code"]) == (check["status"], check["code"])
        return
    assert got == status and data["error"]["type"] == check["type"]
    if "message" in check:
        assert data["error"]["message"] == check["message"]
    else:
        assert check["message_part"] in data["error"]["message"] and "<" not in data["error"]["message"]


@needs_kong
def test_kong_json_mode_response_text_is_kept_verbatim():
    raw = (KONG / "ai-proxy" / "cohere" / "request-transformer" / "response-in-json.json").read_bytes()
    _, data = respond(kong_rule("chat"), raw)
    content = data["choices"][0]["message"]["content"]
    assert content == json.loads(raw)["text"]
    assert json.loads(content)["persons"][1] == {"name": "Kong B", "age": 84}


@needs_kong
@pytest.mark.parametrize("route", ["chat", "completions"])
def test_kong_real_stream_frames(route):
    data = (KONG / "ai-proxy" / "unit" / "real-stream-frames" / "cohere" / f"llm-v1-{route}.txt").read_bytes()
    rule = kong_rule(route)
    body = {"messages": USER, "stream": True} if route == "chat" else {"prompt": "Hi", "stream": True}
    for pieces in split_variants(data):
        translator = COHERE.stream_translator(call(rule, body), False, False)
        events = parse_sse(b"".join(translator.feed(p) for p in pieces))
        assert meaning(events)["text"] == "the answer"
        assert meaning(events)["roles"] == (["assistant"] if route == "chat" else [])


@needs_kong
def test_kong_streaming_wire_fixture():
    folder = KONG / "extracted-from-spec" / "09-streaming"
    wire = (folder / "cohere_llm_v1_chat_good.wire.txt").read_bytes()
    writes = [c.encode() for c in json.loads((folder / "cohere_llm_v1_chat_good.chunks.json").read_text())]
    assert b"".join(writes) == wire
    rule = kong_rule("chat", upstream_path="/v1/chat")
    expected = assert_split_invariant(rule, wire, include_usage=True)
    assert translate(rule, writes, include_usage=True) == expected  # the mock server's own writes
    m = meaning(expected)
    final = json.loads(wire.strip().splitlines()[-1])
    assert m["text"] == final["response"]["text"] == "1 + 1 = 2. This is the most basic example of addition."
    assert (m["finish"], m["errors"], m["done"]) == (["stop"], [], True)
    # Documented preference: meta.tokens (68 in) over billed_units (57 in), which Kong reads.
    assert m["usage"] == [{"prompt_tokens": 68, "completion_tokens": 123, "total_tokens": 191}]
