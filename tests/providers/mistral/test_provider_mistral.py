"""The mistral provider, pure (mistral_format: openai, the default): requests, answers, errors and streams (split
at every byte offset), plus Kong's mistral fixtures compared on meaning (run in place, skipped when absent).
Ollama's wire format (mistral_format: ollama) is shared with llama2 and tested there (tests/providers/llama2/),
except Kong's mistral fixtures for it, here.

Builders: tests/support/selfhosted.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.exchange import provider_for
from tests.support.fakes import chat_completion
from tests.support.selfhosted import (
    COMPLETIONS,
    KONG,
    OLLAMA,
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
    mistral_rule,
    needs_kong,
    ok,
    read,
    refused,
    sse,
    translate_stream,
    up_body,
    upstream,
)

# ==============================================================================================================
# Mistral (mistral_format: openai, the default)
# ==============================================================================================================


def test_mistral_chat_request():
    body = {
        "model": "mistral-small-latest",
        "messages": [{"role": "developer", "content": "Be brief."}, *USER],
        "seed": 3,
        "max_completion_tokens": 50,
        "temperature": 0.3,
        "top_p": 0.8,
        "stop": ["x"],
        "n": 2,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "response_format": {"type": "json_object"},
        "safe_prompt": True,  # a Mistral extension passes through
        "user": "u-1",
        "store": True,
        "metadata": {"a": "b"},
        "service_tier": "auto",
    }
    up = upstream(mistral_rule(), body)
    assert up.url == "https://api.mistral.ai/v1/chat/completions"
    assert up.body == {
        "model": "mistral-small-latest",
        "messages": [{"role": "system", "content": "Be brief."}, *USER],
        "random_seed": 3,
        "max_tokens": 50,
        "temperature": 0.3,
        "top_p": 0.8,
        "stop": ["x"],
        "n": 2,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "response_format": {"type": "json_object"},
        "safe_prompt": True,
        "stream": False,
    }


def test_mistral_stream_request_asks_for_no_stream_options():
    body = up_body(mistral_rule(), {"messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    assert body == {"model": "mistral-small-latest", "messages": USER, "stream": True}  # usage comes anyway


def test_mistral_upstream_url_and_path():
    assert upstream(mistral_rule(upstream_url="http://127.0.0.1:9"), {"messages": USER}).url == (
        "http://127.0.0.1:9/v1/chat/completions"
    )
    assert upstream(mistral_rule(upstream_url="http://127.0.0.1:9/x/chat"), {"messages": USER}).url == (
        "http://127.0.0.1:9/x/chat"
    )


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logit_bias": {"1": 1}}, "logit_bias"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"top_k": 5}, "top_k"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
    ],
)
def test_mistral_refuses_unmapped_fields(fields, param):
    assert refused(mistral_rule(), {"messages": USER, **fields}).param == param


def test_mistral_rule_top_k_is_dropped_and_rule_tuning_wins():
    rule = mistral_rule(top_k=5, max_tokens=512, temperature=0.5)
    body = up_body(rule, {"messages": USER, "max_tokens": 3, "temperature": 1.2})
    assert "top_k" not in body
    assert (body["max_tokens"], body["temperature"]) == (512, 0.5)


def test_mistral_tools_pass_through():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = up_body(mistral_rule(), {"messages": USER, "tools": tools, "tool_choice": "any"})
    assert (body["tools"], body["tool_choice"]) == (tools, "any")


def test_mistral_completions_request_is_a_chat_request():
    rule = mistral_rule(COMPLETIONS)
    up = upstream(rule, {"prompt": "Say hi", "max_tokens": 7, "echo": False, "logprobs": 0})
    assert up.url == "https://api.mistral.ai/v1/chat/completions"
    assert up.body == {
        "model": "mistral-small-latest",
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 7,
        "stream": False,
    }
    assert refused(rule, {"prompt": "a", "suffix": "b"}).param == "suffix"
    assert refused(rule, {"prompt": "a", "logprobs": 2}).param == "logprobs"
    assert refused(rule, {"prompt": "a", "n": 2, "stream": True}).param == "n"


def test_mistral_fim_completions_when_the_path_names_it():
    rule = mistral_rule(COMPLETIONS, upstream_path="/v1/fim/completions")
    up = upstream(rule, {"prompt": "def f(", "suffix": "    return x", "seed": 1})
    assert up.url == "https://api.mistral.ai/v1/fim/completions"
    assert up.body == {
        "model": "mistral-small-latest",
        "prompt": "def f(",
        "suffix": "    return x",
        "random_seed": 1,
        "stream": False,
    }


def mistral_reply(content: Any = "Rome.", finish: str = "stop") -> dict[str, Any]:
    usage = {"prompt_tokens": 16, "completion_tokens": 34, "total_tokens": 50}
    return chat_completion(
        {"content": content},
        finish,
        id="cmpl-e5cc70bb28c444948073e77776eb30ef",
        created=1702256327,
        model="mistral-small-latest",
        usage=usage,
    )


@pytest.mark.parametrize(
    ("mistral", "openai"),
    [("stop", "stop"), ("length", "length"), ("model_length", "length"), ("tool_calls", "tool_calls"), ("x", "stop")],
)
def test_mistral_response_finish_reasons(mistral, openai):
    out = ok(mistral_rule(), mistral_reply(finish=mistral))
    assert out["choices"][0]["finish_reason"] == openai
    assert out["usage"] == {"prompt_tokens": 16, "completion_tokens": 34, "total_tokens": 50}
    assert out["id"] == "cmpl-e5cc70bb28c444948073e77776eb30ef"


def test_mistral_finish_reason_error_is_a_502():
    err = envelope(mistral_rule(), mistral_reply(finish="error"), 200, 502)
    assert "finish_reason 'error'" in err["message"]


def test_mistral_thinking_chunks_are_flattened():
    content = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Capital of Italy..."}]},
        {"type": "text", "text": "Rome."},
    ]
    message = ok(mistral_rule(), mistral_reply(content))["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Rome.", "reasoning_content": "Capital of Italy..."}


def test_mistral_completions_response_is_reshaped():
    out = ok(mistral_rule(COMPLETIONS), mistral_reply(finish="model_length"))
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl")
    assert out["choices"] == [{"index": 0, "text": "Rome.", "logprobs": None, "finish_reason": "length"}]
    assert out["usage"]["total_tokens"] == 50


@pytest.mark.parametrize("data", [[], {"choices": "x"}, {"choices": [1]}, {}])
def test_mistral_bad_upstream_shape_is_502(data):
    assert envelope(mistral_rule(), data, 200, 502)["code"] == "bad_upstream_response"


def test_mistral_errors():
    body = {
        "object": "error",
        "message": "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant",
        "type": "invalid_request_message_order",
        "param": None,
        "code": "3230",
    }
    err = envelope(mistral_rule(), body, 400)
    assert (err["message"], err["type"], err["code"]) == (body["message"], body["type"], "3230")
    err = envelope(mistral_rule(), {"message": "Unauthorized", "request_id": "x"}, 401)
    assert (err["message"], err["type"]) == ("Unauthorized", "authentication_error")
    detail = {"detail": [{"type": "missing", "loc": ["body", "messages", 0, "content"], "msg": "Field required"}]}
    err = envelope(mistral_rule(), detail, 422)
    assert (err["message"], err["param"]) == ("messages.0.content: Field required", "messages.0.content")
    wrapped = {"object": "error", "message": detail, "type": "invalid_request_error", "param": None, "code": None}
    assert envelope(mistral_rule(), wrapped, 422)["message"] == "messages.0.content: Field required"
    assert envelope(mistral_rule(), {"detail": "Not Found"}, 404)["message"] == "Not Found"
    assert envelope(mistral_rule(), b"<html><body>Bad gateway</body></html>", 502)["message"].endswith("Bad gateway")
    assert envelope(mistral_rule(), {"message": "Requests rate limit exceeded"}, 429)["type"] == "rate_limit_error"


# ---- Mistral streams ------------------------------------------------------------------------------------------

M_HEAD = {"id": "f798ebd5c41a45d88bb079635121cade", "object": "chat.completion.chunk", "created": 1732548656,
          "model": "mistral-large-latest"}  # fmt: skip
M_USAGE = {"prompt_tokens": 34, "total_tokens": 134, "completion_tokens": 100}


def m_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    return sse({**M_HEAD, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


MISTRAL_STREAM = (
    m_chunk({"role": "assistant", "content": ""})
    + m_chunk({"content": "C"}, p="abcdef")
    + m_chunk({"content": "izable é"}, "model_length", usage=M_USAGE)
    + b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("include_usage", [False, True])
def test_mistral_chat_stream(include_usage):
    evs, result = translate_stream(mistral_rule(), MISTRAL_STREAM, include_usage=include_usage)
    assert chat_text(evs) == "Cizable é"
    assert finishes(evs) == ["length"]
    assert evs[-1] == "[DONE]"
    if include_usage:
        assert evs[-2] == {"object": "chat.completion.chunk", "model": "mistral-large-latest", "choices": [],
                           "usage": M_USAGE}  # fmt: skip
        assert evs[-3]["usage"] is None  # the finish chunk, as OpenAI sends it with include_usage
    else:
        assert all("usage" not in e for e in evs if isinstance(e, dict))
    assert result.usage == M_USAGE and result.finish_reason == "length" and result.completed
    assert "".join(result.text) == "Cizable é"


def test_mistral_chat_stream_passes_unchanged_events_byte_for_byte():
    rule = mistral_rule()
    c = call(rule, {"messages": USER, "stream": True})
    t = provider_for(rule).stream_translator(c, False, False)
    out = t.feed(MISTRAL_STREAM) + t.finish()
    first_two = MISTRAL_STREAM.split(b"\n\n")[:2]
    assert out.startswith(first_two[0] + b"\n\n" + first_two[1] + b"\n\n")


def test_mistral_chat_stream_errors():
    error = {"object": "error", "message": "Service unavailable", "type": "internal_server_error", "code": "1000"}
    evs, result = translate_stream(mistral_rule(), m_chunk({"content": "Hi"}) + sse(error))
    assert chat_text(evs) == "Hi"
    err = error_of(evs)
    assert (err["message"], err["type"], err["code"]) == ("Service unavailable", "internal_server_error", "1000")
    assert result.error is not None
    evs, _ = translate_stream(mistral_rule(), m_chunk({"content": "Hi"}, "error") + b"data: [DONE]\n\n")
    assert chat_text(evs) == "Hi" and finishes(evs) == []
    assert "finish_reason 'error'" in error_of(evs)["message"]
    evs, result = translate_stream(mistral_rule(), m_chunk({"content": "Hi"}))
    assert "ended before [DONE]" in error_of(evs)["message"] and not result.completed


def test_mistral_chat_stream_thinking_chunks():
    content = [{"type": "thinking", "thinking": [{"type": "text", "text": "Hmm"}]}, {"type": "text", "text": "4"}]
    stream = m_chunk({"content": content}) + m_chunk({"content": ""}, "stop", usage=M_USAGE) + b"data: [DONE]\n\n"
    evs, _ = translate_stream(mistral_rule(), stream)
    assert evs[0]["choices"][0]["delta"] == {"content": "4", "reasoning_content": "Hmm"}


@pytest.mark.parametrize("include_usage", [False, True])
def test_mistral_completions_stream(include_usage):
    evs, result = translate_stream(mistral_rule(COMPLETIONS), MISTRAL_STREAM, include_usage=include_usage)
    assert all(e["object"] == "text_completion" for e in evs if isinstance(e, dict))
    assert completion_text(evs) == "Cizable é"
    assert finishes(evs) == ["length"]
    assert evs[-1] == "[DONE]"
    if include_usage:
        assert evs[-2]["choices"] == [] and evs[-2]["usage"] == M_USAGE
    assert result.usage == M_USAGE and result.model == "mistral-large-latest"


def test_mistral_completions_stream_errors():
    evs, _ = translate_stream(mistral_rule(COMPLETIONS), m_chunk({"content": "a"}) + sse({"error": {"message": "x"}}))
    assert error_of(evs)["message"] == "x"
    evs, _ = translate_stream(mistral_rule(COMPLETIONS), m_chunk({"content": "a"}))
    assert "ended before [DONE]" in error_of(evs)["message"]


# ==============================================================================================================
# Kong's fixtures, compared on meaning (../shared/conformance/kong, skipped when absent)
# ==============================================================================================================

# Kong's unit tests configure these models and options.
KONG_RULES: KongRules = {
    ("mistral", "openai", "chat"): lambda route: make_rule(
        "mistral", "mistral-tiny", route, max_tokens=512, temperature=0.5, upstream_url="http://mistral.internal"
    ),
    ("mistral", "ollama", "chat"): lambda route: make_rule(
        "mistral", "mistral-tiny", route, mistral_format="ollama", max_tokens=512, temperature=0.5, upstream_url=OLLAMA
    ),
}  # fmt: skip
test_kong_unit_requests, test_kong_unit_responses = kong_unit_tests(KONG_RULES)


@needs_kong
@pytest.mark.parametrize("route", ["chat", "completions"])
def test_kong_mistral_response_fixtures(route):
    raw = read(KONG / "mistral" / f"llm-v1-{route}" / "responses" / "good.json")
    out = ok(mistral_rule(f"llm/v1/{route}"), raw)
    assert out["object"] == ("chat.completion" if route == "chat" else "text_completion")
    choice, fixture_choice = out["choices"][0], raw["choices"][0]
    if route == "chat":
        assert choice["message"] == fixture_choice["message"]
    else:
        assert choice["text"] == fixture_choice["text"]
    assert choice["finish_reason"] == fixture_choice["finish_reason"]
    assert (out["model"], out["usage"]) == (raw["model"], raw["usage"])


@needs_kong
def test_kong_mistral_ollama_json_response_fixture():
    path = KONG / "mistral" / "request-transformer" / "response-in-json.json"
    raw = read(path)
    out = ok(make_rule("mistral", "mistral-tiny", mistral_format="ollama", upstream_url=OLLAMA), path.read_bytes())
    assert json.loads(out["choices"][0]["message"]["content"]) == json.loads(raw["message"]["content"])
    assert out["usage"] == {"prompt_tokens": 26, "completion_tokens": 100, "total_tokens": 126}
