"""The Responses client format, pure: requests decoded into the standard request (and refused naming the field),
answers encoded as `response` objects the openai SDK validates, and every provider's stream written as Responses
events — split at every byte offset, each event validated against the SDK's own types and accumulated by the SDK's
own `responses.stream()` state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from addon.errors import ProxyError
from addon.formats import RESPONSES, format_for, standard_route_type
from addon.formats.responses import errors
from addon.providers import REGISTRY, Call
from addon.spec import ModelOptions
from addon.stream_bridge import client_translator
from addon.streams import SSEDecoder
from tests.support import replies
from tests.support.fakes import STREAM_PIECES, anthropic_stream, openai_stream

ROUTE = "llm/v1/responses"
CHAT = "llm/v1/chat"
EVENT = TypeAdapter(ResponseStreamEvent)


def decode(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    dropped: list[str] = []
    return RESPONSES.decode(ROUTE, "/v1/responses", {"model": "gpt-5", "input": "hi", **body}, dropped), dropped


def test_the_route_type_picks_the_format_and_the_standard_route() -> None:
    assert format_for("openai", ROUTE) is RESPONSES and standard_route_type(ROUTE) == CHAT
    assert standard_route_type(CHAT) == CHAT


def test_a_conversation_with_tools_maps_item_by_item() -> None:
    body, dropped = decode(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "What is in "},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
                {"type": "function_call", "call_id": "c1", "name": "look", "arguments": "{}"},
                {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"},
                {"type": "function_call_output", "call_id": "c1", "output": "a cat"},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "ok"}]},
            ],
        }
    )  # fmt: skip
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in "},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin"}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
    ]  # fmt: skip
    assert dropped == ["reasoning"]


def test_request_fields_map_to_the_standard_request() -> None:
    body, dropped = decode(
        {
            "tools": [
                {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}, "strict": True},
                {"type": "custom", "name": "apply_patch", "description": "Patch files"},
            ],
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": False,
            "max_output_tokens": 500,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning": {"effort": "minimal", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
            "stream": True,
            "store": True,
            "include": ["reasoning.encrypted_content"],
            "user": "u1",
            "metadata": {"k": "v"},
            "prompt_cache_key": "p",
            "frobnicate": 1,
        }
    )
    assert body["tools"][0] == {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {}}, "strict": True},
    }
    assert body["tools"][1]["function"]["parameters"]["required"] == ["input"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["parallel_tool_calls"] is False and body["max_tokens"] == 500
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["reasoning_effort"] == "low"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True} and body["user"] == "u1"
    assert "store" not in body and "metadata" not in body
    assert dropped == ["reasoning.summary", "include", "prompt_cache_key", "frobnicate"]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [({"type": "json_object"}, {"type": "json_object"}), ({"type": "text"}, None)],
)
def test_text_formats(fmt: dict[str, Any], expected: Any) -> None:
    assert decode({"text": {"format": fmt}})[0].get("response_format") == expected


def test_allowed_tools_narrow_the_tools() -> None:
    tools = [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in ("a", "b")]
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}
    body, _ = decode({"tools": tools, "tool_choice": choice})
    assert [t["function"]["name"] for t in body["tools"]] == ["b"] and body["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": 3}, "model"),
        ({"input": None}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
         "input[0].content[0].file_id"),
        ({"input": [{"type": "web_search_call", "id": "w"}]}, "input[0].type"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"temperature": 3}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"stream": "yes"}, "stream"),
    ],
)  # fmt: skip
def test_malformed_requests_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ProxyError) as e:
        decode(body)
    assert e.value.status == 400 and e.value.param == param, e.value.message


def standard_answer(finish: str = "tool_calls") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {
                    "role": "assistant",
                    "content": "Let me add.",
                    "reasoning_content": "1 and 1",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 10,
            "total_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }


def test_an_answer_with_reasoning_text_and_tools_as_a_response() -> None:
    response = Response.model_validate(RESPONSES.encode(CHAT, standard_answer()))
    assert response.id.startswith("resp_") and response.status == "completed" and response.model == "claude-x"
    assert [o.type for o in response.output] == ["reasoning", "message", "function_call"]
    assert response.output_text == "Let me add."
    reasoning, _, call = response.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "1 and 1"
    assert call.type == "function_call" and (call.call_id, call.name, call.arguments) == ("call_1", "add", "{}")
    usage = response.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (30, 10, 40)
    assert usage.input_tokens_details.cached_tokens == 4 and usage.output_tokens_details.reasoning_tokens == 3


def test_a_length_stop_is_incomplete() -> None:
    response = Response.model_validate(RESPONSES.encode(CHAT, standard_answer("length")))
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_errors_keep_openais_envelope() -> None:
    err = RESPONSES.error_from_envelope(429, {"error": {"message": "slow", "type": "rate_limit_error", "code": "x"}})
    assert (err.status, err.message, err.type, err.code) == (429, "slow", "rate_limit_error", "x")
    assert json.loads(RESPONSES.error_body(err)[0]) == {
        "error": {"message": "slow", "type": "rate_limit_error", "param": None, "code": "x"}
    }
    assert RESPONSES.error_status(503) == 503
    assert RESPONSES.local_answer("GET", "/v1/models", b"", ["m1"]) == {
        "object": "list",
        "data": [{"id": "m1", "object": "model", "created": 1735689600, "owned_by": "ai-proxy"}],
    }
    assert RESPONSES.local_answer("POST", "/v1/responses", b"{}", ["m1"]) is None
    with pytest.raises(ProxyError) as e:
        RESPONSES.local_answer("GET", "/v1/models/other", b"", ["m1"])
    assert e.value.status == 404


# ---- streams: every provider's translator writing Responses events ---------------------------------------------


chunks_of = replies.chunks_of
STREAMS = replies.provider_streams()


def translate(provider: str, pieces: list[bytes], options: ModelOptions | None = None) -> bytes:
    options = options or STREAMS.get(provider, (ModelOptions(), b""))[0]
    call = Call(CHAT, {"messages": [], "stream": True}, "model-x", options, stream=True, writer=RESPONSES.writer)
    translator = client_translator(REGISTRY[provider], call, False, True)
    return b"".join(translator.feed(p) for p in pieces) + translator.finish()


def events_of(raw: bytes) -> list[Any]:
    """The events, each validated against the SDK's own event types, numbered 0, 1, 2..."""
    decoder = SSEDecoder()
    events = []
    for sse in decoder.feed(raw) + decoder.flush():
        data = json.loads(sse.data)
        assert sse.event == data["type"]
        events.append(EVENT.validate_python(data))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


