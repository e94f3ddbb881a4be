"""The llama2 provider, pure: the Llama 2 / Llama 3 prompt templates, the raw (TGI) format's requests, answers,
errors and streams (split at every byte offset), Ollama's native format (llama2_format: ollama; the same wire
format serves mistral_format: ollama, run here too where a test takes both providers), the openai format's
passthrough, plus Kong's llama2 fixtures compared on meaning (run in place, skipped when absent).

Builders: tests/support/selfhosted.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.exchange import build_upstream
from addon.rules import RulesError
from tests.support.selfhosted import (
    COMPLETIONS,
    DIALOG,
    KONG,
    LLAMA2_DIALOG,
    LLAMA3_DIALOG,
    OLLAMA,
    TGI,
    USER,
    KongRules,
    call,
    chat_text,
    completion_text,
    envelope,
    error_of,
    finishes,
    kong_unit_tests,
    make_rule,
    ndjson,
    needs_kong,
    ok,
    ollama_rule,
    raw_rule,
    read,
    refused,
    sse,
    translate_stream,
    up_body,
    upstream,
)

# ==============================================================================================================
# Llama templates (docs/providers.md §9)
# ==============================================================================================================


def test_llama2_template_multi_turn_with_system():
    assert up_body(raw_rule(), {"messages": DIALOG})["inputs"] == LLAMA2_DIALOG


def test_llama3_template_multi_turn_with_system():
    assert up_body(raw_rule(llama_template="llama3"), {"messages": DIALOG})["inputs"] == LLAMA3_DIALOG


@pytest.mark.parametrize("template", ["llama2", "llama3"])
def test_every_assistant_turn_is_kept(template):
    """Regression (Kong drops assistant turns from the raw prompt): the model must see the whole conversation."""
    messages = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "Q3"},
    ]
    prompt = up_body(raw_rule(llama_template=template), {"messages": messages})["inputs"]
    if template == "llama2":
        assert prompt == "<s>[INST] Q1 [/INST] A1 </s><s>[INST] Q2 [/INST] A2 </s><s>[INST] Q3 [/INST]"
    else:
        assert prompt.count("<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>") == 1
        assert "<|start_header_id|>assistant<|end_header_id|>\n\nA2<|eot_id|>" in prompt


def test_llama2_template_strips_turns_merges_roles_and_gathers_system():
    messages = [
        {"role": "developer", "content": "Rule one."},
        {"role": "user", "content": "  Hello  "},
        {"role": "user", "content": [{"type": "text", "text": "there"}]},
        {"role": "system", "content": "Rule two."},
        {"role": "assistant", "content": " Hi! "},
        {"role": "user", "content": "Bye"},
    ]
    assert up_body(raw_rule(), {"messages": messages})["inputs"] == (
        "<s>[INST] <<SYS>>\nRule one.\n\nRule two.\n<</SYS>>\n\nHello\n\nthere [/INST] Hi! </s><s>[INST] Bye [/INST]"
    )


def test_llama3_keeps_message_order_and_maps_developer():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "developer", "content": "b"},
        {"role": "assistant", "content": "c"},
    ]
    assert up_body(raw_rule(llama_template="llama3"), {"messages": messages})["inputs"] == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|>"
        "<|start_header_id|>system<|end_header_id|>\n\nb<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nc<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}], "messages"),
        ([{"role": "system", "content": "s"}], "messages"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "messages"),
        ([{"role": "tool", "tool_call_id": "c", "content": "x"}], "messages[0].role"),
        ([{"role": "function", "name": "f", "content": "x"}], "messages[0].role"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}],
            "messages[0].content[0]",
        ),
        (
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f"}}]},
                {"role": "user", "content": "y"},
            ],
            "messages[1].tool_calls",
        ),
    ],
)
def test_llama2_template_refuses_what_it_cannot_render(messages, param):
    assert refused(raw_rule(), {"messages": messages}).param == param


def test_raw_completions_prompt_is_one_user_turn_unless_already_rendered():
    assert up_body(raw_rule(COMPLETIONS), {"prompt": "Hi"})["inputs"] == "<s>[INST] Hi [/INST]"
    rule3 = raw_rule(COMPLETIONS, llama_template="llama3")
    assert up_body(rule3, {"prompt": "Hi"})["inputs"] == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert up_body(rule3, {"prompt": LLAMA3_DIALOG})["inputs"] == LLAMA3_DIALOG  # the client rendered it
    assert up_body(raw_rule(COMPLETIONS), {"prompt": [LLAMA2_DIALOG]})["inputs"] == LLAMA2_DIALOG


# ==============================================================================================================
# llama2 raw: body, URL, refusals
# ==============================================================================================================


def test_raw_body():
    body = {
        "messages": USER,
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "stop": ["\nUser:"],
        "frequency_penalty": 0.5,
        "user": "someone",
    }
    assert up_body(raw_rule(), body) == {
        "inputs": "<s>[INST] Hi [/INST]",
        "parameters": {
            "max_new_tokens": 64,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 40,
            "stop": ["\nUser:", "</s>"],
            "seed": 7,
            "frequency_penalty": 0.5,
            "return_full_text": False,
            "details": True,
        },
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {}),
        ({"max_completion_tokens": 9, "max_tokens": 3}, {"max_new_tokens": 9}),
        ({"temperature": 0}, {"do_sample": False}),  # TGI refuses temperature 0: greedy decoding
        ({"temperature": 0, "top_p": 0.5, "top_k": 3}, {"do_sample": False}),
        ({"top_p": 1}, {}),  # TGI refuses top_p 1: no nucleus filtering is the same thing
        ({"top_p": 0}, {"do_sample": False}),
        ({"top_k": 0}, {}),
        ({"stop": "END"}, {"stop": ["END", "</s>"]}),
        ({"stop": ["</s>", "x"]}, {"stop": ["</s>", "x"]}),
        ({"frequency_penalty": 0, "presence_penalty": 0, "n": 1, "logprobs": False}, {}),
    ],
)
def test_raw_parameters(fields, expected):
    params = up_body(raw_rule(), {"messages": USER, **fields})["parameters"]
    base = {"stop": ["</s>"], "return_full_text": False, "details": True}
    assert params == {**base, **expected}


def test_raw_llama3_stops_on_eot_and_rule_tuning_wins():
    rule = raw_rule(llama_template="llama3", max_tokens=512, temperature=0.5, top_k=40)
    params = up_body(rule, {"messages": USER, "max_tokens": 5, "temperature": 1.5, "stop": ["x"]})["parameters"]
    assert params["stop"] == ["x", "<|eot_id|>"]
    assert (params["max_new_tokens"], params["temperature"], params["top_k"]) == (512, 0.5, 40)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"audio": {"voice": "x"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
    ],
)
def test_raw_refuses_unmapped_fields(fields, param):
    assert refused(raw_rule(), {"messages": USER, **fields}).param == param


def test_raw_accepts_neutral_fields():
    body = {"messages": USER, "tool_choice": "none", "response_format": {"type": "text"}, "modalities": ["text"]}
    assert up_body(raw_rule(), body)["inputs"] == "<s>[INST] Hi [/INST]"


def test_raw_completions_refusals():
    assert refused(raw_rule(COMPLETIONS), {"prompt": "a", "suffix": "b"}).param == "suffix"
    assert refused(raw_rule(COMPLETIONS), {"prompt": "a", "echo": True}).param == "echo"
    assert refused(raw_rule(COMPLETIONS), {"prompt": ["a", "b"]}).param == "prompt"


@pytest.mark.parametrize(
    ("upstream_url", "stream", "url", "stream_key"),
    [
        (TGI, False, f"{TGI}/generate", None),
        (TGI, True, f"{TGI}/generate_stream", None),
        (f"{TGI}/", True, f"{TGI}/generate_stream", None),
        (f"{TGI}/generate", False, f"{TGI}/generate", None),
        (f"{TGI}/generate", True, f"{TGI}/generate_stream", None),  # the stream operation, not Kong's #14680
        (f"{TGI}/generate_stream", False, f"{TGI}/generate", None),
        (f"{TGI}/generate_stream", True, f"{TGI}/generate_stream", None),
        (f"{TGI}/generate?x=1", True, f"{TGI}/generate_stream?x=1", None),
        ("https://hf.example/models/meta-llama/Llama-2-7b-chat-hf", False, None, None),
        ("https://hf.example/models/meta-llama/Llama-2-7b-chat-hf", True, None, True),  # streams by body flag
    ],
)
def test_raw_url(upstream_url, stream, url, stream_key):
    rule = make_rule("llama2", None, llama2_format="raw", upstream_url=upstream_url)
    up = upstream(rule, {"messages": USER, "stream": stream})
    assert up.url == (url or upstream_url)
    assert up.body is not None and up.body.get("stream") is stream_key


def test_raw_is_the_default_format_and_needs_no_model():
    rule = make_rule("llama2", None, upstream_url=TGI)
    c = call(rule, {"messages": USER})
    assert c.model is None
    assert build_upstream(rule, c).body["inputs"] == "<s>[INST] Hi [/INST]"  # type: ignore[index]


@pytest.mark.parametrize(
    ("provider", "options"),
    [
        ("llama2", {}),
        ("llama2", {"llama2_format": "raw"}),
        ("llama2", {"llama2_format": "ollama"}),
        ("llama2", {"llama2_format": "openai"}),
        ("mistral", {"mistral_format": "ollama"}),
    ],
)
def test_self_hosted_formats_need_upstream_url(provider, options):
    with pytest.raises(RulesError, match=r"model\.options\.upstream_url is required"):
        make_rule(provider, "m", **options)


# ==============================================================================================================
# llama2 raw: responses
# ==============================================================================================================


def test_raw_response_array():
    out = ok(raw_rule(), [{"generated_text": " Paris."}])
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in out  # TGI's non-streamed details have no prompt count: left out, never invented


def test_raw_response_object_with_details_and_stop_sequence():
    data = {
        "generated_text": "Paris.\nUser:",
        "details": {"finish_reason": "stop_sequence", "generated_tokens": 4, "seed": None},
    }
    out = ok(raw_rule(), data, body={"messages": USER, "stop": ["\nUser:"]})
    assert out["choices"][0]["message"]["content"] == "Paris."
    assert out["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("tgi", "openai"), [("eos_token", "stop"), ("length", "length"), ("other", "stop")])
def test_raw_finish_reasons(tgi, openai):
    out = ok(raw_rule(), {"generated_text": "x", "details": {"finish_reason": tgi, "generated_tokens": 1}})
    assert out["choices"][0]["finish_reason"] == openai


def test_raw_response_without_echo_or_with_it():
    rule = raw_rule()
    echoed = "<s>[INST] Hi [/INST] Hello!"
    assert ok(rule, [{"generated_text": echoed}])["choices"][0]["message"]["content"] == "Hello!"
    # An echo of a prompt rendered by someone else (Kong's fixtures): the answer follows the last [/INST].
    other = "<s>[INST] <<SYS>> sys <</SYS>> Hi [/INST]\n\nHello!"
    assert ok(rule, {"data": [{"generated_text": other}]})["choices"][0]["message"]["content"] == "Hello!"


def test_raw_completions_response_keeps_leading_whitespace():
    out = ok(raw_rule(COMPLETIONS), [{"generated_text": " world</s>"}])
    assert out["object"] == "text_completion"
    assert out["choices"][0]["text"] == " world"
    assert out["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "data", [[], {}, {"generated_text": 5}, "text", [{"text": "x"}], {"data": []}, {"choices": []}]
)
def test_raw_bad_upstream_shape_is_502(data):
    assert envelope(raw_rule(), data, 200, 502)["code"] == "bad_upstream_response"


@pytest.mark.parametrize(
    ("status", "body", "message", "etype"),
    [
        (422, {"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"},
         "Input validation error: `temperature` must be strictly positive", "validation"),
        (503, {"error": "Model is currently loading", "estimated_time": 20.0}, "Model is currently loading",
         "server_error"),
        (401, {"error": "Model requires a Pro subscription."}, "Model requires a Pro subscription.",
         "authentication_error"),
    ],
)  # fmt: skip
def test_raw_errors(status, body, message, etype):
    err = envelope(raw_rule(), body, status)
    assert (err["message"], err["type"]) == (message, etype)


# ==============================================================================================================
# llama2 raw: streams (TGI /generate_stream)
# ==============================================================================================================


def tgi_token(i: int, text: str, special: bool = False, final: dict[str, Any] | None = None) -> bytes:
    event = {
        "index": i,
        "token": {"id": 100 + i, "text": text, "logprob": -0.1, "special": special},
        "generated_text": final.pop("generated_text") if final else None,
        "details": final,
    }
    return sse(event, space=False)  # TGI writes "data:" with no space


TGI_STREAM = (
    b":keep-alive\n\n"
    + tgi_token(1, " The")
    + tgi_token(2, " sky")
    + tgi_token(3, " é")
    + tgi_token(
        4,
        "</s>",
        special=True,
        final={
            "generated_text": "The sky é",
            "finish_reason": "eos_token",
            "generated_tokens": 4,
            "seed": None,
            "input_length": 12,
        },
    )
)


def test_raw_stream():
    evs, result = translate_stream(raw_rule(), TGI_STREAM, include_usage=True)
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chat_text(evs) == "The sky é"  # the chat answer's leading space dropped
    assert finishes(evs) == ["stop"]
    assert evs[-2]["choices"] == [] and evs[-2]["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 4,
        "total_tokens": 16,
    }
    assert evs[-1] == "[DONE]"
    assert result.completed and result.usage["total_tokens"] == 16
    assert "".join(result.text) == "The sky é"


def test_raw_stream_completions_and_stop_sequence_held_back():
    stream = (
        tgi_token(1, " one")
        + tgi_token(2, " two")
        + tgi_token(3, "\n")
        + tgi_token(4, "User")
        + tgi_token(5, ":", final={"generated_text": " one two\nUser:", "finish_reason": "stop_sequence",
                                   "generated_tokens": 5, "input_length": 3})
    )  # fmt: skip
    evs, _ = translate_stream(raw_rule(COMPLETIONS), stream, body={"prompt": "Count", "stop": ["\nUser:"]})
    assert completion_text(evs) == " one two"  # completions keep leading whitespace; the stop sequence is cut
    assert all(e["object"] == "text_completion" for e in evs if isinstance(e, dict))
    assert finishes(evs) == ["stop"]
    assert "usage" not in evs[-2]  # the client did not ask for it


def test_raw_stream_text_that_only_looks_like_a_stop_sequence_is_released():
    stream = (
        tgi_token(1, "a\n")
        + tgi_token(2, "Use")
        + tgi_token(3, "ful", final={"generated_text": "a\nUseful", "finish_reason": "length", "generated_tokens": 3,
                                     "input_length": 1})
    )  # fmt: skip
    evs, _ = translate_stream(raw_rule(), stream, body={"messages": USER, "stop": ["\nUser:"]})
    assert chat_text(evs) == "a\nUseful"
    assert finishes(evs) == ["length"]


def test_raw_stream_error_event():
    stream = tgi_token(1, "Hi") + sse({"error": "Request failed during generation", "error_type": "generation"}, False)
    evs, result = translate_stream(raw_rule(), stream)
    assert chat_text(evs) == "Hi"
    err = error_of(evs)
    assert err["message"] == "Request failed during generation" and err["code"] == "generation"
    assert result.error is not None and not result.completed


def test_raw_stream_cut_short_is_an_error():
    evs, result = translate_stream(raw_rule(), tgi_token(1, "Hi") + tgi_token(2, " there"))
    assert chat_text(evs) == "Hi there"
    assert "ended before" in error_of(evs)["message"]
    assert not result.completed


def test_raw_stream_done_sentinel_and_malformed_event():
    evs, _ = translate_stream(raw_rule(), tgi_token(1, "Hi") + sse("[DONE]"))
    assert (chat_text(evs), finishes(evs), evs[-1]) == ("Hi", ["stop"], "[DONE]")
    evs, _ = translate_stream(raw_rule(), tgi_token(1, "Hi") + b"data: {not json\n\n")
    assert "not JSON" in error_of(evs)["message"]


# ==============================================================================================================
# Ollama native (llama2_format: ollama, mistral_format: ollama)
# ==============================================================================================================


@pytest.mark.parametrize("provider", ["llama2", "mistral"])
def test_ollama_chat_request(provider):
    rule = ollama_rule(provider=provider)
    body = {
        "messages": [{"role": "developer", "content": "Be brief."}, *DIALOG],
        "max_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 20,
        "seed": 42,
        "stop": "END",
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "user": "u-1",
    }
    up = upstream(rule, body)
    assert up.url == f"{OLLAMA}/api/chat"
    assert up.body == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be brief."}, *DIALOG],
        "options": {
            "num_predict": 100,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 20,
            "seed": 42,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "stop": ["END"],
        },
        "stream": False,  # Ollama streams unless told not to
    }
    assert up.headers["accept"] == "application/json"


def test_ollama_stream_request_and_minimal_body():
    rule = ollama_rule()
    up = upstream(rule, {"messages": USER, "stream": True})
    assert up.body == {"model": "llama3.2", "messages": USER, "stream": True}
    assert up.headers["accept"] == "application/x-ndjson"
    assert up.url == f"{OLLAMA}/api/chat"  # same URL streamed or not: the body decides


def test_ollama_completions_request():
    rule = ollama_rule(COMPLETIONS)
    up = upstream(rule, {"prompt": "def f(", "suffix": "return 1", "max_tokens": 9})
    assert up.url == f"{OLLAMA}/api/generate"
    assert up.body == {
        "model": "llama3.2",
        "prompt": "def f(",
        "suffix": "return 1",
        "options": {"num_predict": 9},
        "stream": False,
    }


def test_ollama_pinned_paths():
    rule = ollama_rule(COMPLETIONS, upstream_url=f"{OLLAMA}/api/chat")
    assert up_body(rule, {"prompt": "Hi"})["messages"] == USER
    assert refused(rule, {"prompt": "Hi", "suffix": "x"}).param == "suffix"
    err = refused(ollama_rule(upstream_url=f"{OLLAMA}/api/generate"), {"messages": USER}, status=500)
    assert "/api/chat" in err.message and err.code == "proxy_misconfigured"
    assert upstream(ollama_rule(upstream_path="/ollama/api/chat"), {"messages": USER}).url == (
        f"{OLLAMA}/ollama/api/chat"
    )


def test_ollama_images_and_response_format():
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    body = up_body(ollama_rule(), {"messages": [{"role": "user", "content": content}]})
    assert body["messages"] == [{"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}]
    assert up_body(ollama_rule(), {"messages": USER, "response_format": {"type": "json_object"}})["format"] == "json"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert up_body(ollama_rule(), {"messages": USER, "response_format": rf})["format"] == schema
    assert "format" not in up_body(ollama_rule(), {"messages": USER, "response_format": {"type": "text"}})


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 3}, "n"),
        ({"logit_bias": {"1": 1}}, "logit_bias"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "grammar"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]},
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
         "messages[0].content[0]"),
        ({"messages": [*USER, {"role": "tool", "tool_call_id": "c", "content": "22C"}]}, "messages[1].tool_call_id"),
        ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}, *USER]},
         "messages[0].tool_calls"),
    ],
)  # fmt: skip
def test_ollama_refuses_unmapped_fields(fields, param):
    assert refused(ollama_rule(), {"messages": USER, **fields}).param == param


def ollama_chat_reply(**extra: Any) -> dict[str, Any]:
    return {
        "model": "llama3.2",
        "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {"role": "assistant", "content": "Rome."},
        "done": True,
        "total_duration": 885095291,
        "prompt_eval_count": 26,
        "eval_count": 3,
        **extra,
    }


@pytest.mark.parametrize(
    ("done_reason", "finish"), [("stop", "stop"), ("length", "length"), ("load", "stop"), (None, "stop")]
)
def test_ollama_chat_response(done_reason, finish):
    extra = {"done_reason": done_reason} if done_reason else {}
    out = ok(ollama_rule(), ollama_chat_reply(**extra))
    assert out["object"] == "chat.completion" and out["model"] == "llama3.2"
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Rome."}
    assert out["choices"][0]["finish_reason"] == finish
    assert out["usage"] == {"prompt_tokens": 26, "completion_tokens": 3, "total_tokens": 29}


def test_ollama_cached_prompt_counts_zero_and_thinking_is_reasoning():
    reply = ollama_chat_reply(message={"role": "assistant", "content": "4", "thinking": "2+2"})
    del reply["prompt_eval_count"]
    out = ok(ollama_rule(), reply)
    assert out["usage"] == {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3}
    assert out["choices"][0]["message"]["reasoning_content"] == "2+2"


def test_ollama_generate_response_and_chat_reply_on_completions():
    reply = {"model": "llama3.2", "response": " world", "done": True, "done_reason": "length", "eval_count": 2}
    out = ok(ollama_rule(COMPLETIONS), reply)
    assert out["object"] == "text_completion"
    assert (out["choices"][0]["text"], out["choices"][0]["finish_reason"]) == (" world", "length")
    assert out["usage"]["completion_tokens"] == 2
    out = ok(ollama_rule(COMPLETIONS, upstream_url=f"{OLLAMA}/api/chat"), ollama_chat_reply())
    assert out["object"] == "text_completion" and out["choices"][0]["text"] == "Rome."


@pytest.mark.parametrize("data", [[], {"message": "x"}, {"message": {"content": None}}, {"response": 1}, {}])
def test_ollama_bad_upstream_shape_is_502(data):
    assert envelope(ollama_rule(), data, 200, 502)["code"] == "bad_upstream_response"
    assert envelope(ollama_rule(), {"response": "generate shape on chat"}, 200, 502)


@pytest.mark.parametrize(
    ("status", "message"),
    [(404, 'model "llama9" not found, try pulling it first'), (500, "the model failed to generate a response")],
)
def test_ollama_errors(status, message):
    for provider in ("llama2", "mistral"):
        err = envelope(ollama_rule(provider=provider), {"error": message}, status)
        assert err["message"] == message


OLLAMA_CHAT_STREAM = ndjson(
    {"model": "llama3.2", "created_at": "t", "message": {"role": "assistant", "content": "The"}, "done": False},
    {"model": "llama3.2", "created_at": "t", "message": {"role": "assistant", "content": " sky é"}, "done": False},
    {
        "model": "llama3.2",
        "created_at": "t",
        "message": {"role": "assistant", "content": ""},
        "done_reason": "stop",
        "done": True,
        "total_duration": 4883583458,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
    },
)


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("provider", ["llama2", "mistral"])
def test_ollama_chat_stream(provider, include_usage):
    evs, result = translate_stream(ollama_rule(provider=provider), OLLAMA_CHAT_STREAM, include_usage=include_usage)
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chat_text(evs) == "The sky é"
    assert finishes(evs) == ["stop"]
    assert all(e["model"] == "llama3.2" for e in evs if isinstance(e, dict))
    usage = {"prompt_tokens": 26, "completion_tokens": 282, "total_tokens": 308}
    if include_usage:
        assert evs[-2] == {"object": "chat.completion.chunk", "model": "llama3.2", "choices": [], "usage": usage}
    else:
        assert all("usage" not in e for e in evs if isinstance(e, dict))
    assert evs[-1] == "[DONE]"
    assert result.usage == usage and result.completed


def test_ollama_generate_stream_with_thinking_and_length():
    stream = ndjson(
        {"model": "qwen3", "response": "", "thinking": "Hmm.", "done": False},
        {"model": "qwen3", "response": " world", "done": False},
        {"model": "qwen3", "response": "", "done": True, "done_reason": "length", "eval_count": 1},
    )
    evs, _ = translate_stream(ollama_rule(COMPLETIONS), stream, include_usage=True)
    assert completion_text(evs) == " world"
    assert finishes(evs) == ["length"]
    assert evs[-2]["usage"] == {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1}  # cached prompt
    evs, _ = translate_stream(ollama_rule(), stream.replace(b'"response"', b'"unused"'))
    assert [e["choices"][0]["delta"] for e in evs if isinstance(e, dict) and e["choices"]][1] == {
        "reasoning_content": "Hmm."
    }


def test_ollama_stream_error_line():
    stream = OLLAMA_CHAT_STREAM.split(b"\n")[0] + b"\n" + ndjson({"error": "an error was encountered while running"})
    evs, result = translate_stream(ollama_rule(), stream)
    assert chat_text(evs) == "The"
    err = error_of(evs)
    assert (err["message"], err["code"], err["type"]) == (
        "an error was encountered while running",
        "upstream_error",
        "server_error",
    )
    assert result.error is not None and not result.completed


def test_ollama_stream_cut_short_or_malformed():
    first = OLLAMA_CHAT_STREAM.split(b"\n")[0] + b"\n"
    evs, result = translate_stream(ollama_rule(), first)
    assert "ended before" in error_of(evs)["message"] and not result.completed
    evs, _ = translate_stream(ollama_rule(), first + b"{broken\n")
    assert "malformed" in error_of(evs)["message"]
    evs, _ = translate_stream(ollama_rule(), OLLAMA_CHAT_STREAM.rstrip(b"\n"))  # no final newline: still complete
    assert finishes(evs) == ["stop"] and evs[-1] == "[DONE]"


# ==============================================================================================================
# llama2_format: openai (Ollama /v1, vLLM): passthrough
# ==============================================================================================================


def test_llama_openai_format_passthrough():
    rule = make_rule("llama2", "llama3.2", llama2_format="openai", upstream_url=OLLAMA, top_k=20)
    up = upstream(rule, {"messages": USER, "x_extension": 1})
    assert up.url == f"{OLLAMA}/v1/chat/completions"
    assert up.body == {"messages": USER, "x_extension": 1, "model": "llama3.2", "top_k": 20, "stream": False}
    up = upstream(rule, {"messages": USER, "stream": True})
    assert up.body is not None and up.body["stream_options"] == {"include_usage": True}
    rule = make_rule("llama2", "m", COMPLETIONS, llama2_format="openai", upstream_url="http://vllm:8000")
    assert upstream(rule, {"prompt": "x"}).url == "http://vllm:8000/v1/completions"
    reply = {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "y"}}]}
    assert ok(make_rule("llama2", "m", llama2_format="openai", upstream_url=OLLAMA), reply) == reply


def test_llama_openai_format_stream_hides_usage_the_client_did_not_ask_for():
    rule = make_rule("llama2", "llama3.2", llama2_format="openai", upstream_url=OLLAMA)
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama3.2"}
    stream = (
        sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]})
        + sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        + sse({**head, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        + b"data: [DONE]\n\n"
    )
    evs, result = translate_stream(rule, stream)
    assert chat_text(evs) == "Hi" and not any(e.get("usage") for e in evs if isinstance(e, dict))
    assert result.usage == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


# ==============================================================================================================
# Kong's fixtures, compared on meaning (../shared/conformance/kong, skipped when absent)
# ==============================================================================================================

# Kong's unit tests configure these models and options.
KONG_RULES: KongRules = {
    ("llama2", "ollama", "chat"): lambda route: make_rule(
        "llama2", "llama2", route, llama2_format="ollama", max_tokens=512, temperature=0.5, upstream_url=OLLAMA
    ),
    ("llama2", "raw", "chat"): lambda route: make_rule(
        "llama2", None, route, llama2_format="raw", max_tokens=512, temperature=0.5, top_k=40, top_p=1,
        upstream_url=f"{TGI}/generate",
    ),
}  # fmt: skip
KONG_RULES["llama2", "ollama", "completions"] = KONG_RULES["llama2", "ollama", "chat"]
KONG_RULES["llama2", "raw", "completions"] = lambda route: make_rule(
    "llama2", None, route, llama2_format="raw", max_tokens=512, temperature=0.5, upstream_url=f"{TGI}/generate"
)
test_kong_unit_requests, test_kong_unit_responses = kong_unit_tests(KONG_RULES)


@needs_kong
def test_kong_llama2_raw_request_fixtures():
    rule = make_rule("llama2", None, llama2_format="raw", upstream_url=TGI)
    chat = read(KONG / "llama2" / "raw" / "requests" / "good-chat.json")
    assert up_body(rule, chat)["inputs"] == (
        "<s>[INST] <<SYS>>\nYou are a video game knowledgebase.\n\n"
        "Missingno. is a weird character from a popular game.\n<</SYS>>\n\n"
        "What is Missingno.?\n\nWhy is it popular? [/INST]"
    )
    rule = make_rule("llama2", None, COMPLETIONS, llama2_format="raw", upstream_url=TGI)
    completions = read(KONG / "llama2" / "raw" / "requests" / "good-completions.json")
    assert up_body(rule, completions)["inputs"] == "<s>[INST] What is Missingno.? [/INST]"


@needs_kong
@pytest.mark.parametrize("name", ["good.json", "response-in-json.json"])
def test_kong_llama2_raw_response_fixtures(name):
    folder = "responses" if name == "good.json" else "../request-transformer"
    path = (KONG / "llama2" / "raw" / folder / name).resolve()
    generated = read(path)["data"][0]["generated_text"]
    answer = generated.rsplit("[/INST]", 1)[1].strip()
    out = ok(make_rule("llama2", None, llama2_format="raw", upstream_url=TGI), path.read_bytes())
    assert out["choices"][0]["message"]["content"].rstrip() == answer  # Kong also trims the end
    assert out["choices"][0]["finish_reason"] == "stop"


@needs_kong
@pytest.mark.parametrize(("name", "status"), [("bad_request.json", 400), ("unauthorized.json", 401)])
def test_kong_llama2_raw_error_fixtures(name, status):
    raw = (KONG / "llama2" / "raw" / "responses" / name).read_bytes()
    err = envelope(make_rule("llama2", None, llama2_format="raw", upstream_url=TGI), raw, status)
    assert err["message"] == json.loads(raw)["error"]


@needs_kong
def test_kong_llama2_ollama_stream_request():
    request = read(KONG / "llama2" / "ollama" / "chat-stream.json")
    body = up_body(make_rule("llama2", "llama2", llama2_format="ollama", upstream_url=OLLAMA), request)
    assert body == {"model": "llama2", "messages": request["messages"], "stream": True}
