"""Gemini / Vertex AI tool calls, images and JSON output: the pure request/response/stream mapping, and a
multi-turn tool conversation end to end with the openai SDK through a real mitmdump, streamed and not.

Peer bugs guarded against (regression tests name them):
- Kong hard-coded the Gemini tool-result name (`functionResponse.name`): results must be named after the function
  of the call their `tool_call_id` answers (`test_tool_results_named_by_their_call_not_hard_coded_kong_bug`).
- LiteLLM's streamed tool-call index/id bugs: `index` counts tool calls only, id and name in the first delta of
  each call, several calls in one turn, text before them (`test_stream_*_litellm_index_id_bug`).
providers.md §12 pitfalls that concern tools: arguments are objects natively and JSON strings for OpenAI; Gemini
has no tool-call ids (synthesised, resolved back on the next turn); function responses are objects keyed by name;
`parameters` is a schema subset; finishReason is STOP for tool calls; thoughtSignature must be preserved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from addon.errors import ProxyError
from addon.providers.base import UpstreamFormatError
from addon.providers.gemini import GEMINI, GeminiStream, parse_tool_call_id, tool_call_id
from tests.providers.gemini.test_provider_gemini import chat_call, make_rule, prepare, upstream
from tests.support.fakes import FakeUpstream, Reply
from tests.support.mitmdump import Mitmdump, running
from tests.support.tools import client_through

KONG = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "kong"
USER = {"role": "user", "content": "Weather and time in Paris?"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["C", "F", None]},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
TOOLS = [WEATHER, TIME]
DECLARATIONS = [
    {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING", "description": "City name"},
                "unit": {"type": "STRING", "enum": ["C", "F"], "nullable": True},
            },
            "required": ["city", "unit"],
        },
    },
    {
        "name": "get_time",
        "parameters": {"type": "OBJECT", "properties": {"tz": {"type": "STRING"}}, "required": ["tz"]},
    },
]
SIGNATURE = "CikBcsjafFK168I+/sig=="
# Turn 1's answer: two parallel calls, the first with a thoughtSignature (thinking models), text before them.
CALL_PARTS = [
    {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "C"}}, "thoughtSignature": SIGNATURE},
    {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
]
FINAL = "It is 22C and noon in Paris."


def kong(rel: str) -> Path:
    path = KONG / rel
    if not path.exists():
        pytest.skip(f"Kong conformance data not present at {path}")
    return path


def body_for(extra: dict[str, Any], messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return upstream({"messages": messages or [USER], **extra}).body


def refused(extra: dict[str, Any], messages: list[dict[str, Any]] | None = None) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        body_for(extra, messages)
    assert info.value.status == 400
    return info.value


def gemini_response(parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "totalTokenCount": 39},
        "modelVersion": "gemini-fake-1-001",
        "responseId": "resp-tools",
    }


def history(tool_calls: list[dict[str, Any]], results: dict[str, str]) -> list[dict[str, Any]]:
    """Turn 2 as the client sends it: the user, the assistant with the tool calls it got, one tool message per
    call (in `results` order, by function name)."""
    by_name = {c["function"]["name"]: c["id"] for c in tool_calls}
    assistant = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    tools = [{"role": "tool", "tool_call_id": by_name[name], "content": out} for name, out in results.items()]
    return [USER, assistant, *tools]


# ==============================================================================================================
# Requests: tools and tool_choice
# ==============================================================================================================


def test_tools_become_function_declarations_with_a_gemini_schema() -> None:
    """§12: `parameters` is an OpenAPI subset: `$schema`, `additionalProperties` and `strict` are dropped, types
    upper-cased, a ["string", "null"] type becomes `nullable`, a null enum member too."""
    out = body_for({"tools": TOOLS})
    assert out["tools"] == [{"functionDeclarations": DECLARATIONS}]
    assert "toolConfig" not in out  # no tool_choice: Gemini's default (AUTO)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "get_time"}}, {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
    ],
    ids=["auto", "none", "required", "named"],
)
def test_tool_choice_becomes_function_calling_config(choice: Any, config: dict[str, Any]) -> None:
    out = body_for({"tools": TOOLS, "tool_choice": choice})
    assert out["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_without_tools() -> None:
    assert "toolConfig" not in body_for({"tool_choice": "none"})
    assert "toolConfig" not in body_for({"tool_choice": "auto"})
    assert refused({"tool_choice": "required"}).param == "tool_choice"
    assert refused({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}).param == (
        "tool_choice"
    )


def test_deprecated_functions_and_function_call_map_the_same_way() -> None:
    functions = [t["function"] for t in TOOLS]
    out = body_for({"functions": functions, "function_call": {"name": "get_weather"}})
    assert out["tools"] == [{"functionDeclarations": DECLARATIONS}]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    messages = [
        USER,
        {"role": "assistant", "content": None, "function_call": {"name": "get_time", "arguments": '{"tz": "UTC"}'}},
        {"role": "function", "name": "get_time", "content": "12:00"},
    ]
    out = body_for({"functions": functions, "function_call": "auto"}, messages)
    assert out["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {"tz": "UTC"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}}]},
    ]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_schema_adaptation() -> None:
    params = {
        "type": "object",
        "$defs": {"Unit": {"type": "string", "enum": ["C", "F"]}, "Level": {"enum": [1, 2, 3]}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "the unit"},
            "maybe": {"anyOf": [{"type": "integer", "format": "int32"}, {"type": "null"}], "default": 3},
            "either": {"oneOf": [{"type": "string", "format": "email"}, {"type": "number"}]},
            "level": {"$ref": "#/$defs/Level"},
            "kind": {"const": "fixed"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "examples": [["a"]]},
            "nested": {"type": "object", "properties": {"x": {"type": "boolean"}}, "additionalProperties": False},
        },
        "required": ["unit", "ghost"],
    }
    out = body_for({"tools": [{"type": "function", "function": {"name": "f", "parameters": params}}]})
    [declaration] = out["tools"][0]["functionDeclarations"]
    assert declaration["parameters"] == {
        "type": "OBJECT",
        "properties": {
            "unit": {"type": "STRING", "description": "the unit", "enum": ["C", "F"]},
            # What Gemini's Schema has no field for is told to the model in the description, and reported
            "maybe": {"type": "INTEGER", "format": "int32", "nullable": True, "description": "{default: 3}"},
            "either": {"anyOf": [{"type": "STRING", "description": '{format: "email"}'}, {"type": "NUMBER"}]},
            "level": {"description": "{enum: [1, 2, 3]}"},  # Gemini's enums are strings: a numeric enum is loosened
            "kind": {"type": "STRING", "enum": ["fixed"]},
            "tags": {"type": "ARRAY", "minItems": 1, "items": {"type": "STRING"}, "description": '{examples: [["a"]]}'},
            "nested": {"type": "OBJECT", "properties": {"x": {"type": "BOOLEAN"}}},
        },
        "required": ["unit"],  # Gemini refuses a required name that is not a property
    }


@pytest.mark.parametrize(
    "parameters",
    [{"type": "object"}, {"type": "object", "properties": {}}, {}, {"location": "Paris"}],
    ids=["no-properties", "empty-properties", "empty", "kong-junk"],
)
def test_function_without_parameters_has_no_parameters(parameters: dict[str, Any]) -> None:
    """Gemini refuses an OBJECT schema with empty properties: a function without parameters sends none."""
    out = body_for({"tools": [{"type": "function", "function": {"name": "ping", "parameters": parameters}}]})
    assert out["tools"] == [{"functionDeclarations": [{"name": "ping"}]}]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"tools": TOOLS, "functions": [TIME["function"]]}, "functions"),
        ({"tools": TOOLS, "tool_choice": "auto", "function_call": "auto"}, "function_call"),
        ({"tools": TOOLS, "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
        ({"tools": TOOLS, "parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}, None),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "tree",
                            "parameters": {
                                "type": "object",
                                "$defs": {"Node": {"type": "object", "properties": {"kid": {"$ref": "#/$defs/Node"}}}},
                                "properties": {"root": {"$ref": "#/$defs/Node"}},
                            },
                        },
                    }
                ]
            },
            None,
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"properties": {"a": {"$ref": "http://x/s.json"}}}},
                    }
                ]
            },
            None,
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"properties": {"a": {"allOf": [{}, {}]}}}},
                    }
                ]
            },
            None,
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"anyOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]},
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
        ),
    ],
    ids=[
        "non-function-tool",
        "nameless",
        "duplicate-names",
        "tools-and-functions",
        "tool-choice-and-function-call",
        "allowed-tools-choice",
        "no-parallel",
        "non-object-parameters",
        "recursive-ref",
        "remote-ref",
        "all-of",
        "top-level-any-of",
    ],
)
def test_tools_refused_with_400(extra: dict[str, Any], param: str | None) -> None:
    err = refused(extra)
    if param is not None:
        assert err.param == param
    assert "gemini" in err.message or "tool" in err.message or "function" in err.message


def test_tools_on_the_completions_route_are_refused() -> None:
    with pytest.raises(ProxyError) as info:
        upstream({"prompt": "Hi", "tools": TOOLS}, make_rule(route="completions"))
    assert info.value.status == 400 and info.value.param == "tools"


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("tool_choice_auto.json", {"mode": "AUTO"}),
        ("tool_choice_required.json", {"mode": "ANY"}),
        ("tool_choice_object_function.json", {"mode": "ANY", "allowedFunctionNames": ["my_function"]}),
        ("tool_choice_none.json", None),  # no tools: nothing to configure
    ],
)
def test_kong_openai_tool_choice_fixtures(name: str, expect: dict[str, Any] | None) -> None:
    request = json.loads(kong(f"ai-proxy/openai/llm-v1-chat/requests/{name}").read_text())
    request.pop("model")  # an OpenAI model name: the rule names the Gemini one
    out = upstream(request).body
    if expect is None:
        assert "toolConfig" not in out and "tools" not in out
    else:
        assert out["toolConfig"] == {"functionCallingConfig": expect}
        names = [t["function"]["name"] for t in request["tools"]]
        assert [d["name"] for d in out["tools"][0]["functionDeclarations"]] == names


# ==============================================================================================================
# Requests: tool calls and tool results in the history
# ==============================================================================================================


def test_tool_results_named_by_their_call_not_hard_coded_kong_bug() -> None:
    """Kong hard-coded the functionResponse name. Each result is named after the function of the call its
    tool_call_id answers; results sent out of order reach Gemini in the order of the calls."""
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": '{"tz":"CET"}'}},
    ]
    messages = [
        USER,
        {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 22, "unit": "C"}'},
        {"role": "user", "content": "Thanks"},
    ]
    out = body_for({"tools": TOOLS}, messages)
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Let me look."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 22, "unit": "C"}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                {"text": "Thanks"},
            ],
        },
    ]


def test_same_function_twice_results_follow_call_order() -> None:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": c})}}
        for i, c in enumerate(["Paris", "Oslo"])
    ]
    messages = [
        USER,
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "Oslo: 3C"},
        {"role": "tool", "tool_call_id": "c0", "content": "Paris: 22C"},
    ]
    out = body_for({"tools": TOOLS}, messages)
    assert [p["functionResponse"]["response"]["result"] for p in out["contents"][2]["parts"]] == [
        "Paris: 22C",
        "Oslo: 3C",
    ]


@pytest.mark.parametrize(
    ("content", "response"),
    [
        ("22C", {"result": "22C"}),
        ('{"temp": 22}', {"temp": 22}),
        ("[1, 2]", {"result": [1, 2]}),
        ("42", {"result": 42}),
        ('"quoted"', {"result": "quoted"}),
        ("", {"result": ""}),
        ([{"type": "text", "text": '{"ok": '}, {"type": "text", "text": "true}"}], {"ok": True}),
    ],
    ids=["text", "object", "array", "number", "json-string", "empty", "text-parts"],
)
def test_tool_result_is_always_an_object(content: Any, response: dict[str, Any]) -> None:
    """§4: functionResponse.response must be a JSON object: anything else is wrapped as {"result": ...}."""
    calls = [{"id": "c", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    messages = [
        USER,
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c", "content": content},
    ]
    out = body_for({"tools": TOOLS}, messages)
    assert out["contents"][2]["parts"] == [{"functionResponse": {"name": "get_time", "response": response}}]


def test_tool_result_for_an_unknown_call() -> None:
    orphan = [USER, {"role": "tool", "tool_call_id": "call_gone", "content": "x"}]
    err = refused({"tools": TOOLS}, orphan)
    assert err.param == "messages[1].tool_call_id" and "call_gone" in err.message
    named = [USER, {"role": "tool", "tool_call_id": "call_gone", "name": "get_time", "content": "x"}]
    assert body_for({"tools": TOOLS}, named)["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "get_time", "response": {"result": "x"}}
    }


@pytest.mark.parametrize(
    ("tool_call", "param"),
    [
        ({"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}, "arguments"),
        ({"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}, "arguments"),
        ({"id": "c", "type": "function", "function": {"arguments": "{}"}}, "name"),
        ({"type": "function", "function": {"name": "f", "arguments": "{}"}}, "id"),
        ({"id": "c", "type": "custom", "custom": {"name": "f", "input": "x"}}, "tool_calls[0]"),
    ],
    ids=["invalid-json", "not-an-object", "no-name", "no-id", "custom-tool"],
)
def test_bad_assistant_tool_calls_refused(tool_call: dict[str, Any], param: str) -> None:
    err = refused({}, [USER, {"role": "assistant", "tool_calls": [tool_call]}])
    assert err.param is not None and err.param.startswith("messages[1].") and err.param.endswith(param)


# ==============================================================================================================
# Tool-call ids: synthesised, carrying the native id and thoughtSignature back on the next turn
# ==============================================================================================================


def test_tool_call_id_round_trip() -> None:
    plain = tool_call_id()
    assert re.fullmatch(r"call_[0-9a-f]{24}", plain) and parse_tool_call_id(plain) == (None, None)
    rich = tool_call_id("vertex-id-7", SIGNATURE)
    assert re.fullmatch(r"call_[0-9a-f]{24}\.id\.[\w-]+\.ts\.[\w-]+", rich)
    assert parse_tool_call_id(rich) == ("vertex-id-7", SIGNATURE)
    assert parse_tool_call_id(tool_call_id(signature="s")) == (None, "s")
    assert len({tool_call_id() for _ in range(100)}) == 100
    for foreign in ["call_abc", "toolu_01", "abc123XYZ", plain + ".ts", plain + ".xx.YQ", plain + ".ts.@@", ""]:
        assert parse_tool_call_id(foreign) == (None, None)


def test_response_ids_resolve_back_on_the_next_turn_with_thought_signature() -> None:
    """§12: Gemini has no ids (Vertex may add one) → synthesised ids; the thoughtSignature and the native id come
    back on the functionCall / functionResponse parts of the next turn."""
    parts = [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "v-1"}, "thoughtSignature": "sig"},
        {"functionCall": {"name": "get_time", "args": {}}},
    ]
    out = GEMINI.parse_response(chat_call(), gemini_response(parts))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"  # Gemini says STOP with functionCall parts
    message = choice["message"]
    assert message["content"] == "Checking."
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Paris"}, {}]
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert len({c["id"] for c in calls}) == 2
    messages = [USER, message] + [{"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in reversed(calls)]
    body = body_for({"tools": TOOLS}, messages)
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "v-1"},
                "thoughtSignature": "sig",
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": "ok"}, "id": "v-1"}},
        {"functionResponse": {"name": "get_time", "response": {"result": "ok"}}},
    ]


def test_thought_signature_from_googles_extra_content_field() -> None:
    """Google's own OpenAI-compatible endpoint returns the signature in `extra_content.google`: accepted too."""
    call = {
        "id": "call_foreign",
        "type": "function",
        "function": {"name": "get_time", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "sig-x"}},
    }
    out = body_for({"tools": TOOLS}, [USER, {"role": "assistant", "tool_calls": [call]}])
    assert out["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "sig-x"}
    ]


