"""Credentials: which client credentials to keep, and the rule's header/query/body injection.

The upstream request is built fresh, so a client credential reaches upstream only when a rule says
`allow_override: true`. Every value injected here is returned so the glue can keep it out of logs and records.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .providers.base import UpstreamRequest
from .spec import AuthSpec

# Where clients of any provider SDK put their keys.
CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")
CREDENTIAL_PARAMS = frozenset({"key", "api-key", "api_key", "access_token"})


def client_credential_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in CREDENTIAL_HEADERS if headers.get(name)}


def apply_auth(
    up: UpstreamRequest,
    auth: AuthSpec | None,
    client_headers: Mapping[str, str],
    client_query: Mapping[str, str],
) -> list[str]:
    """Add credentials to `up` in place; returns the secret values it carries (for redaction)."""
    secrets: list[str] = []
    override = auth is not None and auth.allow_override
    kept_params: dict[str, str] = {}
    if override:
        for name, value in client_credential_headers(client_headers).items():
            up.headers[name] = value
            secrets.append(value)
        kept_params = {k: v for k, v in client_query.items() if k.lower() in CREDENTIAL_PARAMS}
        secrets.extend(kept_params.values())
    if auth is None:
        return secrets
    if auth.header_name and auth.header_value is not None:
        name = auth.header_name.lower()
        if not (override and client_headers.get(name)):
            up.headers[name] = auth.header_value
            secrets.append(auth.header_value)
    params = dict(kept_params)
    if auth.param_name and auth.param_value is not None:
        client_has = override and (
            auth.param_name in client_query
            or (auth.param_location == "body" and up.body is not None and auth.param_name in up.body)
        )
        if not client_has:
            if auth.param_location == "query":
                params[auth.param_name] = auth.param_value
            elif up.body is not None:
                up.body[auth.param_name] = auth.param_value
            secrets.append(auth.param_value)
        elif auth.param_name in client_query:
            # The client's own key under the rule's name (which may not be a usual key name) goes in its place.
            params[auth.param_name] = client_query[auth.param_name]
            secrets.append(client_query[auth.param_name])
        elif up.body is not None and isinstance(up.body.get(auth.param_name), str):
            secrets.append(up.body[auth.param_name])
    if params:
        up.url = add_query(up.url, params)
    return [s for s in secrets if s]


def add_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def redact_url(url: str, extra_params: frozenset[str] | set[str] = frozenset()) -> str:
    """The URL with every credential query value replaced, for records and logs."""
    # Split by hand, not with urlsplit: the authority may come from a client's Host header, and urlsplit raises on
    # some (an unbalanced "[") where this must not fail.
    base, _, rest = url.partition("?")
    query, hash_, fragment = rest.partition("#")
    if not query:
        return url
    names = CREDENTIAL_PARAMS | {p.lower() for p in extra_params}
    pairs = [(k, "REDACTED" if k.lower() in names else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    return f"{base}?{urlencode(pairs)}{hash_}{fragment}"
