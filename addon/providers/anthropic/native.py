"""`llm_format: anthropic`: clients of the Anthropic SDKs (Claude Code, ...) pass through; the answer's usage,
model and errors are read in Anthropic's own shapes (see addon/native.py for the passthrough)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ... import jsonutil
from ...errors import ProxyError
from ...native import NativeFormat, NativeRecorder, _body_model, _SSERecorder
from .common import finish_reason, usage_of, usage_so_far_of

if TYPE_CHECKING:
    from ...spec import ModelOptions


class AnthropicFormat(NativeFormat):
    name = "anthropic"

    def base_url(self, options: ModelOptions) -> str:
        return "https://api.anthropic.com"

    def response_usage(self, data: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(data, dict):
            return None, None
        return usage_of(data.get("usage")), _body_model(data)

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        return AnthropicRecorder(keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        etype = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}.get(
            err.status, "not_found_error" if err.status == 404 else "request_too_large" if err.status == 413 else None
        )
        body = {"type": "error", "error": {"type": etype or "api_error", "message": err.message}}
        return jsonutil.dumps(body), {}


class AnthropicRecorder(_SSERecorder):
    """Messages SSE: `message_start` carries the model and the input usage, each `message_delta` the cumulative
    output usage (and, on newer APIs, the input counts too)."""

    def __init__(self, keep_payload: bool) -> None:
        super().__init__(keep_payload)
        self._raw_usage: dict[str, Any] = {}

    def _event(self, name: str, obj: dict[str, Any]) -> None:
        kind = obj.get("type") or name
        if kind == "message_start":
            message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
            if isinstance(message.get("model"), str):
                self.result.model = message["model"]
            self._merge(message.get("usage"))
        elif kind == "content_block_delta":
            self._token()
        elif kind == "message_delta":
            delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            if delta.get("stop_reason"):
                self.result.finish_reason = finish_reason(delta["stop_reason"])
            self._merge(obj.get("usage"))
        elif kind == "message_stop":
            self.result.completed = True
        elif kind == "error":
            err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
            self._error(err.get("message") or obj, 503 if err.get("type") == "overloaded_error" else 502)

    def _merge(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
            # Into the record as each count arrives: a stream cut after message_start keeps its input tokens.
            usage = usage_so_far_of(self._raw_usage)
            if usage is not None:
                self.result.usage = usage


ANTHROPIC_FORMAT = AnthropicFormat()
