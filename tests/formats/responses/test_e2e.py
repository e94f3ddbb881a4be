"""End to end: the real openai SDK's Responses API (what Codex CLI and the OpenAI Agents SDK use) through a real
mitmdump to fake Anthropic, Gemini, Cohere and Ollama servers (translated) and a fake OpenAI (passed through):
responses.create and responses.stream, function tools round trip, structured output, errors as the SDK's own
exceptions, tool arguments streamed as they arrive, the loss report and the record."""

from __future__ import annotations

import json
import threading
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.support import format_e2e, replies
from tests.support.fakes import ANSWER, STREAM_PIECES, FakeUpstream, Reply, anthropic_message_start, sse
from tests.support.format_e2e import (
    FormatEnv,
)
from tests.support.tools import client_through

pytestmark = pytest.mark.e2e

PROVIDER_KEY = "provider-e2e-fake-key-0012"
CLIENT_KEY = "sk-client-key-must-not-travel"
TRANSLATED = format_e2e.setups("anthropic", "gemini", "cohere", "llama2")
PASSED: dict[str, format_e2e.Setup] = {  # Azure's Responses passthrough names no deployment
    "openai": format_e2e.SETUPS["openai"],
    "azure": ("gpt-fake-1", "azure_instance: fake, ", None),
}


def rules_yaml(fakes: dict[str, FakeUpstream]) -> str:
    select = "route_type: llm/v1/responses"
    both = {**TRANSLATED, **PASSED}
    out = format_e2e.rules_yaml("responses", "codex.internal", both, fakes, "gpt-5*", "/v1/*", select, "", PROVIDER_KEY)
    out += f"""
  - name: responses-lenient
    match: {{host: lenient.codex.internal, path: "/v1/*"}}
    route_type: llm/v1/responses
    model:
      provider: gemini
      name: gemini-fake-1
      aliases: {{"*": gemini-fake-1}}
      options: {{hosted_tools: drop, upstream_url: "{fakes["gemini"].url}"}}
    auth: {format_e2e.auth("gemini", PROVIDER_KEY)}
"""
    return out


class Env(FormatEnv):
    def client(self, provider: str) -> openai.OpenAI:
        return client_through(self.proxy, f"{provider}.codex.internal", CLIENT_KEY)


env_module, env = format_e2e.fixtures(Env, {**TRANSLATED, **PASSED}, rules_yaml, CLIENT_KEY, "e2e-responses-client")


@pytest.mark.parametrize("provider", list(TRANSLATED))
def test_text_not_streamed(env: Env, provider: str) -> None:
    env.queue_answer(provider, stream=False)
    response = env.client(provider).responses.create(
        model="gpt-5-codex", instructions="You are a mathematician.", input="What is 1 + 1?"
    )
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == ANSWER and [o.type for o in response.output] == ["message"]
    assert response.usage is not None and response.usage.input_tokens == 25 and response.usage.output_tokens == 12
    assert response.usage.total_tokens == 37
    sent = env.seen(provider).body.decode()
    assert "What is 1 + 1?" in sent and "You are a mathematician." in sent


@pytest.mark.parametrize("provider", list(TRANSLATED))
def test_streamed_equals_not_streamed(env: Env, provider: str) -> None:
    env.queue_answer(provider, stream=False)
    whole = env.client(provider).responses.create(model="gpt-5", input="What is 1 + 1?")
    env.queue_answer(provider, stream=True)
    with env.client(provider).responses.stream(model="gpt-5", input="What is 1 + 1?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == STREAM_PIECES if provider != "llama2" else "".join(deltas) == ANSWER
    assert final.output_text == whole.output_text == ANSWER
    assert final.usage == whole.usage and final.status == whole.status == "completed"
    assert [o.type for o in final.output] == [o.type for o in whole.output] == ["message"]
    assert json.loads(env.seen(provider).body).get("stream", True) is not False


ADD = {
    "type": "function",
    "name": "add",
    "description": "Add two numbers",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    "strict": False,
}


def test_function_tools_round_trip_on_anthropic(env: Env) -> None:
    fake = env.fakes["anthropic"]
    fake.queue(replies.anthropic_tool_use([("toolu_1", "add", {"a": 1, "b": 1}), ("toolu_2", "add", {"a": 2})]))
    client = env.client("anthropic")
    first = client.responses.create(model="gpt-5", input="What is 1 + 1?", tools=[ADD])  # type: ignore[list-item]
    calls = [o for o in first.output if o.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("toolu_1", "add", {"a": 1, "b": 1}),
        ("toolu_2", "add", {"a": 2}),
    ]
    assert env.seen("anthropic").json["tools"][0]["input_schema"] == ADD["parameters"]
    history: list[Any] = [{"role": "user", "content": "What is 1 + 1?"}, *first.output]
    history += [
        {"type": "function_call_output", "call_id": c.call_id, "output": str(i + 2)} for i, c in enumerate(calls)
    ]
    final = client.responses.create(model="gpt-5", input=history, tools=[ADD])  # type: ignore[list-item]
    assert final.output_text == ANSWER
    messages = env.seen("anthropic").json["messages"]
    assert [b["type"] for b in messages[1]["content"]] == ["tool_use", "tool_use"]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "2"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "3"},
    ]