def accumulate(raw: bytes) -> Any:
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events_of(raw):
        state.handle_event(event)
    return state._completed_response


@pytest.mark.parametrize("provider", list(STREAMS))
def test_every_providers_stream_at_every_split_offset(provider: str) -> None:
    raw = STREAMS[provider][1]
    whole = accumulate(translate(provider, [raw]))
    assert whole.output_text == "".join(STREAM_PIECES) and whole.status == "completed"
    assert whole.usage.output_tokens == 12 and whole.usage.input_tokens == 25
    for cut in range(1, len(raw)):
        split = accumulate(translate(provider, [raw[:cut], raw[cut:]]))
        assert split.output_text == whole.output_text and split.usage == whole.usage, cut


def test_tool_arguments_stream_as_they_arrive() -> None:
    raw = b"".join(replies.openai_tool_calls_stream([("call_1", "f", ['{"a":', "1}"]), ("call_2", "g", ["{}"])]))
    events = events_of(translate("openai", [raw]))
    kinds = [(e.type, getattr(e, "output_index", None), getattr(e, "delta", None)) for e in events]
    assert kinds == [
        ("response.created", None, None),
        ("response.in_progress", None, None),
        ("response.output_item.added", 0, None),
        ("response.function_call_arguments.delta", 0, '{"a":'),
        ("response.function_call_arguments.delta", 0, "1}"),
        ("response.output_item.added", 1, None),
        ("response.function_call_arguments.delta", 1, "{}"),
        ("response.function_call_arguments.done", 0, None),
        ("response.output_item.done", 0, None),
        ("response.function_call_arguments.done", 1, None),
        ("response.output_item.done", 1, None),
        ("response.completed", None, None),
    ]
    final = accumulate(translate("openai", [raw]))
    assert [(o.call_id, o.name, o.arguments) for o in final.output] == [
        ("call_1", "f", '{"a":1}'),
        ("call_2", "g", "{}"),
    ]
    assert final.usage.output_tokens == 20


