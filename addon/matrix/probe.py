"""One cell of the matrix, found by running the proxy's own translation (the client format's decoding, the core's
call_for, the provider's request builder, as exchange.prepare_call and build_upstream do for a live request; no
network) on the pair of client requests of a feature, and comparing what the provider would receive.

- refused: the request with the feature is a 400 (the client format's decoder, the core or the provider's builder);
- dropped: the loss report names something new and the provider's request is the same as without the feature;
- partly: the loss report names something new, and the provider's request changed all the same (part mapped);
- kept: everything the feature adds to the standard request reaches the provider as it is, at the same place;
- emulated: the provider's request gained words nobody wrote in the client's request (an instruction);
- mapped: the provider's request changed, in its own terms;
- ignored: nothing changed and nothing was reported, a silent loss (the matrix test refuses these);
- native: the client speaks the provider's own API: passed through byte for byte;
- n/a: the client format has no such feature."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from .. import jsonutil
from ..errors import ProxyError
from ..exchange import ClientRequest, build_upstream, prepare_call
from ..formats import format_for
from ..providers import REGISTRY
from ..rules import Rule, load_rules_text
from .features import BASE, Feature

FAKE_AWS = {"aws_access_key_id": "AKIDMATRIXPROBE00001", "aws_secret_access_key": "matrix/Probe+Fake000000000000"}


@dataclass(frozen=True)
class Column:
    """A provider as the matrix sets it up."""

    provider: str
    label: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    auth: dict[str, Any] | None = None


COLUMNS = [
    Column("openai", "openai", "gpt-probe"),
    Column("azure", "azure", "gpt-probe", {"azure_instance": "probe", "azure_deployment_id": "probe"}),
    Column("anthropic", "anthropic", "claude-probe"),
    Column(
        "bedrock", "bedrock (Claude)", "anthropic.claude-probe-v1:0", {"bedrock": {"aws_region": "us-east-1"}}, FAKE_AWS
    ),
    Column("gemini", "gemini", "gemini-probe"),
    Column("cohere", "cohere", "command-probe"),
    Column("mistral", "mistral", "mistral-probe"),
    Column(
        "llama2",
        "llama2 (ollama)",
        "llama-probe",
        {"llama2_format": "ollama", "upstream_url": "http://127.0.0.1:11434"},
    ),
    Column("huggingface", "huggingface", "org/model-probe"),
]

# Client format -> (rule keys that pick it, the client's path with {model}).
CLIENTS: dict[str, tuple[dict[str, Any], str]] = {
    "openai": ({"route_type": "llm/v1/chat"}, "/v1/chat/completions"),
    "anthropic": ({"route_type": "llm/v1/chat", "llm_format": "anthropic"}, "/v1/messages"),
    "responses": ({"route_type": "llm/v1/responses"}, "/v1/responses"),
    "gemini": ({"route_type": "llm/v1/chat", "llm_format": "gemini"}, "/v1beta/models/{model}:generateContent"),
}
CLIENT_LABELS = {
    "openai": "OpenAI Chat Completions clients",
    "anthropic": "Anthropic Messages clients",
    "responses": "OpenAI Responses clients",
    "gemini": "Gemini generateContent clients",
}
KINDS = ("kept", "mapped", "emulated", "partly", "dropped", "refused", "ignored", "lost", "none", "native", "n/a")


@dataclass(frozen=True)
class Cell:
    kind: str
    dropped: tuple[str, ...] = ()  # what the loss report named (dropped, partly)
    why: str = ""  # the refusal's message


@dataclass
class Translation:
    standard: Any = None  # the standard request the client format decoded
    upstream: Any = None  # the provider's request: its body and its headers (credentials come later)
    dropped: list[str] = field(default_factory=list)
    refused: ProxyError | None = None


def rule_for(client: str, column: Column, on_unsupported: str = "drop") -> Rule:
    keys = CLIENTS[client][0]
    spec: dict[str, Any] = {
        "name": f"{client}-to-{column.provider}",
        "match": {"host": "matrix.internal"},
        **keys,
        "on_unsupported": on_unsupported,
        "model": {"provider": column.provider, "options": column.options},
    }
    if column.auth is not None:
        spec["auth"] = column.auth
    (rule,) = load_rules_text(json.dumps({"rules": [spec]}), environ={})
    return rule


def is_native(client: str, column: Column) -> bool:
    """Whether the client's requests pass through to the provider untranslated (its own API)."""
    provider = REGISTRY[column.provider]
    if client == "responses":
        return provider.serves_responses
    return client != "openai" and provider.native_format == client


