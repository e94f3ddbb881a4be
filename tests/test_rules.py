"""rules.yaml: schema and error messages, environment expansion, matching and templating (pure core)."""

from __future__ import annotations

import copy
import posixpath
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from addon.errors import ProxyError
from addon.rules import Rule, RulesError, find_rule, load_rules_file, load_rules_text
from addon.templating import TemplateContext

PROJECT = Path(__file__).resolve().parents[1]

BASE_RULE: dict[str, Any] = {
    "name": "r1",
    "match": {"host": "api.example.com", "path": "/v1/chat/completions"},
    "model": {"provider": "openai", "name": "gpt-4o"},
}


def load(text: str, environ: dict[str, str] | None = None) -> list[Rule]:
    return load_rules_text(textwrap.dedent(text), environ={} if environ is None else environ)


def rule_from(spec: dict[str, Any], environ: dict[str, str] | None = None) -> Rule:
    (rule,) = load_rules_text(yaml.safe_dump({"rules": [spec]}), environ={} if environ is None else environ)
    return rule


def patched(patch: dict[str, Any], base: dict[str, Any] = BASE_RULE) -> dict[str, Any]:
    """`base` deep-merged with `patch`; a value of DELETE removes the key."""
    out = copy.deepcopy(base)

    def merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is DELETE:
                target.pop(key, None)
            elif isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value

    merge(out, patch)
    return out


DELETE = object()


def ctx(headers=None, captures=None, query=None) -> TemplateContext:
    return TemplateContext(headers or {}, captures or {}, query or {})


# --------------------------------------------------------------------------------------------------------------
# A complete valid file
# --------------------------------------------------------------------------------------------------------------

COMPLETE = """
rules:
  - name: claude-via-openai-sdk
    match:
      host: api.openai.com
      path: /v1/chat/completions
      methods: [post]
      filter: "~h x-team"
    route_type: llm/v1/chat
    llm_format: openai
    response_streaming: deny
    max_request_body_size: 1048576
    model_name_header: false
    model:
      provider: anthropic
      name: claude-sonnet-4-5
      options:
        max_tokens: 1024
        temperature: 0.7
        top_p: 0.9
        top_k: 40
        anthropic_version: "2023-06-01"
        input_cost: 3.0
        output_cost: 15
        upstream_url: http://127.0.0.1:9000/v1/messages
    auth:
      header_name: x-api-key
      header_value: ${ANTHROPIC_API_KEY}
      allow_override: false
    logging:
      log_statistics: false
      log_payloads: true
  - name: azure-completions
    match:
      host: "*.openai.azure.com"
    route_type: llm/v1/completions
    model:
      provider: azure
      options:
        azure_instance: my-resource
        azure_deployment_id: gpt-35-instruct
        azure_api_version: "2024-10-21"
    auth:
      param_name: api-key
      param_value: "{vault://env/azure-key}"
      param_location: query
"""


def test_complete_file_loads_every_field():
    rules = load(COMPLETE, {"ANTHROPIC_API_KEY": "sk-ant-1", "AZURE_KEY": "az-2"})
    assert [r.name for r in rules] == ["claude-via-openai-sdk", "azure-completions"]
    claude, azure = rules
    spec = claude.spec
    assert spec.match.host == "api.openai.com"
    assert spec.match.filter == "~h x-team"
    assert claude.methods == frozenset({"POST"})  # upper-cased at load
    assert spec.route_type == "llm/v1/chat"
    assert spec.response_streaming == "deny"
    assert spec.max_request_body_size == 1048576
    assert spec.model_name_header is False
    assert spec.model.provider == "anthropic"
    assert spec.model.name == "claude-sonnet-4-5"
    o = spec.model.options
    assert (o.max_tokens, o.temperature, o.top_p, o.top_k) == (1024, 0.7, 0.9, 40)
    assert (o.anthropic_version, o.input_cost, o.output_cost) == ("2023-06-01", 3.0, 15.0)
    assert o.upstream_url == "http://127.0.0.1:9000/v1/messages"
    assert spec.auth is not None and spec.auth.header_name == "x-api-key"
    assert spec.auth.header_value == "sk-ant-1"
    assert spec.auth.allow_override is False
    assert (spec.logging.log_statistics, spec.logging.log_payloads) == (False, True)
    assert claude.missing_env == []
    claude.check_env()  # nothing missing: no error

    assert azure.spec.route_type == "llm/v1/completions"
    assert azure.methods is None
    assert azure.spec.auth is not None and azure.spec.auth.param_value == "az-2"
    assert azure.spec.auth.param_location == "query"
    # Defaults for what the rule leaves out.
    assert azure.spec.response_streaming == "allow"
    assert azure.spec.max_request_body_size == 8 * 1024 * 1024
    assert azure.spec.model_name_header is True
    assert azure.spec.llm_format == "openai"
    assert (azure.spec.logging.log_statistics, azure.spec.logging.log_payloads) == (True, False)


