"""Native client formats (Kong 3.10 `llm_format`): clients that use a provider's own SDK pass through untouched.

The request body and the response (streams included) are the client's and the provider's own bytes; the proxy
only rewrites the URL (path and query kept from the client: it already speaks the native API), removes the
client's credentials, injects the rule's (re-signed over the exact bytes where the provider signs requests), and
decodes the native format on the side to record usage, cost and model.

Pure code: no mitmproxy, no I/O (a provider's credential chain is resolved beforehand by the glue, through
`blocking_setup`, as for the translated path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import jsonutil
from .auth import CREDENTIAL_PARAMS, apply_auth
from .errors import ProxyError, bad_request
from .openai_format import checked_model
from .preserve import PreservedRequest
from .providers import REGISTRY, Call, UpstreamRequest
from .providers.base import url_path
from .spec import AuthSpec
from .streaming import StreamResult, stream_error
from .streams import FramingSniffer, JSONArrayDecoder, NDJSONDecoder, SSEDecoder

if TYPE_CHECKING:
    from .spec import ModelOptions

# Client headers never forwarded: hop-by-hop, recomputed, or carrying the client's credentials and signatures.
_DROPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "accept-encoding",
        "cookie",
        "authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
    }
)
_STREAM_CONTENT_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream", "ndjson", "stream+json")


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """What the glue extracts from a flow's request."""

    method: str
    path: str  # without the query, percent-encoding intact
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class NativeUpstream(PreservedRequest):
    """The request to send (its model: the one the request names, body or path, else the rule's), and what the
    record needs about it."""

    stream: bool  # the client asked for a streamed answer
    call: Call  # for the glue's shared code paths (record fields, request signing)
    secrets: list[str] = field(default_factory=list)
    request_json: Any = None  # the client body parsed, for the record


# --------------------------------------------------------------------------------------------------------------
# Formats: default host, model and stream flag of a request, usage of a response, error shape
# --------------------------------------------------------------------------------------------------------------


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return jsonutil.loads(body)
    except ValueError:
        return None


def _body_model(data: Any) -> str | None:
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else None


def _body_stream(data: Any) -> bool:
    return isinstance(data, dict) and data.get("stream") is True


class NativeFormat:
    name: str  # the llm_format, which is also the name of the only provider it fits

    def base_url(self, options: ModelOptions) -> str:
        raise NotImplementedError

    def model_of(self, path: str, data: Any) -> str | None:
        return _body_model(data)

    def is_stream(self, path: str, query: Sequence[tuple[str, str]], data: Any) -> bool:
        return _body_stream(data)

    def response_usage(
        self, data: Any, headers: Mapping[str, str]
    ) -> tuple[dict[str, Any] | None, str | None]:  # pragma: no cover - every format overrides it
        raise NotImplementedError

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        raise NotImplementedError

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        """A proxy error in the provider's own error shape, so the client's SDK raises its usual exception."""
        return jsonutil.dumps(err.envelope()), {}


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _pair_usage(prompt: Any, completion: Any) -> dict[str, Any] | None:
    p, c = _count(prompt), _count(completion)
    if p is None or c is None:
        return None
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _header_usage(headers: Mapping[str, str], prompt: str, completion: str) -> dict[str, Any] | None:
    return _pair_usage(headers.get(prompt), headers.get(completion))


# --------------------------------------------------------------------------------------------------------------
# Request
# --------------------------------------------------------------------------------------------------------------


