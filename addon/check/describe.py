"""What a loaded rule does, in words: what it matches, the route it takes, the client format, the provider and model,
and the upstream URL as the provider builds it.

The URL is built by the provider itself (translated routes), native.build_request (native passthrough) or
preserve.build (preserve), fed a probe request: a placeholder model and, where the client's path is kept, a
placeholder path, which the description then names ({model}, {client path}). A URL that changes with something
else of the request (a templated option, a stream flag) is said to depend on it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import native, preserve
from ..formats import format_label, standard_route_type
from ..providers import REGISTRY, Call
from ..record import Exchange
from ..routes import Route, route_for
from ..routes.native import Native
from ..routes.preserve import Preserve
from ..routes.translated import Translated
from ..rules import Rule
from ..templating import TemplateContext

_MODEL, _OTHER_MODEL, _PATH = "PROBE-MODEL-A", "PROBE-MODEL-B", "/v1/PROBE-CLIENT-PATH"
_PROBE_TOKEN = "probe-access-token"  # stands for an OAuth token the glue would fetch; never printed
_PROBE_BODIES: dict[str, dict[str, Any]] = {
    "llm/v1/chat": {"messages": [{"role": "user", "content": "hi"}]},
    "llm/v1/completions": {"prompt": "hi"},
    "llm/v1/embeddings": {"input": "hi"},
}


def route_mode(rule: Rule) -> str:
    route = route_for(rule)
    provider = rule.spec.model.provider
    if isinstance(route, Preserve):
        return "preserve: any request under the match passes through, URL and credentials rewritten"
    if isinstance(route, Native):
        return f"native passthrough: the client speaks {provider}'s own API, passed through and recorded"
    return f"translated: {_client(rule)} format to {provider}'s API and back"


def _client(rule: Rule) -> str:
    return format_label(rule.spec.llm_format, rule.spec.route_type)


def _named(url: str) -> str:
    return url.replace(_MODEL, "{model}").replace(_PATH, "{client path}").replace(_PATH[3:], "{client path after /v1}")


def _translated_url(rule: Rule, model: str, stream: bool, route: Route) -> str:
    spec = rule.spec
    provider = REGISTRY[spec.model.provider]
    body = {"model": model, **_PROBE_BODIES.get(standard_route_type(spec.route_type), {}), "stream": stream}
    call = Call(
        route_type=standard_route_type(spec.route_type),
        body=body,
        model=model,
        options=spec.model.options,
        stream=stream,
        auth=spec.auth,
        access_token=_PROBE_TOKEN if spec.auth is not None and spec.auth.gcp_use_service_account else None,
    )
    return provider.build_request(call).url


def _native_url(rule: Rule, model: str, stream: bool, route: Native) -> str:
    """As the native route's forward builds it (its adapter and its rewriting of the client's request)."""
    spec = rule.spec
    probe = Exchange(rule, REGISTRY[spec.model.provider], f"http://{spec.match.host}{_PATH}", b"")
    fmt = route.adapter(probe)
    if native.blocking_setup(fmt, spec.model.options, spec.auth) is not None:
        # The provider would first read a credential chain (files, a metadata service): not for a check to do.
        raise _NeedsSetup("its provider resolves credentials (files, a metadata service) first, which a check does not")
    body = f'{{"model": "{model}", "stream": {"true" if stream else "false"}}}'.encode()
    headers = {"content-type": "application/json"}
    client = native.NativeRequest("POST", _PATH, [], headers, body)
    client, configured = route.prepare(probe, client, TemplateContext(headers, {}, {}), spec.model.options)
    up = native.build_request(
        fmt,
        client,
        route_type=spec.route_type,
        options=spec.model.options,
        auth=spec.auth,  # a provider that signs requests needs it; credentials in the query are taken out below
        configured_model=configured,
    )
    return _without_credentials(up.url, rule)


class _NeedsSetup(Exception):
    pass


def _without_credentials(url: str, rule: Rule) -> str:
    auth = rule.spec.auth
    if auth is None or auth.param_location != "query" or not auth.param_name:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != auth.param_name]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _preserve_url(rule: Rule, model: str, stream: bool, route: Route) -> str:
    body = f'{{"model": "{model}"}}'.encode()
    return preserve.build(rule, {}, "POST", _PATH, {}, {"content-type": "application/json"}, body).url


def upstream(rule: Rule) -> str:
    """Where the rule's requests go: a URL, or what it depends on."""
    spec = rule.spec
    unset = sorted({var for field, var in rule.missing_env if field.startswith("model.options")})
    if unset:
        return f"depends on environment variable {', '.join(unset)}, which is not set here"
    if rule.option_templates:
        fields = ", ".join(f"model.options.{name}" for name in sorted(rule.option_templates))
        return f"depends on the request ({fields} taken from it)"
    route = route_for(rule)
    build: Any = (
        _preserve_url if isinstance(route, Preserve) else _native_url if isinstance(route, Native) else _translated_url
    )
    fixed_model = (
        spec.model.name if spec.model.name and rule.model_template is None and not spec.model.aliases else None
    )
    try:
        plain = build(rule, fixed_model or _MODEL, False, route)
        streamed = build(rule, fixed_model or _MODEL, True, route)
        other = build(rule, fixed_model or _OTHER_MODEL, False, route)
    except _NeedsSetup as e:
        return f"not built here: {e}"
    except Exception as e:  # a provider that needs more of a request than a probe has
        message = getattr(e, "message", None) or str(e) or type(e).__name__
        return f"depends on the request (the provider cannot build it from a probe: {message})"
    url = _named(plain)
    if other.replace(_OTHER_MODEL, _MODEL) != plain:
        return f"depends on the request ({url} for a plain request)"
    if streamed != plain:
        url += f" (streams: {_named(streamed)})"
    if _MODEL in plain:
        url += ", {model} being the model the request resolves to"
    return url


