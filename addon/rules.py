"""rules.yaml: Kong-compatible rule models, environment expansion and matching; templating is in templating.py.

Pure code: no mitmproxy import. Everything a request needs is compiled here once, at load, so the hot path
only does dictionary look-ups and pre-compiled regex matches.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel, ValidationError

from . import watchdog
from .errors import ProxyError
from .formats import FORMATS
from .providers import REGISTRY, Provider
from .spec import RulesError, RulesFile, RuleSpec
from .templating import Template, TemplateContext, has_template

if TYPE_CHECKING:
    from .spec import ModelOptions

# --------------------------------------------------------------------------------------------------------------
# Environment expansion: ${NAME} and Kong's {vault://env/name}
# --------------------------------------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\{vault://env/([A-Za-z0-9_-]+)\}")


def _vault_env_name(name: str) -> str:
    # Kong's env vault reads {vault://env/my-secret} from MY_SECRET.
    return name.upper().replace("-", "_")


def expand_env(tree: Any, environ: Mapping[str, str], missing: list[tuple[str, str]], where: str = "") -> Any:
    """Expand env references in every string of a YAML tree; unset names are collected, not fatal."""
    if isinstance(tree, dict):
        return {k: expand_env(v, environ, missing, f"{where}.{k}" if where else str(k)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [expand_env(v, environ, missing, f"{where}[{i}]") for i, v in enumerate(tree)]
    if isinstance(tree, str) and ("${" in tree or "{vault://" in tree):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or _vault_env_name(m.group(2))
            value = environ.get(name)
            if value is None:
                missing.append((where, name))
                return ""
            return value

        return _ENV_REF.sub(sub, tree)
    return tree


# --------------------------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------------------------


def _compile_host(host: str) -> re.Pattern[str]:
    host = host.lower().rstrip(".")
    if host.count(":") == 1:  # "host:port": the port is ignored, as documented
        host = host.split(":", 1)[0]
    if any(c in host for c in "*?["):
        return re.compile(fnmatch.translate(host))
    return re.compile(re.escape(host) + r"\Z")


_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _compile_path(path: str | None) -> re.Pattern[str] | None:
    """`/models/{model}/chat` -> a regex with named groups; a trailing `/*` matches any deeper path."""
    if path is None:
        return None
    prefix = path.endswith("/*")
    body = path[:-2] if prefix else path.rstrip("/") or "/"
    pattern, pos = [], 0
    for m in _CAPTURE.finditer(body):
        pattern.append(re.escape(body[pos : m.start()]))
        pattern.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    pattern.append(re.escape(body[pos:]))
    tail = r"(?:/.*)?\Z" if prefix else r"/?\Z"
    return re.compile("".join(pattern) + tail)


# --------------------------------------------------------------------------------------------------------------
# Compiled rules
# --------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Rule:
    """A validated rule plus everything pre-computed for the hot path."""

    spec: RuleSpec
    host_re: re.Pattern[str]
    path_re: re.Pattern[str] | None
    methods: frozenset[str] | None
    model_template: Template | None
    option_templates: dict[str, Template]  # dotted option path -> template
    missing_env: list[tuple[str, str]] = field(default_factory=list)  # (field, VAR) left unset at load
    # The compiled `match.filter`, set by the addon glue (it needs mitmproxy's flowfilter).
    flow_filter: Callable[[Any], bool] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def timeouts(self) -> watchdog.Timeouts:
        spec = self.spec
        return watchdog.Timeouts(spec.connect_timeout, spec.read_timeout, spec.idle_timeout, spec.total_timeout)

    def match(self, host: str, path: str, method: str) -> dict[str, str] | None:
        """The uri_captures when host/path/method match (the optional filter is checked by the glue)."""
        if self.methods is not None and method not in self.methods:
            return None
        if not self.host_re.match(host.lower()):
            return None
        if self.path_re is None:
            return {}
        m = self.path_re.match(path.split("?", 1)[0])
        # The path arrives percent-encoded; captures are values (re-encoded where they go into a URL).
        return {k: unquote(v) for k, v in m.groupdict().items()} if m else None

    def check_env(self) -> None:
        if self.missing_env:
            names = ", ".join(sorted({var for _, var in self.missing_env}))
            fields = ", ".join(sorted({f for f, _ in self.missing_env}))
            raise ProxyError(
                500,
                f"rule '{self.name}' needs environment variable {names} ({fields}), which is not set "
                "where the proxy runs",
                type="server_error",
                code="proxy_misconfigured",
            )

    def resolve_model_name(self, ctx: TemplateContext) -> str | None:
        if self.model_template is not None:
            return self.model_template.render(ctx)
        return self.spec.model.name

    def resolve_options(self, ctx: TemplateContext) -> ModelOptions:
        """The rule's options with templates rendered; the shared instance when nothing is templated."""
        options = self.spec.model.options
        if not self.option_templates:
            return options
        data = options.model_dump()
        for dotted, template in self.option_templates.items():
            target = data
            *parents, leaf = dotted.split(".")
            for p in parents:
                target = target[p]
            target[leaf] = template.render(ctx)
        return type(options).model_validate(data)


