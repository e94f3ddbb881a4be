"""Review of the llama2 translations (openai format, Ollama's native format): each test pins a bug a real client
hit (pure: no network, no mitmdump). Moved from tests/test_review_providers_b.py."""

from __future__ import annotations

from typing import Any

import pytest

from addon.errors import ProxyError
from tests.support.selfhosted import make_rule, up_body

# ---- llama2 (openai format): Ollama's /v1 reads only max_tokens: max_completion_tokens was silently ignored ------
# (ollama/ollama openai/openai.go ChatCompletionRequest has `MaxTokens *int json:"max_tokens"` and no other limit.)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"max_completion_tokens": 7}, 7),
        ({"max_tokens": 5}, 5),
        ({"max_tokens": 5, "max_completion_tokens": 7}, 7),
        ({"max_completion_tokens": None, "max_tokens": 5}, 5),
    ],
)
def test_llama2_openai_format_sends_max_tokens(sent: dict[str, Any], expected: int) -> None:
    rule = make_rule("llama2", "llama3.2", llama2_format="openai", upstream_url="http://127.0.0.1:11434")
    body = up_body(rule, {"messages": [{"role": "user", "content": "Hi"}], **sent})
    assert body["max_tokens"] == expected
    assert "max_completion_tokens" not in body


def test_llama2_openai_format_without_a_limit_sends_none() -> None:
    rule = make_rule("llama2", "llama3.2", llama2_format="openai", upstream_url="http://127.0.0.1:11434")
    body = up_body(rule, {"messages": [{"role": "user", "content": "Hi"}]})
    assert "max_tokens" not in body and "max_completion_tokens" not in body


# ---- ollama: a negative max_tokens is refused, never sent as num_predict -1 (which Ollama reads as "no limit") ---


def test_ollama_never_gets_a_negative_num_predict() -> None:
    rule = make_rule("llama2", "llama3.2", llama2_format="ollama", upstream_url="http://127.0.0.1:11434")
    with pytest.raises(ProxyError) as e:
        up_body(rule, {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": -1})
    assert e.value.status == 400 and e.value.param == "max_tokens"