def test_shipped_rules_yaml_loads_without_any_environment():
    rules = load_rules_file(PROJECT / "rules.yaml", environ={})
    assert rules, "the default rules.yaml must hold at least one active rule"
    audit = find_rule(rules, "api.openai.com", "/v1/chat/completions", "POST")
    assert audit is not None
    rule, _ = audit
    assert rule.spec.model.provider == "openai"
    assert rule.spec.auth is not None and rule.spec.auth.allow_override is True
    assert rule.spec.logging.log_payloads is True


def test_empty_file_is_no_rules():
    assert load("") == []
    assert load("rules: []") == []


def test_unreadable_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RulesError, match=r"nope\.yaml"):
        load_rules_file(missing, environ={})


def test_load_rules_file_reads_yaml(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"rules": [BASE_RULE]}))
    (rule,) = load_rules_file(path, environ={})
    assert rule.name == "r1"


# --------------------------------------------------------------------------------------------------------------
# Errors name the rule and the field
# --------------------------------------------------------------------------------------------------------------

RULE_ERRORS = [
    # (id, patch, fragments that must all appear in the message)
    ("unknown-rule-key", {"colour": "red"}, ["colour", "unknown key"]),
    ("unknown-match-key", {"match": {"hots": "x"}}, ["match.hots", "unknown key"]),
    ("unknown-option", {"model": {"options": {"max_token": 5}}}, ["model.options.max_token", "unknown key"]),
    ("unknown-auth-key", {"auth": {"header": "x"}}, ["auth.header", "unknown key"]),
    ("unknown-logging-key", {"logging": {"payloads": True}}, ["logging.payloads", "unknown key"]),
    ("max-tokens-type", {"model": {"options": {"max_tokens": "lots"}}}, ["model.options.max_tokens", "integer"]),
    ("max-tokens-zero", {"model": {"options": {"max_tokens": 0}}}, ["model.options.max_tokens", "greater than 0"]),
    ("temperature-range", {"model": {"options": {"temperature": 9}}}, ["model.options.temperature"]),
    ("top-p-range", {"model": {"options": {"top_p": 1.5}}}, ["model.options.top_p"]),
    ("methods-not-list", {"match": {"methods": "POST"}}, ["match.methods", "list"]),
    ("bool-type", {"logging": {"log_payloads": "maybe"}}, ["logging.log_payloads", "boolean"]),
    ("body-size", {"max_request_body_size": -1}, ["max_request_body_size"]),
    ("bad-provider", {"model": {"provider": "openia"}}, ["model.provider", "'openai'"]),
    ("no-provider", {"model": {"provider": DELETE}}, ["model.provider", "required"]),
    ("no-model", {"model": DELETE}, ["model", "required"]),
    ("bad-route-type", {"route_type": "llm/v1/audio"}, ["route_type", "llm/v1/chat"]),
    (
        "preserve-bedrock",
        {"route_type": "preserve", "model": {"provider": "bedrock"}},
        ["route_type preserve", "bedrock"],
    ),
    ("llm-format-mismatch", {"llm_format": "cohere"}, ["llm_format", "cohere", "openai"]),
    ("bad-llm-format", {"llm_format": "xml"}, ["llm_format"]),
    ("bad-streaming", {"response_streaming": "sometimes"}, ["response_streaming", "allow"]),
    ("url-ftp", {"model": {"options": {"upstream_url": "ftp://x/y"}}}, ["model.options.upstream_url", "http(s)"]),
    ("url-relative", {"model": {"options": {"upstream_url": "/v1/chat"}}}, ["model.options.upstream_url", "absolute"]),
    ("url-no-host", {"model": {"options": {"upstream_url": "http:///v1"}}}, ["model.options.upstream_url"]),
    ("upstream-path", {"model": {"options": {"upstream_path": "v1/complete"}}}, ["model.options.upstream_path", "/"]),
    ("header-name-alone", {"auth": {"header_name": "x-api-key"}}, ["auth", "header_value"]),
    ("header-value-alone", {"auth": {"header_value": "k"}}, ["auth", "header_name"]),
    ("param-no-location", {"auth": {"param_name": "key", "param_value": "v"}}, ["auth", "param_location"]),
    ("param-name-alone", {"auth": {"param_name": "key", "param_location": "query"}}, ["auth", "param_value"]),
    (
        "param-location",
        {"auth": {"param_name": "k", "param_value": "v", "param_location": "cookie"}},
        ["auth.param_location"],
    ),
    ("path-relative", {"match": {"path": "v1/chat"}}, ["match.path", "'/'"]),
    ("no-host", {"match": {"host": DELETE}}, ["match.host", "required"]),
    ("empty-host", {"match": {"host": ""}}, ["match.host"]),
    ("no-match", {"match": DELETE}, ["match", "required"]),
    ("llama2-format", {"model": {"options": {"llama2_format": "gguf"}}}, ["model.options.llama2_format"]),
    ("nested-option", {"model": {"options": {"gemini": {"region": "x"}}}}, ["model.options.gemini.region"]),
    (
        "azure-no-instance",
        {"model": {"provider": "azure", "options": {"azure_deployment_id": "d"}}},
        ["azure_instance", "required"],
    ),
    (
        "template-in-host",
        {"model": {"options": {"upstream_url": "http://$(headers.host)/v1/chat"}}},
        ["model.options.upstream_url", "only in its path"],
    ),
    (
        "template-in-port",
        {"model": {"options": {"upstream_url": "http://127.0.0.1:$(headers.port)/v1"}}},
        ["model.options.upstream_url", "only in its path"],
    ),
    (
        "template-glued-to-host",
        {"model": {"options": {"upstream_url": "http://example.com$(headers.x)/v1"}}},
        ["model.options.upstream_url", "only in its path"],
    ),
    (
        "template-userinfo",
        {"model": {"options": {"upstream_url": "http://$(headers.u)@example.com/v1"}}},
        ["model.options.upstream_url", "only in its path"],
    ),
    (
        "template-azure-instance",
        {"model": {"provider": "azure", "options": {"azure_instance": "$(headers.instance)"}}},
        ["model.options.azure_instance", "cannot be templated"],
    ),
    (
        "unknown-template-source",
        {"model": {"options": {"anthropic_version": "$(body.version)"}}},
        ["model.options.anthropic_version", "$(body.version)"],
    ),
    ("unknown-template-in-name", {"model": {"name": "$(cookies.model)"}}, ["model.name", "$(cookies.model)"]),
]


