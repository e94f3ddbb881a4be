"""Tool calls on Hugging Face chat (the TGI Messages API): a passthrough with TGI's quirks fixed, pure (streams split
at every byte offset), then the multi-turn round trip end to end with the openai SDK through a real mitmdump,
streamed and not. (Split out of the self-hosted tool tests.)

Peer bugs guarded against and the pitfalls: tests/support/selfhosted_tools.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.selfhosted_tools import (
    ARGS,
    NAMES,
    QUESTION,
    TOOLS,
    accumulate,
    check_round_trip,
    hf_rule,
    history,
    ok,
    refused,
    same_calls,
    tgi_calls,
    tgi_reply,
    tgi_tool_stream,
    translate_stream,
    up_body,
)

# ==============================================================================================================
# Hugging Face chat (TGI Messages API): passthrough, with TGI's quirks fixed
# ==============================================================================================================


def test_hf_request_passes_tools_calls_and_results_through():
    body = {"messages": history(["0", "1"]), "tools": TOOLS, "tool_choice": "required"}
    out = up_body(hf_rule(), body)
    assert (out["messages"], out["tools"], out["tool_choice"]) == (body["messages"], TOOLS, "required")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"functions": [TOOLS[0]["function"]]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"messages": [QUESTION, {"role": "function", "name": "get_time", "content": "14:05"}]}, "messages[1]"),
    ],
)
def test_hf_refuses_the_deprecated_function_fields_tgi_would_ignore(fields, param):
    assert refused(hf_rule(), {"messages": [QUESTION], **fields}).param == param


def test_hf_response_object_arguments_and_ids():
    out = ok(hf_rule(), tgi_reply({"content": None, "tool_calls": tgi_calls()}, "eos_token"))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["0", "1"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == list(
        zip(NAMES, ARGS, strict=True)
    )


def test_hf_response_empty_id_is_synthesised():
    calls = [{"id": "", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    (tc,) = ok(hf_rule(), tgi_reply({"tool_calls": calls}, "stop"))["choices"][0]["message"]["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]{24}", tc["id"])


def test_hf_stream_old_and_new_tgi_tool_deltas_litellm_id_bug():
    """LiteLLM's streamed tool-call id bug: ids repeated in every delta were concatenated by accumulators. TGI's
    object-shaped `tool_calls`, empty ids and null names are normalised; finish `eos_token` -> `tool_calls`."""
    evs = translate_stream(hf_rule(), tgi_tool_stream())
    _, calls, finish = accumulate([e for e in evs if isinstance(e, dict)])
    assert finish == "tool_calls"
    assert [c["id"] for c in calls] == ["call_SYNTH", "call_tgi1"]
    whole = ok(hf_rule(), tgi_reply({"tool_calls": tgi_calls()}, "eos_token"))
    assert same_calls(calls, whole["choices"][0]["message"]["tool_calls"])


# ==============================================================================================================
# End to end: the multi-turn round trip with the openai SDK through a real mitmdump
# ==============================================================================================================


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["hf"])
def test_e2e_multi_turn_tool_round_trip_streamed_and_not(tools: dict[str, Any], case: str) -> None:
    check_round_trip(tools, case)  # what it checks: its docstring
