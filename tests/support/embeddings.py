"""Builders for the llm/v1/embeddings tests (pure): rules, calls, upstream requests, answers and provider bodies."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call, UpstreamRequest
from addon.rules import Rule
from tests.support.rules import one_rule

EMB = "llm/v1/embeddings"
VEC = [0.25, -0.5, 1.0]
VEC2 = [0.125, 0.75, -1.5]


def make_rule(provider: str, name: str | None = "embed-model", **extra: Any) -> Rule:
    return one_rule(provider, name, EMB, extra.pop("options", {}), **extra)


def call(rule: Rule, body: Any) -> Call:
    return prepare_call(rule, {}, ClientRequest({}, {}, "application/json", json.dumps(body).encode()))


def upstream(rule: Rule, body: Any) -> tuple[Call, UpstreamRequest]:
    c = call(rule, body)
    return c, build_upstream(rule, c)


def answer(rule: Rule, c: Call, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    c.response_headers = headers or {}
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return translate_response(provider_for(rule), c, status, raw, "application/json")


def floats(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def refused(rule: Rule, body: Any, param: str | None = None) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        c = call(rule, body)
        build_upstream(rule, c)
    assert info.value.status == 400, info.value.message
    if param is not None:
        assert info.value.param == param
    return info.value


def openai_list(*vectors: Any, prompt_tokens: int = 7) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def cohere_embed(*vectors: Any, tokens: Any = 5) -> dict[str, Any]:
    return {
        "id": "emb-1",
        "embeddings": {"float": list(vectors)},
        "texts": ["a", "b"],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        "response_type": "embeddings_by_type",
    }


BEDROCK_AUTH = {"aws_access_key_id": "AKIDEMBEDFAKE0000001", "aws_secret_access_key": "fake/secret/embed"}


def bedrock_rule(model: str, **options: Any) -> Rule:
    return make_rule(
        "bedrock", name=model, options={"bedrock": {"aws_region": "us-east-1"}, **options}, auth=BEDROCK_AUTH
    )


def ollama_embed(*vectors: Any) -> dict[str, Any]:
    return {"model": "nomic-embed-text", "embeddings": list(vectors), "total_duration": 1, "prompt_eval_count": 9}


KONG = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "kong"
