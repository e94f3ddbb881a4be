"""The translated route: the client's request (OpenAI Chat/Completions/Embeddings) goes to the rule's provider in
the provider's own format, and the answer — whole or streamed — comes back in the client's format."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from .. import encodings, flows, jsonutil, loss
from ..auth import apply_auth
from ..errors import ProxyError
from ..exchange import ClientRequest, build_upstream, prepare_call, translate_response
from ..formats import OPENAI, ClientFormat, TokenCount, format_for
from ..providers import Call, Provider, UpstreamRequest
from ..record import Exchange
from ..rules import Rule
from ..stream_bridge import client_translator
from ..streaming import StreamTranslator, stream_error
from . import signatures, token_count
from .base import Route, Services, annotate, keep_secrets, upstream_body

log = logging.getLogger("ai_proxy")


class Translated(Route):
    """One client format (the rule's llm_format) to any provider, through the standard request and response."""

    async def forward(self, services: Services, flow: flows.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        request = flow.request
        body = ex.client_body = flows.client_body(request, ex.rule.spec.max_request_body_size)  # recorded decoded
        query = dict(request.query.items()) if "?" in request.path else {}
        headers = ex.client_headers = flows.decode_headers(request)
        fmt = client_format(ex)
        local = None if fmt is OPENAI else fmt.local_answer(request.method, request.path, body, served_models(ex.rule))
        client = ClientRequest(headers, query, headers.get("content-type", ""), body, request.path)
        if isinstance(local, TokenCount):  # through the provider's token counter where it has one
            count_call = token_count.counter_call(ex, fmt, local, captures, client)
            if count_call is not None:
                await _credentials(services, ex.provider, count_call)
            up = None if count_call is None else token_count.counter_request(ex, count_call)
            if count_call is None or up is None:
                token_count.answer(flow, ex, None)
            else:
                self._send(flow, ex, count_call, up, headers)
            return
        if local is not None:  # an endpoint of the client's format the proxy serves itself (model lists)
            ex.status = 200
            ex.client_answer = local
            flow.response = flows.new_response(200, jsonutil.dumps(local), {"content-type": "application/json"})
            return
        call = ex.call = prepare_call(ex.rule, captures, client, fmt)
        ex.client_json = True  # prepare_call parsed the body
        keeper = ex.signatures = signatures.keeper_for(services.signature_store(), ex, fmt)
        if keeper is not None:  # earlier turns' signed reasoning, where the client's format dropped it
            await signatures.restore(keeper, ex)
        await _credentials(services, ex.provider, call)
        self._send(flow, ex, call, build_upstream(ex.rule, call, fmt), headers)

    def _send(self, flow: flows.HTTPFlow, ex: Exchange, call: Call, up: UpstreamRequest, headers: Any) -> None:
        """Credentials, signature, and the flow pointed at the upstream."""
        request = flow.request
        auth = ex.rule.spec.auth
        body_auth = auth is not None and auth.param_location == "body" and up.body is not None
        # The record keeps the upstream body as it was before credentials were added to it.
        ex.upstream_body = dict(up.body) if body_auth and up.body is not None else up.body
        secrets = apply_auth(up, auth, headers, call.client_query)
        if call.access_token:
            secrets.append(call.access_token)  # a GCP token, per request: redacted by value like the others
        keep_secrets(ex, secrets, auth, up.url)
        payload = jsonutil.dumps(up.body) if up.body is not None else b""
        if not body_auth and up.body is not None:
            ex.upstream_payload = payload  # the record embeds these bytes rather than serialising the body again
        ex.provider.sign(call, up, payload)
        out = {name: headers[name] for name in flows.FORWARDED_CLIENT_HEADERS if name in headers}
        out.update(up.headers)
        out["accept-encoding"] = "identity" if call.stream else "gzip, deflate"  # stream chunks arrive undecoded
        flows.send_to(request, up.method, up.url, out, payload)
        annotate(flow, ex, call.model)

    def error_answer(self, ex: Exchange, err: ProxyError, http1: bool = False) -> flows.Response:
        if ex.token_count is not None and ex.call is not None:  # the counter failed: the estimate, never an error
            return token_count.estimate_response(ex)
        return super().error_answer(ex, err, http1)

    def response_headers(self, services: Services, flow: flows.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        if ex.call is None or not ex.call.stream or response is None or response.status_code >= 300:
            return  # errors and plain answers are translated whole in `response`
        try:
            self._start_stream(services, flow, ex, response)
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to start the stream translation")
            err = ex.local_error = ProxyError(
                502, "AI proxy failed to translate the upstream stream", code="proxy_error"
            )
            body, _ = client_format(ex).error_body(err)
            response.stream = lambda data: [] if data else body
            response.status_code = 502
            response.headers = flows.header_list([(b"content-type", b"application/json")])

    def _start_stream(self, services: Services, flow: flows.HTTPFlow, ex: Exchange, response: flows.Response) -> None:
        assert ex.call is not None
        client_asked_usage = bool((ex.call.body.get("stream_options") or {}).get("include_usage"))
        ex.call.response_headers = response.headers
        translator = client_translator(ex.provider, ex.call, client_asked_usage, ex.rule.spec.logging.log_payloads)
        ex.translator = translator
        if ex.signatures is not None:
            signatures.watch(ex.signatures, translator)
        ex.upstream_status = response.status_code
        headers = response.headers
        # Asked for identity, an upstream may compress all the same: the chunks are then decoded as they come.
        decode = encodings.stream_decoder(headers.get("content-encoding", ""))
        for name in ("content-length", "content-encoding", "transfer-encoding"):
            headers.pop(name, None)
        # A format whose stream form depends on the request (a JSON array, or SSE) names its type.
        media_type = getattr(client_format(ex), "stream_media_type", None)
        headers["content-type"] = media_type(flow.request.path) if media_type else "text/event-stream; charset=utf-8"
        headers["cache-control"] = "no-cache"
        if ex.rule.spec.model_name_header:
            headers[flows.MODEL_HEADER] = flows.header_text(f"{ex.provider.name}/{ex.call.model or ''}")
        if ex.call.dropped:
            headers[flows.DROPPED_HEADER] = loss.header_value(ex.call.dropped)
        if flow.request.http_version == "HTTP/1.1":
            headers["transfer-encoding"] = "chunked"  # the translated size is unknown in advance
        response.stream = _translating(services, flow, ex, translator, decode)

    def response(self, flow: flows.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None
        if ex.call is None:
            return  # answered by the proxy itself in `forward`
        raw = upstream_body(flow, ex)
        if raw is None:
            if ex.signatures is not None and ex.translator is not None:
                signatures.remember_stream(ex.signatures)
            return
        if ex.token_count is not None:
            token_count.from_counter(flow, ex)
            return
        ex.call.response_headers = response.headers  # some providers report usage in headers
        error_headers: dict[str, str] = {}
        status, data = translate_response(
            ex.provider, ex.call, response.status_code, raw, response.headers.get("content-type", ""), error_headers
        )
        ex.status, ex.client_response = status, data
        if ex.signatures is not None and status < 400:
            signatures.remember_answer(ex.signatures, data)  # before a format without a place for them drops them
        fmt = client_format(ex)
        if fmt is OPENAI:
            content = jsonutil.dumps(OPENAI.encode(ex.call.route_type, data) if status < 400 else data)
        elif status < 400:
            ex.client_answer = fmt.encode(ex.call.route_type, data)
            content = jsonutil.dumps(ex.client_answer)
        else:
            content, _ = fmt.error_body(fmt.error_from_envelope(status, data))
            status = fmt.error_status(status)
        headers = _kept_headers(ex, response, error_headers)
        if ex.rule.spec.model_name_header and status < 400:
            model = data.get("model") or ex.call.model or ""
            headers.append((flows.MODEL_HEADER.encode(), flows.header_text(f"{ex.provider.name}/{model}").encode()))
        if ex.call.dropped:
            headers.append((flows.DROPPED_HEADER.encode(), loss.header_value(ex.call.dropped).encode()))
        response.status_code = status
        response.reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        headers.append((b"content-length", str(len(content)).encode()))
        response.headers = flows.header_list(headers)
        response.raw_content = content  # no content-encoding: set the bytes without re-encoding

    def error_body(self, ex: Exchange, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return client_format(ex).error_body(err)

    def error_status(self, ex: Exchange, status: int) -> int:
        return client_format(ex).error_status(status)

    def stream_tail(self, ex: Exchange, err: ProxyError) -> bytes | None:
        assert ex.translator is not None
        result = ex.translator.result
        return b"" if result.error is not None else client_format(ex).stream_error(result, err)


async def _credentials(services: Services, provider: Provider, call: Call) -> None:
    """What a request needs before it is built: blocking credential look-ups off the event loop, OAuth tokens."""
    setup = provider.blocking_setup(call)
    if setup is not None:
        await asyncio.to_thread(setup)  # e.g. the first look-up of the AWS credential chain
    if call.auth is not None and call.auth.gcp_use_service_account:
        # Fetched off the event loop, cached and refreshed before expiry by the token source.
        call.access_token = await services.gcp_tokens().token(call.auth)


def client_format(ex: Exchange) -> ClientFormat:
    """The client format of the exchange's rule."""
    return format_for(ex.rule.spec.llm_format, ex.rule.spec.route_type)


def served_models(rule: Rule) -> list[str]:
    """The model names a rule answers to, for a client format's model list: its model and its exact aliases."""
    names = [alias for alias in rule.spec.model.aliases if not any(c in alias for c in "*?[")]
    if rule.spec.model.name and rule.model_template is None:
        names.append(rule.spec.model.name)
    return list(dict.fromkeys(names))


def _kept_headers(ex: Exchange, response: flows.Response, error_headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """The upstream headers a client keeps (rate limits, retry hints, request ids), checked like any upstream
    value, and those the provider's error body stated."""
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    prefixes = ex.provider.kept_header_prefixes
    for name, value in response.headers.fields:
        lname = name.lower()
        if (lname in flows.KEPT_RESPONSE_HEADERS or lname.startswith(prefixes)) and flows.SAFE_VALUE.match(value):
            headers.append((lname, value))
    kept = {k for k, _ in headers}
    for key, text in error_headers.items():
        name, value = key.lower().encode(), text.encode("utf-8", "replace")
        if name not in kept and flows.SAFE_NAME.match(name) and flows.SAFE_VALUE.match(value):
            headers.append((name, value))
    return headers


def _translating(
    services: Services, flow: flows.HTTPFlow, ex: Exchange, translator: StreamTranslator, decode: Any
) -> Any:
    """mitmproxy's stream callable: each received chunk translated, and a final b"" that ends the stream."""
    activity = ex.watchdog.activity if ex.watchdog is not None else flows.no_activity
    failed = False

    def translate(data: bytes) -> bytes | list[bytes]:
        # Never return b"" mid-stream: on HTTP/1 an empty chunk ends the body.
        nonlocal failed
        if failed:
            return []  # the client's stream has ended with an error event; the rest is dropped
        activity()
        try:
            if not data:
                out = translator.finish()
            else:
                if decode is not None:
                    data = decode(data)
                out = translator.feed(data) if data else b""
        except encodings.EncodingError as e:  # the upstream's fault, not ours: no traceback
            failed = True
            log.info(f"AI proxy: rule '{ex.rule.name}': {e}")
            out = client_format(ex).stream_error(translator.result, stream_error(str(e), code="bad_upstream_response"))
            asyncio.get_running_loop().call_soon(services.close_upstream, flow)
        except Exception:
            # Logged once; the client gets one error event and then a clean end of its stream.
            failed = True
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to translate a stream chunk")
            err = stream_error("AI proxy failed to translate the upstream stream", code="proxy_error")
            out = client_format(ex).stream_error(translator.result, err)
            # End the client's stream now rather than when the upstream ends its own.
            asyncio.get_running_loop().call_soon(services.close_upstream, flow)
        return out if out else []

    return translate
