"""Hugging Face (TGI, serverless Inference API, HF router): requests, responses, errors and streams, pure.

Streams are fed whole, in 1-byte pieces and split in two at every byte offset; every way must give the same
OpenAI events. Kong's huggingface fixtures are run in place from ../shared/conformance/kong (skipped when
absent) and compared on meaning; Kong reports TGI's finish reason as "complete", we report OpenAI's "stop".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call, UpstreamRequest
from addon.providers.huggingface import HUGGINGFACE
from addon.rules import Rule
from tests.support.chunks import sse_events as chunk_events
from tests.support.rules import one_rule

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
USER = [{"role": "user", "content": "Hi"}]
MODEL = "mistralai/Mistral-7B-Instruct-v0.2"
TGI = "http://tgi.internal:8080"

KONG = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "kong"
KONG_HF = KONG / "ai-proxy" / "huggingface"
needs_kong = pytest.mark.skipif(not KONG_HF.is_dir(), reason=f"Kong conformance fixtures not found at {KONG}")


def make_rule(route: str = CHAT, name: str | None = MODEL, **options: Any) -> Rule:
    return one_rule("huggingface", name, route, options, rule_name="hf", host="hf.internal")


def default_body(route: str) -> dict[str, Any]:
    return {"messages": USER} if route == CHAT else {"prompt": "Hi"}


def call(rule: Rule, body: dict[str, Any] | None = None, **fields: Any) -> Call:
    data = {**(body if body is not None else default_body(rule.spec.route_type)), **fields}
    request = ClientRequest({}, {}, "application/json", json.dumps(data).encode())
    return prepare_call(rule, {}, request)


def upstream(rule: Rule, body: dict[str, Any] | None = None, **fields: Any) -> UpstreamRequest:
    return build_upstream(rule, call(rule, body, **fields))


def up_body(rule: Rule, body: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    up = upstream(rule, body, **fields)
    assert up.body is not None
    return up.body


def refused(rule: Rule, body: dict[str, Any] | None = None, **fields: Any) -> ProxyError:
    with pytest.raises(ProxyError) as e:
        upstream(rule, body, **fields)
    assert e.value.status == 400, e.value.message
    return e.value


def respond(rule: Rule, data: Any, *, status: int = 200, body: dict[str, Any] | None = None, ctype: str = "") -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return translate_response(provider_for(rule), call(rule, body), status, raw, ctype or "application/json")


def error_of(status: int, data: Any, ctype: str = "application/json") -> ProxyError:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return HUGGINGFACE.parse_error(status, raw, ctype)


# ==============================================================================================================
# Chat requests: the Messages API (TGI / router)
# ==============================================================================================================


def test_chat_goes_to_the_router_by_default():
    up = upstream(make_rule(), {"messages": [{"role": "system", "content": "Be terse."}, *USER]})
    assert up.url == "https://router.huggingface.co/v1/chat/completions"
    assert up.method == "POST"
    assert up.body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be terse."}, *USER],
        "stream": False,
    }


def test_router_needs_a_model_but_self_hosted_tgi_does_not():
    with pytest.raises(ProxyError) as e:
        call(make_rule(name=None))
    assert (e.value.status, e.value.param) == (400, "model")
    up = upstream(make_rule(name=None, upstream_url=TGI))
    assert up.url == f"{TGI}/v1/chat/completions"
    assert up.body is not None and up.body["model"] == "tgi"  # TGI's name for the model it serves


def test_chat_client_model_is_used_when_the_rule_names_none():
    body = up_body(make_rule(name=None, upstream_url=TGI), model="meta-llama/Llama-3.1-8B-Instruct:fastest")
    assert body["model"] == "meta-llama/Llama-3.1-8B-Instruct:fastest"


def test_chat_whole_upstream_url_is_used_as_given():
    url = "https://api-inference.huggingface.co/models/org/m/v1/chat/completions"
    assert upstream(make_rule(upstream_url=url)).url == url
    assert upstream(make_rule(upstream_url=url), stream=True).url == url  # the same URL streams


@pytest.mark.parametrize(("stop", "sent"), [("\n\n", ["\n\n"]), (["a", "b"], ["a", "b"])])
def test_chat_stop_is_always_an_array(stop, sent):
    assert up_body(make_rule(), stop=stop)["stop"] == sent


def test_chat_max_completion_tokens_becomes_max_tokens():
    body = up_body(make_rule(), max_completion_tokens=64)
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert up_body(make_rule(), max_tokens=32)["max_tokens"] == 32


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"temperature": 0.7, "top_p": 0.9}, {"temperature": 0.7, "top_p": 0.9}),
        ({"temperature": 0}, {"temperature": 0}),
        # Greedy: a top_p < 1 would switch TGI back to sampling.
        ({"temperature": 0, "top_p": 0.5}, {"temperature": 0}),
        # top_p 0 keeps only the most likely token: greedy, which TGI spells temperature 0 (it refuses top_p 0).
        ({"top_p": 0}, {"temperature": 0}),
        ({"temperature": 1.2, "top_p": 0}, {"temperature": 0}),
        # top_p 1 filters nothing; TGI refuses 1.0.
        ({"temperature": 0.5, "top_p": 1}, {"temperature": 0.5}),
        ({}, {}),
    ],
)
def test_chat_sampling_parameters(fields, expected):
    body = up_body(make_rule(), **fields)
    assert {k: body[k] for k in ("temperature", "top_p") if k in body} == expected


def test_chat_rule_tuning_applies_the_same_rules():
    body = up_body(make_rule(temperature=0, top_p=0.8), temperature=0.9)
    assert body["temperature"] == 0 and "top_p" not in body


@pytest.mark.parametrize(("fields", "param"), [({"temperature": -0.5}, "temperature"), ({"top_p": 1.5}, "top_p")])
def test_chat_out_of_range_sampling_is_refused(fields, param):
    assert refused(make_rule(), **fields).param == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"top_k": 40}, "top_k"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
    ],
)
def test_chat_unmapped_fields_are_refused(fields, param):
    err = refused(make_rule(), **fields)
    assert err.param == param
    assert "huggingface" in err.message or "Hugging Face" in err.message


def test_a_rule_top_k_is_dropped_on_the_chat_route():
    """The rule's top_k is meant for the native route; the client did nothing wrong (OpenAI drops it too)."""
    assert "top_k" not in up_body(make_rule(top_k=40))


