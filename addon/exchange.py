"""One request's way through the pure core: client body -> Call -> upstream request, and upstream response ->
client response. No mitmproxy here: the glue hands in plain values and applies what comes back."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import jsonutil, loss, openai_format, schema_check
from .cache_breakpoints import check_limit, with_auto_breakpoints
from .errors import ProxyError, bad_request
from .extensions import (
    CACHE_CONTROL,
    unsent_fields,
    without_bookkeeping,
    without_cache_control,
    without_names_and_details,
    without_thinking_blocks,
)
from .formats import OPENAI, ClientFormat, standard_route_type
from .openai_format import THINKING_BLOCKS
from .providers import REGISTRY, Call, Provider, UpstreamFormatError, UpstreamRequest
from .rules import Rule
from .templating import TemplateContext

_JSON_TYPES = ("application/json", "text/json")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What the glue extracts from a flow's request."""

    headers: Mapping[str, str]  # case-insensitive (mitmproxy Headers)
    query: Mapping[str, str]
    content_type: str
    body: bytes
    path: str = ""  # the request path with its query, for client formats that name the model or streaming there


def provider_for(rule: Rule) -> Provider:
    return REGISTRY[rule.spec.model.provider]


def prepare_call(
    rule: Rule, captures: Mapping[str, str], req: ClientRequest, client_format: ClientFormat = OPENAI
) -> Call:
    """Validate the client request against the rule and resolve model, options and streaming. Raises ProxyError."""
    spec = rule.spec
    if len(req.body) > spec.max_request_body_size:
        raise ProxyError(
            413,
            f"request body of {len(req.body)} bytes exceeds this route's limit of {spec.max_request_body_size}",
            code="request_too_large",
        )
    rule.check_env()
    media_type = req.content_type.split(";", 1)[0].strip().lower()
    if media_type and media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise bad_request(f"content-type must be application/json, not {media_type!r}", code="unsupported_media_type")
    try:
        body = jsonutil.loads(req.body)
    except ValueError as e:
        path = getattr(e, "path", None)
        raise bad_request(f"request body is not valid JSON: {e}", code="invalid_json", param=path) from None
    dropped: list[str] = []
    # The standard request, whatever the client spoke.
    body = client_format.decode(spec.route_type, req.path, body, dropped)
    return call_for(rule, captures, req, body, dropped, client_format)


def call_for(
    rule: Rule,
    captures: Mapping[str, str],
    req: ClientRequest,
    body: dict[str, Any],
    dropped: list[str],
    client_format: ClientFormat = OPENAI,
) -> Call:
    """The Call of a standard request decoded from the client's (`dropped`: what its decoding already lost)."""
    spec = rule.spec
    ctx = TemplateContext(req.headers, captures, req.query)
    options = rule.resolve_options(ctx)
    client_model = body.get("model") if isinstance(body.get("model"), str) else None
    model = resolve_model(rule, ctx, body)
    provider = provider_for(rule)
    names = getattr(client_format, "hint_names", HINT_FIELDS)
    if client_format is not OPENAI or not provider.forwards_body:
        body = _without_unmapped_extensions(body, provider, dropped, names)
    body = _cache_breakpoints(body, provider, options, model, dropped)
    if client_format is not OPENAI:
        body = _without_unmapped_hints(body, provider, dropped, names)
    if model is None and provider.requires_model(options):
        raise bad_request("no model: the request names none and the rule configures none", param="model")

    if spec.route_type == openai_format.EMBEDDINGS:
        # Never streamed (validation refused a stream flag) and no sampling: the rule's tuning does not apply.
        return Call(
            route_type=spec.route_type,
            body=_embeddings_dimensions(body, options),
            model=model,
            options=options,
            client_query=req.query,
            auth=spec.auth,
        )

    stream = _stream_flag(spec.response_streaming, body)
    if stream and not provider.supports_streaming:
        raise bad_request(
            f"streaming is not available for provider {provider.name} yet; send stream: false",
            param="stream",
            code="streaming_unsupported",
        )
    body = _apply_tuning(body, options)
    return Call(
        route_type=standard_route_type(spec.route_type),
        body=body,
        model=model,
        options=options,
        stream=stream,
        client_query=req.query,
        auth=spec.auth,
        client_model=client_model if client_model != model else None,
        dropped=loss.checked(dropped),
        # A format whose stream form depends on the request (e.g. alt=sse or not) picks its writer by the path.
        writer=client_format.writer_for(req.path) if hasattr(client_format, "writer_for") else client_format.writer,
    )