def test_function_tools_round_trip_on_gemini(env: Env) -> None:
    fake = env.fakes["gemini"]
    fake.queue(replies.gemini_reply(False, [{"functionCall": {"name": "add", "args": {"a": 1, "b": 1}}}]))
    client = env.client("gemini")
    first = client.responses.create(model="gpt-5", input="What is 1 + 1?", tools=[ADD])  # type: ignore[list-item]
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "add" and json.loads(call.arguments) == {"a": 1, "b": 1}
    fake.queue(replies.gemini_reply(False))
    history: list[Any] = [
        {"role": "user", "content": "What is 1 + 1?"},
        {"type": "function_call", "call_id": call.call_id, "name": "add", "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "2"},
    ]
    final = client.responses.create(model="gpt-5", input=history, tools=[ADD])  # type: ignore[list-item]
    assert final.output_text == ANSWER
    contents = env.seen("gemini").json["contents"]
    assert contents[1]["parts"][0]["functionCall"]["name"] == "add"
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "add"


class Sum(BaseModel):
    answer: int
    explanation: str


def test_structured_output_with_text_format(env: Env) -> None:
    text = json.dumps({"answer": 2, "explanation": "one and one"})
    env.fakes["gemini"].queue(replies.gemini_reply(False, [{"text": text}]))
    parsed = env.client("gemini").responses.parse(model="gpt-5", input="What is 1 + 1?", text_format=Sum)
    assert parsed.output_parsed == Sum(answer=2, explanation="one and one")
    config = env.seen("gemini").json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "answer" in json.dumps(config.get("responseJsonSchema") or config.get("responseSchema"))


def test_streamed_tool_arguments_reach_the_client_before_the_stream_ends(env: Env) -> None:
    seen_first_piece = threading.Event()
    env.fakes["anthropic"].queue(
        replies.anthropic_tool_stream(
            "toolu_stream1", "add", ['{"a":', ' 1, "b": 1}'], hold=lambda: seen_first_piece.wait(10)
        )
    )
    client = env.client("anthropic")
    with client.responses.stream(model="gpt-5", input="What is 1 + 1?", tools=[ADD]) as stream:  # type: ignore[list-item]
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                assert event.delta == '{"a":'
                seen_first_piece.set()  # the fake holds the rest of its stream until now
                break
        final = stream.get_final_response()
    assert seen_first_piece.is_set()
    record = env.record("toolu_stream1")
    assert record["payload"]["client_response"]["output"][0]["call_id"] == "toolu_stream1"
    (call,) = final.output
    assert (
        call.type == "function_call"
        and call.call_id == "toolu_stream1"
        and json.loads(call.arguments) == {"a": 1, "b": 1}
    )
    assert final.usage is not None and final.usage.output_tokens == 20


@pytest.mark.parametrize(
    ("status", "exc"),
    [(429, openai.RateLimitError), (401, openai.AuthenticationError), (500, openai.InternalServerError)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_provider_errors_are_the_sdks_exceptions(env: Env, status: int, exc: type, stream: bool) -> None:
    body = {"type": "error", "error": {"type": "some_error", "message": "nope"}}
    env.fakes["anthropic"].queue(Reply(status=status, json=body))
    client = env.client("anthropic")
    with pytest.raises(exc) as e:
        if stream:
            with client.responses.stream(model="gpt-5", input="hi") as s:
                s.get_final_response()
        else:
            client.responses.create(model="gpt-5", input="hi")
    assert "nope" in e.value.message


def test_built_in_tools_are_a_400_naming_the_tool(env: Env) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        env.client("gemini").responses.create(model="gpt-5", input="hi", tools=[{"type": "web_search"}])
    assert isinstance(e.value.body, dict) and e.value.body["param"] == "tools[0].type"
    assert "web_search" in e.value.body["message"]
    assert env.fakes["gemini"].requests == []


def test_mid_stream_error_is_raised(env: Env) -> None:
    chunks = [
        anthropic_message_start(),
        sse({"type": "error", "error": {"type": "overloaded_error", "message": "melted"}}, "error"),
    ]
    env.fakes["anthropic"].queue(Reply(chunks=chunks))
    with (
        pytest.raises(openai.APIError, match="melted"),
        env.client("anthropic").responses.stream(model="gpt-5", input="hi") as s,
    ):
        s.get_final_response()


def test_unknown_fields_are_reported_and_recorded(env: Env) -> None:
    raw = env.client("anthropic").responses.with_raw_response.create(
        model="gpt-5", input="loss-probe", prompt_cache_key="k1", extra_body={"frobnicate": True}
    )
    assert set(raw.headers["x-ai-proxy-dropped"].split(",")) == {"prompt_cache_key", "frobnicate"}
    assert raw.parse().output_text == ANSWER
    record = env.record("loss-probe")
    assert record["meta"]["client_model"] == "gpt-5" and record["meta"]["request_model"] == "claude-fake-1"
    assert record["payload"]["client_response"]["object"] == "response"


def test_models_are_answered_by_the_proxy(env: Env) -> None:
    models = env.client("cohere").models.list()
    assert [m.id for m in models.data] == ["command-fake"]
    with pytest.raises(openai.NotFoundError):
        env.client("cohere").responses.input_items.list("resp_1")  # not kept in that shape
    assert env.fakes["cohere"].requests == []


RESPONSE = {
    "id": "resp_upstream1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-fake-1",
    "output": [
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": ANSWER, "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 25,
        "input_tokens_details": {"cached_tokens": 5},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 37,
    },
}


@pytest.mark.parametrize(("provider", "path"), [("openai", "/v1/responses"), ("azure", "/openai/v1/responses")])
def test_openai_and_azure_are_passed_through(env: Env, provider: str, path: str) -> None:
    env.fakes[provider].queue(Reply(json=RESPONSE))
    response = env.client(provider).responses.create(model="gpt-5-mini", input="passthrough-probe", store=True)
    assert response.id == "resp_upstream1" and response.output_text == ANSWER
    req = env.seen(provider)
    assert req.path == path and req.json == {"model": "gpt-fake-1", "input": "passthrough-probe", "store": True}
    if provider == "openai":
        assert req.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    else:
        assert req.headers["api-key"] == PROVIDER_KEY
    record = env.record("passthrough-probe")
    assert record["usage"]["prompt_tokens"] == 25 and record["usage"]["completion_tokens"] == 12


def test_openai_stream_is_passed_through_and_recorded(env: Env) -> None:
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {**RESPONSE, "status": "in_progress",
                                                                          "output": [], "usage": None}},
        {"type": "response.completed", "sequence_number": 1, "response": RESPONSE},
    ]  # fmt: skip
    env.fakes["openai"].queue(Reply(chunks=[sse(e, e["type"]) for e in events]))
    with env.client("openai").responses.stream(model="gpt-5", input="stream-passthrough-probe") as stream:
        final = stream.get_final_response()
    assert final.output_text == ANSWER
    record = env.record("stream-passthrough-probe")
    assert record["usage"]["prompt_tokens"] == 25 and record["usage"]["completion_tokens"] == 12


def test_previous_response_id_chains_a_conversation(env: Env) -> None:
    fake = env.fakes["gemini"]
    client = env.client("gemini")
    fake.queue(replies.gemini_reply(False))
    first = client.responses.create(
        model="gpt-5", instructions="Be brief.", input="What is 1 + 1?", metadata={"t": "1"}
    )
    assert first.store is True and first.metadata == {"t": "1"} and first.instructions == "Be brief."
    fake.queue(replies.gemini_reply(True))
    with client.responses.stream(model="gpt-5", input="And 2 + 2?", previous_response_id=first.id) as stream:
        second = stream.get_final_response()
    assert second.previous_response_id == first.id and second.output_text == ANSWER
    contents = env.seen("gemini").json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "What is 1 + 1?"),
        ("model", ANSWER),
        ("user", "And 2 + 2?"),
    ]
    assert "systemInstruction" not in env.seen("gemini").json  # instructions do not carry over, as on OpenAI
    fake.queue(replies.gemini_reply(False))
    third = client.responses.create(model="gpt-5", input="And 3 + 3?", previous_response_id=second.id, store=False)
    assert len(env.seen("gemini").json["contents"]) == 5 and third.store is False
    assert client.responses.retrieve(second.id).output_text == ANSWER
    assert (env.proxy.recordings / "responses.sqlite3").exists()  # the default place: the recordings folder
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(third.id)  # store: false
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="gpt-5", input="hi", previous_response_id="resp_missing")
    assert isinstance(e.value.body, dict) and e.value.body["param"] == "previous_response_id"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_a_codex_turn_with_a_freeform_tool(env: Env) -> None:
    """What Codex sends: instructions, developer and user messages, a function tool and the freeform apply_patch,
    reasoning and include asked, streamed; the patch comes back as a custom_tool_call and its output goes back."""
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    fake = env.fakes["anthropic"]
    fake.queue(replies.anthropic_tool_stream("toolu_p", "apply_patch", [json.dumps({"input": patch})]))
    client = env.client("anthropic")
    tools: list[Any] = [
        {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}, "strict": False},
        {"type": "custom", "name": "apply_patch", "description": "Edit files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
    ]  # fmt: skip
    request: dict[str, Any] = {
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
    }
    history: list[Any] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add a.txt"}]},
    ]
    with client.responses.stream(input=history, **request) as stream:
        first = stream.get_final_response()
        dropped = stream._response.headers["x-ai-proxy-dropped"].split(",")  # the SDK keeps the httpx response
    (call,) = first.output
    assert call.type == "custom_tool_call" and call.call_id == "toolu_p" and call.input == patch
    assert {"include", "prompt_cache_key", "reasoning.summary"} <= set(dropped)
    assert env.seen("anthropic").json["tools"][1]["name"] == "apply_patch"
    history += [call.model_dump(exclude_none=True), {"type": "custom_tool_call_output", "call_id": "toolu_p",
                                                     "output": "Success"}]  # fmt: skip
    final = client.responses.create(input=history, **request)
    assert final.output_text == ANSWER
    messages = env.seen("anthropic").json["messages"]
    assert messages[1]["content"][0] == {"type": "tool_use", "id": "toolu_p", "name": "apply_patch",
                                         "input": {"input": patch}}  # fmt: skip
    assert messages[2]["content"][0]["tool_use_id"] == "toolu_p"