# Option fields that are themselves URLs or URL paths: substitutions are percent-encoded there.
_URL_FIELDS = ("upstream_url", "upstream_path")


def _option_strings(options: ModelOptions) -> Iterable[tuple[str, str]]:
    for key, value in options:
        if isinstance(value, str):
            yield key, value
        elif isinstance(value, BaseModel):
            for sub, sub_value in value:
                if isinstance(sub_value, str):
                    yield f"{key}.{sub}", sub_value


def _check_provider(spec: RuleSpec, missing_env: list[tuple[str, str]]) -> Provider:
    """The rule's provider, and its verdict on the rule (each provider knows what it needs and cannot do)."""
    where = f"rule '{spec.name}'"
    provider = REGISTRY.get(spec.model.provider)
    if provider is None:
        raise RulesError(
            f"{where}: model.provider '{spec.model.provider}' is unknown "
            f"(available: {', '.join(repr(name) for name in sorted(REGISTRY))})"
        )
    if spec.route_type in ("llm/v1/embeddings", "llm/v1/responses") and spec.llm_format != "openai":
        raise RulesError(f"{where}: route_type {spec.route_type} takes the OpenAI format (llm_format: openai)")
    known = {"openai", *FORMATS, *(p.native_format for p in REGISTRY.values() if p.native_format)}
    if spec.llm_format not in known:
        raise RulesError(
            f"{where}: llm_format '{spec.llm_format}' is unknown (available: {', '.join(map(repr, sorted(known)))})"
        )
    if spec.llm_format not in ("openai", provider.native_format):  # another client format, translated
        if spec.llm_format not in FORMATS:
            raise RulesError(f"{where}: llm_format '{spec.llm_format}' does not fit provider '{spec.model.provider}'")
        if spec.route_type not in ("llm/v1/chat", "preserve"):
            raise RulesError(f"{where}: llm_format '{spec.llm_format}' takes route_type llm/v1/chat (or preserve)")
    problem = provider.check_rule(spec, frozenset(f for f, _ in missing_env))
    if problem:
        raise RulesError(f"{where}: {problem}")
    return provider


def _compile_rule(spec: RuleSpec, missing_env: list[tuple[str, str]]) -> Rule:
    where = f"rule '{spec.name}'"
    provider = _check_provider(spec, missing_env)
    options = spec.model.options
    # Options that decide the upstream host (the provider names its own): a request value must never choose
    # where we connect.
    host_fields = provider.host_option_fields
    templates: dict[str, Template] = {}
    for dotted, value in _option_strings(options):
        if not has_template(value):
            continue
        if dotted in host_fields:
            raise RulesError(f"{where}: model.options.{dotted} decides the upstream host and cannot be templated")
        if dotted == "upstream_url":
            parts = urlsplit(value)
            if "$(" in f"{parts.scheme}://{parts.netloc}":
                raise RulesError(f"{where}: model.options.upstream_url may be templated only in its path")
        try:
            templates[dotted] = Template.compile(value, f"model.options.{dotted}", dotted in _URL_FIELDS)
        except ValueError as e:
            raise RulesError(f"{where}: model.options.{dotted}: {e}") from None
    model_template = None
    if has_template(spec.model.name):
        try:
            model_template = Template.compile(spec.model.name or "", "model.name", url_encode=False)
        except ValueError as e:
            raise RulesError(f"{where}: model.name: {e}") from None

    return Rule(
        spec=spec,
        host_re=_compile_host(spec.match.host),
        path_re=_compile_path(spec.match.path),
        methods=frozenset(spec.match.methods) if spec.match.methods else None,
        model_template=model_template,
        option_templates=templates,
        missing_env=missing_env,
    )