@pytest.mark.parametrize(("patch", "fragments"), [c[1:] for c in RULE_ERRORS], ids=[c[0] for c in RULE_ERRORS])
def test_rule_errors_name_rule_and_field(patch, fragments):
    with pytest.raises(RulesError) as e:
        rule_from(patched(patch))
    message = str(e.value)
    assert "rule 'r1'" in message
    for fragment in fragments:
        assert fragment in message


def test_error_names_the_failing_rule_not_its_neighbour():
    good = patched({"name": "first"})
    bad = patched({"name": "second", "model": {"options": {"max_tokens": "x"}}})
    with pytest.raises(RulesError) as e:
        load_rules_text(yaml.safe_dump({"rules": [good, bad]}), environ={})
    assert "rule 'second'" in str(e.value)
    assert "first" not in str(e.value)


def test_rule_without_name_is_named_by_position():
    with pytest.raises(RulesError) as e:
        load_rules_text(yaml.safe_dump({"rules": [BASE_RULE, patched({"name": DELETE})]}), environ={})
    assert "rule #2" in str(e.value)
    assert "name" in str(e.value)


@pytest.mark.parametrize("name", ["has space", "slash/name", "", "ünï"])
def test_rule_name_charset(name):
    with pytest.raises(RulesError, match="name"):
        rule_from(patched({"name": name}))