def test_a_client_top_k_is_refused_on_the_chat_route():
    assert refused(make_rule(), {"messages": [{"role": "user", "content": "hi"}], "top_k": 40}).param == "top_k"


def test_chat_neutral_values_pass():
    body = up_body(make_rule(), n=1, response_format={"type": "text"}, seed=7, user="u-1", frequency_penalty=0.2)
    assert body["n"] == 1 and body["seed"] == 7 and body["user"] == "u-1" and body["frequency_penalty"] == 0.2
    assert "response_format" not in body  # TGI's grammar type has no "text"
    assert "top_k" not in up_body(make_rule(), top_k=0)  # 0 means no top-k filtering


def test_developer_messages_become_system():
    body = up_body(make_rule(), {"messages": [{"role": "developer", "content": "Be terse."}, *USER]})
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, *USER]


def test_chat_passes_tools_and_images_through():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
    ]
    body = up_body(make_rule(), {"messages": [{"role": "user", "content": content}]}, tools=tools)
    assert body["tools"] == tools
    assert body["messages"][0]["content"] == content


def test_chat_stream_asks_for_usage():
    body = up_body(make_rule(), stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    body = up_body(make_rule(), stream=True, stream_options={"include_usage": False})
    assert body["stream_options"] == {"include_usage": True}  # the proxy needs the counts; the client won't see them


def test_chat_serverless_switches_become_headers():
    up = upstream(make_rule(huggingface={"use_cache": False, "wait_for_model": True}))
    assert up.headers["x-use-cache"] == "false"
    assert up.headers["x-wait-for-model"] == "true"
    assert "options" not in (up.body or {})
    assert "x-use-cache" not in upstream(make_rule()).headers


@pytest.mark.parametrize("path", ["/generate", "/generate_stream"])
def test_chat_refuses_a_native_upstream(path):
    err = refused(make_rule(upstream_url=f"{TGI}{path}"))
    assert "llm/v1/completions" in err.message


# ==============================================================================================================
# Completions requests: native text generation
# ==============================================================================================================


def test_completions_default_to_the_serverless_api():
    up = upstream(make_rule(COMPLETIONS), {"prompt": "What are you?"})
    assert up.url == f"https://api-inference.huggingface.co/models/{MODEL}"
    assert up.body == {
        "inputs": "What are you?",
        "parameters": {"do_sample": True, "return_full_text": False, "details": True},
        "stream": False,
    }


def test_serverless_model_path_is_encoded_per_segment():
    up = upstream(make_rule(COMPLETIONS, name="org/name with space"))
    assert urlsplit(up.url).path == "/models/org/name%20with%20space"


@pytest.mark.parametrize("model", ["../admin", "org//m", "org/.", "/m"])
def test_serverless_model_path_refuses_dot_and_empty_segments(model):
    assert refused(make_rule(COMPLETIONS, name=model)).param == "model"


def test_serverless_options_go_in_the_body():
    body = up_body(make_rule(COMPLETIONS, huggingface={"use_cache": False, "wait_for_model": True}))
    assert body["options"] == {"use_cache": False, "wait_for_model": True}
    assert up_body(make_rule(COMPLETIONS, huggingface={"wait_for_model": True}))["options"] == {"wait_for_model": True}


def test_serverless_stream_is_asked_in_the_body():
    up = upstream(make_rule(COMPLETIONS), stream=True)
    assert up.url == f"https://api-inference.huggingface.co/models/{MODEL}"
    assert up.body is not None and up.body["stream"] is True


@pytest.mark.parametrize(
    ("upstream_url", "stream", "expected"),
    [
        (TGI, False, f"{TGI}/generate"),
        (TGI, True, f"{TGI}/generate_stream"),
        (f"{TGI}/", True, f"{TGI}/generate_stream"),
        # A whole URL is used as given, except that the operation follows the client's stream flag (Kong #14680).
        (f"{TGI}/tgi/generate", False, f"{TGI}/tgi/generate"),
        (f"{TGI}/tgi/generate?x=1", True, f"{TGI}/tgi/generate_stream?x=1"),
        (f"{TGI}/tgi/generate_stream", False, f"{TGI}/tgi/generate"),
        (f"{TGI}/tgi/generate_stream", True, f"{TGI}/tgi/generate_stream"),
        (
            "https://router.huggingface.co/hf-inference/models/org/m",
            True,
            "https://router.huggingface.co/hf-inference/models/org/m",
        ),
    ],
)
def test_native_url(upstream_url, stream, expected):
    up = upstream(make_rule(COMPLETIONS, name=None, upstream_url=upstream_url), stream=stream)
    assert up.url == expected
    assert up.body is not None
    if "/generate" in expected:
        assert "stream" not in up.body  # /generate and /generate_stream decide by URL
    else:
        assert up.body["stream"] is stream


def test_native_upstream_path_is_switched_too():
    up = upstream(make_rule(COMPLETIONS, upstream_url=TGI, upstream_path="/v2/generate"), stream=True)
    assert up.url == f"{TGI}/v2/generate_stream"


@pytest.mark.parametrize(
    ("fields", "parameters"),
    [
        ({"max_tokens": 20}, {"max_new_tokens": 20, "do_sample": True}),
        ({"max_completion_tokens": 30, "max_tokens": 5}, {"max_new_tokens": 30, "do_sample": True}),
        (
            {"temperature": 0.7, "top_p": 0.9, "top_k": 50},
            {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 50},
        ),
        # OpenAI's temperature 0 is greedy: TGI refuses temperature 0, and top_p/top_k would turn sampling back on.
        ({"temperature": 0, "top_p": 0.9, "top_k": 50}, {"do_sample": False}),
        ({"top_p": 0, "temperature": 0.8}, {"do_sample": False}),
        ({"top_p": 1, "top_k": 0}, {"do_sample": True}),  # neither filters anything; TGI refuses top_p 1.0
        ({"stop": "\n"}, {"do_sample": True, "stop": ["\n"]}),
        ({"stop": ["A:", "B:"], "seed": 42}, {"do_sample": True, "stop": ["A:", "B:"], "seed": 42}),
        ({"frequency_penalty": 0.5, "best_of": 3}, {"do_sample": True, "frequency_penalty": 0.5, "best_of": 3}),
        ({"frequency_penalty": 0, "best_of": 1, "n": 1, "echo": False, "user": "u"}, {"do_sample": True}),
    ],
)
def test_native_parameters(fields, parameters):
    body = up_body(make_rule(COMPLETIONS, upstream_url=TGI), **fields)
    assert body["parameters"] == {**parameters, "return_full_text": False, "details": True}
    assert body["inputs"] == "Hi"


def test_native_rule_tuning_wins():
    body = up_body(make_rule(COMPLETIONS, upstream_url=TGI, temperature=0.3, max_tokens=99), temperature=1.5)
    assert body["parameters"]["temperature"] == 0.3
    assert body["parameters"]["max_new_tokens"] == 99


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": 2}, "logprobs"),
        ({"echo": True}, "echo"),
        ({"suffix": "end"}, "suffix"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"top_k": -1}, "top_k"),
        ({"temperature": -1}, "temperature"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_native_unmapped_fields_are_refused(fields, param):
    assert refused(make_rule(COMPLETIONS, upstream_url=TGI), **fields).param == param


def test_single_element_prompt_list_is_fine():
    assert up_body(make_rule(COMPLETIONS, upstream_url=TGI), prompt=["Once"])["inputs"] == "Once"


def test_tgi_openai_completions_route_is_a_passthrough():
    rule = make_rule(COMPLETIONS, name=None, upstream_url=f"{TGI}/v1/completions")
    up = upstream(rule, {"prompt": "Once", "stop": "\n", "temperature": 0, "top_p": 0.5, "max_tokens": 8})
    assert up.url == f"{TGI}/v1/completions"
    assert up.body == {
        "prompt": "Once",
        "stop": ["\n"],
        "temperature": 0,
        "max_tokens": 8,
        "model": "tgi",
        "stream": False,
    }


def test_completions_refuse_a_chat_upstream():
    err = refused(make_rule(COMPLETIONS, upstream_url=f"{TGI}/v1/chat/completions"))
    assert "llm/v1/chat" in err.message


# ==============================================================================================================
# Responses
# ==============================================================================================================


def tgi_chat(finish_reason: str = "eos_token", **extra: Any) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "id": "",
        "created": 1722866733,
        "model": MODEL,
        "system_fingerprint": "2.1.1-sha-4dfdb48",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The sum is 2."},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 26, "completion_tokens": 40, "total_tokens": 66},
        **extra,
    }