def _describe(err: ValidationError, raw_rules: list[Any], missing_per_rule: list[list[tuple[str, str]]]) -> str:
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        prefix = ""
        unset: list[str] = []
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            idx = loc[1]
            raw = raw_rules[idx] if idx < len(raw_rules) else None
            name = raw.get("name") if isinstance(raw, dict) else None
            prefix = f"rule '{name}'" if name else f"rule #{idx + 1}"
            loc = loc[2:]
            unset = [var for f, var in missing_per_rule[idx] if f == ".".join(str(p) for p in loc)]
        field_path = ".".join(str(p) for p in loc if not str(p).startswith("function-after"))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        if unset:
            msg += f" (environment variable {', '.join(unset)} is not set)"
        lines.append(f"{prefix}{': ' if prefix else ''}{field_path or '(top level)'}: {msg}")
    return "; ".join(lines)


def _drop_unset_options(
    err: ValidationError, expanded_rules: list[Any], missing_per_rule: list[list[tuple[str, str]]]
) -> bool:
    """When every error is a model option made invalid by an unset variable, drop those options (True).

    The rule then loads, and its requests get check_env's 500 naming the variable, as for any unset variable.
    """
    drops = []
    for e in err.errors():
        loc = e["loc"]
        if len(loc) < 5 or loc[0] != "rules" or not isinstance(loc[1], int) or tuple(loc[2:4]) != ("model", "options"):
            return False
        dotted = ".".join(str(p) for p in loc[2:])
        if dotted not in {f for f, _ in missing_per_rule[loc[1]]}:
            return False
        drops.append((loc[1], loc[4:]))
    for idx, path in drops:
        target = expanded_rules[idx]["model"]["options"]
        for key in path[:-1]:
            target = target[key]
        target.pop(path[-1], None)
    return bool(drops)


def load_rules_text(text: str, environ: Mapping[str, str] | None = None) -> list[Rule]:
    """Parse, expand, validate and compile a rules file's text. Raises RulesError naming rule and field."""
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(f"not valid YAML: {e}") from None
    if raw is None:
        raw = {"rules": []}
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise RulesError("the file must be a mapping with a 'rules' list")
    raw_rules: list[Any] = raw["rules"]
    missing_per_rule: list[list[tuple[str, str]]] = []
    expanded_rules = []
    for rule in raw_rules:
        missing: list[tuple[str, str]] = []
        expanded_rules.append(expand_env(rule, environ, missing))
        missing_per_rule.append(missing)
    try:
        parsed = RulesFile.model_validate({**raw, "rules": expanded_rules})
    except ValidationError as e:
        if not _drop_unset_options(e, expanded_rules, missing_per_rule):
            raise RulesError(_describe(e, raw_rules, missing_per_rule)) from None
        try:
            parsed = RulesFile.model_validate({**raw, "rules": expanded_rules})
        except ValidationError as e2:
            raise RulesError(_describe(e2, raw_rules, missing_per_rule)) from None
    seen: set[str] = set()
    compiled = []
    for spec, missing in zip(parsed.rules, missing_per_rule, strict=True):
        if spec.name in seen:
            raise RulesError(f"rule '{spec.name}': name is used by more than one rule")
        seen.add(spec.name)
        compiled.append(_compile_rule(spec, missing))
    return compiled


def load_rules_file(path: str | Path, environ: Mapping[str, str] | None = None) -> list[Rule]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"cannot read rules file {path}: {e.strerror or e}") from None
    return load_rules_text(text, environ)


def find_rule(
    rules: Iterable[Rule], host: str, path: str, method: str, flow: Any = None
) -> tuple[Rule, dict[str, str]] | None:
    """The first rule that matches, with its uri_captures; `flow` feeds the rules' mitmproxy filters."""
    for rule in rules:
        captures = rule.match(host, path, method)
        if captures is not None and (rule.flow_filter is None or rule.flow_filter(flow)):
            return rule, captures
    return None
