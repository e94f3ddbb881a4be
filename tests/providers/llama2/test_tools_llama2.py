"""Tool calls on llama2: Ollama's native format (llama2_format: ollama; the same wire format as mistral_format:
ollama, run here too where a test takes both providers), the openai format's passthrough and the refusal of the raw
format, pure (streams split at every byte offset), then the multi-turn round trip end to end with the openai SDK
through a real mitmdump, streamed and not.

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
    OLLAMA,
    QUESTION,
    RESULTS,
    TOOLS,
    accumulate,
    assert_refused_before_sending,
    call,
    check_round_trip,
    history,
    make_rule,
    ndjson,
    ok,
    ollama_calls,
    ollama_line,
    ollama_rule,
    ollama_tool_stream,
    provider_for,
    raw_rule,
    refused,
    same_calls,
    tgi_reply,
    translate_stream,
    up_body,
)

# ==============================================================================================================
# Ollama native: object arguments, tool_name, synthesised ids, done_reason stop -> tool_calls
# ==============================================================================================================


@pytest.mark.parametrize("provider", ["llama2", "mistral"])
def test_ollama_request_tools_calls_and_results(provider):
    ids = ["call_abc", "call_def"]
    body = up_body(ollama_rule(provider), {"messages": history(ids), "tools": TOOLS, "tool_choice": "auto"})
    assert body["tools"] == TOOLS
    assert "tool_choice" not in body
    assert body["messages"] == [
        {"role": "user", "content": QUESTION["content"]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"index": 0, "name": NAMES[0], "arguments": ARGS[0]}, "id": ids[0]},
                {"function": {"index": 1, "name": NAMES[1], "arguments": ARGS[1]}, "id": ids[1]},
            ],
        },
        {"role": "tool", "content": RESULTS[0], "tool_name": NAMES[0], "tool_call_id": ids[0]},
        {"role": "tool", "content": RESULTS[1], "tool_name": NAMES[1], "tool_call_id": ids[1]},
    ]


def test_ollama_tool_result_name_is_resolved_by_id_not_by_position():
    """Results may come in any order: each gets the name of the call with its id (Kong hard-coded the Gemini
    tool-result name; Ollama matches results by name the same way)."""
    messages = history(["c1", "c2"])
    messages[2], messages[3] = messages[3], messages[2]
    body = up_body(ollama_rule(), {"messages": messages, "tools": TOOLS})
    assert [(m["tool_call_id"], m["tool_name"]) for m in body["messages"][2:]] == [("c2", NAMES[1]), ("c1", NAMES[0])]


def test_ollama_tool_result_without_a_matching_call_may_name_its_function():
    messages = [QUESTION, {"role": "tool", "tool_call_id": "elsewhere", "name": "get_time", "content": "14:05"}]
    body = up_body(ollama_rule(), {"messages": messages, "tools": TOOLS})
    assert body["messages"][1] == {
        "role": "tool",
        "content": "14:05",
        "tool_name": "get_time",
        "tool_call_id": "elsewhere",
    }


def test_ollama_tools_with_images_and_json_format():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What city?"}, image]}]
    body = up_body(ollama_rule(), {"messages": messages, "tools": TOOLS, "response_format": {"type": "json_object"}})
    assert body["messages"][0] == {"role": "user", "content": "What city?", "images": ["iVBORw0KGgo="]}
    assert (body["format"], body["tools"]) == ("json", TOOLS)


def test_ollama_tool_choice_none_sends_no_tools_but_keeps_the_history():
    body = up_body(ollama_rule(), {"messages": history(["a", "b"]), "tools": TOOLS, "tool_choice": "none"})
    assert "tools" not in body and body["messages"][2]["tool_name"] == NAMES[0]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "get_time"}}}, "tool_choice"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
        ({"functions": [TOOLS[0]["function"]]}, "functions"),
        ({"messages": [QUESTION, {"role": "tool", "tool_call_id": "no", "content": "x"}]}, "messages[1].tool_call_id"),
        ({"messages": [QUESTION, {"role": "function", "name": "f", "content": "x"}]}, "messages[1].role"),
        ({"messages": history(["a", "b"], ['{"city": "Par', "{}"])}, "messages[1].tool_calls[0].function.arguments"),
        ({"messages": history(["a", "b"], ["[1, 2]", "{}"])}, "messages[1].tool_calls[0].function.arguments"),
        ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}]}, "messages[0].tool_calls"),
    ],
)  # fmt: skip
def test_ollama_refuses_what_it_cannot_map(fields, param):
    assert refused(ollama_rule(), {"messages": [QUESTION], "tools": TOOLS, **fields}).param == param


def test_ollama_response_object_arguments_synthesised_ids_and_tool_calls_finish():
    """providers.md §12: Ollama's arguments are objects (-> JSON strings), older builds give no ids (-> stable
    synthesised ones), and it says done_reason "stop" when it called tools (-> "tool_calls")."""
    data = ollama_line({"tool_calls": ollama_calls()}, done=True)
    out = ok(ollama_rule(), data)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", c["id"]) and c["type"] == "function" for c in calls)
    assert len({c["id"] for c in calls}) == 2
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == list(
        zip(NAMES, ARGS, strict=True)
    )
    assert out["usage"] == {"prompt_tokens": 122, "completion_tokens": 33, "total_tokens": 155}


def test_ollama_response_keeps_its_ids_and_a_length_finish():
    data = ollama_line({"tool_calls": ollama_calls(with_ids=True)}, done=True, done_reason="length")
    choice = ok(ollama_rule(), data)["choices"][0]
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["call_ollama0", "call_ollama1"]
    assert choice["finish_reason"] == "length"


def test_ollama_response_without_tool_calls_is_unchanged():
    choice = ok(ollama_rule(), ollama_line({"content": "Hi"}, done=True))["choices"][0]
    assert (choice["message"], choice["finish_reason"]) == ({"role": "assistant", "content": "Hi"}, "stop")


@pytest.mark.parametrize("with_ids", [False, True])
def test_ollama_stream_tool_calls_equal_the_non_streamed_ones(with_ids):
    """Streamed NDJSON lines carrying tool_calls: one OpenAI call per Ollama call, index counting calls only, id
    and name first then the arguments; finish "tool_calls"; the same calls as the non-streamed answer."""
    evs = translate_stream(ollama_rule(), ollama_tool_stream(with_ids))
    text, calls, finish = accumulate([e for e in evs if isinstance(e, dict)])
    assert (text, finish) == ("Checking.", "tool_calls")
    if with_ids:
        assert [c["id"] for c in calls] == ["call_ollama0", "call_ollama1"]
    whole = ok(ollama_rule(), ollama_line({"tool_calls": ollama_calls(with_ids)}, done=True))
    assert same_calls(calls, whole["choices"][0]["message"]["tool_calls"])


def test_ollama_stream_synthesised_ids_are_distinct_and_stable_within_the_stream():
    rule = ollama_rule()
    c = call(rule, {"messages": [QUESTION], "tools": TOOLS, "stream": True})
    t = provider_for(rule).stream_translator(c, False, True)
    out = t.feed(ollama_tool_stream()) + t.finish()
    chunks = [json.loads(b[6:]) for b in out.split(b"\n\n") if b.startswith(b"data: {")]
    _, calls, _ = accumulate(chunks)
    assert len({c["id"] for c in calls}) == 2
    assert t.result.tool_calls == calls  # the audit record has the same calls
    assert t.result.finish_reason == "tool_calls"


def test_ollama_stream_bad_tool_calls_end_with_an_error_event():
    raw = ndjson(ollama_line({"tool_calls": [{"function": {"arguments": {}}}]}), ollama_line(done=True))
    evs = translate_stream(ollama_rule(), raw)
    assert set(evs[-1]) == {"error"} and "[DONE]" not in evs


# ==============================================================================================================
# Llama `openai` format (Ollama /v1, vLLM, llama.cpp): an OpenAI passthrough, tools included
# ==============================================================================================================


def test_llama_openai_format_passes_tools_through_both_ways():
    rule = make_rule("llama2", "llama3.2", llama2_format="openai", upstream_url=OLLAMA)
    body = {"messages": history(["call_a", "call_b"]), "tools": TOOLS, "tool_choice": "required"}
    out = up_body(rule, body)
    assert (out["messages"], out["tools"], out["tool_choice"]) == (body["messages"], TOOLS, "required")
    calls = [
        {"id": f"call_{k}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for k, (n, a) in enumerate(zip(NAMES, ARGS, strict=True))
    ]
    reply = tgi_reply({"content": None, "tool_calls": calls}, "tool_calls")
    assert ok(rule, reply)["choices"][0]["message"]["tool_calls"] == calls


# ==============================================================================================================
# Llama raw: no tools (a clear 400)
# ==============================================================================================================


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": TOOLS}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"messages": history(["a", "b"])}, "messages[1].tool_calls"),
        ({"messages": [QUESTION, {"role": "tool", "tool_call_id": "a", "content": "x"}]}, "messages[1].role"),
    ],
)
def test_llama_raw_refuses_tools(fields, param):
    err = refused(raw_rule(), {"messages": [QUESTION], **fields})
    assert err.param == param and "llama2" in err.message


# ==============================================================================================================
# End to end: the multi-turn round trip with the openai SDK through a real mitmdump
# ==============================================================================================================


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["ollama"])
def test_e2e_multi_turn_tool_round_trip_streamed_and_not(tools: dict[str, Any], case: str) -> None:
    check_round_trip(tools, case)  # what it checks: its docstring


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("host", "fields", "param"),
    [
        ("ollama.internal", {"messages": [QUESTION], "tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
        ("llama-raw.internal", {"messages": [QUESTION], "tools": TOOLS}, "tools"),
    ],
)
def test_e2e_refusals_are_clear_400s_and_nothing_is_sent(tools: dict[str, Any], host: str, fields: dict, param: str):
    assert_refused_before_sending(tools, host, fields, param)
