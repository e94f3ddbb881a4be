"""End to end, on every provider the Anthropic format reaches (the anthropic SDK through a real mitmdump to each fake
in its own wire format): a two-parallel-tool-call round trip and the stop reasons, with the provider's native
answers (Gemini functionCall parts, Cohere v2 tool_calls, Ollama's object arguments without ids, OpenAI-style
tool_calls on Azure, Mistral and TGI)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import replies
from tests.support.anthropic_sdk import MESSAGES, Env
from tests.support.fakes import ANSWER, Reply, sse

pytestmark = pytest.mark.e2e

TOOLS = [
    {
        "name": "add",
        "description": "Add two integers.",
        "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    }
]


def length_stop(provider: str) -> Reply:
    """The provider's own answer cut off by the token limit."""
    if provider == "gemini":
        return Reply(json=replies.gemini([{"text": ANSWER}], finish="MAX_TOKENS"))
    if provider == "cohere":
        return replies.cohere_reply(False, finish="MAX_TOKENS")
    if provider == "llama2":
        message = {"role": "assistant", "content": ANSWER}
        line = {"model": "llama3.2", "created_at": "2024-08-04T08:52:19Z", "done": True, "done_reason": "length",
                "message": message, "prompt_eval_count": 25, "eval_count": 12}  # fmt: skip
        return Reply(json=line, headers=replies.NDJSON)
    answer: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37},
    }
    return Reply(json=answer)


PROVIDERS = ["azure", "gemini", "cohere", "mistral", "llama2", "huggingface"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_two_parallel_tool_calls_round_trip(env: Env, provider: str) -> None:
    fake = env.fakes[provider]
    fake.queue(replies.two_tool_calls(provider))
    client = env.client(provider)
    first = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=TOOLS, messages=MESSAGES)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("add", args) for _, args in replies.TWO_CALLS]
    assert len({u.id for u in uses}) == 2  # minted where the provider has none (Gemini, Ollama): still distinct
    fake.reset()
    env.queue_answer(provider, False)
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": str(sum(u.input.values()))} for u in uses]
    history = [
        *MESSAGES,
        {"role": "assistant", "content": [u.model_dump(exclude_none=True) for u in uses]},
        {"role": "user", "content": results},
    ]
    final = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=TOOLS, messages=history)
    assert final.content[0].text == ANSWER and final.stop_reason == "end_turn"
    # The provider got both calls and both results back, in its own format (each provider's tests check the shape):
    # the tool's name in its declaration and in both calls, both results, and the ids where the format has ids.
    strings = list(replies.strings_in(env.seen(provider).json))
    assert strings.count("add") >= 3 and {"2", "4"} <= set(strings), strings
    # Gemini and Ollama match results to calls by name and order; Mistral takes 9-character ids (mapped both ways).
    if provider not in ("gemini", "llama2", "mistral"):
        assert {u.id for u in uses} <= set(strings)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_length_stop_is_max_tokens(env: Env, provider: str) -> None:
    env.fakes[provider].queue(length_stop(provider))
    message = env.client(provider).messages.create(model="claude-sonnet-4-5", max_tokens=12, messages=MESSAGES)
    assert message.stop_reason == "max_tokens" and message.content[0].text == ANSWER


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_cache_reads_reach_the_usage_from_openai_and_gemini(env: Env, stream: bool) -> None:
    """The provider's own count of tokens read from its cache is Anthropic's cache_read_input_tokens (and no longer
    in input_tokens): OpenAI's prompt_tokens_details.cached_tokens, Gemini's cachedContentTokenCount."""
    usage = {"prompt_tokens": 1200, "completion_tokens": 12, "total_tokens": 1212,
             "prompt_tokens_details": {"cached_tokens": 1024}}  # fmt: skip
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake-1",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ANSWER}, "finish_reason": None}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake-1",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake-1", "choices": [],
         "usage": usage},
    ]  # fmt: skip
    if stream:
        env.fakes["openai"].queue(Reply(chunks=[sse(c) for c in chunks] + [b"data: [DONE]\n\n"]))
    else:
        message = {"role": "assistant", "content": ANSWER}
        body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-fake-1", "usage": usage,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
        env.fakes["openai"].queue(Reply(json=body))
    gemini = replies.gemini([{"text": ANSWER}])
    gemini["usageMetadata"] = {"promptTokenCount": 1200, "candidatesTokenCount": 12, "totalTokenCount": 1212,
                               "cachedContentTokenCount": 1024}  # fmt: skip
    env.fakes["gemini"].queue(Reply(json=gemini) if not stream else Reply(chunks=[sse(gemini)]))
    for provider in ("openai", "gemini"):
        client = env.client(provider)
        if stream:
            with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES) as s:
                got = s.get_final_message().usage
        else:
            got = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES).usage
        assert (got.input_tokens, got.cache_read_input_tokens, got.output_tokens) == (176, 1024, 12), provider
