"""End to end: the real google-genai SDK (what gemini-cli's SDK mirrors) through a real mitmdump to fake OpenAI,
Azure, Anthropic, Cohere, Mistral, Ollama and Hugging Face servers (Bedrock: test_e2e_bedrock.py):
generate_content and generate_content_stream, a function calling round trip, count_tokens, models, errors as the
SDK's own exceptions, streams reaching the client before the provider's stream ends, the JSON-array stream form,
aliases, the loss report and the client's key."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.support import format_e2e, replies
from tests.support.fakes import ANSWER, STREAM_PIECES, FakeUpstream, Recorded, Reply, openai_stream
from tests.support.format_e2e import (
    PROVIDER_KEY,
    FormatEnv,
)

pytestmark = pytest.mark.e2e

CLIENT_KEY = "AIza-client-key-must-not-travel"
GEMINI_MODEL = "gemini-2.5-flash"
PROVIDERS = format_e2e.setups("openai", "azure", "anthropic", "cohere", "mistral", "llama2", "huggingface")


def rules_yaml(fakes: dict[str, FakeUpstream]) -> str:
    return format_e2e.rules_yaml("gemini", "gemini.internal", PROVIDERS, fakes, "gemini-*-lite")


class Env(FormatEnv):
    def client(self, provider: str) -> genai.Client:
        options = types.HttpOptions(
            base_url=f"http://{provider}.gemini.internal",
            httpx_client=httpx.Client(proxy=self.proxy_url, trust_env=False, timeout=20),
        )
        return genai.Client(api_key=CLIENT_KEY, http_options=options)

    def raw(self) -> httpx.Client:
        return httpx.Client(proxy=self.proxy_url, trust_env=False, timeout=20)

    def seen(self, provider: str) -> Recorded:
        """The one request the provider's fake received, the client's key in neither its headers, body nor query."""
        (req,) = self.fakes[provider].requests
        assert CLIENT_KEY not in json.dumps(req.query)
        return super().seen(provider)


env_module, env = format_e2e.fixtures(Env, PROVIDERS, rules_yaml, CLIENT_KEY, "e2e-gemini-client")


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_text_not_streamed(env: Env, provider: str) -> None:
    env.queue_answer(provider, stream=False)
    out = env.client(provider).models.generate_content(
        model=GEMINI_MODEL,
        contents="What is 1 + 1?",
        config=types.GenerateContentConfig(system_instruction="You are a mathematician."),
    )
    assert out.text == ANSWER
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    usage = out.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (25, 12, 37)
    sent = env.seen(provider).body.decode()
    assert "What is 1 + 1?" in sent and "You are a mathematician." in sent


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_streamed_equals_not_streamed(env: Env, provider: str) -> None:
    env.queue_answer(provider, stream=True)
    chunks = list(env.client(provider).models.generate_content_stream(model=GEMINI_MODEL, contents="What is 1 + 1?"))
    assert "".join(c.text or "" for c in chunks) == "".join(STREAM_PIECES) == ANSWER
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.prompt_token_count == 25 and last.usage_metadata.candidates_token_count == 12
    assert env.seen(provider).json.get("stream", True) is not False


def test_the_provider_request_is_exactly_the_translation(env: Env) -> None:
    out = env.client("openai").models.generate_content(
        model=GEMINI_MODEL,
        contents="What is 1 + 1?",
        config=types.GenerateContentConfig(
            system_instruction="Be brief.",
            temperature=0.5,
            top_p=0.9,
            max_output_tokens=300,
            stop_sequences=["END"],
            safety_settings=[
                types.SafetySetting(
                    category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                    threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
                )
            ],
        ),
    )
    assert out.sdk_http_response.headers["x-ai-proxy-dropped"] == "safetySettings"
    req = env.seen("openai")
    assert req.path == "/v1/chat/completions" and req.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert req.json == {
        "model": "gpt-fake-1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1 + 1?"}],
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 300,
        "stop": ["END"],
        "stream": False,
    }


ADD = types.FunctionDeclaration(
    name="add",
    description="Add two numbers",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"a": types.Schema(type=types.Type.NUMBER), "b": types.Schema(type=types.Type.NUMBER)},
        required=["a", "b"],
    ),
)
TOOLS_CONFIG = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[ADD])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)


def test_a_function_calling_round_trip(env: Env) -> None:
    fake = env.fakes["openai"]
    fake.queue(
        Reply(json=replies.openai_tool_calls([("call_1", "add", '{"a":1,"b":1}'), ("call_2", "add", '{"a":2,"b":2}')]))
    )
    client = env.client("openai")
    question = types.Content(role="user", parts=[types.Part(text="What is 1 + 1, and 2 + 2?")])
    first = client.models.generate_content(model=GEMINI_MODEL, contents=[question], config=TOOLS_CONFIG)
    calls = first.function_calls or []
    assert [(c.id, c.name, c.args) for c in calls] == [
        ("call_1", "add", {"a": 1, "b": 1}),
        ("call_2", "add", {"a": 2, "b": 2}),
    ]
    assert first.candidates[0].finish_reason == types.FinishReason.STOP
    tool_schema = fake.requests[0].json["tools"][0]["function"]
    assert tool_schema["parameters"] == {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }
    fake.reset()
    answers = types.Content(
        role="user",
        parts=[
            types.Part.from_function_response(name="add", response={"output": "2"}),  # no id: matched by name
            types.Part(function_response=types.FunctionResponse(id="call_2", name="add", response={"sum": 4})),
        ],
    )
    final = client.models.generate_content(
        model=GEMINI_MODEL, contents=[question, first.candidates[0].content, answers], config=TOOLS_CONFIG
    )
    assert final.text == ANSWER
    format_e2e.assert_tool_results_sent(env.seen("openai").json["messages"], '{"sum":4}')


def test_streamed_text_reaches_the_client_before_the_providers_stream_ends(env: Env) -> None:
    first_seen = threading.Event()
    chunks: list[Any] = openai_stream()
    chunks.insert(2, lambda: first_seen.wait(10))  # after the role chunk and the first piece
    env.fakes["openai"].queue(Reply(chunks=chunks))
    stream = env.client("openai").models.generate_content_stream(model=GEMINI_MODEL, contents="1+1?")
    first = next(iter(stream))
    assert first.text == STREAM_PIECES[0] and not first_seen.is_set()
    first_seen.set()  # the fake holds the rest of its stream until now
    assert "".join(c.text or "" for c in stream) == "".join(STREAM_PIECES[1:])


def test_a_function_call_is_sent_as_soon_as_its_arguments_are_complete(env: Env) -> None:
    second_started = threading.Event()
    calls = [("call_1", "add", ['{"a":', "1,", '"b":1}']), ("call_2", "add", ['{"a":2,', '"b":2}'])]
    chunks = replies.openai_tool_calls_stream(calls)
    start_of_second = next(i for i, c in enumerate(chunks) if b'"id": "call_2"' in c)
    chunks.insert(start_of_second + 1, lambda: second_started.wait(10))
    env.fakes["openai"].queue(Reply(chunks=chunks))
    stream = iter(
        env.client("openai").models.generate_content_stream(model=GEMINI_MODEL, contents="add", config=TOOLS_CONFIG)
    )
    first = next(stream)
    assert [(c.id, c.args) for c in first.function_calls or []] == [("call_1", {"a": 1, "b": 1})]
    assert not second_started.is_set()
    second_started.set()
    rest = list(stream)
    assert [(c.id, c.args) for c in rest[-1].function_calls or []] == [("call_2", {"a": 2, "b": 2})]
    assert rest[-1].usage_metadata.candidates_token_count == 20


def test_count_tokens_and_models_are_answered_by_the_proxy(env: Env) -> None:
    client = env.client("cohere")
    small = client.models.count_tokens(model=GEMINI_MODEL, contents="hi")
    big = client.models.count_tokens(model=GEMINI_MODEL, contents="word " * 1000)
    assert 1 <= small.total_tokens < 20 and 1000 <= big.total_tokens < 1500
    assert [m.name for m in client.models.list()] == ["models/command-fake"]
    assert client.models.get(model="command-fake").display_name == "command-fake"
    with pytest.raises(errors.ClientError) as e:
        client.models.get(model="gemini-2.5-pro")
    assert e.value.code == 404 and e.value.status == "NOT_FOUND"
    assert env.fakes["cohere"].requests == []


@pytest.mark.parametrize(
    ("status", "exc", "rpc"),
    [
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (401, errors.ClientError, "UNAUTHENTICATED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_provider_errors_are_the_sdks_exceptions(env: Env, status: int, exc: type, rpc: str, stream: bool) -> None:
    env.fakes["openai"].queue(Reply(status=status, json={"error": {"message": "nope", "type": "x", "code": None}}))
    client = env.client("openai")
    with pytest.raises(exc) as e:
        if stream:
            list(client.models.generate_content_stream(model=GEMINI_MODEL, contents="hi"))
        else:
            client.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert (e.value.code, e.value.status, e.value.message) == (status, rpc, "nope")


def test_a_built_in_tool_is_a_400_in_googles_envelope(env: Env) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    with pytest.raises(errors.ClientError) as e:
        env.client("openai").models.generate_content(model=GEMINI_MODEL, contents="news?", config=config)
    assert (e.value.code, e.value.status) == (400, "INVALID_ARGUMENT")
    assert e.value.message.startswith("tools[0].googleSearch: ")
    assert env.fakes["openai"].requests == []


def test_mid_stream_error_is_raised_by_the_sdk(env: Env) -> None:
    chunks = [*openai_stream()[:2], b'data: {"error": {"message": "melted", "type": "server_error"}}\n\n']
    env.fakes["openai"].queue(Reply(chunks=chunks))
    stream = env.client("openai").models.generate_content_stream(model=GEMINI_MODEL, contents="hi")
    with pytest.raises(errors.ServerError, match="melted"):
        list(stream)


def test_the_json_array_stream_form_and_the_keys_query_parameter(env: Env) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "json-array-probe"}]}]}
    with env.raw() as http:
        url = f"http://openai.gemini.internal/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?key={CLIENT_KEY}"
        answer = http.post(url, json=body)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    chunks = json.loads(answer.content)
    assert isinstance(chunks, list) and len(chunks) == len(STREAM_PIECES) + 1
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == ANSWER and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    env.seen("openai")  # the client's key stays with the client, and out of the record
    assert CLIENT_KEY not in json.dumps(env.record("json-array-probe"))


def test_aliases_pick_the_provider_model_and_the_record_keeps_both(env: Env) -> None:
    env.client("openai").models.generate_content(model="gemini-2.5-flash-lite", contents="alias-probe")
    assert env.seen("openai").json["model"] == "gpt-fake-1-small"
    record = env.record("alias-probe")
    meta = record["meta"]
    assert meta["client_format"] == "gemini" and meta["client_model"] == "gemini-2.5-flash-lite"
    assert meta["request_model"] == "gpt-fake-1-small"
    assert "candidates" in record["payload"]["client_response"]
    assert CLIENT_KEY not in json.dumps(record)  # the SDK's x-goog-api-key, redacted


GEMINI_CLI_TOOLS = [
    types.FunctionDeclaration(
        name=name,
        description=f"The {name} tool",
        parameters_json_schema={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
    )
    for name in ("read_file", "write_file", "replace", "run_shell_command", "glob", "search_file_content",
                 "list_directory", "web_fetch", "save_memory", "read_many_files")
]  # fmt: skip


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_gemini_cli_request_streams(env: Env, provider: str) -> None:
    """What gemini-cli sends: a systemInstruction Content, ten tools with parametersJsonSchema, thinking with
    thoughts included, a long system prompt; streamed with alt=sse."""
    env.queue_answer(provider, stream=True)
    config = types.GenerateContentConfig(
        system_instruction=types.Content(role="user", parts=[types.Part(text="You are gemini-cli. " + "x" * 30_000)]),
        tools=[types.Tool(function_declarations=GEMINI_CLI_TOOLS)],
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=8192),
        temperature=0,
        top_p=1,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    chunks = list(
        env.client(provider).models.generate_content_stream(model="gemini-2.5-pro", contents="hi", config=config)
    )
    assert "".join(c.text or "" for c in chunks) == ANSWER
    dropped = chunks[-1].sdk_http_response.headers.get("x-ai-proxy-dropped", "")
    req = env.seen(provider)
    if provider == "anthropic":
        assert len(req.json["tools"]) == 10 and req.json["tools"][0]["input_schema"]["required"] == ["x"]
        assert req.json["system"].startswith("You are gemini-cli.")
        # Claude's thinking budget, exact; temperature 0 is refused next to thinking: dropped and reported.
        assert req.json["thinking"] == {"type": "enabled", "budget_tokens": 8192} and req.json["max_tokens"] > 8192
        assert "temperature" not in req.json and dropped == "temperature"
    else:
        assert len(req.json["tools"]) == 10 and req.json["reasoning_effort"] == "medium"
        assert req.json["messages"][0]["role"] == "system" and dropped == ""


@pytest.mark.parametrize("provider", ["anthropic", "cohere", "llama2"])
def test_a_function_calling_round_trip_on_other_providers(env: Env, provider: str) -> None:
    fake = env.fakes[provider]
    fake.queue(
        replies.anthropic_tool_use([(i, "add", a) for i, a in replies.TWO_CALLS])
        if provider == "anthropic"
        else replies.two_tool_calls(provider)
    )
    client = env.client(provider)
    question = types.Content(role="user", parts=[types.Part(text="What is 1 + 1, and 2 + 2?")])
    first = client.models.generate_content(model=GEMINI_MODEL, contents=[question], config=TOOLS_CONFIG)
    calls = first.function_calls or []
    assert [(c.name, c.args) for c in calls] == [("add", args) for _, args in replies.TWO_CALLS]
    env.reset()
    env.queue_answer(provider, False)
    answers = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(id=c.id, name="add", response={"sum": sum(c.args.values())})
            )
            for c in calls
        ],
    )
    final = client.models.generate_content(
        model=GEMINI_MODEL, contents=[question, first.candidates[0].content, answers], config=TOOLS_CONFIG
    )
    assert final.text == ANSWER
    # Both calls and both results went back to the provider in its own format (its own tests check the shape).
    strings = list(replies.strings_in(env.seen(provider).json))
    assert strings.count("add") >= 3, strings
    # Each result as the standard tool message carries it: the response object as JSON text.
    assert [any(f'"sum":{n}' in t.replace(" ", "") for t in strings) for n in (2, 4)] == [True, True], strings
