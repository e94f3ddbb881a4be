"""`llm_format: cohere`: clients of the Cohere SDKs pass through; the answer's usage, finish reason and errors are
read in Cohere's own shapes, v2 SSE or v1 NDJSON (see addon/native.py for the passthrough)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ... import jsonutil
from ...errors import ProxyError
from ...native import NativeFormat, NativeRecorder, _SniffingRecorder
from ...streams import NDJSONDecoder, SSEDecoder
from .common import BASE_URL, failure, finish_reason, usage_of, v1_usage

if TYPE_CHECKING:
    from ...spec import ModelOptions


class CohereFormat(NativeFormat):
    name = "cohere"

    def base_url(self, options: ModelOptions) -> str:
        return BASE_URL

    def response_usage(self, data: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(data, dict):
            return None, None
        return usage_of(data.get("usage")) or v1_usage(data), None

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        return CohereRecorder(keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return jsonutil.dumps({"message": err.message}), {}


class CohereRecorder(_SniffingRecorder):
    """v2 SSE (`message-end` carries usage) or v1 NDJSON (`stream-end` carries the whole response)."""

    def _framing(self, first: bytes) -> SSEDecoder | NDJSONDecoder:
        return NDJSONDecoder() if first == b"{" else SSEDecoder()

    def _items(self, items: list[Any]) -> None:
        for item in items:
            if isinstance(self._decoder, SSEDecoder):
                if item.data == "[DONE]":
                    continue
                obj = jsonutil.loads(item.data)
            else:
                obj = item
            if isinstance(obj, dict):
                self._event(obj)

    def _event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type") or obj.get("event_type")
        if kind in ("content-delta", "text-generation", "tool-call-delta", "tool-call-start"):
            self._token()
        elif kind == "message-end":
            delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            self._end(delta.get("finish_reason"), usage_of(delta.get("usage")), delta.get("error"))
        elif kind == "stream-end":
            response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
            self._end(obj.get("finish_reason"), v1_usage(response), None)
        elif kind == "stream-error" or (kind is None and obj.get("message") and len(obj) <= 3):
            self._error(obj.get("message") or obj.get("error") or obj)

    def _end(self, reason: Any, usage: dict[str, Any] | None, detail: Any) -> None:
        if usage is not None:
            self.result.usage = usage
        self.result.finish_reason = finish_reason(reason)
        failed = failure(reason, detail)
        if failed is not None:
            self._error(failed.message, failed.status)
        self.result.completed = True


COHERE_FORMAT = CohereFormat()