# Standard-request fields another client format sets as hints from its own terms (a thinking budget, top_k,
# disable_parallel_tool_use), with the name the loss report gives them: a provider without the control gets the
# request without them, and the loss report names them. Fields of one name are alternatives (a thinking request as
# an effort and as a token budget): the provider gets those it takes, and the loss is reported only when it takes
# none. An OpenAI client that sends them itself still gets the provider's refusal (it asked for them).
HINT_FIELDS = {
    "reasoning_effort": "thinking",
    "thinking": "thinking",
    "top_k": "top_k",
    "parallel_tool_calls": "disable_parallel_tool_use",
}


def _without_unmapped_extensions(
    body: dict[str, Any], provider: Provider, dropped: list[str], names: Mapping[str, str]
) -> dict[str, Any]:
    """The body without the extensions and account-side fields the provider does not take, whatever the client
    format (they never change what the answer means: dropped and reported rather than refused)."""
    taken = provider.optional_fields
    if CACHE_CONTROL not in taken:
        uncached = without_cache_control(body)
        if uncached is not None:
            body = uncached
            if CACHE_CONTROL not in dropped:
                dropped.append(CACHE_CONTROL)
    if THINKING_BLOCKS not in taken:
        body = without_thinking_blocks(body, dropped, names.get(THINKING_BLOCKS))
    body = without_names_and_details(body, taken, dropped, names)
    return without_bookkeeping(body, taken, dropped, names)


def _cache_breakpoints(
    body: dict[str, Any], provider: Provider, options: Any, model: str | None, dropped: list[str]
) -> dict[str, Any]:
    """For a provider that caches only where told (cache_control among its optional fields): the breakpoints checked
    against what the model takes (Provider.cache_limit), with automatic ones where the rule asks for them
    (cache_breakpoints: auto); none for a model without prompt caching (dropped and reported)."""
    if CACHE_CONTROL not in provider.optional_fields:
        return body  # removed above where the provider does not take them (or forwarded, an OpenAI-compatible API)
    limit = provider.cache_limit(model)
    if not limit:
        uncached = without_cache_control(body)
        if uncached is not None:
            body = uncached
            if CACHE_CONTROL not in dropped:
                dropped.append(CACHE_CONTROL)
        return body
    if options.cache_breakpoints == "auto":
        body = with_auto_breakpoints(body, limit)
    check_limit(body, limit)
    return body


def _without_unmapped_hints(
    body: dict[str, Any], provider: Provider, dropped: list[str], names: Mapping[str, str]
) -> dict[str, Any]:
    """The body without the hints the provider has no control for; `names`: each hint in the client's terms."""
    unmapped = [k for k in HINT_FIELDS if k in body and k not in provider.optional_fields]
    if not unmapped:
        return body
    kept = {HINT_FIELDS[k] for k in HINT_FIELDS if k in body and k in provider.optional_fields}
    for key in unmapped:
        name = names.get(key, HINT_FIELDS[key])  # in the client's terms
        if HINT_FIELDS[key] not in kept and name not in dropped:
            dropped.append(name)
    return {k: v for k, v in body.items() if k not in unmapped}


def resolve_model(rule: Rule, ctx: TemplateContext, body: dict[str, Any]) -> str | None:
    requested = body.get("model")
    aliases = rule.spec.model.aliases
    if aliases and isinstance(requested, str):
        for pattern, target in aliases.items():
            if fnmatch.fnmatchcase(requested, pattern):  # fnmatch caches the compiled pattern
                return target
    # A templated name may come from a client's header: it is checked like the body's own model.
    configured = openai_format.checked_model(rule.resolve_model_name(ctx))
    if configured:
        if requested and requested != configured:
            raise bad_request(
                f"model '{requested}' is not available on this route (it serves '{configured}')",
                param="model",
                code="model_not_allowed",
            )
        return configured
    return requested or None


def _stream_flag(policy: str, body: dict[str, Any]) -> bool:
    wants = bool(body.get("stream"))
    if policy == "deny" and wants:
        raise bad_request("streaming is disabled on this route", param="stream", code="streaming_denied")
    return True if policy == "always" else wants


