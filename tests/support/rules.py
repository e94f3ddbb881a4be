"""One shared builder of rules for the pure-core tests, and the provider set-ups the fuzz tests run through.

Rules are built with load_rules_text, as the provider tests build theirs, so each one is also a configuration a
user could write. Keys, hosts and URLs are obviously fake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from addon.rules import Rule, load_rules_text

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
EMBEDDINGS = "llm/v1/embeddings"

FAKE_AWS = {"aws_access_key_id": "AKIDFAKEFUZZ00000001", "aws_secret_access_key": "fake/Fuzz+Secret0000000000000"}
SELF_HOSTED = "http://127.0.0.1:9"


def rule_spec(
    name: str, host: str, provider: str, model: str | None, options: dict[str, Any], route: str = "chat", **extra: Any
) -> dict[str, Any]:
    """One rule of an e2e rules file: `name` for `host`'s OpenAI path of `route` ("chat" or "completions") to
    `provider`'s `model`; `extra`: other rule keys (auth, logging, ...)."""
    path = "/v1/chat/completions" if route == "chat" else "/v1/completions"
    return {
        "name": name,
        "match": {"host": host, "path": path},
        "route_type": f"llm/v1/{route}",
        "model": {"provider": provider, "name": model, "options": options},
        **extra,
    }


def rules_text(*specs: dict[str, Any]) -> str:
    """The rules file of `specs` for a mitmdump under test (JSON is YAML)."""
    return json.dumps({"rules": list(specs)})


def one_rule(
    provider: str,
    name: str | None = None,
    route: str = CHAT,
    options: dict[str, Any] | None = None,
    *,
    rule_name: str = "r",
    host: str = "llm.internal",
    **spec_extra: Any,
) -> Rule:
    """A one-rule file (rule `rule_name` for `host`), loaded as a user's rules.yaml would be: the one builder
    behind every test's own rule helper. `spec_extra`: other rule keys (auth, llm_format, ...)."""
    spec: dict[str, Any] = {
        "name": rule_name,
        "match": {"host": host},
        "route_type": route,
        "model": {"provider": provider, "name": name, "options": {} if options is None else options},
        **spec_extra,
    }
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={})
    return rule


def make_rule(
    provider: str,
    name: str | None = None,
    route: str = CHAT,
    options: dict[str, Any] | None = None,
    **spec_extra: Any,
) -> Rule:
    """A one-rule file for `provider`, loaded as a user's rules.yaml would be. Azure gets a resource name and
    Bedrock a region and fake keys unless the caller sets them."""
    options = dict(options or {})
    if provider == "azure" and "azure_instance" not in options and "upstream_url" not in options:
        options["azure_instance"] = "my-resource"
    if provider == "bedrock":
        options.setdefault("bedrock", {"aws_region": "us-east-1"})
        spec_extra.setdefault("auth", FAKE_AWS)
    return one_rule(provider, name, route, options, **spec_extra)


@dataclass(frozen=True)
class Target:
    """One way a provider can be set up for a route: what the fuzz tests send through."""

    label: str
    provider: str
    route: str
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    client_model: str = "model-fake"  # what a client names when the rule names no model

    def rule(self, **spec_extra: Any) -> Rule:
        return make_rule(self.provider, self.name, self.route, self.options, **spec_extra)


def _ollama(key: str) -> dict[str, Any]:
    return {key: "ollama", "upstream_url": "http://127.0.0.1:11434"}


_RAW = {"llama2_format": "raw", "upstream_url": f"{SELF_HOSTED}/generate"}
_VERTEX = {"gemini": {"project_id": "fake-project", "location_id": "us-central1"}}

