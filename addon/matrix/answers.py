"""The answer side of the matrix: a provider's own (non-streamed) answer carrying reasoning text and cache counts,
as its API spells them, translated by the proxy's own code (the provider's parser, the client format's encoder)
and looked for in the client's answer. A provider whose API has no such field is probed without it (the cell says
the provider sends none).

The native answers are minimal and hand-written from each provider's API reference (docs/providers.md); the
providers' own tests hold the complete ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import jsonutil
from ..exchange import ClientRequest, prepare_call, provider_for, translate_response
from ..formats import format_for
from ..formats.responses.sealed import unseal
from .features import BASE, SIGNATURE
from .probe import Cell, Column, client_body, is_native, rule_for

THINKING = "PROBE-THINKING"
READ, WRITE = 60, 10  # cached prompt tokens read and written, out of 100


def _openai(reasoning: bool, cache: bool) -> dict[str, Any]:
    """OpenAI's Chat answer (also Azure's and Hugging Face's OpenAI-compatible routes): reasoning text as the
    `reasoning_content` of the compatible servers (vLLM, SGLang, TGI); official OpenAI sends none."""
    message: dict[str, Any] = {"role": "assistant", "content": "2"}
    if reasoning:
        message["reasoning_content"] = THINKING
    usage: dict[str, Any] = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    if cache:
        usage["prompt_tokens_details"] = {"cached_tokens": READ}
    return {
        "id": "chatcmpl-probe",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }


def _anthropic(reasoning: bool, cache: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = (
        [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}] if reasoning else []
    )
    usage = {"input_tokens": 30, "output_tokens": 7}
    if cache:
        usage.update(cache_read_input_tokens=READ, cache_creation_input_tokens=WRITE)
    content.append({"type": "text", "text": "2"})
    return {"id": "msg_probe", "type": "message", "role": "assistant", "model": "m", "content": content,
            "stop_reason": "end_turn", "usage": usage}  # fmt: skip


def _bedrock(reasoning: bool, cache: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reasoning:
        content.append({"reasoningContent": {"reasoningText": {"text": THINKING, "signature": SIGNATURE}}})
    usage = {"inputTokens": 30, "outputTokens": 7, "totalTokens": 37}
    if cache:
        usage.update(cacheReadInputTokens=READ, cacheWriteInputTokens=WRITE)
    return {"output": {"message": {"role": "assistant", "content": [*content, {"text": "2"}]}},
            "stopReason": "end_turn", "usage": usage}  # fmt: skip


def _gemini(reasoning: bool, cache: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = (
        [{"text": THINKING, "thought": True, "thoughtSignature": SIGNATURE}] if reasoning else []
    )
    usage = {"promptTokenCount": 100, "candidatesTokenCount": 7, "totalTokenCount": 107}
    if cache:
        usage["cachedContentTokenCount"] = READ
    return {"candidates": [{"content": {"role": "model", "parts": [*parts, {"text": "2"}]}, "finishReason": "STOP"}],
            "usageMetadata": usage, "modelVersion": "m"}  # fmt: skip


def _cohere(reasoning: bool, cache: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "thinking", "thinking": THINKING}] if reasoning else []
    return {"id": "probe", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [*content, {"type": "text", "text": "2"}]},
            "usage": {"tokens": {"input_tokens": 100, "output_tokens": 7}}}  # fmt: skip


def _mistral(reasoning: bool, cache: bool) -> dict[str, Any]:
    answer = _openai(False, False)
    if reasoning:  # reasoning models (Magistral) answer content as chunks
        answer["choices"][0]["message"]["content"] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": THINKING}]},
            {"type": "text", "text": "2"},
        ]
    return answer


def _ollama(reasoning: bool, cache: bool) -> dict[str, Any]:
    message = {"role": "assistant", "content": "2", **({"thinking": THINKING} if reasoning else {})}
    return {"model": "m", "created_at": "2026-01-01T00:00:00Z", "message": message, "done": True,
            "done_reason": "stop", "prompt_eval_count": 100, "eval_count": 7}  # fmt: skip


# provider -> (its native answer, which of the answer features its API sends)
ANSWERS: dict[str, tuple[Callable[[bool, bool], dict[str, Any]], frozenset[str]]] = {
    "openai": (_openai, frozenset({"cache_read"})),
    "azure": (_openai, frozenset({"cache_read"})),
    "anthropic": (_anthropic, frozenset({"reasoning_text", "signature", "cache_read", "cache_write"})),
    "bedrock": (_bedrock, frozenset({"reasoning_text", "signature", "cache_read", "cache_write"})),
    "gemini": (_gemini, frozenset({"reasoning_text", "signature", "cache_read"})),
    "cohere": (_cohere, frozenset({"reasoning_text"})),
    "mistral": (_mistral, frozenset({"reasoning_text"})),
    "llama2": (_ollama, frozenset({"reasoning_text"})),
    "huggingface": (_openai, frozenset({"reasoning_text", "cache_read"})),
}


def _at(answer: Any, *path: str) -> Any:
    for key in path:
        answer = answer.get(key) if isinstance(answer, dict) else None
    return answer


@dataclass(frozen=True)
class AnswerFeature:
    key: str
    label: str
    found: dict[str, Callable[[Any], bool]]  # client format -> whether its answer carries the feature


ANSWER_FEATURES = [
    AnswerFeature(
        "reasoning_text",
        "reasoning text in answers",
        {fmt: (lambda answer: THINKING in jsonutil.dumps(answer).decode()) for fmt in BASE},
    ),
    AnswerFeature("signature", "reasoning signatures in answers", {fmt: (lambda a: _signed(a)) for fmt in BASE}),
    AnswerFeature(
        "cache_read",
        "cache reads in usage",
        {
            "openai": lambda a: _at(a, "usage", "prompt_tokens_details", "cached_tokens") == READ,
            "anthropic": lambda a: _at(a, "usage", "cache_read_input_tokens") == READ,
            "responses": lambda a: _at(a, "usage", "input_tokens_details", "cached_tokens") == READ,
            "gemini": lambda a: _at(a, "usageMetadata", "cachedContentTokenCount") == READ,
        },
    ),
    AnswerFeature(
        "cache_write",
        "cache writes in usage",
        {
            "openai": lambda a: _at(a, "usage", "prompt_tokens_details", "cache_creation_tokens") == WRITE,
            "anthropic": lambda a: _at(a, "usage", "cache_creation_input_tokens") == WRITE,
        },
    ),
]


def _signed(answer: Any) -> bool:
    """Whether the client's answer carries the probe's signature: as it is, or sealed in a Responses reasoning
    item's encrypted_content."""
    if SIGNATURE in jsonutil.dumps(answer).decode():
        return True
    items = answer.get("output") if isinstance(answer, dict) else None
    sealed = [i["encrypted_content"] for i in items or () if isinstance(i, dict) and i.get("encrypted_content")]
    return any(SIGNATURE in jsonutil.dumps(unseal(text) or []).decode() for text in sealed)


def client_answer(client: str, column: Column, native: dict[str, Any]) -> Any:
    """The client's answer to its base request, for the provider's native answer `native`."""
    rule = rule_for(client, column)
    path, body = client_body(client, column, BASE[client])
    request = ClientRequest({"content-type": "application/json"}, {}, "application/json", jsonutil.dumps(body), path)
    fmt = format_for(rule.spec.llm_format, rule.spec.route_type)
    call = prepare_call(rule, {}, request, fmt)
    status, standard = translate_response(provider_for(rule), call, 200, jsonutil.dumps(native), "application/json")
    if status != 200:
        raise ValueError(f"{column.provider}'s probe answer was not translated: {standard}")
    return fmt.encode(call.route_type, standard)


def classify_answer(feature: AnswerFeature, client: str, column: Column) -> Cell:
    """kept: the client's answer carries it; lost: the provider sent it and the client's answer does not; none: the
    provider's API has no such field."""
    found = feature.found.get(client)
    if found is None:
        return Cell("n/a")
    if is_native(client, column):
        return Cell("native")
    build, sends = ANSWERS[column.provider]
    if feature.key not in sends:
        return Cell("none")
    return Cell("kept" if found(client_answer(client, column, build(True, True))) else "lost")
