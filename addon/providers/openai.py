"""OpenAI: the front format is the native format, so requests and responses pass through with the model and
the rule's tuning applied. Also the base of Azure, which differs only in URL and auth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import jsonutil
from ..errors import ProxyError, default_error_type
from ..extensions import BOOKKEEPING
from ..openai_format import CHAT, EMBEDDINGS, embeddings_passthrough
from ..streaming import OpenAIPassthrough
from .base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    build_url,
    register,
    upstream_error,
)

if TYPE_CHECKING:
    from ..spec import ModelOptions

_PATHS = {CHAT: "/v1/chat/completions", "llm/v1/completions": "/v1/completions", EMBEDDINGS: "/v1/embeddings"}


class OpenAI(Provider):
    name = "openai"
    # The account fields, participant names and image detail too.
    optional_fields = frozenset({"reasoning_effort", "parallel_tool_calls", "name", "image_detail", *BOOKKEEPING})
    forwards_body = True  # an OpenAI client's extensions (cache_control, thinking_blocks) reach it as sent
    api_base = "https://api.openai.com"
    price_id = "openai"
    supports_streaming = True  # the stream is already in the client's format: passed through as it arrives
    serves_responses = True

    def responses_base(self, options: ModelOptions) -> str:
        return "https://api.openai.com"

    def build_request(self, call: Call) -> UpstreamRequest:
        url = build_url(call.options, "https://api.openai.com", _PATHS[call.route_type])
        return UpstreamRequest(url=url, body=self.body(call))

    def body(self, call: Call) -> dict[str, Any]:
        body = dict(call.body)
        if call.model:
            body["model"] = call.model
        if call.route_type == EMBEDDINGS:
            return body  # passed through as it is (encoding_format, dimensions, user included)
        if call.options.top_k is not None:
            body.pop("top_k", None)  # OpenAI has no top_k and refuses it: a rule's top_k is for other providers
        body["stream"] = call.stream
        if call.stream and self.asks_stream_usage(call):
            # Ask for the usage chunk so the record has tokens; the client only sees it if it asked too.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return body

    def asks_stream_usage(self, call: Call) -> bool:
        return True

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> OpenAIPassthrough:
        return OpenAIPassthrough(call.route_type, not include_usage, keep_payload)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            return embeddings_passthrough(data, call.model or "")  # the upstream already encoded as asked
        expected = "chat.completion" if call.route_type == CHAT else "text_completion"
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamFormatError(f"expected a {expected} object with 'choices'")
        return data

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        err = upstream_error(status, body, content_type, self.name)
        try:
            data = jsonutil.loads(body) if body else None
        except ValueError:
            return err
        upstream = data.get("error") if isinstance(data, dict) else None
        if isinstance(upstream, dict) and isinstance(upstream.get("message"), str):
            # Already the client's envelope: kept whole (Azure's innererror.content_filter_result, for one).
            if not isinstance(upstream.get("type"), str):
                err.type = default_error_type(err.status)  # Azure's null type, not its numeric `status`
            return _UpstreamEnvelope(err, upstream)
        return err


class _UpstreamEnvelope(ProxyError):
    """An upstream error that is already in the OpenAI envelope, answered with its extra fields kept."""

    def __init__(self, err: ProxyError, upstream: dict[str, Any]) -> None:
        super().__init__(err.status, err.message, type=err.type, code=err.code, param=err.param, headers=err.headers)
        self.upstream = upstream

    def envelope(self) -> dict[str, Any]:
        out = super().envelope()
        out["error"] = {**self.upstream, **out["error"]}
        return out


OPENAI = register(OpenAI())