def _embeddings_dimensions(body: dict[str, Any], options: Any) -> dict[str, Any]:
    """The rule's `embeddings_dimensions` when the client names none; a different client value is refused."""
    configured = options.embeddings_dimensions
    if configured is None:
        return body
    requested = body.get("dimensions")
    if requested is None:
        return {**body, "dimensions": configured}
    if requested != configured:
        raise bad_request(
            f"dimensions {requested} are not available on this route (it serves {configured})", param="dimensions"
        )
    return body


def _apply_tuning(body: dict[str, Any], options: Any) -> dict[str, Any]:
    """The rule's tuning values override the client's (Kong semantics)."""
    overrides = {k: getattr(options, k) for k in ("temperature", "top_p", "top_k") if getattr(options, k) is not None}
    if options.max_tokens is not None:
        # Keep the client's choice of field: o-series models reject max_tokens.
        key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        overrides[key] = options.max_tokens
    return {**body, **overrides} if overrides else body


def build_upstream(rule: Rule, call: Call, client_format: ClientFormat = OPENAI) -> UpstreamRequest:
    """The provider's request for `call`; a 400 instead when the rule refuses losses and the translation (the
    client format's decoding, the core, the provider's builder) had to drop something. What the provider reported
    dropped of the standard hints (a model without a reasoning control: `thinking`) is named in the client's terms,
    as the core's own drops are."""
    provider = provider_for(rule)
    up = _with_defaults(provider.build_request(call), call)
    if call.route_type != openai_format.EMBEDDINGS:
        loss.add(call.dropped, unsent_fields(call.body, up.body))
    if client_format is not OPENAI and any(name in HINT_FIELDS for name in call.dropped):
        names = getattr(client_format, "hint_names", HINT_FIELDS)
        call.dropped[:] = dict.fromkeys(names.get(n, n) if n in HINT_FIELDS else n for n in call.dropped)
    loss.enforce(rule.spec.on_unsupported, call.dropped, provider.name)
    return up


def count_upstream(rule: Rule, call: Call) -> UpstreamRequest | None:
    """The request to the provider's token counter for the input of `call`, or None when it has none."""
    up = provider_for(rule).count_tokens_request(call)
    return None if up is None else _with_defaults(up, call)


def _with_defaults(up: UpstreamRequest, call: Call) -> UpstreamRequest:
    up.headers.setdefault("content-type", "application/json")
    up.headers.setdefault("accept", "text/event-stream" if call.stream else "application/json")
    return up


def translate_response(
    provider: Provider,
    call: Call,
    status: int,
    body: bytes,
    content_type: str,
    headers_out: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """An upstream non-streamed response as (status, OpenAI-format JSON); errors become the envelope.
    `headers_out` receives headers the client should get with an error (e.g. a retry-after the provider
    only states in its body)."""
    if status >= 400:
        err = provider.parse_error(status, body, content_type, call.response_headers)
        if headers_out is not None:
            headers_out.update(err.headers)
        return err.status, err.envelope()
    if status >= 300:
        err = ProxyError(502, f"{provider.name} answered with an unexpected redirect (HTTP {status})")
        return err.status, err.envelope()
    try:
        data = jsonutil.loads(body)
        # The translation, checked where clients and the record read it, whatever the provider sent.
        answer = openai_format.check_answer(call.route_type, provider.parse_response(call, data))
        schema_check.check_answer(provider.name, call.body, answer, call.dropped)  # a relaxed strict schema
        return 200, answer
    except ProxyError as e:  # a provider's own verdict on a 2xx body (e.g. a finish reason saying it failed)
        return e.status, e.envelope()
    except (ValueError, UpstreamFormatError) as e:
        # ValueError covers JSON decoding and check_answer; UpstreamFormatError is a body of the wrong shape.
        return _bad_upstream(provider, str(e))
    except Exception as e:
        # A parser that meets a shape nobody foresaw must not answer with a traceback (nor fail open): the client
        # gets the 502 any malformed answer gets, and the parser's bug shows at debug level, once per answer.
        log.debug("%s: unexpected %s translating a 2xx answer", provider.name, type(e).__name__, exc_info=True)
        return _bad_upstream(provider, f"unexpected {type(e).__name__}")


def _bad_upstream(provider: Provider, reason: str) -> tuple[int, dict[str, Any]]:
    err = ProxyError(
        502, f"{provider.name} returned a response that could not be translated: {reason}", code="bad_upstream_response"
    )
    return err.status, err.envelope()
