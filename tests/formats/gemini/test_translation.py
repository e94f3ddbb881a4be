"""The Gemini client format, pure: requests decoded into the standard request (and refused naming the field),
answers encoded as GenerateContentResponses the google-genai SDK parses, errors in Google's envelope, local
answers, and every provider's stream written as Gemini chunks in both stream forms — split at every byte offset."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types
from google.genai.models import _GenerateContentResponse_from_mldev

from addon.errors import ProxyError
from addon.exchange import ClientRequest, prepare_call
from addon.formats import GEMINI
from addon.formats.gemini import count_tokens, model_list
from addon.formats.gemini.names import camel_case
from addon.providers import REGISTRY, Call
from addon.routes import NATIVE, TRANSLATED, route_for
from addon.spec import ModelOptions
from addon.stream_bridge import client_translator
from addon.streams import SSEDecoder
from tests.support import replies, samples
from tests.support.fakes import ANSWER, STREAM_PIECES, anthropic_stream, openai_stream
from tests.support.rules import make_rule

CHAT = "llm/v1/chat"
PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
USER = {"role": "user", "parts": [{"text": "hi"}]}


def decode(body: dict[str, Any], path: str = PATH) -> tuple[dict[str, Any], list[str]]:
    dropped: list[str] = []
    return GEMINI.decode(CHAT, path, {"contents": [USER], **body}, dropped), dropped


def sdk(data: dict[str, Any]) -> types.GenerateContentResponse:
    """A GenerateContentResponse as the google-genai SDK reads one off the wire."""
    return types.GenerateContentResponse._from_response(response=_GenerateContentResponse_from_mldev(data), kwargs={})


def test_a_conversation_with_tools_maps_turn_by_turn() -> None:
    std, dropped = decode(
        {
            "systemInstruction": {"parts": [{"text": "A"}, {"text": "B"}]},
            "contents": [
                {
                    "role": "user",
                    "parts": [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}],
                },
                {
                    "role": "model",
                    "parts": [
                        {"text": "hmm", "thought": True},
                        {"text": "calling"},
                        {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "c2ln"},
                        {"functionCall": {"name": "f", "args": {"x": 2}, "id": "own-id"}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"text": "and then"},
                        {"functionResponse": {"name": "f", "id": "own-id", "response": {"output": "two"}}},
                        {"functionResponse": {"name": "f", "response": {"n": 1}}},
                    ],
                },
            ],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "f",
                            "description": "F",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {
                                    "x": {"type": "INTEGER", "nullable": True},
                                    "tags": {
                                        "type": "ARRAY",
                                        "items": {"type": "STRING", "enum": ["a", "b"]},
                                        "maxItems": "3",  # int64, as proto-JSON writes it
                                    },
                                },
                                "required": ["x"],
                                "propertyOrdering": ["x", "tags"],
                            },
                        },
                        {"name": "g", "parametersJsonSchema": {"type": "object", "additionalProperties": False}},
                    ]
                }
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}},
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.5,
                "topK": 40.0,
                "maxOutputTokens": 99,
                "stopSequences": ["Z"],
                "candidateCount": 1,
                "seed": 7,
                "responseLogprobs": True,
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "unknownField": 1,
        }
    )
    assert std["messages"] == [
        {"role": "system", "content": "A\nB"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            ],
        },
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "call_1_2", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
                {"id": "own-id", "type": "function", "function": {"name": "f", "arguments": '{"x":2}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "own-id", "content": "two"},  # by its id
        {"role": "tool", "tool_call_id": "call_1_2", "content": '{"n":1}'},  # the other call of that name
        {"role": "user", "content": "and then"},
    ]
    assert std["tools"][0]["function"] == {
        "name": "f",
        "description": "F",
        "parameters": {
            "type": "object",
            "properties": {
                "x": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 3},
            },
            "required": ["x"],
        },
    }
    assert std["tools"][1]["function"]["parameters"] == {"type": "object", "additionalProperties": False}
    assert std["tool_choice"] == {"type": "function", "function": {"name": "g"}}
    assert (std["model"], std["temperature"], std["top_p"], std["top_k"], std["max_tokens"]) == (
        "gemini-2.5-flash", 0.2, 0.5, 40, 99,
    )  # fmt: skip
    assert (std["stop"], std["seed"], "stream" in std) == (["Z"], 7, False)
    assert dropped == ["thought", "thoughtSignature", "generationConfig.responseLogprobs", "safetySettings",
                       "unknownField"]  # fmt: skip


def test_snake_case_field_names_as_googles_rest_examples_write_them() -> None:
    snake = {
        "system_instruction": {"parts": [{"text": "S"}]},
        "contents": [
            {"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "iVBO"}}]},
            {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"some_arg": 1}}}]},
            {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"the_result": 2}}}]},
        ],
        "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {
            "some_arg": {"type": "INTEGER"}}}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "generation_config": {"max_output_tokens": 5, "thinking_config": {"thinking_budget": 100}},
        "safety_settings": [],
    }  # fmt: skip
    std, dropped = decode(snake)
    camel, _ = decode(
        {
            "systemInstruction": {"parts": [{"text": "S"}]},
            "contents": [
                {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"some_arg": 1}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"the_result": 2}}}]},
            ],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {
                "some_arg": {"type": "INTEGER"}}}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
            "generationConfig": {"maxOutputTokens": 5, "thinkingConfig": {"thinkingBudget": 100}},
        }
    )  # fmt: skip
    assert std == camel and dropped == ["safetySettings"]
    assert std["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"some_arg":1}'


@pytest.mark.parametrize(
    "body",
    [
        {"contents": [{"parts": [{"text": "x", "thought_signature": "c2"}]}]},
        {"contents": [{"parts": [{"file_data": {"file_uri": "https://x/a.png"}}]}]},
        {"contents": [{"parts": [{"inlineData": {"mime_type": "image/png", "data": ""}}]}]},
        {"contents": [USER, {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                      {"parts": [{"functionResponse": {"name": "f", "will_continue": True}}]}]},
        {"tools": [{"function_declarations": [{"name": "f"}]}]},
        {"tools": [{"functionDeclarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}]},
        {"tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "min_properties": 1}}]}]},
        {"tools": [{"functionDeclarations": [{"name": "f"}]}],
         "toolConfig": {"function_calling_config": {"mode": "ANY"}}},
        {"generationConfig": {"response_mime_type": "application/json", "top_k": 2}},
        {"generationConfig": {"thinkingConfig": {"thinking_level": "LOW", "include_thoughts": True}}},
    ],
)  # fmt: skip
def test_a_snake_case_name_anywhere_is_read_as_its_camel_case(body: dict[str, Any]) -> None:
    snake, lost = decode(body)
    camel, dropped = decode(camel_case(body))
    assert snake == camel and lost == dropped
    assert body != camel_case(body)


def test_fields_of_parts_declarations_and_tool_config_without_a_place_are_reported() -> None:
    _, dropped = decode(
        {
            "contents": [{"parts": [{"text": "x", "videoMetadata": {"fps": 1}}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING", "strict": True}]}],
            "toolConfig": {"retrievalConfig": {"languageCode": "en"}},
        }
    )
    assert dropped == [
        "videoMetadata",
        "functionDeclarations.behavior",
        "functionDeclarations.strict",
        "toolConfig.retrievalConfig",
    ]


def test_generated_call_ids_are_stable() -> None:
    body = {
        "contents": [
            USER,
            {"role": "model", "parts": [{"functionCall": {"name": "f"}}, {"functionCall": {"name": "f"}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}] * 2},
        ]
    }
    first, _ = decode(body)
    again, _ = decode(body)
    assert first == again
    assert [m.get("tool_call_id") for m in first["messages"][2:]] == ["call_1_0", "call_1_1"]


def test_streaming_comes_from_the_path() -> None:
    std, _ = decode({}, "/v1beta/models/models%2Fx:streamGenerateContent?alt=sse")
    assert (std["model"], std["stream"], std["stream_options"]) == ("models/x", True, {"include_usage": True})
    vertex = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent"
    assert decode({}, vertex + "?alt=sse")[0]["model"] == "gemini-2.5-pro"
    assert decode({}, "/v1beta/models/org/model-x:generateContent")[0]["model"] == "org/model-x"
    with pytest.raises(ProxyError) as e:
        decode({}, "/v1beta/models/x:embedContent")
    assert e.value.status == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"contents": "hi"}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"parts": [{"text": 1}]}]}, "contents[0].parts[0].text"),
        ({"contents": [{"parts": [{}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"text": "a", "inlineData": {}}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": ""}}]}]},
         "contents[0].parts[0].inlineData.mimeType"),
        ({"contents": [{"parts": [{"fileData": {"fileUri": "gs://b/x.png"}}]}]},
         "contents[0].parts[0].fileData.fileUri"),
        ({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}, "contents[0].parts[0].executableCode"),
        ({"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}, "contents[0].parts[0].functionCall"),
        ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
         "contents[0].parts[0].functionResponse.name"),
        ({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": []}}]}]},
         "contents[0].parts[0].functionCall.args"),
        ({"systemInstruction": {"parts": [{"inlineData": {}}]}}, "systemInstruction.parts[0].text"),
        ({"tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
        ({"tools": [{"codeExecution": {}}]}, "tools[0].codeExecution"),
        ({"tools": [{"functionDeclarations": [{"description": "x"}]}]}, "tools[0].functionDeclarations[0].name"),
        ({"tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "BLOB"}}]}]},
         "tools[0].functionDeclarations[0].parameters.type"),
        ({"toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}, "toolConfig.functionCallingConfig.mode"),
        ({"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}, "toolConfig.functionCallingConfig.mode"),
        ({"generationConfig": {"temperature": 3}}, "generationConfig.temperature"),
        ({"generationConfig": {"topK": 1.5}}, "generationConfig.topK"),
        ({"generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount"),
        ({"generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
        ({"generationConfig": {"responseModalities": ["IMAGE"]}}, "generationConfig.responseModalities"),
        ({"generationConfig": {"thinkingConfig": {"thinkingBudget": "lots"}}},
         "generationConfig.thinkingConfig.thinkingBudget"),
        ({"cachedContent": "cachedContents/abc"}, "cachedContent"),
    ],
)  # fmt: skip
def test_malformed_requests_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ProxyError) as e:
        decode(body)
    assert e.value.status == 400 and e.value.param == param
    assert e.value.message.startswith(param)


def test_a_public_image_url_is_passed_on_for_the_provider_to_fetch() -> None:
    std, _ = decode({"contents": [{"parts": [{"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/a.jpg"}}]}]})
    assert std["messages"][0]["content"] == [{"type": "image_url", "image_url": {"url": "https://x/a.jpg"}}]


TOOLS = [{"functionDeclarations": [{"name": n} for n in ("a", "b", "c")]}]


@pytest.mark.parametrize(
    ("config", "choice", "names", "dropped"),
    [
        ({"mode": "AUTO"}, "auto", ["a", "b", "c"], []),
        ({"mode": "NONE"}, "none", ["a", "b", "c"], []),
        ({"mode": "ANY"}, "required", ["a", "b", "c"], []),
        ({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}, "required", ["a", "c"], []),
        ({"mode": "AUTO", "allowedFunctionNames": ["a"]}, "auto", ["a", "b", "c"],
         ["toolConfig.functionCallingConfig.allowedFunctionNames"]),
        ({"mode": "VALIDATED"}, "auto", ["a", "b", "c"], ["toolConfig.functionCallingConfig.mode"]),
    ],
)  # fmt: skip
def test_function_calling_config(config: dict[str, Any], choice: Any, names: list[str], dropped: list[str]) -> None:
    std, lost = decode({"tools": TOOLS, "toolConfig": {"functionCallingConfig": config}})
    assert std["tool_choice"] == choice and [t["function"]["name"] for t in std["tools"]] == names
    assert std["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert lost == dropped


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"thinkingBudget": 0}, None),
        ({"thinkingBudget": -1}, "medium"),
        ({"thinkingBudget": 1024, "includeThoughts": True}, "low"),
        ({"thinkingBudget": 20000}, "high"),
        ({"thinkingLevel": "HIGH"}, "high"),
        ({"thinkingLevel": "MINIMAL"}, "low"),
        ({"thinkingLevel": "xhigh"}, "high"),  # the SDK's newest level, case-insensitive as its enum
        ({"includeThoughts": True}, None),
    ],
)
def test_thinking_config_is_a_reasoning_effort(thinking: dict[str, Any], effort: str | None) -> None:
    std, _ = decode({"generationConfig": {"thinkingConfig": thinking}})
    assert std.get("reasoning_effort") == effort
    budget = thinking.get("thinkingBudget")  # a positive budget also travels exact, as the extension `thinking`
    exact = {"type": "enabled", "budget_tokens": budget} if budget and budget > 0 else None
    assert std.get("thinking") == exact


def test_structured_output() -> None:
    schema = {"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}}
    std, _ = decode({"generationConfig": {"responseMimeType": "application/json", "responseSchema": schema}})
    assert std["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object", "properties": {"n": {"type": "number"}}}},
    }
    raw = {"type": "object", "$defs": {}}
    std, _ = decode({"generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": raw}})
    assert std["response_format"]["json_schema"]["schema"] == raw
    std, _ = decode({"generationConfig": {"responseMimeType": "application/json"}})
    assert std["response_format"] == {"type": "json_object"}


def test_a_provider_without_the_control_drops_the_hint_by_its_gemini_name() -> None:
    body = {"contents": [USER], "generationConfig": {"thinkingConfig": {"thinkingBudget": 8000}, "topK": 3}}
    data = json.dumps(body).encode()
    path = "/v1beta/models/tgi:streamGenerateContent?alt=sse"
    request = ClientRequest({}, {}, "application/json", data, path)
    call = prepare_call(make_rule("huggingface", "tgi"), {}, request, GEMINI)  # no reasoning control
    assert "reasoning_effort" not in call.body and "top_k" not in call.body and call.stream
    assert call.dropped == ["generationConfig.thinkingConfig", "generationConfig.topK"]
    assert call.writer == GEMINI.writer  # alt=sse: Server-Sent Events


def test_rules_route_gemini_clients() -> None:
    assert route_for(make_rule("openai", "gpt-x", llm_format="gemini")) is TRANSLATED
    assert route_for(make_rule("gemini", "gemini-x", llm_format="gemini")) is NATIVE


def test_an_answer_with_reasoning_and_tools_as_the_sdk_reads_it() -> None:
    standard = replies.standard_answer(
        {
            "prompt_tokens": 100,
            "completion_tokens": 30,
            "total_tokens": 130,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 20},
        }
    )
    answer = GEMINI.encode(CHAT, standard)
    assert answer["candidates"][0]["content"]["parts"] == [
        {"text": "think", "thought": True},
        {"text": "Let me add."},
        {"functionCall": {"name": "add", "args": {"a": 1}, "id": "call_1"}},
    ]
    parsed = sdk(answer)
    assert parsed.text == "Let me add." and parsed.function_calls[0].args == {"a": 1}
    assert parsed.candidates[0].finish_reason == types.FinishReason.STOP
    assert (parsed.model_version, parsed.response_id) == ("gpt-x", "chatcmpl-1")
    usage = parsed.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (100, 10, 20)
    assert (usage.cached_content_token_count, usage.total_token_count) == (60, 130)


@pytest.mark.parametrize(
    ("reason", "gemini"), [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("x", "OTHER")]
)
def test_finish_reasons(reason: str, gemini: str) -> None:
    standard = {"id": "c", "model": "m", "choices": [{"index": 0, "message": {"content": ""}, "finish_reason": reason}]}
    assert GEMINI.encode(CHAT, standard)["candidates"][0]["finishReason"] == gemini


@pytest.mark.parametrize(
    ("status", "rpc"),
    [(400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"),
     (413, "INVALID_ARGUMENT"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (502, "UNAVAILABLE"),
     (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")],
)  # fmt: skip
def test_errors_in_googles_envelope(status: int, rpc: str) -> None:
    body, _ = GEMINI.error_body(ProxyError(status, "why"))
    assert json.loads(body) == {"error": {"code": status, "message": "why", "status": rpc}}
    assert GEMINI.error_status(status) == status


def test_count_tokens_is_a_local_estimate() -> None:
    small = count_tokens(json.dumps({"contents": [USER]}).encode(), "m")
    big = {"generateContentRequest": {"contents": [{"parts": [{"text": "word " * 1000}]}]}}
    assert small["totalTokens"] < 20 and 1000 <= count_tokens(json.dumps(big).encode(), "m")["totalTokens"] < 1500
    assert GEMINI.local_answer("POST", "/v1beta/models/m:countTokens", json.dumps({"contents": [USER]}).encode(), [])
    with pytest.raises(ProxyError):
        count_tokens(b"{", "m")


def test_model_lists() -> None:
    assert [m["name"] for m in model_list(["a", "b"], None)["models"]] == ["models/a", "models/b"]
    assert GEMINI.local_answer("GET", "/v1beta/models/b?key=k", b"", ["a", "b"])["displayName"] == "b"
    assert GEMINI.local_answer("POST", PATH, b"{}", ["a"]) is None
    with pytest.raises(ProxyError) as e:
        model_list(["a"], "z")
    assert e.value.status == 404


# ---- streams: every provider's translator writing Gemini chunks ------------------------------------------------


def chunks_of(reply: Any) -> bytes:
    return b"".join(c for c in reply.chunks if isinstance(c, bytes))


BEDROCK = samples.frame("eventstream", samples.BEDROCK_STREAM)
STREAMS: dict[str, tuple[ModelOptions, bytes]] = {
    "openai": (ModelOptions(), b"".join(openai_stream(include_usage=True))),
    "anthropic": (ModelOptions(), b"".join(anthropic_stream())),
    "cohere": (ModelOptions(), chunks_of(replies.cohere_reply(True))),
    "mistral": (ModelOptions(), chunks_of(replies.mistral_reply(True))),
    "llama2": (ModelOptions(llama2_format="ollama"), chunks_of(replies.ollama_reply(True))),
    "bedrock": (ModelOptions(), BEDROCK),
}


def translate(provider: str, pieces: list[bytes], sse: bool = True) -> bytes:
    options, _ = STREAMS[provider]
    path = "/v1beta/models/m:streamGenerateContent" + ("?alt=sse" if sse else "")
    call = Call(CHAT, {"messages": [], "stream": True}, "model-x", options, stream=True, writer=GEMINI.writer_for(path))
    translator = client_translator(REGISTRY[provider], call, False, True)
    return b"".join(translator.feed(p) for p in pieces) + translator.finish()


def read(raw: bytes, sse: bool) -> list[dict[str, Any]]:
    if not sse:
        return json.loads(raw)
    decoder = SSEDecoder()
    return [json.loads(e.data) for e in decoder.feed(raw) + decoder.flush()]


def joined(chunks: list[dict[str, Any]]) -> tuple[str, list[Any], str | None, Any]:
    """(text, function calls, last finishReason, last usage) of a stream, as the SDK reads each chunk."""
    parsed = [sdk(c) for c in chunks]
    text = "".join(p.text or "" for p in parsed)
    calls = [(f.id, f.name, f.args) for p in parsed for f in p.function_calls or ()]
    return text, calls, parsed[-1].candidates[0].finish_reason, parsed[-1].usage_metadata


@pytest.mark.parametrize("sse", [True, False])
@pytest.mark.parametrize("provider", list(STREAMS))
def test_every_providers_stream_at_every_split_offset(provider: str, sse: bool) -> None:
    raw = STREAMS[provider][1]
    whole = joined(read(translate(provider, [raw], sse), sse))
    if provider == "bedrock":
        assert whole[:2] == ("Hi", [("tu_1", "f", {"city": "Paris"})]) and whole[3].candidates_token_count == 3
    else:
        assert whole[0] == "".join(STREAM_PIECES) == ANSWER and whole[3].candidates_token_count == 12
    assert whole[2] == types.FinishReason.STOP
    for cut in range(1, len(raw)):
        assert joined(read(translate(provider, [raw[:cut], raw[cut:]], sse), sse)) == whole, cut


def test_a_function_call_goes_out_when_its_arguments_are_complete() -> None:
    raw = b"".join(replies.openai_tool_calls_stream([("call_1", "f", ['{"a":', "1}"]), ("call_2", "g", ["{}"])]))
    call = Call(CHAT, {"messages": [], "stream": True}, "m", ModelOptions(), stream=True, writer=GEMINI.writer)
    translator = client_translator(REGISTRY["openai"], call, False, False)
    pieces = raw.split(b"\n\n")
    outputs = [translator.feed(p + b"\n\n") for p in pieces if p] + [translator.finish()]
    start_of_second = next(i for i, p in enumerate(pieces) if b"call_2" in p)
    assert not any(outputs[:start_of_second])  # nothing while the first call's arguments arrive
    assert read(outputs[start_of_second], True)[0]["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_1"}}
    ]
    final = read(b"".join(outputs[start_of_second + 1 :]), True)[-1]
    assert final["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "g", "args": {}, "id": "call_2"}}]
    assert final["candidates"][0]["finishReason"] == "STOP" and final["usageMetadata"]["candidatesTokenCount"] == 20


def test_reasoning_streams_as_thought_parts() -> None:
    raw = b"".join(
        f"data: {json.dumps(c)}\n\n".encode()
        for c in (
            {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}, "finish_reason": None}]},
            {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "yes"}, "finish_reason": "stop"}]},
        )
    ) + b"data: [DONE]\n\n"  # fmt: skip
    chunks = read(translate("openai", [raw]), True)
    assert [c["candidates"][0]["content"]["parts"] for c in chunks[:2]] == [
        [{"text": "hmm", "thought": True}],
        [{"text": "yes"}],
    ]
    assert sdk(chunks[1]).text == "yes"


@pytest.mark.parametrize("sse", [True, False])
def test_a_broken_stream_ends_with_googles_error(sse: bool) -> None:
    out = translate("openai", [b"".join(openai_stream())[:200]], sse)
    chunks = read(out, sse)
    assert chunks[-1]["error"]["status"] == "UNAVAILABLE" and chunks[-1]["error"]["code"] == 502
    assert list(chunks[-1]) == ["error"]  # the SDK raises on a chunk that starts with "error"


@pytest.mark.parametrize("sse", [True, False])
def test_an_error_the_route_writes_ends_the_stream_in_its_form(sse: bool) -> None:
    path = "/v1beta/models/m:streamGenerateContent" + ("?alt=sse" if sse else "")
    for started in (False, True):
        writer = GEMINI.writer_for(path)(CHAT, "m", True, False)
        out = writer.text("partial") if started else b""
        out += GEMINI.stream_error(writer.result, ProxyError(504, "upstream timed out"))
        chunks = read(out, sse)
        assert chunks[-1] == {"error": {"code": 504, "message": "upstream timed out", "status": "DEADLINE_EXCEEDED"}}
        assert len(chunks) == (2 if started else 1) and writer.result.error is not None