def test_duplicate_names_refused():
    with pytest.raises(RulesError) as e:
        load_rules_text(yaml.safe_dump({"rules": [BASE_RULE, BASE_RULE]}), environ={})
    assert "rule 'r1'" in str(e.value)
    assert "more than one rule" in str(e.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: [", "not valid YAML"),
        ("- a\n- b\n", "'rules' list"),
        ("rules: 3\n", "'rules' list"),
        ("rulez: []\n", "'rules' list"),
        ("rules: []\nextra: 1\n", "extra: unknown key"),
    ],
)
def test_file_level_errors(text, fragment):
    with pytest.raises(RulesError) as e:
        load(text)
    assert fragment in str(e.value)


# --------------------------------------------------------------------------------------------------------------
# Environment expansion
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${ANTHROPIC_API_KEY}", {"ANTHROPIC_API_KEY": "sk-1"}, "sk-1"),
        ("Bearer ${TOKEN}", {"TOKEN": "abc"}, "Bearer abc"),
        ("${A}:${B}", {"A": "x", "B": "y"}, "x:y"),
        ("{vault://env/my-key}", {"MY_KEY": "vaulted"}, "vaulted"),
        ("{vault://env/MY_KEY}", {"MY_KEY": "vaulted"}, "vaulted"),
        ("pre-{vault://env/a-b-c}-post", {"A_B_C": "v"}, "pre-v-post"),
        ("no reference", {}, "no reference"),
        ("$(headers.x) is a template, not env", {}, "$(headers.x) is a template, not env"),
    ],
)
def test_env_expansion(value, environ, expected):
    rule = rule_from(patched({"auth": {"header_name": "x-api-key", "header_value": value}}), environ)
    assert rule.spec.auth is not None
    assert rule.spec.auth.header_value == expected
    assert rule.missing_env == []


def test_env_expansion_everywhere_in_the_rule():
    spec = patched(
        {
            "match": {"host": "${HOST}"},
            "model": {"name": "${MODEL}", "options": {"upstream_url": "http://${UP}/v1/chat/completions"}},
        }
    )
    rule = rule_from(spec, {"HOST": "llm.internal", "MODEL": "m-1", "UP": "127.0.0.1:9000"})
    assert rule.spec.match.host == "llm.internal"
    assert rule.spec.model.name == "m-1"
    assert rule.spec.model.options.upstream_url == "http://127.0.0.1:9000/v1/chat/completions"
    assert rule.match("llm.internal", "/v1/chat/completions", "POST") == {}


def test_default_environ_is_the_process_environment(monkeypatch):
    monkeypatch.setenv("AI_PROXY_TEST_KEY", "from-os")
    text = yaml.safe_dump({"rules": [patched({"auth": {"header_name": "h", "header_value": "${AI_PROXY_TEST_KEY}"}})]})
    (rule,) = load_rules_text(text)
    assert rule.spec.auth is not None and rule.spec.auth.header_value == "from-os"