def client_body(client: str, column: Column, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The client's path and body, naming the column's model."""
    path = CLIENTS[client][1].replace("{model}", column.model)
    if "model" in body:
        body = {**body, "model": column.model}
    return path, body


def translate(rule: Rule, client: str, column: Column, body: dict[str, Any]) -> Translation:
    """The provider's request for a client's body, through the code a live request goes through."""
    path, body = client_body(client, column, body)
    raw = jsonutil.dumps(body)
    request = ClientRequest({"content-type": "application/json"}, {}, "application/json", raw, path)
    fmt = format_for(rule.spec.llm_format, rule.spec.route_type)
    out = Translation()
    try:
        out.standard = fmt.decode(rule.spec.route_type, path, jsonutil.loads(raw), [])
        call = prepare_call(rule, {}, request, fmt)
        up = build_upstream(rule, call, fmt)
    except ProxyError as e:
        out.refused = e
        return out
    out.upstream = {"url": up.url, "headers": up.headers, "body": up.body}
    out.dropped = list(call.dropped)
    return out


def classify(feature: Feature, client: str, column: Column) -> Cell:
    pair = feature.pairs.get(client)
    if pair is None:
        return Cell("n/a")
    if is_native(client, column):
        return Cell("native")
    rule = rule_for(client, column)
    without, with_it = pair.bodies(BASE[client])
    base = translate(rule, client, column, without)
    if base.refused is not None:
        raise ValueError(
            f"{feature.key}, {client} to {column.provider}: the request without it is refused: {base.refused.message}"
        )
    probe = translate(rule, client, column, with_it)
    if probe.refused is not None:
        return Cell("refused", why=probe.refused.message)
    new = tuple(d for d in probe.dropped if d not in base.dropped)
    changed = probe.upstream != base.upstream
    if new:
        return Cell("partly" if changed else "dropped", new)
    if not changed:
        return Cell("ignored")
    if _emulated(base.upstream, probe.upstream, with_it):
        return Cell("emulated")
    if _added(base.standard, probe.standard) <= _pairs(probe.upstream["body"]):
        return Cell("kept")
    return Cell("mapped")


def _pairs(value: Any, path: tuple[Any, ...] = ()) -> set[tuple[tuple[Any, ...], str]]:
    """Every leaf of a JSON value with its path."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _pairs(v, (*path, k))}
    if isinstance(value, list):
        return {p for i, v in enumerate(value) for p in _pairs(v, (*path, i))}
    return {(path, json.dumps(value))}


def _added(before: Any, after: Any) -> set[tuple[tuple[Any, ...], str]]:
    return _pairs(after) - _pairs(before)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _emulated(before: Any, after: Any, client: dict[str, Any]) -> bool:
    """Whether the provider's request gained a sentence of the proxy's own (an instruction in the prompt)."""
    written = json.dumps(client)
    old = _strings(before)
    for text in set(_strings(after)) - set(old):
        closest = max(old, key=lambda s: difflib.SequenceMatcher(None, s, text).ratio(), default="")
        matcher = difflib.SequenceMatcher(None, closest, text, autojunk=False)
        for op, _, _, j1, j2 in matcher.get_opcodes():
            inserted = text[j1:j2].strip()
            if op in ("insert", "replace") and len(inserted.split()) >= 4 and inserted not in written:
                return True
    return False


__all__ = ["CLIENTS", "COLUMNS", "KINDS", "Cell", "classify", "translate"]
