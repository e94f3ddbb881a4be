"""`llm_format: gemini`: clients of the Gemini SDKs pass through; the request's model and stream flag, and the
answer's usage, model and errors, are read in Gemini's own shapes (see addon/native.py for the passthrough)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ... import jsonutil
from ...errors import ProxyError
from ...native import NativeFormat, NativeRecorder, _SniffingRecorder
from ...streams import JSONArrayDecoder, SSEDecoder
from .common import GEMINI_API, finish_reason, usage_of

if TYPE_CHECKING:
    from ...spec import ModelOptions

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GeminiFormat(NativeFormat):
    name = "gemini"

    def base_url(self, options: ModelOptions) -> str:
        g = options.gemini
        if g is None or not (g.project_id or g.location_id or g.api_endpoint):
            return GEMINI_API
        if g.api_endpoint:
            return g.api_endpoint if "://" in g.api_endpoint else f"https://{g.api_endpoint}"
        if not g.location_id or g.location_id == "global":
            return "https://aiplatform.googleapis.com"
        return f"https://{g.location_id}-aiplatform.googleapis.com"

    def model_of(self, path: str, data: Any) -> str | None:
        # /v1beta/models/{model}:op, /v1/projects/p/locations/l/publishers/google/models/{model}:op
        _, sep, rest = path.rpartition("/models/")
        if not sep:
            return None
        return unquote(rest.split(":", 1)[0].split("/", 1)[0]) or None

    def is_stream(self, path: str, query: Sequence[tuple[str, str]], data: Any) -> bool:
        return path.endswith(":streamGenerateContent")

    def response_usage(self, data: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        if isinstance(data, list):  # streamGenerateContent without alt=sse, answered in one piece
            usage, model = None, None
            for item in data:
                u, m = self.response_usage(item, headers)
                usage, model = u or usage, m or model
            return usage, model
        if not isinstance(data, dict):
            return None, None
        model = data.get("modelVersion")
        return usage_of(data.get("usageMetadata")), model if isinstance(model, str) else None

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        return GeminiRecorder(keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        status = _GEMINI_STATUS.get(err.status, "INTERNAL" if err.status >= 500 else "FAILED_PRECONDITION")
        return jsonutil.dumps({"error": {"code": err.status, "message": err.message, "status": status}}), {}


class GeminiRecorder(_SniffingRecorder):
    """streamGenerateContent: SSE (`?alt=sse`) or one JSON array; every object may carry usageMetadata (the last
    one is the total)."""

    def _framing(self, first: bytes) -> SSEDecoder | JSONArrayDecoder:
        return JSONArrayDecoder() if first == b"[" else SSEDecoder()

    def _flush(self) -> None:
        if self._decoder is not None:
            self._items(self._decoder.flush())
            if isinstance(self._decoder, JSONArrayDecoder):
                self.result.completed = self.result.completed or self.result.error is None

    def _items(self, items: list[Any]) -> None:
        for item in items:
            obj = item
            if isinstance(self._decoder, SSEDecoder):
                obj = jsonutil.loads(item.data)
            if isinstance(obj, dict):
                self._object(obj)

    def _object(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("error"), dict):
            err = obj["error"]
            self._error(err.get("message") or err, err.get("code") if isinstance(err.get("code"), int) else 502)
            return
        usage = usage_of(obj.get("usageMetadata"))
        if usage is not None:
            self.result.usage = usage
        if isinstance(obj.get("modelVersion"), str):
            self.result.model = obj["modelVersion"]
        for cand in obj.get("candidates") or ():
            if not isinstance(cand, dict):
                continue
            if cand.get("content"):
                self._token()
            if cand.get("finishReason"):
                self.result.finish_reason = finish_reason(cand["finishReason"])
                self.result.completed = True


GEMINI_FORMAT = GeminiFormat()
