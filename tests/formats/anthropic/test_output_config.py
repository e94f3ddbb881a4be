"""An Anthropic client's structured output and strict tools as the standard request: `output_config.format` (and the
deprecated `output_format`) -> a strict response_format, `strict: true` on a tool -> a strict function."""

from __future__ import annotations

from typing import Any

import pytest

from addon.errors import ProxyError
from addon.formats import ANTHROPIC
from tests.support.schemas import ZOD

CHAT = "llm/v1/chat"


def decode(**extra: Any) -> tuple[dict[str, Any], list[str]]:
    dropped: list[str] = []
    body = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}], **extra}
    return ANTHROPIC.decode(CHAT, "/v1/messages", body, dropped), dropped


def test_output_config_format_is_a_strict_response_format() -> None:
    out, dropped = decode(output_config={"format": {"type": "json_schema", "schema": ZOD}, "effort": "low"})
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": ZOD, "strict": True},
    }
    assert dropped == ["output_config.effort"]  # not this module's to map
    out, dropped = decode(output_format={"type": "json_schema", "schema": ZOD})  # the deprecated beta field
    assert out["response_format"]["json_schema"]["schema"] == ZOD and dropped == []
    out, _ = decode()
    assert "response_format" not in out


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"output_config": {"format": {"type": "xml"}}}, "output_config.format.type"),
        ({"output_config": {"format": {"type": "json_schema", "schema": 3}}}, "output_config.format.schema"),
        ({"output_config": "json"}, "output_config"),
    ],
)
def test_malformed_output_config_is_a_400_naming_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(ProxyError) as e:
        decode(**extra)
    assert e.value.status == 400 and e.value.param == param


def test_strict_tools() -> None:
    tool = {"name": "f", "input_schema": ZOD, "strict": True}
    out, _ = decode(tools=[tool, {**tool, "name": "g", "strict": False}])
    assert out["tools"][0]["function"]["strict"] is True and "strict" not in out["tools"][1]["function"]