def _matches(rule: Rule) -> str:
    match = rule.spec.match
    parts = [f"host {match.host}", f"path {match.path}" if match.path else "any path"]
    parts.append(f"methods {', '.join(match.methods)}" if match.methods else "any method")
    if match.filter:
        parts.append(f"filter {match.filter!r}")
    return ", ".join(parts)


def _model(rule: Rule) -> str:
    model = rule.spec.model
    if rule.model_template is not None:
        text = f"{model.name} (templated from the request)"
    elif model.name:
        text = f"{model.name} (a client asking for another model gets a 400)"
    else:
        text = "the client's own"
    if model.aliases:
        mapped = "; ".join(f"{pattern} -> {target}" for pattern, target in model.aliases.items())
        text = f"aliases {mapped} (first match wins), otherwise {text}"
    return text


def _auth(rule: Rule) -> str:
    auth = rule.spec.auth
    if auth is None:
        return "none set by the rule"
    parts = []
    if auth.header_name:
        parts.append(f"header {auth.header_name}")
    if auth.param_name:
        parts.append(f"{auth.param_location} parameter {auth.param_name}")
    if auth.aws_access_key_id:
        parts.append("AWS keys (SigV4)")
    if auth.gcp_use_service_account:
        parts.append("GCP service account")
    if auth.allow_override:
        parts.append("the client's own credentials where it sends them (allow_override)")
    return ", ".join(parts) or "none set by the rule"


def _losses(rule: Rule) -> str:
    if rule.spec.on_unsupported == "refuse":
        return "a request the provider cannot take whole is refused with a 400 naming what (on_unsupported: refuse)"
    return "what the provider cannot take is dropped and named in x-ai-proxy-dropped (on_unsupported: drop)"


def describe(rule: Rule) -> list[str]:
    """The rule's lines of the check command's output."""
    spec = rule.spec
    lines = [
        f"rule '{rule.name}'",
        f"  matches:  {_matches(rule)}",
        f"  route:    {route_mode(rule)} ({spec.route_type})",
        f"  client:   {_client(rule)} format",
        f"  provider: {spec.model.provider}",
        f"  model:    {_model(rule)}",
        f"  upstream: {upstream(rule)}",
        f"  auth:     {_auth(rule)}",
    ]
    if isinstance(route_for(rule), Translated):
        lines.append(f"  losses:   {_losses(rule)}")
    if rule.missing_env:
        names = ", ".join(sorted({var for _, var in rule.missing_env}))
        lines.append(f"  warning:  needs environment variable {names}, not set here: its requests fail until it is")
    return lines