@pytest.mark.parametrize(
    ("value", "variable"),
    [("${ANTHROPIC_API_KEY}", "ANTHROPIC_API_KEY"), ("{vault://env/my-key}", "MY_KEY")],
)
def test_unset_variable_loads_but_requests_get_500_naming_it(value, variable):
    spec = patched({"auth": {"header_name": "x-api-key", "header_value": value}})
    other = patched({"name": "r2"})
    first, second = load_rules_text(yaml.safe_dump({"rules": [spec, other]}), environ={})
    assert first.missing_env == [("auth.header_value", variable)]
    with pytest.raises(ProxyError) as e:
        first.check_env()
    assert e.value.status == 500
    assert variable in e.value.message
    assert "auth.header_value" in e.value.message
    assert "r1" in e.value.message
    assert e.value.envelope()["error"]["type"] == "server_error"
    second.check_env()  # a rule without unset variables is unaffected


@pytest.mark.parametrize(
    ("options", "variables"),
    [
        ({"upstream_url": "${UPSTREAM}"}, ["UPSTREAM"]),
        ({"upstream_url": "http://${UP_HOST}/v1/chat/completions"}, ["UP_HOST"]),
        ({"max_tokens": "${MAX_TOKENS}", "temperature": "${TEMP}"}, ["MAX_TOKENS", "TEMP"]),
    ],
)
def test_unset_variable_in_an_option_that_would_be_invalid_still_loads(options, variables):
    rule = rule_from(patched({"model": {"options": options}}))
    for key in options:
        assert getattr(rule.spec.model.options, key) is None  # left out, never half-expanded
    with pytest.raises(ProxyError) as e:
        rule.check_env()
    assert e.value.status == 500
    for variable in variables:
        assert variable in e.value.message


def test_unset_azure_instance_still_loads():
    rule = rule_from(patched({"model": {"provider": "azure", "options": {"azure_instance": "${AZURE_INSTANCE}"}}}))
    with pytest.raises(ProxyError, match="AZURE_INSTANCE") as e:
        rule.check_env()
    assert e.value.status == 500


def test_unset_variable_that_breaks_matching_is_a_load_error_naming_it():
    # A rule must never match more than its author wrote: an empty host is refused, with the variable named.
    with pytest.raises(RulesError) as e:
        rule_from(patched({"match": {"host": "${LLM_HOST}"}}))
    assert "match.host" in str(e.value)
    assert "LLM_HOST" in str(e.value)


# --------------------------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------------------------