def build_request(
    fmt: NativeFormat,
    req: NativeRequest,
    *,
    route_type: str,
    options: ModelOptions,
    auth: AuthSpec | None,
    configured_model: str | None,
    max_body: int | None = None,
    access_token: str | None = None,
) -> NativeUpstream:
    """The upstream request for a native client request. Raises ProxyError (answered in the native shape)."""
    if max_body is not None and len(req.body) > max_body:
        raise ProxyError(
            413,
            f"request body of {len(req.body)} bytes exceeds this route's limit of {max_body}",
            code="request_too_large",
        )
    data = _json_or_none(req.body)
    # The model reaches the record and the x-ai-proxy-model header: no control characters (a path's %0d%0a).
    requested = checked_model(fmt.model_of(req.path, data))
    configured_model = checked_model(configured_model)
    if configured_model and requested and requested != configured_model:
        raise bad_request(
            f"model '{requested}' is not available on this route (it serves '{configured_model}')",
            param="model",
            code="model_not_allowed",
        )
    model = requested or configured_model
    stream = fmt.is_stream(req.path, req.query, data)
    override = auth is not None and auth.allow_override

    # URL: the provider's (or upstream_url's) scheme/host/port; the client's path unless the rule pins one.
    pinned = url_path(options)
    if options.upstream_url:
        parts = urlsplit(options.upstream_url)
        base = f"{parts.scheme}://{parts.netloc}"
    else:
        base = fmt.base_url(options)
    path = pinned if pinned is not None else req.path
    if not path.startswith("/"):
        path = "/" + path
    query = [(k, v) for k, v in req.query if override or k.lower() not in CREDENTIAL_PARAMS]
    if options.upstream_url:
        extra = urlsplit(options.upstream_url).query
        if extra:
            query += parse_qsl(extra, keep_blank_values=True)
    url = base.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")

    headers: dict[str, str] = {}
    for name, value in req.headers.items():
        lname = name.lower()
        if lname in _DROPPED_HEADERS or lname.startswith(("x-amz-", "proxy-")):
            continue
        headers[lname] = value
    headers["accept-encoding"] = "identity"  # the bytes pass to the client as they come, and are decoded here
    if access_token:
        headers["authorization"] = f"Bearer {access_token}"

    up = UpstreamRequest(url=url, body=None, headers=headers, method=req.method)
    body = req.body
    if auth is not None and auth.param_location == "body" and auth.param_name:
        if not isinstance(data, dict):
            raise bad_request("this route adds a key to a JSON body, and the request body is not a JSON object")
        up.body = dict(data)
    secrets = apply_auth(up, auth, req.headers, dict(req.query))
    if up.body is not None:
        body = jsonutil.dumps(up.body)
    if access_token:
        secrets.append(access_token)
    call = Call(
        route_type=route_type,
        body={},
        model=model,
        options=options,
        stream=stream,
        client_query=dict(req.query),
        auth=auth,
    )
    # Providers that sign requests (SigV4 over the exact bytes) replace any signature the client sent.
    REGISTRY[fmt.name].sign(call, up, body)
    return NativeUpstream(
        url=up.url,
        method=up.method,
        headers=up.headers,
        body=body,
        stream=stream,
        model=model,
        call=call,
        secrets=[s for s in secrets if s],
        request_json=data,
    )


def blocking_setup(fmt: NativeFormat, options: ModelOptions, auth: AuthSpec | None) -> Callable[[], object] | None:
    """Work that may block before the request is built (e.g. a credential chain on first use)."""
    call = Call(route_type="llm/v1/chat", body={}, model=None, options=options, auth=auth)
    return REGISTRY[fmt.name].blocking_setup(call)


def native_formats() -> list[str]:
    """Every llm_format some provider speaks natively."""
    return sorted(p.native_format for p in REGISTRY.values() if p.native_format)


def adapter_for(llm_format: str) -> NativeFormat:
    """The adapter of the provider whose native format this is."""
    return adapter(next(p for p in REGISTRY.values() if p.native_format == llm_format))


def adapter(provider: Any) -> NativeFormat:
    """The native-format adapter of a provider (each provider with a native format defines its own)."""
    return provider.native_adapter


def is_stream_response(content_type: str) -> bool:
    ct = content_type.lower()
    return any(t in ct for t in _STREAM_CONTENT_TYPES)


