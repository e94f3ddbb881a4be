"""The native route (`llm_format`): the client speaks its provider's own API; the request passes through with the
rule's credentials (re-signed where the provider signs), the answer passes back unchanged, and the native format
is decoded on the side for the record. Errors made here are in the provider's own error shape."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import flows, native
from ..errors import ProxyError
from ..record import Exchange
from ..spec import ModelOptions
from ..templating import TemplateContext
from .base import Route, Services, annotate, keep_secrets, upstream_body

log = logging.getLogger("ai_proxy")


class Native(Route):
    failure_message = "AI proxy failed to forward the request"

    async def forward(self, services: Services, flow: flows.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        request = flow.request
        fmt = self.adapter(ex)
        headers = ex.client_headers = flows.decode_headers(request)
        path, _, _ = request.path.partition("?")
        query = list(request.query.items(multi=True)) if "?" in request.path else []
        spec = ex.rule.spec
        ex.rule.check_env()
        tctx = TemplateContext(headers, captures, dict(query))
        options = ex.rule.resolve_options(tctx)
        auth = spec.auth
        setup = native.blocking_setup(fmt, options, auth)
        if setup is not None:
            await asyncio.to_thread(setup)  # e.g. the first look-up of the AWS credential chain
        token = await services.gcp_tokens().token(auth) if auth is not None and auth.gcp_use_service_account else None
        client = native.NativeRequest(request.method, path, query, headers, request.raw_content or b"")
        client, configured_model = self.prepare(ex, client, tctx, options)
        up = native.build_request(
            fmt,
            client,
            route_type=spec.route_type,
            options=options,
            auth=auth,
            configured_model=configured_model,
            max_body=spec.max_request_body_size,
            access_token=token,
        )
        ex.native, ex.call = up, up.call
        ex.upstream_body = up.request_json if isinstance(up.request_json, dict) else None
        keep_secrets(ex, up.secrets, auth, up.url)
        flows.send_to(request, up.method, up.url, up.headers, up.body)
        annotate(flow, ex, up.model)

    def adapter(self, ex: Exchange) -> native.NativeFormat:
        """The native format the exchange's client speaks: its provider's own."""
        return native.adapter(ex.provider)

    def prepare(
        self, ex: Exchange, client: native.NativeRequest, tctx: TemplateContext, options: ModelOptions
    ) -> tuple[native.NativeRequest, str | None]:
        """The request as it goes upstream, and the model the rule serves (None: any)."""
        return client, ex.rule.resolve_model_name(tctx)

    def error_body(self, ex: Exchange, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return self.adapter(ex).error_body(err)

    def response_headers(self, services: Services, flow: flows.HTTPFlow, ex: Exchange) -> None:
        if flow.response is None:
            return
        try:
            self._observe(flow, ex, flow.response)
        except Exception:  # the provider's answer still reaches the client; only the record suffers
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to inspect the native response")

    def _observe(self, flow: flows.HTTPFlow, ex: Exchange, response: flows.Response) -> None:
        assert ex.native is not None
        ex.upstream_status = response.status_code
        if ex.rule.spec.model_name_header and response.status_code < 400:
            response.headers[flows.MODEL_HEADER] = flows.header_text(f"{ex.provider.name}/{ex.native.model or ''}")
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 300 or not (ex.native.stream or native.is_stream_response(content_type)):
            return  # a whole body: recorded in `response`
        try:
            recorder = self.adapter(ex).recorder(ex.rule.spec.logging.log_payloads)
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to start recording the stream")
            response.stream = True  # still the provider's bytes, unchanged
            return
        ex.translator = recorder
        response.stream = _recording(ex, recorder)

    def response(self, flow: flows.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None and ex.native is not None
        raw = upstream_body(flow, ex)
        if raw is None:
            return
        ex.status = response.status_code
        fmt = self.adapter(ex)
        ex.client_response, _ = native.response_record(fmt, response.status_code, raw, response.headers)
        if not ex.client_response.get("model") and "error" not in ex.client_response:
            ex.client_response["model"] = ex.native.model


def _recording(ex: Exchange, recorder: Any) -> Any:
    """mitmproxy's stream callable: the bytes go to the client unchanged; decoding them is only for the record."""
    activity = ex.watchdog.activity if ex.watchdog is not None else flows.no_activity

    def observe(data: bytes) -> bytes | list[bytes]:
        activity()
        try:
            if data:
                recorder.feed(data)
            else:
                recorder.finish()
        except Exception:
            log.exception(f"AI proxy: rule '{ex.rule.name}' failed to record a stream chunk")
        return data if data else []

    return observe