MATCHES = [
    # (host pattern, path pattern, methods, request host, request path, method, expected captures or None)
    ("api.openai.com", None, None, "api.openai.com", "/anything", "GET", {}),
    ("api.openai.com", None, None, "API.OpenAI.com", "/x", "POST", {}),
    ("API.OPENAI.COM", None, None, "api.openai.com", "/x", "POST", {}),
    ("api.openai.com", None, None, "api.openai.com.evil.com", "/x", "POST", None),
    ("api.openai.com", None, None, "xapi.openai.com", "/x", "POST", None),
    ("api.openai.com", None, None, "api-openai.com", "/x", "POST", None),  # the dot is literal
    ("*.openai.azure.com", None, None, "res.openai.azure.com", "/x", "POST", {}),
    ("*.openai.azure.com", None, None, "RES.OpenAI.Azure.COM", "/x", "POST", {}),
    ("*.openai.azure.com", None, None, "a.b.openai.azure.com", "/x", "POST", {}),
    ("*.openai.azure.com", None, None, "openai.azure.com", "/x", "POST", None),
    ("*.openai.azure.com", None, None, "res.openai.azure.com.evil.com", "/x", "POST", None),
    ("*.openai.azure.com", None, None, "resXopenai.azure.com", "/x", "POST", None),
    ("h", "/v1/chat/completions", None, "h", "/v1/chat/completions", "POST", {}),
    ("h", "/v1/chat/completions", None, "h", "/v1/chat/completions/", "POST", {}),  # optional trailing slash
    ("h", "/v1/chat/completions/", None, "h", "/v1/chat/completions", "POST", {}),
    ("h", "/v1/chat/completions", None, "h", "/v1/chat/completions?api-version=1", "POST", {}),  # query ignored
    ("h", "/v1/chat/completions", None, "h", "/v1/chat/completionsX", "POST", None),
    ("h", "/v1/chat/completions", None, "h", "/v1/chat/completions/extra", "POST", None),
    ("h", "/v1/chat/completions", None, "h", "/x/v1/chat/completions", "POST", None),
    ("h", "/v1/chat/completions", None, "h", "/v1/chat", "POST", None),
    ("h", "/v1.0/chat", None, "h", "/v1x0/chat", "POST", None),  # regex characters are literal
    ("h", "/v1/*", None, "h", "/v1", "POST", {}),
    ("h", "/v1/*", None, "h", "/v1/", "POST", {}),
    ("h", "/v1/*", None, "h", "/v1/chat/completions", "POST", {}),
    ("h", "/v1/*", None, "h", "/v1x/chat", "POST", None),
    ("h", "/v1/*", None, "h", "/v2/v1/chat", "POST", None),
    ("h", "/", None, "h", "/", "GET", {}),
    ("h", "/", None, "h", "/x", "GET", None),
    (
        "h",
        "/openai/deployments/{deployment}/chat/completions",
        None,
        "h",
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "POST",
        {"deployment": "gpt-4o"},
    ),
    ("h", "/openai/deployments/{deployment}/chat", None, "h", "/openai/deployments/a/b/chat", "POST", None),
    ("h", "/openai/deployments/{deployment}/chat", None, "h", "/openai/deployments//chat", "POST", None),
    ("h", "/models/{org}/{name}:chat", None, "h", "/models/acme/m-1:chat", "POST", {"org": "acme", "name": "m-1"}),
    ("h", "/m/{model}/*", None, "h", "/m/llama3/v1/chat/completions", "POST", {"model": "llama3"}),
    # Captures are values: the percent-encoding of the path is undone once.
    ("h", "/m/{model}/chat", None, "h", "/m/llama%203.1%3A8b/chat", "POST", {"model": "llama 3.1:8b"}),
    ("h", "/m/{model}/chat", None, "h", "/m/a%2Fb/chat", "POST", {"model": "a/b"}),
    ("h", None, ["POST"], "h", "/x", "POST", {}),
    ("h", None, ["POST"], "h", "/x", "GET", None),
    ("h", None, ["post", "put"], "h", "/x", "PUT", {}),
    ("h", None, ["POST"], "other", "/x", "POST", None),
]


@pytest.mark.parametrize(("host", "path", "methods", "req_host", "req_path", "method", "expected"), MATCHES)
def test_matching(host, path, methods, req_host, req_path, method, expected):
    match: dict[str, Any] = {"host": host}
    if path is not None:
        match["path"] = path
    if methods is not None:
        match["methods"] = methods
    rule = rule_from(patched({"match": match}, {**BASE_RULE, "match": {}}))
    assert rule.match(req_host, req_path, method) == expected


def test_first_matching_rule_wins_and_others_pass_untouched():
    rules = load(
        """
        rules:
          - name: specific
            match: {host: api.openai.com, path: /v1/chat/completions}
            model: {provider: openai}
          - name: catch-all
            match: {host: api.openai.com, path: /v1/*}
            model: {provider: openai}
          - name: never
            match: {host: api.openai.com, path: /v1/chat/completions}
            model: {provider: openai}
        """
    )
    found = find_rule(rules, "api.openai.com", "/v1/chat/completions", "POST")
    assert found is not None and found[0].name == "specific"
    found = find_rule(rules, "api.openai.com", "/v1/completions", "POST")
    assert found is not None and found[0].name == "catch-all"
    assert find_rule(rules, "api.openai.com", "/v2/chat", "POST") is None
    assert find_rule(rules, "example.com", "/v1/chat/completions", "POST") is None