def response_record(
    fmt: NativeFormat, status: int, body: bytes, headers: Mapping[str, str]
) -> tuple[dict[str, Any], str | None]:
    """What the record keeps of a whole native response: {"model", "usage"} (or the error envelope) and the
    error message, if any."""
    if status >= 400:
        err = REGISTRY[fmt.name].parse_error(status, body, headers.get("content-type", ""), headers)
        return err.envelope(), err.message
    data = _json_or_none(body)
    usage, model = fmt.response_usage(data, headers)
    return {"model": model, "usage": usage}, None


# --------------------------------------------------------------------------------------------------------------
# Stream recorders: decode the native events as they pass, return the bytes unchanged
# --------------------------------------------------------------------------------------------------------------


class NativeRecorder:
    """Fed the upstream stream chunk by chunk; returns every chunk unchanged and fills `result` (model, usage,
    first token time, error, completed) for the record. A chunk it cannot decode stops the decoding (the record
    says so) but never the stream."""

    def __init__(self, keep_payload: bool) -> None:
        self.result = StreamResult()
        self.keep_payload = keep_payload
        self._broken = False

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.result.usage

    @property
    def model(self) -> str | None:
        return self.result.model

    def feed(self, chunk: bytes) -> bytes:
        if chunk and not self._broken:
            try:
                self._decode(chunk)
            except Exception as e:  # a record is not worth breaking the client's stream for
                self._fail(f"the {self._what()} stream could not be decoded for the record: {e}")
        return chunk

    def finish(self) -> bytes:
        if not self._broken:
            try:
                self._flush()
            except Exception as e:
                self._fail(f"the {self._what()} stream ended inside an event: {e}")
        return b""

    def _what(self) -> str:
        return type(self).__name__.removesuffix("Recorder").lower()

    def _fail(self, message: str) -> None:
        self._broken = True
        if self.result.error is None:
            self.result.error = stream_error(message)

    def _token(self) -> None:
        if self.result.first_token_at is None:
            self.result.first_token_at = time.time()

    def _error(self, message: Any, status: int = 502) -> None:
        if self.result.error is None:
            text = message if isinstance(message, str) else jsonutil.dumps(message).decode()
            self.result.error = stream_error(text, status=status, code="upstream_stream_error")

    def _decode(self, chunk: bytes) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _flush(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _SSERecorder(NativeRecorder):
    def __init__(self, keep_payload: bool) -> None:
        super().__init__(keep_payload)
        self._sse = SSEDecoder()

    def _decode(self, chunk: bytes) -> None:
        for ev in self._sse.feed(chunk):
            self._sse_event(ev.event, ev.data)

    def _flush(self) -> None:
        for ev in self._sse.flush():
            self._sse_event(ev.event, ev.data)

    def _sse_event(self, name: str, data: str) -> None:
        if data == "[DONE]":
            self.result.completed = True
            return
        obj = jsonutil.loads(data)
        if isinstance(obj, dict):
            self._event(name, obj)

    def _event(self, name: str, obj: dict[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _SniffingRecorder(NativeRecorder):
    """A recorder for a stream whose framing shows in its first meaningful byte (`_framing` picks the decoder)."""

    def __init__(self, keep_payload: bool) -> None:
        super().__init__(keep_payload)
        self._decoder: SSEDecoder | JSONArrayDecoder | NDJSONDecoder | None = None
        self._sniffer = FramingSniffer()

    def _framing(self, first: bytes) -> SSEDecoder | JSONArrayDecoder | NDJSONDecoder:
        raise NotImplementedError

    def _items(self, items: list[Any]) -> None:
        raise NotImplementedError

    def _decode(self, chunk: bytes) -> None:
        if self._decoder is None:
            found = self._sniffer.sniff(chunk)
            if found is None:
                return
            first, _, chunk = found
            self._decoder = self._framing(first)
        self._items(self._decoder.feed(chunk))

    def _flush(self) -> None:
        if self._decoder is not None:
            self._items(self._decoder.flush())