@pytest.mark.parametrize(
    ("finish", "expect"), [("STOP", "tool_calls"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter")]
)
def test_finish_reason_with_function_calls(finish: str, expect: str) -> None:
    out = GEMINI.parse_response(chat_call(), gemini_response(CALL_PARTS, finish))
    assert out["choices"][0]["finish_reason"] == expect


# ==============================================================================================================
# Streams
# ==============================================================================================================

STREAM_OBJECTS = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me "}]}, "index": 0}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "check.", "thought": False}]}, "index": 0}]},
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "hmm", "thought": True}, CALL_PARTS[0]]}, "index": 0}
        ]
    },
    {
        **gemini_response([CALL_PARTS[1]]),
        "candidates": [{"content": {"role": "model", "parts": [CALL_PARTS[1]]}, "finishReason": "STOP", "index": 0}],
    },
]


def sse_body(objects: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objects)


def array_body(objects: list[dict[str, Any]]) -> bytes:
    return b"[" + b"\r\n,\r\n".join(json.dumps(o).encode() for o in objects) + b"]"


def translate(pieces: list[bytes]) -> bytes:
    call = chat_call(stream=True)
    t = GeminiStream(call, include_usage=True, keep_payload=True)
    return b"".join(t.feed(p) for p in pieces) + t.finish()