def test_flow_filter_is_anded():
    rules = load(
        """
        rules:
          - name: filtered
            match: {host: h}
            model: {provider: openai}
          - name: fallback
            match: {host: h}
            model: {provider: openai}
        """
    )
    rules[0].flow_filter = lambda flow: flow == "team-a"
    assert find_rule(rules, "h", "/", "POST", flow="team-a")[0].name == "filtered"  # type: ignore[index]
    assert find_rule(rules, "h", "/", "POST", flow="team-b")[0].name == "fallback"  # type: ignore[index]


# --------------------------------------------------------------------------------------------------------------
# Templating
# --------------------------------------------------------------------------------------------------------------


def templated(name: str | None = None, **options: str) -> Rule:
    model: dict[str, Any] = {"provider": "openai", "name": name, "options": options}
    return rule_from(patched({"model": model}))


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("$(headers.x-model)", ctx(headers={"x-model": "gpt-4o"}), "gpt-4o"),
        ("$(uri_captures.model)", ctx(captures={"model": "llama3"}), "llama3"),
        ("$(query_params.model)", ctx(query={"model": "m-q"}), "m-q"),
        ("claude-$(headers.size)-4-5", ctx(headers={"size": "sonnet"}), "claude-sonnet-4-5"),
        ("$(uri_captures.org)/$(uri_captures.m)", ctx(captures={"org": "meta", "m": "llama"}), "meta/llama"),
        # The model name goes into a JSON body, never a URL: no encoding.
        ("$(headers.x-model)", ctx(headers={"x-model": "a/b@c:d"}), "a/b@c:d"),
    ],
)
def test_model_name_template(template, context, expected):
    assert templated(template).resolve_model_name(context) == expected


def test_plain_model_name_needs_no_context():
    rule = templated("gpt-4o")
    assert rule.model_template is None
    assert rule.resolve_model_name(ctx()) == "gpt-4o"
    assert templated(None).resolve_model_name(ctx()) is None


def test_option_templates():
    rule = templated(
        anthropic_version="$(headers.anthropic-version)",
        azure_deployment_id="dep-$(uri_captures.deployment)",
        upstream_path="/v1/$(query_params.route)/complete",
    )
    options = rule.resolve_options(
        ctx(headers={"anthropic-version": "2023-06-01"}, captures={"deployment": "x"}, query={"route": "r"})
    )
    assert options.anthropic_version == "2023-06-01"
    assert options.azure_deployment_id == "dep-x"
    assert options.upstream_path == "/v1/r/complete"
    # The compiled rule is unchanged: the next request renders afresh.
    assert rule.spec.model.options.anthropic_version == "$(headers.anthropic-version)"
    again = rule.resolve_options(
        ctx(headers={"anthropic-version": "2099"}, captures={"deployment": "y"}, query={"route": "s"})
    )
    assert (again.anthropic_version, again.azure_deployment_id) == ("2099", "dep-y")


def test_untemplated_options_are_shared_not_rebuilt():
    rule = templated("m", anthropic_version="2023-06-01")
    assert rule.resolve_options(ctx()) is rule.spec.model.options


def test_nested_option_template():
    rule = rule_from(
        patched(
            {
                "model": {
                    "provider": "anthropic",
                    "options": {"gemini": {"project_id": "$(headers.project)"}},
                }
            }
        )
    )
    options = rule.resolve_options(ctx(headers={"project": "p-1"}))
    assert options.gemini is not None and options.gemini.project_id == "p-1"


@pytest.mark.parametrize(
    ("where", "context", "missing"),
    [
        ("model.name", ctx(), "$(headers.x-model)"),
        ("model.name", ctx(headers={"x-model": ""}), "$(headers.x-model)"),
        ("model.name", ctx(headers={"other": "v"}), "$(headers.x-model)"),
        ("option", ctx(), "$(query_params.v)"),
        ("url", ctx(), "$(uri_captures.dep)"),
    ],
)
def test_missing_template_value_is_400(where, context, missing):
    rule = templated(
        "$(headers.x-model)" if where == "model.name" else "m",
        anthropic_version="$(query_params.v)" if where == "option" else "v",
        upstream_url="http://127.0.0.1:9000/d/$(uri_captures.dep)/chat" if where == "url" else "http://127.0.0.1:9",
    )
    with pytest.raises(ProxyError) as e:
        rule.resolve_model_name(context)
        rule.resolve_options(context)
    assert e.value.status == 400
    assert missing in e.value.message
    assert e.value.code == "missing_template_value"