def test_a_rule_may_drop_hosted_tools_instead(env: Env) -> None:
    env.fakes["gemini"].queue(replies.gemini_reply(False))
    tools: list[Any] = [{"type": "web_search"}, ADD]
    raw = env.client("lenient").responses.with_raw_response.create(model="gpt-5", input="hi", tools=tools)
    assert raw.headers["x-ai-proxy-dropped"] == "tools.web_search" and raw.parse().output_text == ANSWER
    (declarations,) = env.seen("gemini").json["tools"]
    assert [f["name"] for f in declarations["functionDeclarations"]] == ["add"]


@pytest.mark.parametrize("provider", ["cohere", "llama2"])
def test_function_tools_round_trip_on_cohere_and_ollama(env: Env, provider: str) -> None:
    fake = env.fakes[provider]
    fake.queue(replies.two_tool_calls(provider))
    client = env.client(provider)
    first = client.responses.create(model="gpt-5", input="What is 1 + 1?", tools=[ADD])  # type: ignore[list-item]
    calls = [o for o in first.output if o.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("add", args) for _, args in replies.TWO_CALLS]
    assert len({c.call_id for c in calls}) == 2  # minted where the provider has none (Ollama): still distinct
    env.reset()
    env.queue_answer(provider, False)
    history: list[Any] = [{"role": "user", "content": "What is 1 + 1?"}, *first.output]
    history += [
        {"type": "function_call_output", "call_id": c.call_id, "output": str(sum(json.loads(c.arguments).values()))}
        for c in calls
    ]
    final = client.responses.create(model="gpt-5", input=history, tools=[ADD])  # type: ignore[list-item]
    assert final.output_text == ANSWER
    # Both calls and both results went back to the provider in its own format (its own tests check the shape).
    strings = list(replies.strings_in(env.seen(provider).json))
    assert strings.count("add") >= 3 and {"2", "4"} <= set(strings), strings