@pytest.mark.parametrize(
    ("tgi", "openai"),
    [
        ("eos_token", "stop"),
        ("stop_sequence", "stop"),
        ("length", "length"),
        ("stop", "stop"),
        ("tool_calls", "tool_calls"),
        ("weird", "stop"),
    ],
)
def test_chat_response_finish_reasons(tgi, openai):
    status, out = respond(make_rule(), tgi_chat(tgi))
    assert status == 200
    assert out["choices"][0]["finish_reason"] == openai


def test_chat_response_gets_an_id_and_keeps_the_rest():
    status, out = respond(make_rule(), tgi_chat())
    assert status == 200
    assert out["id"].startswith("chatcmpl-") and len(out["id"]) > len("chatcmpl-")
    assert out["model"] == MODEL and out["created"] == 1722866733
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "The sum is 2."}
    assert out["usage"] == {"prompt_tokens": 26, "completion_tokens": 40, "total_tokens": 66}
    assert out["system_fingerprint"] == "2.1.1-sha-4dfdb48"
    _, out = respond(make_rule(), tgi_chat(id="chatcmpl-router-1"))
    assert out["id"] == "chatcmpl-router-1"


def test_chat_tool_call_arguments_object_becomes_a_string():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "0", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}],
    }
    data = tgi_chat("eos_token")
    data["choices"][0]["message"] = message
    _, out = respond(make_rule(), data)
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'


