"""Tool calls on Mistral (OpenAI-shaped: 9-character ids, the last-role rule, renumbered stream indexes), pure
(streams split at every byte offset), then the multi-turn round trip end to end with the openai SDK through a real
mitmdump, streamed and not, on Mistral and on a Mistral model served by Ollama (mistral_format: ollama).

Peer bugs guarded against and the pitfalls: tests/support/selfhosted_tools.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.providers.mistral import mistral_id
from tests.support.fakes import Reply
from tests.support.selfhosted_tools import (
    ARGS,
    FINAL,
    MISTRAL_ID,
    MISTRAL_IDS,
    MODELS,
    NAMES,
    QUESTION,
    TOOLS,
    accumulate,
    assert_refused_before_sending,
    check_round_trip,
    history,
    mistral_calls,
    mistral_chunk,
    mistral_reply,
    mistral_rule,
    mistral_tool_stream,
    ok,
    refused,
    same_calls,
    sdk,
    sse,
    translate_stream,
    up_body,
)

# ==============================================================================================================
# Mistral (OpenAI-shaped): 9-character ids, last-role rule, renumbered stream indexes
# ==============================================================================================================


def test_mistral_id_keeps_valid_ids_and_hashes_others_deterministically():
    """providers.md §7.1/§12: Mistral refuses any tool-call id that is not [a-zA-Z0-9]{9} (e.g. call_0fypS1hVX)."""
    assert mistral_id("D681PevKs") == "D681PevKs"
    foreign = ["call_0fypS1hVX", "call_abc123def456", "toolu_01A09q90qw90lq917835lq9", "0", "", "x" * 9 + "-"]
    mapped = [mistral_id(i) for i in foreign]
    assert all(MISTRAL_ID.fullmatch(m) for m in mapped), mapped
    assert mapped == [mistral_id(i) for i in foreign]  # deterministic: a call and its result still match
    assert len(set(mapped)) == len(mapped)


def test_mistral_request_maps_foreign_ids_in_calls_and_results_alike_and_names_results():
    ids = ["call_0fypS1hVX", "toolu_01A09q90qw90lq917835lq9"]
    body = up_body(mistral_rule(), {"messages": history(ids), "tools": TOOLS, "tool_choice": "auto"})
    assistant, r1, r2 = body["messages"][1:]
    got = [c["id"] for c in assistant["tool_calls"]]
    assert got == [mistral_id(i) for i in ids] and all(MISTRAL_ID.fullmatch(i) for i in got)
    assert [r1["tool_call_id"], r2["tool_call_id"]] == got
    assert [r1["name"], r2["name"]] == NAMES  # some Mistral models need the function name on tool messages
    assert [c["function"] for c in assistant["tool_calls"]] == [
        {"name": n, "arguments": json.dumps(a)} for n, a in zip(NAMES, ARGS, strict=True)
    ]
    assert (body["tools"], body["tool_choice"]) == (TOOLS, "auto")


def test_mistral_request_keeps_mistral_ids_unchanged():
    body = up_body(mistral_rule(), {"messages": history(MISTRAL_IDS), "tools": TOOLS})
    assert [c["id"] for c in body["messages"][1]["tool_calls"]] == MISTRAL_IDS
    assert [m["tool_call_id"] for m in body["messages"][2:]] == MISTRAL_IDS


@pytest.mark.parametrize(
    "choice", ["none", "auto", "required", "any", {"type": "function", "function": {"name": "get_time"}}]
)
def test_mistral_tool_choice_passes_through(choice):
    body = up_body(mistral_rule(), {"messages": [QUESTION], "tools": TOOLS, "tool_choice": choice})
    assert body["tool_choice"] == choice


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([QUESTION, {"role": "assistant", "content": "Let me see."}], "messages[1].role"),
        ([QUESTION, {"role": "system", "content": "Be terse."}], "messages[1].role"),
        ([QUESTION, {"role": "function", "name": "get_time", "content": "14:05"}], "messages[1].role"),
        ([{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}, QUESTION], "messages[0].tool_calls"),
    ],
)
def test_mistral_refuses_what_it_would_answer_400_to(messages, param):
    """providers.md §7.1/§12: the last message must be user or tool (Mistral: 'Expected last role User or Tool')."""
    err = refused(mistral_rule(), {"messages": messages})
    assert err.param == param


def test_mistral_assistant_prefix_may_end_the_conversation():
    messages = [QUESTION, {"role": "assistant", "content": "The weather", "prefix": True}]
    assert up_body(mistral_rule(), {"messages": messages})["messages"][-1]["prefix"] is True


def test_mistral_refuses_the_deprecated_functions_fields():
    fn = TOOLS[0]["function"]
    assert refused(mistral_rule(), {"messages": [QUESTION], "functions": [fn]}).param == "functions"
    assert refused(mistral_rule(), {"messages": [QUESTION], "function_call": {"name": "x"}}).param == "function_call"


def test_mistral_response_both_parallel_calls_in_openai_shape():
    """Kong kept only the last tool call of a turn: both are here, with ids, type and string arguments."""
    calls = mistral_calls()
    calls[1]["function"]["arguments"] = ARGS[1]  # an object: made a JSON string
    out = ok(mistral_rule(), mistral_reply({"content": "", "tool_calls": calls}, "tool_calls"))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    got = choice["message"]["tool_calls"]
    assert [c["id"] for c in got] == MISTRAL_IDS and all(c["type"] == "function" for c in got)
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in got] == list(
        zip(NAMES, ARGS, strict=True)
    )


def test_mistral_response_call_without_id_gets_a_valid_one_and_stop_becomes_tool_calls():
    calls = [{"function": {"name": "get_time", "arguments": "{}"}}]
    out = ok(mistral_rule(), mistral_reply({"content": None, "tool_calls": calls}, "stop"))
    (tc,) = out["choices"][0]["message"]["tool_calls"]
    assert MISTRAL_ID.fullmatch(tc["id"]) and out["choices"][0]["finish_reason"] == "tool_calls"


def test_mistral_stream_calls_sharing_one_index_are_renumbered_litellm_index_bug():
    """LiteLLM's streamed tool-call index bug: two calls sent with the same index were merged into one. Each call
    gets its own OpenAI index, id and name in its first delta; the text before the calls is kept."""
    evs = translate_stream(mistral_rule(), mistral_tool_stream(shared_index=True))
    text, calls, finish = accumulate([e for e in evs if isinstance(e, dict)])
    assert (text, finish) == ("Checking.", "tool_calls")
    assert [c["id"] for c in calls] == MISTRAL_IDS
    expected = ok(mistral_rule(), mistral_reply({"content": "", "tool_calls": mistral_calls()}, "tool_calls"))
    assert same_calls(calls, expected["choices"][0]["message"]["tool_calls"])
    assert evs[-1] == "[DONE]"


def test_mistral_stream_with_distinct_indexes_and_usage_chunk():
    evs = translate_stream(mistral_rule(), mistral_tool_stream(shared_index=False), include_usage=True)
    _, calls, _ = accumulate([e for e in evs if isinstance(e, dict)])
    assert [c["function"]["name"] for c in calls] == NAMES
    assert evs[-2]["choices"] == [] and evs[-2]["usage"]["total_tokens"] == 110


def test_mistral_stream_arguments_in_fragments_and_missing_index():
    """A call whose arguments come in several deltas (no id, no index after the first) stays one call."""
    raw = (
        sse(mistral_chunk({"tool_calls": [{"id": "D681PevKs", "function": {"name": "get_weather", "arguments": "{"}}]}))
        + sse(mistral_chunk({"tool_calls": [{"function": {"arguments": '"city": "Paris"}'}}]}))
        + sse(mistral_chunk({}, "stop"))
        + sse("[DONE]")
    )
    _, calls, finish = accumulate([e for e in translate_stream(mistral_rule(), raw) if isinstance(e, dict)])
    assert finish == "tool_calls"
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in calls] == [("D681PevKs", ARGS[0])]


# ==============================================================================================================
# End to end: the multi-turn round trip with the openai SDK through a real mitmdump
# ==============================================================================================================


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["mistral", "mistral-ollama"])
def test_e2e_multi_turn_tool_round_trip_streamed_and_not(tools: dict[str, Any], case: str) -> None:
    check_round_trip(tools, case)  # what it checks: its docstring


@pytest.mark.e2e
def test_e2e_mistral_foreign_ids_from_another_provider_are_mapped(tools: dict[str, Any]) -> None:
    """A history started elsewhere (OpenAI's call_... ids) still works on Mistral: ids hashed to 9 characters, the
    same in calls and results (else Mistral answers 400 'Tool call id was call_0fypS1hVX but must be ...')."""
    tools["mistral"].queue(Reply(json=mistral_reply({"content": FINAL}, "stop")))
    ids = ["call_0fypS1hVXabcdef", "call_Zz9yY8xX7wW6vV5u"]
    out = sdk(tools, "mistral.internal").chat.completions.create(
        model=MODELS["mistral.internal"], messages=history(ids), tools=TOOLS
    )
    assert out.choices[0].message.content == FINAL
    msgs = tools["mistral"].requests[0].json["messages"]
    sent = [c["id"] for c in msgs[1]["tool_calls"]]
    assert all(MISTRAL_ID.fullmatch(i) for i in sent) and [m["tool_call_id"] for m in msgs[2:]] == sent


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("host", "fields", "param"),
    [
        ("mistral.internal", {"messages": [QUESTION, {"role": "assistant", "content": "x"}]}, "messages[1].role"),
    ],
)
def test_e2e_refusals_are_clear_400s_and_nothing_is_sent(tools: dict[str, Any], host: str, fields: dict, param: str):
    assert_refused_before_sending(tools, host, fields, param)