def test_reasoning_streams_as_a_summary_before_the_text() -> None:
    parts = [{"text": "thinking", "thought": True}, {"text": "answer"}]
    raw = chunks_of(replies.gemini_reply(True, parts))
    events = events_of(translate("gemini", [raw]))
    assert "response.reasoning_summary_text.delta" in [e.type for e in events]
    final = accumulate(translate("gemini", [raw]))
    assert [o.type for o in final.output] == ["reasoning", "message"] and final.output_text == "answer"
    assert final.output[0].summary[0].text == "thinking"


def test_a_length_stop_ends_with_response_incomplete() -> None:
    raw = b"".join(anthropic_stream(stop_reason="max_tokens"))
    events = events_of(translate("anthropic", [raw]))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_a_broken_stream_ends_with_an_error_event_and_response_failed() -> None:
    out = translate("openai", [b"data: {not json}\n\n"])
    events = events_of(out)
    assert [e.type for e in events] == ["error", "response.failed"]
    assert events[1].response.status == "failed" and events[1].response.error.code == "server_error"
    cut = translate("openai", [b"".join(openai_stream())[:200]])
    assert b"event: error" in cut and b"response.completed" not in cut


def test_error_event_bytes() -> None:
    event = json.loads(errors.event(ProxyError(429, "slow down", code="rate"), 7).split(b"data: ", 1)[1])
    assert event == {
        "type": "error",
        "sequence_number": 7,
        "code": "rate",
        "message": "slow down",
        "param": None,
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate"},
    }


