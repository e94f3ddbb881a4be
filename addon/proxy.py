"""The mitmproxy addon: its lifecycle (options, rules, recorder) and its hooks, each a guard and a dispatch to the
rule's route (addon/routes/). The only module, with the routes and flows.py, that touches mitmproxy flows.

Fail closed: a flow that matches a rule is either answered by us or sent to the provider the rule names; an
exception anywhere answers 502 in the OpenAI envelope and never lets the flow reach its original host.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import time
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from . import audit, flows, record, recording_options, response_store, signature_store, upstream_faults, webview
from .errors import ProxyError
from .exchange import provider_for
from .record import Exchange
from .routes import interrupted, route_for
from .rules import Rule, RulesError, find_rule
from .rulesfile import file_stamp, load_rules
from .telemetry import Telemetry
from .watchdog import Watchdog

log = logging.getLogger("ai_proxy")

RULES_POLL_SECONDS = 1.0
# At shutdown, how long exchanges in flight may take to finish on their own (default of ai_shutdown_grace_ms).
SHUTDOWN_GRACE_MS = 2000
SHUTDOWN_POLL_SECONDS = 0.05
MODEL_HEADER = flows.MODEL_HEADER
error_response = flows.error_response


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
        self._proxyserver: Any = None
        self.telemetry = Telemetry()  # Prometheus, OpenTelemetry

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        response_store.add_options(loader)  # the Responses API's conversation store
        signature_store.add_options(loader)  # signed reasoning kept for clients whose format drops it
        loader.add_option("ai_rules", str, "rules.yaml", "Path of the AI proxy rules file (YAML).")
        recording_options.add_options(loader)
        loader.add_option(
            "ai_shutdown_grace_ms",
            int,
            SHUTDOWN_GRACE_MS,
            "At shutdown, how long (ms) AI exchanges in flight may take to finish before they are recorded as cut off.",
        )
        self.telemetry.add_options(loader)
        webview.register()  # the "AI Exchange" contentview of mitmweb and the console

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
        if updated & recording_options.NAMES:
            if self.recorder is not None:
                self.recorder.close()
            self.recorder = recording_options.recorder(ctx.options)
            self._update_redactions()
        self.telemetry.configure(updated, ctx.options)  # a bad value raises an OptionsError
        if "ai_shutdown_grace_ms" in updated and ctx.options.ai_shutdown_grace_ms < 0:
            raise exceptions.OptionsError("ai_shutdown_grace_ms must be 0 or more")
        if "connection_strategy" in updated and ctx.options.connection_strategy != "lazy":
            # Eager mode connects to the client's original host before any hook runs: offline it fails,
            # online it opens a useless connection to a host we never send the request to.
            ctx.options.update(connection_strategy="lazy")

    def running(self) -> None:
        self._running = True
        self._proxyserver = ctx.master.addons.get("proxyserver")
        upstream_faults.install()
        gc.freeze()  # start-up's objects live as long as the process: full collections need not walk them again
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
        webview.unregister()
        self.telemetry.close()
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
        stamp = file_stamp(path)
        rules = load_rules(path)
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
        self.recorder.set_redactions(tuple(flows.with_bare_tokens(secrets)))

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
        if path is None or file_stamp(path) == self._rules_stamp:
            return False
        try:
            self._install_rules(path)
            return True
        except RulesError as e:
            self._rules_stamp = file_stamp(path)  # report a bad edit once, not every second
            log.error(f"AI proxy: {path} refused, previous rules stay in force: {e}")
            return False

    # ---- services for the routes ---------------------------------------------------------------------------

    def gcp_tokens(self) -> Any:
        if self._gcp is None:
            from .credentials.gcp import GcpTokenSource  # google-auth is only loaded when a rule needs it

            self._gcp = GcpTokenSource()
        return self._gcp

    def response_store(self) -> response_store.ResponseStore:
        return response_store.store_for(ctx.options)

    def signature_store(self) -> signature_store.SignatureStore | None:
        return signature_store.store_for(ctx.options)

    def close_upstream(self, flow: http.HTTPFlow) -> None:
        upstream_faults.close_upstream(flow, self._proxyserver)

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
        options = rule.spec.model.options
        if options.input_cost is None and options.output_cost is None:
            self.prices.prepare()  # the price table loads in the background, once, when a rule first needs it
        auth = rule.spec.auth
        key_param = (auth.param_name,) if auth is not None and auth.param_name else ()
        key_header = (auth.header_name,) if auth is not None and auth.header_name else ()
        try:
            route = route_for(rule)
            ex = Exchange(
                rule=rule,
                provider=provider_for(rule),
                client_url=flows.client_url(flow.request, key_param),
                client_body=flow.request.raw_content or b"",
            )
        except Exception:  # an exception escaping the hook would forward the flow unchanged to its original host
            log.exception(f"AI proxy: rule '{rule.name}' failed to read the request")
            flow.response = error_response(ProxyError(502, "AI proxy failed to read the request", code="proxy_error"))
            flows.redact_client_credentials(flow.request, key_param, key_header)
            return
        self._exchanges[flow.id] = ex
        ex.client_close = flows.wants_close(flow.request)
        try:
            await route.forward(self, flow, ex, captures)
        except Exception as e:
            if not isinstance(e, ProxyError):
                log.exception(f"AI proxy: rule '{rule.name}' failed to build the upstream request")
                e = ProxyError(502, route.failure_message, code="proxy_error")
            ex.local_error = e
            flow.response = route.error_answer(ex, e)
        finally:
            if ex.local_error is not None:
                # answered here: keep the client's key out of logs, UI
                flows.redact_client_credentials(flow.request, key_param, key_header)
            elif flow.response is None and flow.live:
                self._watch(flow, ex)

    def _watch(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """Start the upstream timeouts of an exchange whose request is about to leave."""
        try:
            ex.watchdog = Watchdog(
                ex.rule.timeouts, lambda: flows.connected_ago(flow), lambda name: self._expired(flow, ex, name)
            )
        except Exception:  # the request still goes out, only without our timeouts
            log.exception(f"AI proxy: rule '{ex.rule.name}' could not start its upstream timeouts")

    def _expired(self, flow: http.HTTPFlow, ex: Exchange, name: str) -> None:
        """A timeout fired: close the upstream connection; mitmproxy then runs `error`, which answers the client."""
        try:
            ex.timeout = name
            log.info(f"AI proxy: rule '{ex.rule.name}': {ex.rule.timeouts.describe(name)}; closing it")
            if not upstream_faults.close_upstream(flow, self._proxyserver) and flow.killable:
                flow.kill()  # no connection to close (mitmproxy internals changed): at least free the client
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to act on an expired timeout")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex = self._exchanges.get(flow.id)
        if ex is None or ex.local_error is not None:
            return
        # The request has left: take the credentials out of the flow so mitmweb, dumps and logs never show them.
        flows.scrub_request(flow, ex)
        try:
            route_for(ex.rule).response_headers(self, flow, ex)
        finally:
            self._response_started(flow, ex)

    def _response_started(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """Headers are in: a stream's chunks now keep the idle timeout at bay; the client's Connection: close."""
        response = flow.response
        if response is None:
            return
        watchdog = ex.watchdog
        if response.stream is True:  # passed through as it arrives: still watched for silence
            response.stream = flows.passthrough_stream(watchdog.activity if watchdog is not None else None)
        ex.client_stream = bool(response.stream)
        if ex.client_stream:
            _pass_close(flow, ex, response)
        if watchdog is not None:
            watchdog.response_started(streamed=ex.client_stream)

    def response(self, flow: http.HTTPFlow) -> None:
        ex = self._take(flow)
        if ex is None:
            return
        try:
            if ex.local_error is None:
                flows.scrub_request(flow, ex)
                route_for(ex.rule).response(flow, ex)
            else:
                ex.status = ex.local_error.status
                ex.client_response = ex.local_error.envelope()
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to translate the response")
            err = ProxyError(502, "AI proxy failed to translate the upstream response", code="proxy_error")
            flow.response = error_response(err)
            ex.status, ex.client_response = 502, err.envelope()
        if flow.response is not None:
            _pass_close(flow, ex, flow.response)
        self._finish(flow, ex)

    def error(self, flow: http.HTTPFlow) -> None:
        ex = self._take(flow)
        if ex is None:
            return
        try:
            flows.scrub_request(flow, ex)
            interrupted(flow, ex, route_for(ex.rule))
        except Exception:  # the record is still written, with what is known
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to finish an interrupted exchange")
            ex.error = ex.error or (flow.error.msg if flow.error else "unknown error")
            ex.status = ex.status or 502
        self._finish(flow, ex)

    def _take(self, flow: http.HTTPFlow) -> Exchange | None:
        """The flow's exchange, which ends here (its timeouts stopped); None if it is not ours or already ended."""
        ex = self._exchanges.pop(flow.id, None)
        if ex is not None and ex.watchdog is not None:
            ex.watchdog.stop()
        return ex

    def _finish(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        try:
            ex.finished = time.time()
            usage = record.usage_summary(ex, self.prices)
            flow.comment = record.comment(ex, usage)
            if self.recorder is not None:
                # The record is assembled and serialised on the writer thread; the exchange is final here.
                flow_id, prices = flow.id, self.prices
                self.recorder.write(lambda: record.line(flow_id, ex, prices), ex.secrets)
            self.telemetry.observe(webview.finish(flow, ex, usage))  # neither raises
        except Exception:
            log.exception("AI proxy: could not build the audit record")


def _pass_close(flow: http.HTTPFlow, ex: Exchange, response: http.Response) -> None:
    """The client's `Connection: close` holds for our answer too (HTTP/1 only)."""
    if ex.client_close and not (flow.request.is_http2 or flow.request.is_http3):
        response.headers["connection"] = "close"


def _finish_at_exit(proxy_ref: weakref.ref[AIProxy]) -> None:
    """At interpreter exit, after the event loop has closed: exchanges that never got a response or error hook
    are recorded as cut off by the shutdown."""
    proxy = proxy_ref()
    if proxy is not None:
        proxy.finish_pending()
