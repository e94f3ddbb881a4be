"""Review of the Hugging Face translation: each test pins a bug a real client hit (pure: no network, no mitmdump;
moved from tests/test_review_providers_b.py).

Checked: huggingface chat with a client's top_k is refused; the native completions take a rule's top_k.
"""

from __future__ import annotations

import pytest

from addon.errors import ProxyError
from tests.support.chunks import assert_error_null_is_no_error
from tests.support.pipeline import make_rule, up_body


def test_huggingface_chat_refuses_the_clients_top_k() -> None:
    rule = make_rule("huggingface", "meta-llama/Llama-3.1-8B-Instruct")
    with pytest.raises(ProxyError) as e:
        up_body(rule, {"messages": [{"role": "user", "content": "Hi"}], "top_k": 5})
    assert e.value.status == 400 and e.value.param == "top_k"


def test_huggingface_native_completions_take_the_rules_top_k() -> None:
    rule = make_rule(
        "huggingface",
        None,
        route="llm/v1/completions",
        options={"upstream_url": "http://127.0.0.1:8080/generate", "top_k": 40},
    )
    assert up_body(rule, {"prompt": "Hi"})["parameters"]["top_k"] == 40


def test_huggingface_stream_error_null_is_not_an_error() -> None:
    """A chunk's `"error": null` is no error (the OpenAI SDK raises only on a truthy error)."""
    from addon.providers.huggingface import HFOpenAIStream

    assert_error_null_is_no_error(lambda: HFOpenAIStream("llm/v1/chat", True, True))
