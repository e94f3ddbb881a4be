"""The mitmproxy addon: hooks only, thin glue between flows and the pure core.

Fail closed: a flow that matches a rule is either answered by us or sent to the provider the rule names; an
exception anywhere answers 502 in the OpenAI envelope and never lets the flow reach its original host.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import os
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, flowfilter, http
from mitmproxy.net.http import url as mitm_url
from mitmproxy.net.http.url import hostport

from . import audit, encodings, jsonutil, native, preserve, record
from .auth import CREDENTIAL_PARAMS, apply_auth, redact_url
from .errors import ProxyError, bad_request
from .exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from .providers import Call, UpstreamRequest
from .record import Exchange
from .rules import Rule, RulesError, TemplateContext, find_rule, load_rules_file
from .streaming import stream_error

log = logging.getLogger("ai_proxy")

RULES_POLL_SECONDS = 1.0
# At shutdown, how long exchanges in flight may take to finish on their own (default of ai_shutdown_grace_ms).
SHUTDOWN_GRACE_MS = 2000
SHUTDOWN_POLL_SECONDS = 0.05
MODEL_HEADER = "x-ai-proxy-model"
# Upstream response headers worth keeping for the client (rate limits drive SDK retries).
_KEPT_RESPONSE_HEADERS = frozenset(
    {b"retry-after", b"retry-after-ms", b"x-request-id", b"request-id", b"apim-request-id"}
)
_KEPT_RESPONSE_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
# Upstream request headers that always carry a credential.
_SECRET_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key", b"x-amz-security-token"})
# Client headers that carry no secret and that an upstream may use.
_FORWARDED_CLIENT_HEADERS = ("user-agent", "openai-organization", "openai-project", "openai-beta")


def error_response(err: ProxyError) -> http.Response:
    headers = {"content-type": "application/json", **err.headers}
    return http.Response.make(err.status, err.body(), headers)


class AIProxy:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.rules_path: Path | None = None
        self._rules_stamp: tuple[int, int] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.recorder: audit.Recorder | None = None
        self.prices = audit.PriceTable()
        self._exchanges: dict[str, Exchange] = {}
        self._running = False
        self._exit_hook = False
        self._gcp: Any = None

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option("ai_rules", str, "rules.yaml", "Path of the AI proxy rules file (YAML).")
        loader.add_option("ai_recordings", str, "recordings", "Folder for the AI proxy's JSONL audit records.")
        loader.add_option(
            "ai_shutdown_grace_ms",
            int,
            SHUTDOWN_GRACE_MS,
            "At shutdown, how long (ms) AI exchanges in flight may take to finish before they are recorded as cut off.",
        )
        audit.PriceTable.warm_up()

    def configure(self, updated: set[str]) -> None:
        if "ai_rules" in updated:
            path = Path(ctx.options.ai_rules).expanduser()
            try:
                self._install_rules(path)
            except RulesError as e:
                if not self._running:
                    # At start a bad file stops the proxy: mitmproxy exits on any error logged during start-up,
                    # and a log line reads better than a traceback.
                    log.error(f"AI proxy: cannot use {path}: {e}")
                    return
                raise exceptions.OptionsError(f"ai_rules {path}: {e}") from None
        if "ai_recordings" in updated:
            folder = ctx.options.ai_recordings
            if not folder:
                raise exceptions.OptionsError("ai_recordings must name a folder")
            if self.recorder is not None:
                self.recorder.close()
            try:
                self.recorder = audit.Recorder(folder)
            except OSError as e:
                raise exceptions.OptionsError(f"ai_recordings {folder}: {e}") from None
            self._update_redactions()
        if "ai_shutdown_grace_ms" in updated and ctx.options.ai_shutdown_grace_ms < 0:
            raise exceptions.OptionsError("ai_shutdown_grace_ms must be 0 or more")
        if "connection_strategy" in updated and ctx.options.connection_strategy != "lazy":
            # Eager mode connects to the client's original host before any hook runs: offline it fails,
            # online it opens a useless connection to a host we never send the request to.
            ctx.options.update(connection_strategy="lazy")

    def running(self) -> None:
        self._running = True
        if ctx.options.connection_strategy != "lazy":
            ctx.options.update(connection_strategy="lazy")
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch_rules())

    def done(self) -> Coroutine[Any, Any, None] | None:
        """The last hook: at shutdown (after SIGTERM/SIGINT) and when the addon is unloaded.

        At shutdown, while exchanges are in flight, the hook returns a coroutine, which mitmproxy awaits: the
        event loop keeps serving them for up to ai_shutdown_grace_ms first. An unload calls the hook
        synchronously (mitmproxy refuses an `async def done` there), and then nothing waits.
        """
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        grace_ms = getattr(ctx.options, "ai_shutdown_grace_ms", 0)
        should_exit = getattr(getattr(ctx, "master", None), "should_exit", None)
        if should_exit is None or not should_exit.is_set():
            # Unloaded while the proxy runs on: this addon's hooks are never called again.
            self.finish_pending()
            self._close_recorder()
            return None
        if self._exchanges and grace_ms > 0:
            return self._shut_down_after(grace_ms / 1000)
        self._shut_down()
        return None

    async def _shut_down_after(self, grace: float) -> None:
        log.info(f"AI proxy: waiting up to {grace:g} s for {len(self._exchanges)} exchange(s) in flight")
        deadline = time.monotonic() + grace
        try:
            while self._exchanges and time.monotonic() < deadline:
                await asyncio.sleep(SHUTDOWN_POLL_SECONDS)
        finally:  # also if the wait is cancelled
            self._shut_down()

    def _shut_down(self) -> None:
        """After `done`, asyncio.run cancels the live connections, and exchanges still in flight keep moving
        while it does: some still finish, most fail in their error hook, some never get a hook. So they are
        marked (a failure of theirs is recorded as caused by the shutdown) and left to their hooks, which
        record them as usual (the closed recorder writes directly); the rest are recorded at interpreter exit,
        when the event loop has closed and nothing can change any more."""
        for ex in self._exchanges.values():
            ex.in_flight_at_shutdown = True
        if self._exchanges:
            log.info(f"AI proxy: {len(self._exchanges)} exchange(s) in flight at shutdown")
        self._close_recorder()
        if not self._exit_hook:
            self._exit_hook = True
            atexit.register(_finish_at_exit, weakref.ref(self))

    def _close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close()  # drains what is queued, waiting at most audit.CLOSE_TIMEOUT_SECONDS

    def finish_pending(self) -> int:
        """Write one record for each exchange still in flight, cut off by the shutdown, and forget it: a late
        response or error hook finds nothing, so nothing is recorded twice. Returns how many there were."""
        at, count = time.time(), 0
        while self._exchanges:
            flow_id, ex = self._exchanges.popitem()
            count += 1
            try:
                record.cut_off(ex, at)
                if self.recorder is not None:
                    # Built now, not on the writer thread: a snapshot, whatever the stream callback still does.
                    self.recorder.write(record.build(flow_id, ex, self.prices), ex.secrets)
            except Exception:
                log.exception(f"AI proxy: could not record exchange {flow_id}, cut off by the shutdown")
        return count

    def _install_rules(self, path: Path) -> None:
        stamp = _stamp(path)
        try:
            rules = load_rules_file(path)
        except UnicodeDecodeError as e:
            raise RulesError(f"not UTF-8 text: {e}") from None
        for rule in rules:
            expr = rule.spec.match.filter
            if expr:
                try:
                    rule.flow_filter = flowfilter.parse(expr)
                except ValueError as e:
                    raise RulesError(f"rule '{rule.name}': match.filter: {e}") from None
        self.rules, self.rules_path, self._rules_stamp = rules, path, stamp
        self._update_redactions()
        log.info(f"AI proxy: {len(rules)} rule(s) loaded from {path}")
        for rule in rules:
            if rule.missing_env:
                names = ", ".join(sorted({v for _, v in rule.missing_env}))
                log.warning(f"AI proxy: rule '{rule.name}' needs {names}; its requests fail until it is set")

    def _update_redactions(self) -> None:
        if self.recorder is None:
            return
        secrets: list[str] = []
        for rule in self.rules:
            auth = rule.spec.auth
            if auth is not None:
                secrets += [v for v in (auth.header_value, auth.param_value, auth.aws_secret_access_key) if v]
        self.recorder.set_redactions(tuple(_with_bare_tokens(secrets)))

    async def _watch_rules(self) -> None:
        while True:
            await asyncio.sleep(RULES_POLL_SECONDS)
            try:
                self.reload_if_changed()
            except Exception:  # an unexpected error must not end the watcher: later edits would go unseen
                log.exception("AI proxy: rules reload failed, previous rules stay in force")

    def reload_if_changed(self) -> bool:
        """Reload the rules file if it changed on disk; a bad edit is refused and the old rules stay."""
        path = self.rules_path
        if path is None or _stamp(path) == self._rules_stamp:
            return False
        try:
            self._install_rules(path)
            return True
        except RulesError as e:
            self._rules_stamp = _stamp(path)  # report a bad edit once, not every second
            log.error(f"AI proxy: {path} refused, previous rules stay in force: {e}")
            return False

    # ---- hooks --------------------------------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None:
            return
        try:
            found = find_rule(self.rules, flow.request.host, flow.request.path, flow.request.method, flow)
        except Exception:
            log.exception("AI proxy: rule matching failed")
            flow.response = error_response(ProxyError(502, "AI proxy failed to match the request"))
            return
        if found is None:
            return
        rule, captures = found
        auth = rule.spec.auth
        key_param = (auth.param_name,) if auth is not None and auth.param_name else ()
        try:
            ex = Exchange(
                rule=rule,
                provider=provider_for(rule),
                client_url=_client_url(flow.request, key_param),
                client_body=flow.request.raw_content or b"",
            )
        except Exception:  # an exception escaping the hook would forward the flow unchanged to its original host
            log.exception(f"AI proxy: rule '{rule.name}' failed to read the request")
            flow.response = error_response(ProxyError(502, "AI proxy failed to read the request", code="proxy_error"))
            _redact_client_credentials(flow.request, key_param)
            return
        self._exchanges[flow.id] = ex
        try:
            if rule.spec.route_type == "preserve":
                self._forward_preserve(flow, ex, captures)
                return
            if rule.spec.llm_format != "openai":
                await self._forward_native(flow, ex, captures)
                return
            call = self._prepare(flow, ex, captures)
            setup = ex.provider.blocking_setup(call)
            if setup is not None:
                await asyncio.to_thread(setup)  # e.g. the first look-up of the AWS credential chain
            if call.auth is not None and call.auth.gcp_use_service_account:
                # Fetched off the event loop, cached and refreshed before expiry by the token source.
                call.access_token = await self._gcp_tokens().token(call.auth)
            self._forward(flow, ex, call)
        except ProxyError as e:
            ex.local_error = e
            flow.response = error_response(e)
        except Exception:
            log.exception(f"AI proxy: rule '{rule.name}' failed to translate the request")
            ex.local_error = ProxyError(502, "AI proxy failed to translate the request", code="proxy_error")
            flow.response = error_response(ex.local_error)
        finally:
            if ex.local_error is not None:
                # answered here: keep the client's key out of logs, UI
                _redact_client_credentials(flow.request, key_param)

    # ---- native formats (llm_format): the client's own provider SDK, passed through and recorded ------------

    async def _forward_native(self, flow: http.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        """The client's native request, unchanged, to the rule's provider with the rule's credentials. Errors
        made here are answered in the provider's own error shape, so the client's SDK raises its usual type."""
        request = flow.request
        fmt = native.FORMATS[ex.rule.spec.llm_format]
        try:
            headers = {
                k.decode("latin-1").lower(): v.decode("utf-8", "surrogateescape") for k, v in request.headers.fields
            }
            ex.client_headers = headers
            path, _, _ = request.path.partition("?")
            query = list(request.query.items(multi=True)) if "?" in request.path else []
            spec = ex.rule.spec
            ex.rule.check_env()
            tctx = TemplateContext(headers, captures, dict(query))
            options = ex.rule.resolve_options(tctx)
            auth = spec.auth
            setup = native.blocking_setup(fmt, options, auth)
            if setup is not None:
                await asyncio.to_thread(setup)  # the first look-up of the AWS credential chain
            token = None
            if auth is not None and auth.gcp_use_service_account:
                token = await self._gcp_tokens().token(auth)
            up = native.build_request(
                fmt,
                native.NativeRequest(request.method, path, query, headers, request.raw_content or b""),
                route_type=spec.route_type,
                options=options,
                auth=auth,
                configured_model=ex.rule.resolve_model_name(tctx),
                max_body=spec.max_request_body_size,
                access_token=token,
            )
            ex.native, ex.call = up, up.call
            ex.upstream_body = up.request_json if isinstance(up.request_json, dict) else None
            ex.secrets = tuple(_with_bare_tokens(up.secrets))
            ex.secret_params = (auth.param_name,) if auth and auth.param_name else ()
            ex.upstream_url = redact_url(up.url, set(ex.secret_params))
            _send_to(request, up.method, up.url, up.headers, up.body)
            self._annotate(flow, ex, up.model)
        except Exception as e:
            if isinstance(e, ProxyError):
                ex.local_error = e
            else:
                log.exception(f"AI proxy: rule '{ex.rule.name}' failed to build the native request")
                ex.local_error = ProxyError(502, "AI proxy failed to forward the request", code="proxy_error")
            body, extra = fmt.error_body(ex.local_error)
            flow.response = http.Response.make(
                ex.local_error.status, body, {"content-type": "application/json", **extra, **ex.local_error.headers}
            )

    def _native_responseheaders(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None and ex.native is not None
        ex.upstream_status = response.status_code
        if ex.rule.spec.model_name_header and response.status_code < 400:
            response.headers[MODEL_HEADER] = f"{ex.provider.name}/{ex.native.model or ''}"
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 300 or not (ex.native.stream or native.is_stream_response(content_type)):
            return  # a whole body: recorded in `response`
        try:
            recorder = native.FORMATS[ex.rule.spec.llm_format].recorder(ex.rule.spec.logging.log_payloads)
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to start recording the stream")
            response.stream = True  # still the provider's bytes, unchanged
            return
        ex.translator = recorder

        def observe(data: bytes) -> bytes | list[bytes]:
            # The bytes go to the client unchanged; decoding them is only for the record.
            try:
                if data:
                    recorder.feed(data)
                else:
                    recorder.finish()
            except Exception:
                log.exception(f"AI proxy: rule '{ex.rule.name}' failed to record a stream chunk")
            return data if data else []

        response.stream = observe

    def _native_response(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None and ex.native is not None
        ex.upstream_status = response.status_code
        if response.timestamp_end and flow.request.timestamp_end:
            ex.latency_ms = round((response.timestamp_end - flow.request.timestamp_end) * 1000, 1)
        if ex.translator is not None:
            self._finish_stream(ex, flow.request.timestamp_end, response.timestamp_end)
            return
        raw = response.get_content(strict=False) or b""
        ex.upstream_response = raw
        ex.status = response.status_code
        fmt = native.FORMATS[ex.rule.spec.llm_format]
        ex.client_response, _ = native.response_record(fmt, response.status_code, raw, response.headers)
        if not ex.client_response.get("model") and "error" not in ex.client_response:
            ex.client_response["model"] = ex.native.model

    def _gcp_tokens(self) -> Any:
        if self._gcp is None:
            from .gcp_auth import GcpTokenSource  # google-auth is only loaded when a rule needs it

            self._gcp = GcpTokenSource()
        return self._gcp

    def _prepare(self, flow: http.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> Call:
        request = flow.request
        body = ex.client_body = _client_body(request, ex.rule.spec.max_request_body_size)  # recorded decoded
        query = dict(request.query.items()) if "?" in request.path else {}
        # One pass over the raw header fields: mitmproxy's Headers look-ups scan every field each time.
        headers = {k.decode("latin-1").lower(): v.decode("utf-8", "surrogateescape") for k, v in request.headers.fields}
        ex.client_headers = headers
        client = ClientRequest(headers, query, headers.get("content-type", ""), body)
        ex.call = prepare_call(ex.rule, captures, client)
        return ex.call

    def _forward(self, flow: http.HTTPFlow, ex: Exchange, call: Call) -> None:
        request = flow.request
        client_headers = ex.client_headers
        up = build_upstream(ex.rule, call)
        auth = ex.rule.spec.auth
        body_auth = auth is not None and auth.param_location == "body" and up.body is not None
        # The record keeps the upstream body as it was before credentials were added to it.
        ex.upstream_body = dict(up.body) if body_auth and up.body is not None else up.body
        secrets = apply_auth(up, auth, client_headers, call.client_query)
        if call.access_token:
            secrets.append(call.access_token)  # a GCP token, per request: redacted by value like the others
        ex.secrets = tuple(_with_bare_tokens(secrets))
        ex.secret_params = (auth.param_name,) if auth and auth.param_name else ()
        ex.upstream_url = redact_url(up.url, set(ex.secret_params))

        body = jsonutil.dumps(up.body) if up.body is not None else b""
        ex.provider.sign(call, up, body)
        headers = {name: client_headers[name] for name in _FORWARDED_CLIENT_HEADERS if name in client_headers}
        headers.update(up.headers)
        if not call.stream:
            headers["accept-encoding"] = "gzip, deflate"
        else:
            headers["accept-encoding"] = "identity"  # stream chunks must arrive undecoded
        _send_to(request, up.method, up.url, headers, body)
        self._annotate(flow, ex, call.model)

    def _forward_preserve(self, flow: http.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        """route_type preserve: the client's request as it is, with the provider's URL and the rule's auth."""
        request = flow.request
        query = dict(request.query.items()) if "?" in request.path else {}
        headers = {k.decode("latin-1").lower(): v.decode("utf-8", "surrogateescape") for k, v in request.headers.fields}
        ex.client_headers = headers
        body = ex.client_body = _client_body(request, ex.rule.spec.max_request_body_size)  # recorded decoded
        pre = preserve.build(ex.rule, captures, request.method, request.path, query, headers, body)
        ex.preserved = True
        ex.preserved_model = pre.model
        auth = ex.rule.spec.auth
        up = UpstreamRequest(url=pre.url, body=None, headers=pre.headers, method=pre.method)
        if auth is not None and auth.param_location == "body":
            try:
                up.body = jsonutil.loads(body)
            except ValueError:
                raise bad_request("this route adds a key to a JSON body, and the request body is not JSON") from None
        secrets = apply_auth(up, auth, headers, query)
        ex.secrets = tuple(_with_bare_tokens(secrets))
        ex.secret_params = (auth.param_name,) if auth and auth.param_name else ()
        ex.upstream_url = redact_url(up.url, set(ex.secret_params))
        if up.body is not None:
            body = jsonutil.dumps(up.body)
        _send_to(request, up.method, up.url, up.headers, body)
        self._annotate(flow, ex, pre.model)

    def _annotate(self, flow: http.HTTPFlow, ex: Exchange, model: str | None) -> None:
        flow.metadata["ai_proxy"] = {
            "rule": ex.rule.name,
            "provider": ex.provider.name,
            "model": model,
            "original_url": ex.client_url,
            "upstream_url": ex.upstream_url,
        }

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex = self._exchanges.get(flow.id)
        if ex is None or ex.local_error is not None:
            return
        # The request has left: take the credentials out of the flow so mitmweb, dumps and logs never show them.
        self._scrub_request(flow, ex)
        response = flow.response
        if ex.preserved and response is not None:
            if "event-stream" in response.headers.get("content-type", ""):
                response.stream = True  # passed through as it arrives
            return
        if ex.native is not None:
            if response is not None:
                try:
                    self._native_responseheaders(flow, ex)
                except Exception:  # the provider's answer still reaches the client; only the record suffers
                    log.exception(f"AI proxy: rule '{ex.rule.name}' failed to inspect the native response")
            return
        if ex.call is None or not ex.call.stream or response is None or response.status_code >= 300:
            return  # errors and plain answers are translated whole in `response`
        try:
            self._start_stream(flow, ex)
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to start the stream translation")
            ex.local_error = ProxyError(502, "AI proxy failed to translate the upstream stream", code="proxy_error")
            response.stream = lambda data: [] if data else ex.local_error.body()  # type: ignore[union-attr]
            response.status_code = 502
            response.headers = http.Headers([(b"content-type", b"application/json")])

    def _start_stream(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None and ex.call is not None
        client_asked_usage = bool((ex.call.body.get("stream_options") or {}).get("include_usage"))
        ex.call.response_headers = response.headers
        translator = ex.provider.stream_translator(ex.call, client_asked_usage, ex.rule.spec.logging.log_payloads)
        ex.translator = translator
        ex.upstream_status = response.status_code
        headers = response.headers
        # Asked for identity, an upstream may compress all the same: the chunks are then decoded as they come.
        decode = encodings.stream_decoder(headers.get("content-encoding", ""))
        for name in ("content-length", "content-encoding", "transfer-encoding"):
            headers.pop(name, None)
        headers["content-type"] = "text/event-stream; charset=utf-8"
        headers["cache-control"] = "no-cache"
        if ex.rule.spec.model_name_header:
            headers[MODEL_HEADER] = f"{ex.provider.name}/{ex.call.model or ''}"
        if flow.request.http_version == "HTTP/1.1":
            headers["transfer-encoding"] = "chunked"  # the translated size is unknown in advance

        def translate(data: bytes) -> bytes | list[bytes]:
            # Called by mitmproxy for every received chunk and a final b"". Never return b"" mid-stream: on
            # HTTP/1 an empty chunk ends the body.
            try:
                if not data:
                    out = translator.finish()
                else:
                    if decode is not None:
                        data = decode(data)
                    out = translator.feed(data) if data else b""
            except Exception:
                log.exception(f"AI proxy: rule '{ex.rule.name}' failed to translate a stream chunk")
                translator.result.error = stream_error("AI proxy failed to translate the stream", code="proxy_error")
                out = b"data: " + translator.result.error.body() + b"\n\n"
                translator.feed = lambda _data: b""  # type: ignore[method-assign]
            return out if out else []

        response.stream = translate

    def response(self, flow: http.HTTPFlow) -> None:
        ex = self._exchanges.pop(flow.id, None)
        if ex is None:
            return
        try:
            if ex.local_error is None:
                self._scrub_request(flow, ex)
                if ex.native is not None:
                    self._native_response(flow, ex)
                else:
                    self._translate_response(flow, ex)
            else:
                ex.status = ex.local_error.status
                ex.client_response = ex.local_error.envelope()
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to translate the response")
            err = ProxyError(502, "AI proxy failed to translate the upstream response", code="proxy_error")
            flow.response = error_response(err)
            ex.status, ex.client_response = 502, err.envelope()
        self._finish(flow, ex)

    def error(self, flow: http.HTTPFlow) -> None:
        ex = self._exchanges.pop(flow.id, None)
        if ex is None:
            return
        try:
            self._scrub_request(flow, ex)
            if ex.translator is not None:
                self._finish_stream(ex, flow.request.timestamp_end, time.time())
                if not ex.translator.result.completed:
                    # The client or the upstream hung up mid-stream: say so in the record.
                    ex.error = ex.error or (flow.error.msg if flow.error else "stream interrupted")
                # A hang-up after the end of a complete stream is how OpenAI SDKs close: not an error.
            else:
                ex.error = flow.error.msg if flow.error else "unknown error"
                if ex.status is None:
                    ex.status = 502 if ex.upstream_status is None else ex.upstream_status
        except Exception:  # the record is still written, with what is known
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to finish an interrupted exchange")
            ex.error = ex.error or (flow.error.msg if flow.error else "unknown error")
            ex.status = ex.status or 502
        self._finish(flow, ex)

    def _finish_stream(self, ex: Exchange, request_end: float | None, end: float | None) -> None:
        assert ex.translator is not None and ex.call is not None
        result = ex.translator.result
        if request_end:
            if end:
                ex.latency_ms = round((end - request_end) * 1000, 1)
            if result.first_token_at:
                ex.ttft_ms = round((result.first_token_at - request_end) * 1000, 1)
        ex.status = ex.upstream_status
        if result.error is not None:
            ex.error = result.error.message
        response = result.assembled(ex.call.route_type, "stream")
        ex.client_response = response if response is not None else {"model": result.model, "usage": result.usage}

    # ---- helpers ------------------------------------------------------------------------------------------

    def _scrub_request(self, flow: http.HTTPFlow, ex: Exchange) -> None:
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
            content = data.content or b""
            for secret in sorted(ex.secrets, key=len, reverse=True):
                spelled = jsonutil.dumps(secret)[1:-1]  # as it sits inside a JSON string
                if len(secret) >= 4 and spelled in content:
                    content = content.replace(spelled, b"REDACTED")
            data.content = content

    def _translate_response(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None
        ex.upstream_status = response.status_code
        if response.timestamp_end and flow.request.timestamp_end:
            ex.latency_ms = round((response.timestamp_end - flow.request.timestamp_end) * 1000, 1)
        if ex.preserved:
            ex.status = response.status_code
            if not response.stream:
                raw = response.get_content(strict=False) or b""
                ex.upstream_response = raw
                usage, data = preserve.usage_of(response.headers.get("content-type", ""), raw)
                ex.client_response = data if isinstance(data, dict) else {}
                if usage is not None:
                    ex.client_response = {**ex.client_response, "usage": usage}
                ex.client_response.setdefault("model", ex.preserved_model)
            return
        assert ex.call is not None
        if ex.translator is not None:
            self._finish_stream(ex, flow.request.timestamp_end, response.timestamp_end)
            return
        raw = response.get_content(strict=False) or b""
        ex.upstream_response = raw
        ex.call.response_headers = response.headers  # some providers report usage in headers
        error_headers: dict[str, str] = {}
        status, data = translate_response(
            ex.provider, ex.call, response.status_code, raw, response.headers.get("content-type", ""), error_headers
        )
        ex.status, ex.client_response = status, data
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        for name, value in response.headers.fields:
            lname = name.lower()
            if lname in _KEPT_RESPONSE_HEADERS or lname.startswith(_KEPT_RESPONSE_PREFIXES):
                headers.append((lname, value))
        kept = {k for k, _ in headers}
        headers += [
            (k.lower().encode(), v.encode()) for k, v in error_headers.items() if k.lower().encode() not in kept
        ]
        if ex.rule.spec.model_name_header and status < 400:
            model = data.get("model") or ex.call.model or ""
            headers.append((MODEL_HEADER.encode(), f"{ex.provider.name}/{model}".encode()))
        response.status_code = status
        response.reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        content = jsonutil.dumps(data)
        headers.append((b"content-length", str(len(content)).encode()))
        response.headers = http.Headers(headers)
        response.raw_content = content  # no content-encoding: set the bytes without re-encoding

    def _finish(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        try:
            ex.finished = time.time()
            flow.comment = record.comment(ex, record.usage_summary(ex, self.prices))
            if self.recorder is not None:
                # The record is assembled and serialised on the writer thread; the exchange is final here.
                flow_id, prices = flow.id, self.prices
                self.recorder.write(lambda: record.build(flow_id, ex, prices), ex.secrets)
        except Exception:
            log.exception("AI proxy: could not build the audit record")


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


def _send_to(request: http.Request, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
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


def _client_body(request: http.Request, limit: int) -> bytes:
    """The request body with its content-encoding undone, inflated at most a little over `limit` bytes."""
    return encodings.inflate_bounded(request.raw_content or b"", request.headers.get("content-encoding", ""), limit)


def _redact_client_credentials(request: http.Request, params: tuple[str, ...] = ()) -> None:
    fields = request.headers.fields
    if any(k.lower() in _SECRET_HEADERS for k, _ in fields):
        request.headers.fields = tuple((k, b"REDACTED" if k.lower() in _SECRET_HEADERS else v) for k, v in fields)
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


def _client_url(request: http.Request, params: tuple[str, ...] = ()) -> str:
    """The URL the client asked for (credentials in its query redacted, the rule's key parameter too)."""
    authority = request.host_header or hostport(request.scheme, request.host, request.port)
    path = request.path
    url = f"{request.scheme}://{authority}{path}"
    return redact_url(url, set(params)) if "?" in path else url


def _finish_at_exit(proxy_ref: weakref.ref[AIProxy]) -> None:
    """At interpreter exit, after the event loop has closed: exchanges that never got a response or error hook
    are recorded as cut off by the shutdown."""
    proxy = proxy_ref()
    if proxy is not None:
        proxy.finish_pending()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _with_bare_tokens(secrets: list[str]) -> list[str]:
    """Secrets plus the token part of 'Bearer xyz'-style values, so either spelling is redacted."""
    out = []
    for s in secrets:
        out.append(s)
        if " " in s:
            out.append(s.rsplit(" ", 1)[1])
    return out
