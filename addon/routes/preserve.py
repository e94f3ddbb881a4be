"""The preserve route (`route_type: preserve`): any endpoint (embeddings, model lists, audio...) passed through
with the provider's URL and the rule's credentials; usage is recorded when the answer carries it."""

from __future__ import annotations

from .. import flows, jsonutil, preserve
from ..auth import apply_auth
from ..errors import bad_request
from ..providers import UpstreamRequest
from ..record import Exchange
from .base import Route, Services, annotate, keep_secrets, latency


class Preserve(Route):
    async def forward(self, services: Services, flow: flows.HTTPFlow, ex: Exchange, captures: dict[str, str]) -> None:
        request = flow.request
        query = dict(request.query.items()) if "?" in request.path else {}
        headers = ex.client_headers = flows.decode_headers(request)
        body = ex.client_body = flows.client_body(request, ex.rule.spec.max_request_body_size)  # recorded decoded
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
        keep_secrets(ex, apply_auth(up, auth, headers, query), auth, up.url)
        if up.body is not None:
            body = jsonutil.dumps(up.body)
        flows.send_to(request, up.method, up.url, up.headers, body)
        annotate(flow, ex, pre.model)

    def response_headers(self, services: Services, flow: flows.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        if response is None:
            return
        ex.upstream_status = response.status_code  # a record cut off mid-stream still says what the client got
        if "event-stream" in response.headers.get("content-type", ""):
            response.stream = True  # passed through as it arrives

    def response(self, flow: flows.HTTPFlow, ex: Exchange) -> None:
        response = flow.response
        assert response is not None
        ex.upstream_status = ex.status = response.status_code
        latency(flow, ex)
        if response.stream:
            return
        raw = response.get_content(strict=False) or b""
        ex.upstream_response = raw
        usage, data = preserve.usage_of(response.headers.get("content-type", ""), raw)
        ex.client_response = data if isinstance(data, dict) else {}
        if usage is not None:
            ex.client_response = {**ex.client_response, "usage": usage}
        ex.client_response.setdefault("model", ex.preserved_model)
