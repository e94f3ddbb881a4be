"""Validation of OpenAI-format requests (addon/openai_validate.py): each test pins a bug a real client hit; a
malformed field is a 400 naming it, before any provider sees the request. Pure: no network, no mitmdump."""

from __future__ import annotations

from typing import Any

import pytest

from addon.errors import ProxyError
from addon.openai_format import validate_chat
from tests.support.pipeline import up_body
from tests.support.selfhosted import make_rule

CHAT = "llm/v1/chat"


# ---- a text part without a string `text` crashed the translators (TypeError -> 5xx), not a 400 ------------------


@pytest.mark.parametrize("part", [{"type": "text"}, {"type": "text", "text": None}, {"type": "text", "text": 3}])
def test_text_part_without_string_text_is_a_400(part: dict[str, Any]) -> None:
    with pytest.raises(ProxyError) as e:
        validate_chat({"messages": [{"role": "user", "content": [part]}]})
    assert e.value.status == 400
    assert e.value.param == "messages[0].content[0].text"


def test_text_part_crash_reaches_no_provider() -> None:
    rule = make_rule("mistral", "mistral-small-latest")
    with pytest.raises(ProxyError) as e:
        up_body(rule, {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]})
    assert e.value.status == 400


def test_function_result_may_have_null_content() -> None:
    validate_chat({"messages": [{"role": "function", "name": "f", "content": None}]})
    with pytest.raises(ProxyError):
        validate_chat({"messages": [{"role": "user", "content": None}]})


# ---- negative token limits and n < 1 were let through (a provider may read -1 as "no limit") -------------------


@pytest.mark.parametrize(("field", "value"), [("max_tokens", -1), ("max_completion_tokens", -2), ("n", 0), ("n", -1)])
def test_negative_limits_are_refused(field: str, value: int) -> None:
    with pytest.raises(ProxyError) as e:
        validate_chat({"messages": [{"role": "user", "content": "Hi"}], field: value})
    assert e.value.status == 400 and e.value.param == field


def test_zero_max_tokens_still_valid_for_completions_echo() -> None:
    from addon.openai_format import validate_completions

    validate_completions({"prompt": "Hi", "max_tokens": 0, "echo": True})
