"""Flow-level helpers the hooks and routes share: pointing a request at its upstream, reading the client's
request, taking credentials out of a flow, and making values safe for response headers. The glue: these touch
mitmproxy objects; the translation itself stays in the pure core."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Any

from mitmproxy import http
from mitmproxy.net.http import url as mitm_url
from mitmproxy.net.http.url import hostport

from . import encodings, jsonutil
from .auth import CREDENTIAL_PARAMS, redact_url
from .errors import ProxyError
from .record import Exchange

MODEL_HEADER = "x-ai-proxy-model"
DROPPED_HEADER = "x-ai-proxy-dropped"  # the loss report: what the translation could not carry
# Upstream response headers worth keeping for the client (rate limits drive SDK retries).
KEPT_RESPONSE_HEADERS = frozenset(
    {b"retry-after", b"retry-after-ms", b"x-request-id", b"request-id", b"apim-request-id"}
)
# Upstream request headers that always carry a credential.
_SECRET_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key", b"x-amz-security-token"})
# Client headers that carry no secret and that an upstream may use.
FORWARDED_CLIENT_HEADERS = ("user-agent", "openai-organization", "openai-project", "openai-beta")


# What may go into a response header from an upstream: visible ASCII and tabs, bounded (no CR, LF, NUL).
SAFE_VALUE = re.compile(rb"[\x20-\x7e\t]{0,1024}\Z")
SAFE_NAME = re.compile(rb"[a-z0-9!#$%&'*+.^_`|~-]{1,64}\Z")
_UNSAFE_TEXT = re.compile(r"[^\x20-\x7e]")


def header_text(value: str, limit: int = 256) -> str:
    """A value from a client or an upstream (a model name, an id) made safe for a response header: anything but
    visible ASCII becomes '?', and it is cut at `limit` characters."""
    return _UNSAFE_TEXT.sub("?", value[:limit])


def checked(headers: dict[str, str]) -> dict[str, str]:
    """Extra headers of an error, without any that could not be sent as they are."""
    return {
        k: v
        for k, v in headers.items()
        if SAFE_NAME.match(k.lower().encode()) and SAFE_VALUE.match(v.encode("utf-8", "replace"))
    }


# The mitmproxy types the routes name in their signatures: only the glue's top-level modules import mitmproxy.
HTTPFlow = http.HTTPFlow
Request = http.Request
Response = http.Response


def new_response(status: int, body: bytes, headers: dict[str, str]) -> http.Response:
    """A response the proxy answers itself (the routes build theirs here, so only the glue's modules import
    mitmproxy)."""
    return http.Response.make(status, body, headers)


def header_list(pairs: list[tuple[bytes, bytes]]) -> http.Headers:
    """Response headers from raw (name, value) pairs, in their order."""
    return http.Headers(pairs)


def error_response(err: ProxyError) -> http.Response:
    headers = {"content-type": "application/json", **checked(err.headers)}
    return http.Response.make(err.status, err.body(), headers)


def scrub_request(flow: http.HTTPFlow, ex: Exchange) -> None:
    """Take the credentials out of a flow whose request has left, so mitmweb, dumps and logs never show them."""
    if ex.scrubbed:
        return
    ex.scrubbed = True
    secrets = {s.encode() for s in ex.secrets}
    fields = flow.request.headers.fields
    # By value (whatever header the rule used) and by name (signatures and tokens made per request).
    if any(v in secrets or k.lower() in _SECRET_HEADERS for k, v in fields):
        flow.request.headers.fields = tuple(
            (k, b"REDACTED" if v in secrets or k.lower() in _SECRET_HEADERS else v) for k, v in fields
        )
    # The query likewise: the rule's key, and a client's own key forwarded by allow_override.
    _redact_query(flow.request, frozenset(p.lower() for p in ex.secret_params), frozenset(ex.secrets))
    auth = ex.rule.spec.auth
    if auth is not None and auth.param_location == "body" and ex.secrets:
        # A key in the JSON body (ours, or the client's on allow_override): out of the body mitmweb shows.
        data = flow.request.data
        data.content = redact_json_body(data.content or b"", ex.secrets)


def redact_json_body(content: bytes, secrets: tuple[str, ...]) -> bytes:
    """A JSON body with each secret (as it is spelled inside a JSON string) replaced; the same object if none is in
    it, so a large body is not copied for nothing."""
    for secret in sorted(secrets, key=len, reverse=True):
        spelled = jsonutil.dumps(secret)[1:-1]  # as it sits inside a JSON string
        if len(secret) >= 4 and spelled in content:
            content = content.replace(spelled, b"REDACTED")
    return content


def redacted_headers(headers: dict[str, str], secrets: tuple[str, ...], names: tuple[str, ...] = ()) -> list[list[str]]:
    """Decoded client headers (decode_headers) for display, credentials out by value and by name (the usual
    credential headers, proxy-authorization and `names`, e.g. the rule's own auth header)."""
    values = set(secrets)
    secret_names = {n.lower() for n in names} | {"proxy-authorization"}
    return [
        [k, "REDACTED" if v in values or k.encode() in _SECRET_HEADERS or k in secret_names else v]
        for k, v in headers.items()
    ]


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: bytes
    host: str
    port: int
    path: bytes  # path and query, as sent
    authority: bytes  # host[:port] for the Host header or :authority


@functools.lru_cache(maxsize=1024)
def _split_url(url: str) -> _Target:
    """An upstream URL split for the request's fields; cached, as a rule's upstream URL rarely varies."""
    scheme, host, port, path = mitm_url.parse(url)  # validates: port range, IDNA host, ASCII path
    return _Target(scheme, host.decode("idna"), port, path, hostport(scheme, host, port))


def send_to(request: http.Request, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
    """Point the flow's request at the upstream. The fields are set directly: mitmproxy's url/host/content
    setters re-parse, re-validate and rescan the headers several times, most of the addon's cost per request."""
    target = _split_url(url)
    data = request.data
    data.method = method.encode()
    data.scheme, data.host, data.port, data.path = target.scheme, target.host, target.port, target.path
    if request.is_http2 or request.is_http3:
        data.authority = target.authority
        headers.pop("host", None)
    else:
        headers["host"] = target.authority.decode()
    headers["content-length"] = str(len(body))
    # Client header values were decoded with surrogateescape: their bytes go out as they came in.
    request.headers = http.Headers([(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in headers.items()])
    data.content = body  # raw bytes: the rebuilt headers have no content-encoding


def client_body(request: http.Request, limit: int) -> bytes:
    """The request body with its content-encoding undone, inflated at most a little over `limit` bytes."""
    return encodings.inflate_bounded(request.raw_content or b"", request.headers.get("content-encoding", ""), limit)


def redact_client_credentials(
    request: http.Request, params: tuple[str, ...] = (), headers: tuple[str, ...] = ()
) -> None:
    """A request answered here: the usual credential headers, the rule's own key header (`headers`: a client may send
    its key there) and key parameters out of what mitmweb, dumps and logs show."""
    names = _SECRET_HEADERS | {h.lower().encode() for h in headers}
    fields = request.headers.fields
    if any(k.lower() in names for k, _ in fields):
        request.headers.fields = tuple((k, b"REDACTED" if k.lower() in names else v) for k, v in fields)
    _redact_query(request, frozenset(p.lower() for p in params), frozenset())


def _redact_query(request: http.Request, names: frozenset[str], secrets: frozenset[str]) -> None:
    """Credential query values (by name: the usual key names and the rule's; by value: whatever was sent) out of
    the flow's URL."""
    if "?" not in request.path:
        return
    names = CREDENTIAL_PARAMS | names
    fields = request.query.fields
    if any(k.lower() in names or v in secrets for k, v in fields):
        request.query.fields = tuple((k, "REDACTED" if k.lower() in names or v in secrets else v) for k, v in fields)


def client_url(request: http.Request, params: tuple[str, ...] = ()) -> str:
    """The URL the client asked for (credentials in its query redacted, the rule's key parameter too)."""
    authority = request.host_header or hostport(request.scheme, request.host, request.port)
    path = request.path
    url = f"{request.scheme}://{authority}{path}"
    return redact_url(url, set(params)) if "?" in path else url


def with_bare_tokens(secrets: list[str]) -> list[str]:
    """Secrets plus the token part of 'Bearer xyz'-style values, so either spelling is redacted."""
    out = []
    for s in secrets:
        out.append(s)
        if " " in s:
            out.append(s.rsplit(" ", 1)[1])
    return out


def no_activity() -> None:
    pass


def passthrough_stream(activity: Any) -> Any:
    """A stream callable that passes the bytes on unchanged and tells the watchdog the upstream is alive."""
    tick = activity or no_activity

    def passthrough(data: bytes) -> bytes | list[bytes]:
        tick()
        return data if data else []

    return passthrough


def connected_ago(flow: http.HTTPFlow) -> float | None:
    """Seconds since the flow's upstream connection was made, or None while it is not connected."""
    server = flow.server_conn
    if server.connected and server.timestamp_tcp_setup:
        return max(0.0, time.time() - server.timestamp_tcp_setup)
    return None


def wants_close(request: http.Request) -> bool:
    """Whether the client asked to close its connection after this exchange (HTTP/1 semantics)."""
    if request.is_http2 or request.is_http3:
        return False
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    return "close" in tokens or (request.http_version == "HTTP/1.0" and "keep-alive" not in tokens)


def decode_headers(request: http.Request) -> dict[str, str]:
    """The request's headers in one pass (mitmproxy's Headers look-ups scan every field each time): lower-case
    names; values decoded so that their bytes go out again exactly as they came in."""
    return {k.decode("latin-1").lower(): v.decode("utf-8", "surrogateescape") for k, v in request.headers.fields}