def test_calls_of_custom_tools_come_back_as_custom_tool_calls() -> None:
    from addon.formats.responses.response import with_custom_calls
    from addon.formats.responses.stream import ResponsesWriter

    answer = standard_answer()
    answer["choices"][0]["message"]["tool_calls"][0]["function"] = {
        "name": "apply_patch",
        "arguments": '{"input": "*** Begin Patch"}',
    }
    response = Response.model_validate(with_custom_calls(RESPONSES.encode(CHAT, answer), frozenset({"apply_patch"})))
    call = response.output[-1]
    assert call.type == "custom_tool_call" and (call.name, call.input) == ("apply_patch", "*** Begin Patch")

    writer = ResponsesWriter(CHAT, "m", True, False)
    writer.custom_tools = frozenset({"apply_patch"})
    out = writer.role() + writer.tool_call_start(0, "call_9", "apply_patch")
    out += writer.tool_call_arguments(0, '{"input": "*** Be') + writer.tool_call_arguments(0, 'gin"}')
    out += writer.finish("tool_calls", None)
    events = events_of(out)
    assert [(e.type, getattr(e, "delta", None)) for e in events][2:-3] == [
        ("response.output_item.added", None),
        ("response.custom_tool_call_input.delta", "*** Be"),
        ("response.custom_tool_call_input.delta", "gin"),
    ]
    assert [e.type for e in events][-3:] == [
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = accumulate(out)
    assert final.output[0].type == "custom_tool_call" and final.output[0].input == "*** Begin"


def test_hints_a_provider_lacks_are_reported_in_the_responses_terms() -> None:
    from addon.exchange import ClientRequest, prepare_call
    from tests.support.rules import make_rule

    body = {"model": "m", "input": "hi", "reasoning": {"effort": "high"}, "parallel_tool_calls": False,
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}  # fmt: skip
    data = json.dumps(body).encode()
    rule = make_rule("huggingface", "m", ROUTE)  # no reasoning control
    call = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", data), RESPONSES)
    assert call.route_type == CHAT and "reasoning_effort" not in call.body and "parallel_tool_calls" not in call.body
    assert call.dropped == ["reasoning.effort", "parallel_tool_calls"]
    call = prepare_call(make_rule("openai", "m", CHAT), {}, ClientRequest({}, {}, "application/json", data), RESPONSES)
    assert call.body["reasoning_effort"] == "high" and call.dropped == []


def test_rules_take_the_responses_route_type_with_the_openai_format_only() -> None:
    from addon.rules import RulesError
    from tests.support.rules import make_rule

    assert make_rule("anthropic", "claude-x", ROUTE).spec.route_type == ROUTE
    with pytest.raises(RulesError, match="takes the OpenAI format"):
        make_rule("anthropic", "claude-x", ROUTE, llm_format="anthropic")


@pytest.mark.parametrize(
    ("version", "path", "query"),
    [
        (None, "/openai/v1/responses/resp_1", []),
        ("preview", "/openai/v1/responses/resp_1", [("api-version", "preview")]),
        ("2025-04-01-preview", "/openai/responses/resp_1", [("api-version", "2025-04-01-preview")]),
    ],
)
def test_azure_names_the_responses_path(version: str | None, path: str, query: list[Any]) -> None:
    from addon.native_responses import passthrough_for
    from addon.providers import REGISTRY

    AZURE_RESPONSES, OPENAI_RESPONSES = passthrough_for(REGISTRY["azure"]), passthrough_for(REGISTRY["openai"])
    options = ModelOptions(azure_instance="res", azure_api_version=version)
    got: list[tuple[str, str]] = []
    assert AZURE_RESPONSES.upstream_path("/v1/responses/resp_1", got, options) == path and got == query
    assert AZURE_RESPONSES.upstream_path("/v1/models", [], ModelOptions()) == "/openai/v1/models"
    assert OPENAI_RESPONSES.upstream_path("/v1/responses", [], options) == "/v1/responses"
    assert AZURE_RESPONSES.base_url(options) == "https://res.openai.azure.com"


def test_hosted_tools_dropped_when_the_rule_says_so() -> None:
    from addon.formats.responses.request import without_hosted_tools

    body = {"tools": [{"type": "web_search"}, {"type": "function", "name": "f"}, {"type": "local_shell"}],
            "tool_choice": {"type": "web_search"}}  # fmt: skip
    out, dropped = without_hosted_tools(body)
    assert out == {"tools": [{"type": "function", "name": "f"}]}
    assert dropped == ["tools.web_search", "tools.local_shell", "tool_choice"]
    assert without_hosted_tools({"tools": "x"}) == ({"tools": "x"}, [])


@pytest.mark.parametrize(
    "arguments",
    [
        '{"input": "line 1\\nline \\"2\\" \\ud83d\\ude00 \\u00e9 tab\\t end"}',
        '{ "input" : "plain" }',
        '{"other": 1, "input": "x"}',
        '{"input": 3}',
        "not json",
    ],
)
def test_custom_input_streams_at_every_split_offset(arguments: str) -> None:
    from addon.formats.responses.custom import InputStream
    from addon.formats.responses.response import custom_input

    whole = custom_input(arguments)
    for cut in range(len(arguments) + 1):
        for pieces in ([arguments[:cut], arguments[cut:]], list(arguments)):
            stream = InputStream()
            sent = "".join(stream.feed(p) for p in pieces)
            got, rest = stream.rest()
            assert got == whole and sent + rest == whole, (cut, pieces)


def test_the_mitmweb_comment_names_the_client_format() -> None:
    from addon import record
    from tests.support.rules import make_rule

    ex = record.Exchange(
        rule=make_rule("gemini", "g1", ROUTE), provider=REGISTRY["gemini"], client_url="", client_body=b""
    )
    assert record.comment(ex, {}) == "gemini/? [r] from openai-responses"  # no model answered yet
    ex = record.Exchange(
        rule=make_rule("gemini", "g1", CHAT), provider=REGISTRY["gemini"], client_url="", client_body=b""
    )
    assert "from" not in record.comment(ex, {})