_RANDOM = re.compile(rb"call_[0-9a-f]{24}")


def normalised(raw: bytes) -> list[Any]:
    out = []
    for block in _RANDOM.sub(b"call_*", raw).decode().split("\n\n")[:-1]:
        data = block.removeprefix("data: ")
        obj = data if data == "[DONE]" else json.loads(data)
        if isinstance(obj, dict):
            obj.pop("created", None)
            obj.pop("id", None)
        out.append(obj)
    return out


def accumulate(chunks: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Tool calls accumulated the way the openai SDK's stream helpers do: by `index`; id, type and name from the
    first delta of each call, argument fragments appended."""
    text, calls, finish = "", {}, []
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for d in delta.get("tool_calls") or ():
                slot = calls.setdefault(d["index"], {"id": None, "type": None, "name": "", "arguments": ""})
                if d.get("id"):
                    assert slot["id"] is None, "id repeated in a later delta"
                    slot["id"], slot["type"], slot["name"] = d["id"], d["type"], d["function"]["name"]
                slot["arguments"] += d["function"].get("arguments") or ""
            if choice.get("finish_reason"):
                finish.append(choice["finish_reason"])
    assert sorted(calls) == list(range(len(calls))), "tool-call indexes must count tool calls only, from 0"
    return text, [calls[i] for i in sorted(calls)], finish


def splits(data: bytes) -> Iterator[list[bytes]]:
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]


@pytest.mark.parametrize("form", ["sse", "array"])
def test_stream_tool_calls_split_anywhere_litellm_index_id_bug(form: str) -> None:
    """LiteLLM's streamed tool-call index/id bugs: two calls in one turn after text and a thought: index 0 and 1
    (counting tool calls only), id/type/name in the first delta of each, full arguments after; the same output
    however the body is cut (every byte offset, and 1-byte pieces)."""
    data = sse_body(STREAM_OBJECTS) if form == "sse" else array_body(STREAM_OBJECTS)
    reference = normalised(translate([data]))
    for pieces in splits(data):
        assert normalised(translate(pieces)) == reference
    chunks = [c for c in reference if isinstance(c, dict)]
    text, calls, finish = accumulate(chunks)
    assert text == "Let me check." and finish == ["tool_calls"]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    assert all(c["type"] == "function" for c in calls)
    assert chunks[-1]["usage"]["prompt_tokens"] == 30 and chunks[-1]["choices"] == []


def test_streamed_tool_calls_equal_non_streamed_litellm_index_id_bug() -> None:
    raw = translate([sse_body(STREAM_OBJECTS)]).decode()
    chunks = [json.loads(b[6:]) for b in raw.split("\n\n")[:-1] if b != "data: [DONE]"]
    _, streamed, _ = accumulate(chunks)
    all_parts = [p for o in STREAM_OBJECTS for p in o["candidates"][0]["content"]["parts"]]
    whole = GEMINI.parse_response(chat_call(), gemini_response(all_parts))["choices"][0]["message"]
    assert [(c["name"], json.loads(c["arguments"])) for c in streamed] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in whole["tool_calls"]
    ]
    # the streamed ids carry the same thoughtSignature, so they resolve back the same way
    assert [parse_tool_call_id(c["id"]) for c in streamed] == [(None, SIGNATURE), (None, None)]


def functions_call(stream: bool = False) -> Any:
    body = {"messages": [USER], "functions": [t["function"] for t in TOOLS], "stream": stream}
    return prepare(make_rule(), body)


def test_deprecated_functions_get_a_function_call_answer() -> None:
    out = GEMINI.parse_response(functions_call(), gemini_response([CALL_PARTS[1]]))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "function_call" and "tool_calls" not in choice["message"]
    assert choice["message"]["function_call"] == {"name": "get_time", "arguments": '{"tz":"Europe/Paris"}'}
    with pytest.raises(UpstreamFormatError):
        GEMINI.parse_response(functions_call(), gemini_response(CALL_PARTS))


def test_deprecated_functions_streamed() -> None:
    objects = [gemini_response([{"text": "One moment. "}, CALL_PARTS[1]])]
    t = GeminiStream(functions_call(stream=True), include_usage=False, keep_payload=True)
    raw = t.feed(sse_body(objects)) + t.finish()
    chunks = [json.loads(b[6:]) for b in raw.decode().split("\n\n")[:-1] if b != "data: [DONE]"]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    calls = [d["function_call"] for d in deltas if "function_call" in d]
    assert calls == [{"name": "get_time", "arguments": ""}, {"arguments": '{"tz":"Europe/Paris"}'}]
    assert not any("tool_calls" in d for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"
    assert t.result.tool_calls[0]["function"]["name"] == "get_time"
    two = GeminiStream(functions_call(stream=True), include_usage=False, keep_payload=False)
    raw = two.feed(sse_body([gemini_response(CALL_PARTS)])) + two.finish()
    assert b"several function calls" in raw and two.result.error is not None


# ==============================================================================================================
# Images and JSON output
# ==============================================================================================================


@pytest.mark.parametrize(
    ("url", "part"),
    [
        (
            "https://example.test/cat.png",
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.test/cat.png"}},
        ),
        ("http://h.test/a/B.JPG?x=1", {"fileData": {"mimeType": "image/jpeg", "fileUri": "http://h.test/a/B.JPG?x=1"}}),
        ("gs://bucket/p/c.webp", {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/p/c.webp"}}),
        (
            "https://generativelanguage.googleapis.com/v1beta/files/abc123",
            {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
        ),
        ("data:image/jpeg;base64,/9j/4AAQ", {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}),
    ],
    ids=["https-png", "http-jpg-query", "gs-webp", "files-api", "data-url"],
)
def test_image_urls(url: str, part: dict[str, Any]) -> None:
    content = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}]
    out = body_for({}, [{"role": "user", "content": content}])
    assert out["contents"] == [{"role": "user", "parts": [{"text": "What is it?"}, part]}]


@pytest.mark.parametrize(
    "url", ["https://example.test/image", "https://example.test/a.gif", "ftp://h/x.png", "file:///x.png", "data:,"]
)
def test_image_urls_refused_clearly(url: str) -> None:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    err = refused({}, [{"role": "user", "content": content}])
    assert err.param == "messages[0].content[0]" and "image" in err.message


def test_response_format_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": schema}}
    config = body_for({"response_format": fmt})["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    assert body_for({"response_format": {"type": "json_object"}})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert refused({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}).param == (
        "response_format"
    )
    assert refused({"response_format": {"type": "xml"}}).param == "response_format"


# ==============================================================================================================
# End to end: openai SDK -> mitmdump -> fake Gemini, a multi-turn tool conversation, streamed and not
# ==============================================================================================================

MODEL = "gemini-fake-1"
API_KEY = "e2e-gemini-tools-secret-0005"


@dataclass
class Env:
    proxy: Mitmdump
    fake: FakeUpstream

    def client(self) -> openai.OpenAI:
        return client_through(self.proxy, "gemini-tools.internal")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    fake = FakeUpstream("gemini-tools")
    rules = f"""
rules:
  - name: gemini-tools
    match: {{host: gemini-tools.internal, path: /v1/chat/completions}}
    model:
      provider: gemini
      name: {MODEL}
      options: {{upstream_url: "{fake.url}"}}
    auth: {{header_name: x-goog-api-key, header_value: "${{E2E_GEMINI_TOOLS_KEY}}"}}
"""
    proxy = Mitmdump(tmp_path_factory.mktemp("e2e-gemini-tools"), rules, env={"E2E_GEMINI_TOOLS_KEY": API_KEY})
    with running(proxy, fake):
        yield Env(proxy, fake)


def check_turn_two(seen: dict[str, Any]) -> None:
    """The native shape of turn 2: the model turn echoes both calls (the thoughtSignature on the first), the user
    turn holds both results, named by their calls (not hard-coded: Kong's bug), in call order, as objects."""
    assert seen["tools"] == [{"functionDeclarations": DECLARATIONS}]
    assert seen["contents"] == [
        {"role": "user", "parts": [{"text": USER["content"]}]},
        {"role": "model", "parts": CALL_PARTS},
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 22}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
            ],
        },
    ]