UPSTREAM_TEMPLATE = "http://127.0.0.1:9000/v1/$(headers.seg)/chat?fixed=1"
HOSTILE_VALUES = [
    "plain",
    "a/b",
    "../../admin",
    "../",
    "a/../../b",
    "user@evil.com",
    "evil.com:443",
    "@evil.com:8080",
    "x?admin=1",
    "x#fragment",
    "http://evil.com/",
    "//evil.com",
    "a b",
    "%2e%2e",
    "%2F",
    "\\..\\evil",
    "a&fixed=2",
    "ünïcødé",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_url_substitution_stays_in_one_path_segment(value):
    rule = templated("m", upstream_url=UPSTREAM_TEMPLATE)
    url = rule.resolve_options(ctx(headers={"seg": value})).upstream_url
    assert url is not None
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", 9000)
    assert parts.username is None and parts.password is None
    assert parts.query == "fixed=1" and parts.fragment == ""
    segments = parts.path.split("/")
    assert len(segments) == 4 and segments[:2] == ["", "v1"] and segments[3] == "chat"
    assert unquote(segments[2]) == value  # the value arrives whole, only encoded
    assert posixpath.normpath(parts.path) == parts.path  # no dot segment for a server to resolve
    for char in "/@:?#&":
        assert char not in segments[2]


@pytest.mark.parametrize("value", ["..", "."])
def test_dot_segments_alone_are_refused(value):
    rule = templated("m", upstream_url=UPSTREAM_TEMPLATE)
    with pytest.raises(ProxyError) as e:
        rule.resolve_options(ctx(headers={"seg": value}))
    assert e.value.status == 400
    assert e.value.code == "invalid_template_value"


def test_upstream_path_substitution_is_encoded_too():
    rule = templated("m", upstream_path="/v1/$(uri_captures.model)/complete")
    assert rule.resolve_options(ctx(captures={"model": "a/../b"})).upstream_path == "/v1/a%2F..%2Fb/complete"
    with pytest.raises(ProxyError):
        rule.resolve_options(ctx(captures={"model": ".."}))


def test_url_query_substitution_cannot_add_parameters():
    rule = templated("m", upstream_url="http://127.0.0.1:9000/v1/chat?deployment=$(headers.d)")
    url = rule.resolve_options(ctx(headers={"d": "x&api-key=stolen#y"})).upstream_url
    assert url is not None
    parts = urlsplit(url)
    assert parts.fragment == ""
    assert [q.split("=", 1)[0] for q in parts.query.split("&")] == ["deployment"]


def test_non_url_options_are_not_encoded():
    rule = templated("m", anthropic_version="$(headers.v)", azure_deployment_id="$(headers.d)")
    options = rule.resolve_options(ctx(headers={"v": "2023/06@01", "d": "my deployment"}))
    assert options.anthropic_version == "2023/06@01"
    # azure_deployment_id is encoded by the Azure provider when it builds the URL (see test_providers.py).
    assert options.azure_deployment_id == "my deployment"


def test_provider_without_translation_module_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema knows every provider name; a provider whose module is missing is refused at load."""
    from addon.providers import REGISTRY

    monkeypatch.delitem(REGISTRY, "gemini", raising=False)
    text = "rules:\n  - name: g\n    match: {host: x}\n    model: {provider: gemini, name: m}\n"
    with pytest.raises(RulesError, match=r"rule 'g': model.provider 'gemini' is unknown"):
        load_rules_text(text, environ={})
