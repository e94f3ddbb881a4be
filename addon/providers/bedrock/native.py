"""Bedrock's native format (`llm_format: bedrock`): botocore clients' Converse, ConverseStream and InvokeModel
requests pass through, re-signed; usage and the model are read from the answer (headers, events) on the side."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ... import jsonutil
from ...errors import ProxyError
from ...native import NativeFormat, NativeRecorder, _count, _header_usage, _pair_usage
from ...streaming import usage_so_far
from ...streams import EventStreamDecoder
from .. import anthropic as _anthropic
from .common import finish_reason, resolve_region, usage_of

if TYPE_CHECKING:
    from ...spec import ModelOptions

_AWS_ERROR_TYPES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    413: "ValidationException",
    429: "ThrottlingException",
    503: "ServiceUnavailableException",
}


class BedrockFormat(NativeFormat):
    name = "bedrock"

    def base_url(self, options: ModelOptions) -> str:
        region = resolve_region(options)
        suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
        return f"https://bedrock-runtime.{region}{suffix}"

    def model_of(self, path: str, data: Any) -> str | None:
        # /model/{modelId}/converse | converse-stream | invoke | invoke-with-response-stream
        parts = path.split("/")
        if len(parts) >= 4 and parts[1] == "model":
            return unquote(parts[2]) or None
        return None

    def is_stream(self, path: str, query: Sequence[tuple[str, str]], data: Any) -> bool:
        return path.rstrip("/").endswith(("/converse-stream", "/invoke-with-response-stream"))

    def response_usage(self, data: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        usage = usage_of(data.get("usage")) if isinstance(data, dict) else None
        if usage is None:  # InvokeModel: the model's own body; Bedrock states the counts in headers
            usage = _header_usage(headers, "x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count")
        return usage, None

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        return BedrockRecorder(keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        etype = _AWS_ERROR_TYPES.get(err.status, "InternalServerException")
        return jsonutil.dumps({"message": err.message}), {"x-amzn-errortype": etype}


class BedrockRecorder(NativeRecorder):
    """ConverseStream (`metadata` event: usage) and InvokeModelWithResponseStream (`chunk` events whose base64
    `bytes` end with Bedrock's `amazon-bedrock-invocationMetrics`).

    ConverseStream counts nothing before `metadata`: a stream cut earlier has no usage. The invoke stream's
    chunks are the model's own events, and some count as they go (Claude's message_start and message_delta,
    Llama's prompt_token_count and generation_token_count): those counts are recorded as they arrive, and
    Bedrock's invocationMetrics at the end win."""

    def __init__(self, keep_payload: bool) -> None:
        super().__init__(keep_payload)
        self._decoder = EventStreamDecoder()
        self._model_usage: dict[str, Any] = {}  # the counts a model's own invoke-stream events carried so far

    def _decode(self, chunk: bytes) -> None:
        for msg in self._decoder.feed(chunk):
            self._message(msg.headers, msg.payload)

    def _flush(self) -> None:
        self._decoder.flush()

    def _message(self, headers: dict[str, Any], payload: bytes) -> None:
        mtype = headers.get(":message-type")
        if mtype in ("exception", "error"):
            name = headers.get(":exception-type") or headers.get(":error-code") or "error"
            try:
                body = jsonutil.loads(payload)
                message = body.get("message") or body.get("Message") if isinstance(body, dict) else None
            except ValueError:
                message = payload.decode("utf-8", "replace")
            self._error(f"{name}: {message or headers.get(':error-message') or ''}".strip(), 502)
            return
        event = headers.get(":event-type")
        obj = jsonutil.loads(payload) if payload else {}
        if not isinstance(obj, dict):
            return
        if event == "contentBlockDelta":
            self._token()
        elif event == "messageStop":
            self.result.finish_reason = finish_reason(obj.get("stopReason"))
            self.result.completed = True
        elif event == "metadata":
            usage = usage_of(obj.get("usage"))
            if usage is not None:
                self.result.usage = usage
            self.result.completed = True
        elif event == "chunk":
            self._token()
            raw = obj.get("bytes")
            inner = jsonutil.loads(base64.b64decode(raw)) if isinstance(raw, str) else None
            if isinstance(inner, dict):
                self._model_counts(inner)
            metrics = inner.get("amazon-bedrock-invocationMetrics") if isinstance(inner, dict) else None
            if isinstance(metrics, dict):
                usage = _pair_usage(metrics.get("inputTokenCount"), metrics.get("outputTokenCount"))
                if usage is not None:
                    self.result.usage = usage
                self.result.completed = True

    def _model_counts(self, inner: dict[str, Any]) -> None:
        """The counts of one invoke-stream event in the model's own format, into the record as they arrive."""
        kind = inner.get("type")
        if kind in ("message_start", "message_delta"):  # Anthropic's Messages events
            message = inner.get("message") if isinstance(inner.get("message"), dict) else {}
            raw = message.get("usage") if kind == "message_start" else inner.get("usage")
            if isinstance(raw, dict):
                self._model_usage.update({k: v for k, v in raw.items() if v is not None})
                usage = _anthropic.usage_so_far_of(self._model_usage)
                if usage is not None:
                    self.result.usage = usage
            return
        # Meta Llama: prompt_token_count on the first chunk (null after it), generation_token_count cumulative.
        for key, name in (("prompt", "prompt_token_count"), ("generation", "generation_token_count")):
            count = _count(inner.get(name))
            if count is not None:
                self._model_usage[key] = count
        if "prompt" in self._model_usage:
            self.result.usage = usage_so_far(self._model_usage["prompt"], self._model_usage.get("generation"))


BEDROCK_FORMAT = BedrockFormat()