# Every provider, every wire variant a rule can choose, for each route type it serves. A None name lets the
# client's model through (into URLs and bodies), which the fuzz wants to reach too.
TARGETS: list[Target] = [
    # chat
    Target("openai", "openai", CHAT),
    Target("azure", "azure", CHAT),
    Target("azure-v1", "azure", CHAT, "gpt-fake", {"azure_api_version": "preview"}),
    Target("anthropic", "anthropic", CHAT, "claude-fake"),
    Target("cohere-v2", "cohere", CHAT, "command-fake"),
    Target("cohere-v1", "cohere", CHAT, "command-fake", {"cohere_api": "v1"}),
    Target("mistral", "mistral", CHAT),
    Target("mistral-ollama", "mistral", CHAT, "mistral-fake", _ollama("mistral_format")),
    Target("llama2-raw", "llama2", CHAT, None, _RAW),
    Target("llama3-raw", "llama2", CHAT, None, {"llama_template": "llama3", "upstream_url": f"{SELF_HOSTED}/generate"}),
    Target("llama2-ollama", "llama2", CHAT, "llama-fake", _ollama("llama2_format")),
    Target("llama2-openai", "llama2", CHAT, None, {"llama2_format": "openai", "upstream_url": SELF_HOSTED}),
    Target("gemini", "gemini", CHAT),
    Target("gemini-vertex", "gemini", CHAT, "gemini-fake", _VERTEX),
    Target("bedrock", "bedrock", CHAT, client_model="anthropic.claude-fake-v1:0"),
    Target("huggingface", "huggingface", CHAT, client_model="org/model-fake"),
    # completions
    Target("openai", "openai", COMPLETIONS),
    Target("azure", "azure", COMPLETIONS, "gpt-fake-instruct"),
    Target("anthropic", "anthropic", COMPLETIONS, "claude-fake"),
    Target("anthropic-legacy", "anthropic", COMPLETIONS, "claude-2.1", {"upstream_path": "/v1/complete"}),
    Target("cohere-v2", "cohere", COMPLETIONS, "command-fake"),
    Target("cohere-v1", "cohere", COMPLETIONS, "command-fake", {"cohere_api": "v1"}),
    Target("mistral", "mistral", COMPLETIONS, "mistral-fake"),
    Target("mistral-fim", "mistral", COMPLETIONS, "codestral-fake", {"upstream_path": "/v1/fim/completions"}),
    Target("mistral-ollama", "mistral", COMPLETIONS, "mistral-fake", _ollama("mistral_format")),
    Target("llama2-raw", "llama2", COMPLETIONS, None, _RAW),
    Target("llama2-ollama", "llama2", COMPLETIONS, "llama-fake", _ollama("llama2_format")),
    Target("llama2-openai", "llama2", COMPLETIONS, None, {"llama2_format": "openai", "upstream_url": SELF_HOSTED}),
    Target("gemini", "gemini", COMPLETIONS, "gemini-fake"),
    Target("bedrock", "bedrock", COMPLETIONS, "anthropic.claude-fake-v1:0"),
    Target("huggingface", "huggingface", COMPLETIONS, "org/model-fake"),
    Target("huggingface-tgi", "huggingface", COMPLETIONS, None, {"upstream_url": f"{SELF_HOSTED}/generate"}),
    Target("huggingface-openai", "huggingface", COMPLETIONS, None, {"upstream_url": f"{SELF_HOSTED}/v1/completions"}),
    # embeddings
    Target("openai", "openai", EMBEDDINGS),
    Target("azure", "azure", EMBEDDINGS, "embed-fake"),
    Target("cohere-v2", "cohere", EMBEDDINGS, "embed-fake"),
    Target("cohere-v1", "cohere", EMBEDDINGS, "embed-fake", {"cohere_api": "v1"}),
    Target("mistral", "mistral", EMBEDDINGS, "mistral-embed"),
    Target("mistral-ollama", "mistral", EMBEDDINGS, "embed-fake", _ollama("mistral_format")),
    Target("llama2-ollama", "llama2", EMBEDDINGS, "embed-fake", _ollama("llama2_format")),
    Target("llama2-openai", "llama2", EMBEDDINGS, None, {"llama2_format": "openai", "upstream_url": SELF_HOSTED}),
    Target("gemini", "gemini", EMBEDDINGS, "embed-fake"),
    Target("bedrock-titan", "bedrock", EMBEDDINGS, "amazon.titan-embed-text-v2:0"),
    Target("bedrock-cohere", "bedrock", EMBEDDINGS, "cohere.embed-english-v3"),
    Target("huggingface", "huggingface", EMBEDDINGS, "org/embed-fake"),
    Target("huggingface-tei", "huggingface", EMBEDDINGS, None, {"upstream_url": f"{SELF_HOSTED}/embed"}),
]