@pytest.mark.parametrize("data", [[], {"generated_text": "x"}, {"choices": "nope"}, "text"])
def test_chat_response_of_the_wrong_shape_is_502(data):
    status, out = respond(make_rule(), data)
    assert status == 502 and out["error"]["code"] == "bad_upstream_response"


def test_native_response_with_details():
    data = {
        "generated_text": " a language model.",
        "details": {"finish_reason": "length", "generated_tokens": 5, "seed": None, "prefill": [], "tokens": []},
    }
    status, out = respond(make_rule(COMPLETIONS, upstream_url=TGI), data)
    assert status == 200
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    assert out["model"] == MODEL
    assert out["choices"] == [{"index": 0, "text": " a language model.", "logprobs": None, "finish_reason": "length"}]
    # /generate reports no prompt length unless decoder_input_details was asked for: no usage, never a made-up 0.
    assert "usage" not in out


def test_native_usage_from_prefill_or_input_length():
    prefill = [{"id": 1, "text": "<s>", "logprob": None}, {"id": 2, "text": "Hi", "logprob": -1.0}]
    data = {"generated_text": "x", "details": {"finish_reason": "eos_token", "generated_tokens": 7, "prefill": prefill}}
    _, out = respond(make_rule(COMPLETIONS, upstream_url=TGI), data)
    assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9}
    assert out["choices"][0]["finish_reason"] == "stop"
    data = {"generated_text": "x", "details": {"finish_reason": "eos_token", "generated_tokens": 7, "input_length": 12}}
    _, out = respond(make_rule(COMPLETIONS, upstream_url=TGI), data)
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def test_native_usage_from_tgi_response_headers_when_the_glue_passes_them():
    # TGI's /generate sends x-prompt-tokens; the glue does not hand headers to providers yet (see the module).
    fake = SimpleNamespace(
        route_type=COMPLETIONS,
        body={"prompt": "Hi"},
        model="m",
        options=make_rule(COMPLETIONS).spec.model.options,
        response_headers={"x-prompt-tokens": "11"},
    )
    out = HUGGINGFACE.parse_response(
        fake, {"generated_text": "x", "details": {"finish_reason": "length", "generated_tokens": 3}}
    )
    assert out["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


def test_serverless_array_response_without_details():
    status, out = respond(make_rule(COMPLETIONS), [{"generated_text": "I am a language model"}])
    assert status == 200
    assert out["choices"][0]["text"] == "I am a language model"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in out


@pytest.mark.parametrize(
    ("finish", "stop", "text", "expected"),
    [
        ("stop_sequence", ["\nUser:"], "Hello.\nUser:", "Hello."),
        ("stop_sequence", ["X", "\nUser:"], "Hello.\nUser:", "Hello."),
        (None, ["\n"], "Hello.\n", "Hello."),  # no details: a text ending in a stop sequence ended by it
        ("eos_token", ["."], "Hello.", "Hello."),  # not stopped by the sequence: the text is the model's
        ("length", ["."], "Hello.", "Hello."),
    ],
)
def test_native_stop_sequence_is_not_part_of_the_text(finish, stop, text, expected):
    details = {"finish_reason": finish, "generated_tokens": 3} if finish else None
    data = {"generated_text": text, **({"details": details} if details else {})}
    _, out = respond(make_rule(COMPLETIONS, upstream_url=TGI), data, body={"prompt": "Hi", "stop": stop})
    assert out["choices"][0]["text"] == expected


def test_native_model_falls_back_to_tgi():
    _, out = respond(make_rule(COMPLETIONS, name=None, upstream_url=TGI), {"generated_text": "x"})
    assert out["model"] == "tgi"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"error": "Model too busy"}, "Model too busy"),
        ([], "generated_text"),
        ({"text": "x"}, "generated_text"),
        ([1], "generated_text"),
    ],
)
def test_native_response_of_the_wrong_shape_is_502(data, fragment):
    status, out = respond(make_rule(COMPLETIONS, upstream_url=TGI), data)
    assert status == 502
    assert out["error"]["code"] == "bad_upstream_response" and fragment in out["error"]["message"]


