"""Review of the mistral translation: each test pins a bug a real client hit (pure: no network, no mitmdump).
Moved from tests/test_review_providers_b.py."""

from __future__ import annotations

import pytest

from addon.errors import ProxyError
from tests.support.chunks import assert_error_null_is_no_error
from tests.support.selfhosted import make_rule, up_body

# ---- mistral: message fields Mistral forbids (422 extra_forbidden) --------------------------------------------------
# Mistral validates messages with extra="forbid": `name` on a user message, or the `refusal` / `reasoning_content`
# of an assistant answer replayed as history (this proxy itself returns reasoning_content), answer 422
# (e.g. Gage-Technologies/mistral-go#3, charmbracelet/crush#1590, BerriAI/litellm#30835).


def test_mistral_drops_message_fields_it_forbids() -> None:
    rule = make_rule("mistral", "mistral-small-latest")
    messages = [
        {"role": "system", "content": "Be terse.", "name": "sys"},
        {"role": "user", "content": "Hi", "name": "bob"},
        {
            "role": "assistant",
            "content": "Hello.",
            "refusal": None,
            "reasoning_content": "greet back",
            "audio": None,
            "function_call": None,
            "annotations": [],
            "name": "bot",
        },
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "abcDEF123", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "abcDEF123", "content": "22C", "name": "w"},
    ]
    out = up_body(rule, {"messages": messages})["messages"]
    assert out[0] == {"role": "system", "content": "Be terse."}
    assert out[1] == {"role": "user", "content": "Hi"}
    assert out[2] == {"role": "assistant", "content": "Hello."}
    assert set(out[4]) == {"role", "content", "tool_calls"}
    assert out[5] == {"role": "tool", "tool_call_id": "abcDEF123", "content": "22C", "name": "w"}


def test_mistral_keeps_prefix_on_the_last_assistant_message() -> None:
    rule = make_rule("mistral", "mistral-small-latest")
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel", "prefix": True}]
    assert up_body(rule, {"messages": messages})["messages"][1] == {
        "role": "assistant",
        "content": "Hel",
        "prefix": True,
    }


def test_mistral_refuses_a_legacy_function_call_in_history() -> None:
    rule = make_rule("mistral", "mistral-small-latest")
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "user", "content": "ok"},
    ]
    with pytest.raises(ProxyError) as e:
        up_body(rule, {"messages": messages})
    assert e.value.status == 400
    assert e.value.param == "messages[1].function_call"


# ---- mistral: neutral values of the fields it has no equivalent for were forwarded (422 extra_forbidden) ---------
# e.g. the SDK's logprobs=False, modalities=["text"], or explicit nulls: Mistral's request model forbids extras.


def test_mistral_drops_neutral_openai_only_fields() -> None:
    rule = make_rule("mistral", "mistral-small-latest")
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "logprobs": False,
        "top_logprobs": None,
        "logit_bias": None,
        "functions": None,
        "function_call": None,
        "modalities": ["text"],
        "top_k": None,
        "prompt_cache_key": "k1",
        "safety_identifier": "u1",
        "audio": None,
        "web_search_options": None,
        "temperature": 0.2,
        "n": 2,
    }
    out = up_body(rule, body)
    assert set(out) == {"model", "messages", "temperature", "n", "stream"}


def test_mistral_completions_drops_neutral_fields() -> None:
    rule = make_rule("mistral", "mistral-small-latest", route="llm/v1/completions")
    out = up_body(rule, {"prompt": "Hi", "echo": False, "best_of": 1, "logprobs": None})
    assert set(out) == {"model", "messages", "stream"}


def test_mistral_stream_error_null_is_not_an_error() -> None:
    """A chunk's `"error": null` is no error (the OpenAI SDK raises only on a truthy error)."""
    from addon.providers.mistral import MistralChatStream

    assert_error_null_is_no_error(lambda: MistralChatStream(False, True))