def test_e2e_multi_turn_tool_conversation_not_streamed(env: Env) -> None:
    env.fake.reset()
    env.fake.queue(Reply(json=gemini_response(CALL_PARTS)), Reply(json=gemini_response([{"text": FINAL}])))
    client = env.client()
    first = client.chat.completions.create(model=MODEL, messages=[USER], tools=TOOLS, tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris", "unit": "C"}, {"tz": "Europe/Paris"}]
    assert all(c.id.startswith("call_") for c in calls) and len({c.id for c in calls}) == 2
    req1 = env.fake.requests[0]
    assert req1.path == f"/v1beta/models/{MODEL}:generateContent" and req1.headers["x-goog-api-key"] == API_KEY
    assert req1.json["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    assistant = choice.message.model_dump(exclude_none=True)
    messages = [
        USER,
        assistant,
        {"role": "tool", "tool_call_id": calls[1].id, "content": "12:00"},  # out of order on purpose
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp": 22}'},
    ]
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == FINAL and final.choices[0].finish_reason == "stop"
    check_turn_two(env.fake.requests[1].json)


def test_e2e_multi_turn_tool_conversation_streamed(env: Env) -> None:
    """Streamed turn 1 accumulated as the SDK does equals the non-streamed tool calls; the ids it gave resolve
    back on the streamed turn 2."""
    env.fake.reset()
    final_objects = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": FINAL[:10]}]}, "index": 0}]},
        gemini_response([{"text": FINAL[10:]}]),
    ]
    env.fake.queue(Reply(chunks=[sse_body([o]) for o in STREAM_OBJECTS]), Reply(chunks=[sse_body(final_objects)]))
    client = env.client()
    stream = client.chat.completions.create(model=MODEL, messages=[USER], tools=TOOLS, stream=True)
    chunks = [c.model_dump() for c in stream]
    text, calls, finish = accumulate(chunks)
    assert text == "Let me check." and finish == ["tool_calls"]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    assert env.fake.requests[0].path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert env.fake.requests[0].query == {"alt": "sse"}

    assistant = {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls
        ],
    }
    messages = [
        USER,
        assistant,
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp": 22}'},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "12:00"},
    ]
    stream = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, stream=True)
    reply_text, _, finish = accumulate([c.model_dump() for c in stream])
    assert reply_text == FINAL and finish == ["stop"]
    seen = env.fake.requests[1].json
    seen["contents"][1]["parts"] = [p for p in seen["contents"][1]["parts"] if "text" not in p]
    check_turn_two(seen)
    assert env.fake.requests[1].json["contents"][1]["parts"][0] == {"text": "Let me check."}


def test_e2e_tool_choice_refused_locally(env: Env) -> None:
    env.fake.reset()
    with pytest.raises(openai.BadRequestError, match="parallel_tool_calls"):
        env.client().chat.completions.create(model=MODEL, messages=[USER], tools=TOOLS, parallel_tool_calls=False)
    assert env.fake.requests == []


def test_e2e_deprecated_functions_round_trip(env: Env) -> None:
    env.fake.reset()
    env.fake.queue(Reply(json=gemini_response([CALL_PARTS[1]])), Reply(json=gemini_response([{"text": FINAL}])))
    client = env.client()
    functions = [t["function"] for t in TOOLS]
    first = client.chat.completions.create(model=MODEL, messages=[USER], functions=functions, function_call="auto")
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "function_call" and message.function_call.name == "get_time"
    assert json.loads(message.function_call.arguments) == {"tz": "Europe/Paris"}
    messages = [
        USER,
        message.model_dump(exclude_none=True),
        {"role": "function", "name": "get_time", "content": "12:00"},
    ]
    final = client.chat.completions.create(model=MODEL, messages=messages, functions=functions)
    assert final.choices[0].message.content == FINAL
    assert env.fake.requests[1].json["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}}]},
    ]