def test_tgi_openai_completions_response_is_normalised():
    rule = make_rule(COMPLETIONS, name=None, upstream_url=f"{TGI}/v1/completions")
    data = {
        "id": "",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": "ok", "logprobs": None, "finish_reason": "eos_token"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    _, out = respond(rule, data)
    assert out["id"].startswith("cmpl-") and out["choices"][0]["finish_reason"] == "stop"


# ==============================================================================================================
# Errors
# ==============================================================================================================


@pytest.mark.parametrize(
    ("status", "data", "out_status", "etype", "code", "fragment"),
    [
        (
            422,
            {"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"},
            422,
            "invalid_request_error",
            "validation",
            "strictly positive",
        ),
        (
            424,
            {"error": "Request failed during generation: CUDA OOM", "error_type": "generation"},
            502,
            "server_error",
            "generation",
            "CUDA OOM",
        ),
        (
            429,
            {"error": "Model is overloaded", "error_type": "overloaded"},
            429,
            "rate_limit_error",
            "overloaded",
            "overloaded",
        ),
        (
            500,
            {"error": "Incomplete generation", "error_type": "incomplete_generation"},
            500,
            "server_error",
            "incomplete_generation",
            "Incomplete",
        ),
        (
            401,
            {"error": "Invalid credentials in Authorization header"},
            401,
            "authentication_error",
            None,
            "Invalid credentials",
        ),
        (
            400,
            {"error": ["Error in `parameters.top_p`: ensure this value is less than 1", "Error in `inputs`"]},
            400,
            "invalid_request_error",
            None,
            "less than 1; Error in `inputs`",
        ),
        (
            400,
            {"error": {"message": "bad model", "type": "invalid_request_error", "code": "model_not_found"}},
            400,
            "invalid_request_error",
            "model_not_found",
            "bad model",
        ),
        (422, {"message": "Failed to deserialize the JSON body"}, 422, "invalid_request_error", None, "deserialize"),
    ],
)
def test_upstream_errors(status, data, out_status, etype, code, fragment):
    err = error_of(status, data)
    assert err.status == out_status
    envelope = err.envelope()["error"]
    assert set(envelope) == {"message", "type", "param", "code"}
    assert envelope["type"] == etype and envelope["code"] == code
    assert fragment in envelope["message"]


def test_model_loading_is_a_503_that_says_how_long():
    err = error_of(503, {"error": "Model org/m is currently loading", "estimated_time": 20.2})
    assert err.status == 503
    assert err.type == "server_error" and err.code == "model_loading"
    assert "Model org/m is currently loading" in err.message and "21 s" in err.message
    assert "wait_for_model" in err.message
    assert err.headers == {"retry-after": "21"}


def test_non_json_errors():
    err = error_of(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
    assert err.status == 502 and "502 Bad Gateway" in err.message
    err = error_of(424, b"")
    assert err.status == 502 and "empty body" in err.message


def test_upstream_error_through_translate_response():
    status, out = respond(
        make_rule(COMPLETIONS, upstream_url=TGI), {"error": "busy", "error_type": "overloaded"}, status=429
    )
    assert status == 429
    assert out == {"error": {"message": "busy", "type": "rate_limit_error", "param": None, "code": "overloaded"}}


# ==============================================================================================================
# Streams
# ==============================================================================================================


def split_variants(data: bytes) -> Iterator[list[bytes]]:
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def run(make: Callable[[], Any], pieces: list[bytes]) -> tuple[Any, bytes]:
    translator = make()
    out = b"".join(translator.feed(p) for p in pieces) + translator.finish()
    return translator, out


def sse_events(out: bytes) -> list[Any]:
    """The client's view: every event must be `data: <json>` or `data: [DONE]`."""
    return chunk_events(out, keep_ids=True)


def normalised(events: list[Any]) -> list[Any]:
    """Ids and timestamps differ between runs: check the ids are one non-empty value, then blank both."""
    chunks = [e for e in events if isinstance(e, dict) and "choices" in e]
    ids = {c.get("id") for c in chunks}
    assert len(ids) <= 1 and all(isinstance(i, str) and i for i in ids), ids
    return [{**e, "id": "ID", "created": 0} if e in chunks else e for e in events]


def assert_split_invariant(make: Callable[[], Any], data: bytes) -> tuple[list[Any], Any]:
    translator, whole = run(make, [data])
    expected = normalised(sse_events(whole))
    for pieces in split_variants(data):
        _, out = run(make, pieces)
        got = normalised(sse_events(out))
        if got != expected:
            pytest.fail(f"split {[len(p) for p in pieces][:3]}: {got!r:.1500}\n!=\n{expected!r:.1500}")
    return expected, translator


def translator_for(rule: Rule, include_usage: bool = False, keep_payload: bool = True, **fields: Any):
    c = call(rule, stream=True, **fields)
    return lambda: provider_for(rule).stream_translator(c, include_usage, keep_payload)


def tgi(obj: Any) -> bytes:
    """One TGI SSE event: `data:` with no space."""
    return b"data:" + (obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()) + b"\n\n"


def tgi_chat_stream(pieces: list[str], finish: str = "eos_token", usage: bool = True) -> bytes:
    base = {
        "object": "chat.completion.chunk",
        "id": "",
        "created": 1722866733,
        "model": MODEL,
        "system_fingerprint": "3.0.0-native",
    }

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        return tgi({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]})

    out = chunk({"role": "assistant", "content": ""}) + b": keep-alive\n\n"
    out += b"".join(chunk({"role": "assistant", "content": p}) for p in pieces)
    out += chunk({"role": "assistant", "content": ""}, finish)
    if usage:
        out += tgi({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})
    return out + b"data: [DONE]\n\n"


CHAT_PIECES = ["The", " sky", " is blue ☀"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream_is_normalised_at_every_split(include_usage):
    data = tgi_chat_stream(CHAT_PIECES, "stop_sequence")
    events, translator = assert_split_invariant(translator_for(make_rule(), include_usage), data)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(CHAT_PIECES)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if not c["choices"]]
    assert len(usage_chunks) == (1 if include_usage else 0)
    result = translator.result
    assert result.completed and result.error is None
    assert result.usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert result.finish_reason == "stop" and result.model == MODEL
    assert "".join(result.text) == "".join(CHAT_PIECES)


def test_chat_stream_keeps_upstream_ids_and_passes_untouched_events_byte_for_byte():
    event = {
        "id": "chatcmpl-r1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
    }
    raw = json.dumps(event)
    make = translator_for(make_rule())
    _, out = run(make, [f"data: {raw}\n\ndata: [DONE]\n\n".encode()])
    assert out == f"data: {raw}\n\ndata: [DONE]\n\n".encode()


@pytest.mark.parametrize(
    ("error_event", "status", "code", "fragment"),
    [
        (
            {"error": {"message": "Input validation error: too long", "http_status_code": 422}},
            422,
            "stream_error",
            "too long",
        ),
        ({"error": "Request failed during generation: OOM", "error_type": "generation"}, 502, "generation", "OOM"),
        ({"error": "Model is overloaded", "error_type": "overloaded"}, 429, "overloaded", "overloaded"),
    ],
)
def test_chat_stream_error_event_becomes_an_openai_error(error_event, status, code, fragment):
    data = tgi_chat_stream(["Hel"], usage=False).split(b"data: [DONE]")[0]
    head = data.split(b"data:")
    data = b"data:".join(head[:3]) + tgi(error_event) + b"data: [DONE]\n\n"
    events, translator = assert_split_invariant(translator_for(make_rule()), data)
    err = events[-1]
    assert set(err) == {"error"} and set(err["error"]) == {"message", "type", "param", "code"}
    assert fragment in err["error"]["message"] and err["error"]["code"] == code
    assert "[DONE]" not in events  # the stream ends at the error
    assert translator.result.error.status == status and not translator.result.completed


def test_chat_stream_cut_before_done_ends_with_an_error():
    data = tgi_chat_stream(["Hel"]).split(b"data: [DONE]")[0]
    events, translator = assert_split_invariant(translator_for(make_rule()), data)
    assert "error" in events[-1] and "[DONE]" in events[-1]["error"]["message"]
    assert translator.result.error is not None


def tgi_token_event(i: int, text: str, special: bool = False, final: dict[str, Any] | None = None) -> bytes:
    event: dict[str, Any] = {
        "index": i,
        "token": {"id": 100 + i, "text": text, "logprob": -0.1, "special": special},
        "generated_text": None,
        "details": None,
    }
    if final is not None:
        event.update(final)
    return tgi(event)


def tgi_generate_stream(
    tokens: list[str], finish: str = "eos_token", input_length: int | None = 12, eos: bool = True
) -> bytes:
    out = b"".join(tgi_token_event(i, t) for i, t in enumerate(tokens, 1))
    details: dict[str, Any] = {"finish_reason": finish, "generated_tokens": len(tokens) + eos, "seed": None}
    if input_length is not None:
        details["input_length"] = input_length
    final = {"generated_text": "".join(tokens), "details": details}
    if eos:
        out += tgi_token_event(len(tokens) + 1, "<|eot_id|>", special=True, final=final)
    else:
        out = out[: out.rfind(b"data:")] + tgi_token_event(len(tokens), tokens[-1], final=final)
    return out  # no [DONE]: the connection closes


def completion_text(events: list[Any]) -> str:
    return "".join(e["choices"][0]["text"] for e in events if isinstance(e, dict) and e.get("choices"))


def completion_finishes(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["finish_reason"]
        for e in events
        if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"]
    ]


@pytest.mark.parametrize("include_usage", [False, True])
def test_generate_stream_at_every_split(include_usage):
    data = b": keep-alive\n\n" + tgi_generate_stream(["The", " sky", " is ☀"])
    make = translator_for(make_rule(COMPLETIONS, upstream_url=TGI), include_usage)
    events, translator = assert_split_invariant(make, data)
    assert events[-1] == "[DONE]"  # the client gets its [DONE] though TGI sends none
    assert all(e["object"] == "text_completion" for e in events if isinstance(e, dict))
    assert completion_text(events) == "The sky is ☀"  # the special <|eot_id|> token is not text
    assert completion_finishes(events) == ["stop"]
    usage = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    usage_chunks = [e for e in events if isinstance(e, dict) and e.get("usage")]
    assert usage_chunks == ([{**usage_chunks[0], "choices": [], "usage": usage}] if include_usage else [])
    result = translator.result
    assert result.completed and result.usage == usage and result.finish_reason == "stop"
    assert "".join(result.text) == "The sky is ☀"


def test_generate_stream_without_input_length_has_no_usage():
    data = tgi_generate_stream(["a", "b"], finish="length", input_length=None, eos=False)
    events, translator = assert_split_invariant(translator_for(make_rule(COMPLETIONS, upstream_url=TGI), True), data)
    assert completion_text(events) == "ab" and completion_finishes(events) == ["length"]
    assert translator.result.usage is None


def test_generate_stream_is_incremental():
    data = tgi_generate_stream(["The", " sky"])
    first_event = data[: data.index(b"\n\n") + 2]
    translator = translator_for(make_rule(COMPLETIONS, upstream_url=TGI))()
    out = translator.feed(first_event)
    assert completion_text(sse_events(out)) == "The"


@pytest.mark.parametrize(
    ("tokens", "stops", "expected"),
    [
        (["Hi", " there", "\n", "\nUser", ":"], ["\n\nUser:"], "Hi there"),
        (["Hi", "\n\nUser:"], ["\n\nUser:"], "Hi"),
        (["a", "b", "a", "a", "b"], ["aab"], "ab"),  # overlapping false starts
        (["x", "A", "B"], ["AB", "B"], "x"),
    ],
)
def test_generate_stream_leaves_the_stop_sequence_out(tokens, stops, expected):
    data = tgi_generate_stream(tokens, finish="stop_sequence", eos=False)
    make = translator_for(make_rule(COMPLETIONS, upstream_url=TGI), stop=stops)
    events, _ = assert_split_invariant(make, data)
    assert completion_text(events) == expected
    assert completion_finishes(events) == ["stop"]


def test_generate_stream_releases_held_text_that_is_no_stop():
    tokens = ["Hi", "\n", "\nUs", "ually", " yes"]
    data = tgi_generate_stream(tokens, finish="length", eos=False)
    make = translator_for(make_rule(COMPLETIONS, upstream_url=TGI), stop=["\n\nUser:"])
    events, _ = assert_split_invariant(make, data)
    assert completion_text(events) == "".join(tokens)
    # The held text is released as soon as it cannot be the stop sequence any more, not at the end.
    translator = make()
    out = translator.feed(b"".join(tgi_token_event(i, t) for i, t in enumerate(tokens[:4], 1)))
    assert completion_text(sse_events(out)) == "Hi\n\nUsually"


def test_generate_stream_error_event():
    data = tgi_generate_stream(["a", "b"]).split(b"data:")
    data = b"data:".join(data[:2]) + tgi({"error": "Request failed during generation: OOM", "error_type": "generation"})
    data += tgi_token_event(9, "ignored")
    events, translator = assert_split_invariant(translator_for(make_rule(COMPLETIONS, upstream_url=TGI)), data)
    assert completion_text(events[:-1]) == "a"
    assert events[-1] == {
        "error": {
            "message": "Request failed during generation: OOM",
            "type": "server_error",
            "param": None,
            "code": "generation",
        }
    }
    assert translator.result.error.status == 502 and not translator.result.completed


def test_generate_stream_cut_before_the_final_event():
    data = b"".join(tgi_token_event(i, t) for i, t in enumerate(["a", "b"], 1))
    events, translator = assert_split_invariant(translator_for(make_rule(COMPLETIONS, upstream_url=TGI)), data)
    assert completion_text(events) == "ab"
    assert "final event" in events[-1]["error"]["message"]
    assert not translator.result.completed


def test_generate_stream_event_that_is_not_json():
    data = tgi_token_event(1, "a") + b"data:{oops\n\n" + tgi_generate_stream(["b"])
    events, _ = assert_split_invariant(translator_for(make_rule(COMPLETIONS, upstream_url=TGI)), data)
    assert completion_text(events) == "a" and "not JSON" in events[-1]["error"]["message"]


def test_serverless_stream_uses_the_native_translator():
    data = tgi_generate_stream(["ok"])
    events, _ = assert_split_invariant(translator_for(make_rule(COMPLETIONS)), data)
    assert completion_text(events) == "ok"


def test_tgi_openai_completions_stream_is_normalised():
    rule = make_rule(COMPLETIONS, name=None, upstream_url=f"{TGI}/v1/completions")
    base = {"id": "", "object": "text_completion", "created": 1, "model": "m"}
    data = tgi({**base, "choices": [{"index": 0, "text": "o", "logprobs": None, "finish_reason": ""}]})
    data += tgi({**base, "choices": [{"index": 0, "text": "k", "logprobs": None, "finish_reason": "eos_token"}]})
    data += b"data: [DONE]\n\n"
    events, _ = assert_split_invariant(translator_for(rule), data)
    assert completion_text(events) == "ok"
    assert [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict)] == [None, "stop"]


