"""JSON output through the OpenAI and Azure passthrough: response_format reaches the provider unchanged.

(Moved from the former tests/test_tools_anthropic_openai.py; the Anthropic tool tests are in
tests/providers/anthropic/test_tools_anthropic.py.)
"""

from __future__ import annotations

import pytest

from tests.support.e2e_env import MODELS, Env

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_openai_and_azure_pass_response_format_through(e: Env, provider: str) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "sum", "schema": SCHEMA, "strict": True}}
    e.client(provider).chat.completions.create(
        model=MODELS[provider], messages=[{"role": "user", "content": "1+1?"}], response_format=fmt
    )
    assert e.fake(provider).last().json["response_format"] == fmt