# ==============================================================================================================
# Kong's fixtures, meaning for meaning
# ==============================================================================================================


def kong(route: str, kind: str, name: str) -> bytes:
    return (KONG_HF / f"llm-v1-{route}" / kind / name).read_bytes()


@needs_kong
def test_kong_chat_request():
    request = json.loads(kong("chat", "requests", "good.json"))
    up = build_upstream(make_rule(), call(make_rule(), request))
    assert urlsplit(up.url).path.endswith("/v1/chat/completions")
    assert up.body is not None
    assert up.body["model"] == MODEL and up.body["stream"] is False
    assert up.body["messages"] == request["messages"]  # system and user, as sent


@needs_kong
def test_kong_completions_request():
    request = json.loads(kong("completions", "requests", "good.json"))
    up = upstream(make_rule(COMPLETIONS), request)
    assert up.url.endswith(f"/models/{MODEL}")
    assert up.body is not None
    assert up.body["inputs"] == request["prompt"]
    assert up.body["parameters"]["return_full_text"] is False


@needs_kong
def test_kong_chat_response_finish_reason_is_stop_not_complete():
    """Regression: Kong reports TGI's eos_token as "complete", which no OpenAI client knows."""
    status, out = respond(make_rule(), kong("chat", "responses", "good.json"))
    assert status == 200
    (choice,) = out["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith(" The sum of 1 + 1 is 2.")
    assert out["model"] == MODEL and out["object"] == "chat.completion" and out["id"]
    assert out["usage"] == {"prompt_tokens": 26, "completion_tokens": 40, "total_tokens": 66}


@needs_kong
def test_kong_completions_response():
    status, out = respond(make_rule(COMPLETIONS), kong("completions", "responses", "good.json"))
    assert status == 200
    assert out["object"] == "text_completion"
    assert out["choices"][0]["text"] == "I am a language model AI created by Mistral AI"
    assert out["choices"][0]["finish_reason"] == "stop"


@needs_kong
@pytest.mark.parametrize(
    ("route", "name", "status", "out_status", "fragment"),
    [
        ("chat", "bad_request.json", 422, 422, "Template error"),
        ("chat", "unauthorized.json", 401, 401, "token seems invalid"),
        ("chat", "bad_response_model_load.json", 503, 503, "is currently loading (estimated time 306 s)"),
        ("chat", "bad_response_timeout.json", 504, 504, "time out"),
        ("completions", "bad_request.json", 422, 422, "missing field `inputs`"),
        ("completions", "unauthorized.json", 401, 401, "token seems invalid"),
    ],
)
def test_kong_error_responses(route, name, status, out_status, fragment):
    rule = make_rule(CHAT if route == "chat" else COMPLETIONS)
    got_status, out = respond(rule, kong(route, "responses", name), status=status)
    assert got_status == out_status
    assert set(out) == {"error"} and set(out["error"]) == {"message", "type", "param", "code"}
    assert fragment in out["error"]["message"]
