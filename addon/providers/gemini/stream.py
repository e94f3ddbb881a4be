"""Gemini streams (SSE or one JSON array) -> OpenAI chunks."""

from __future__ import annotations

import time
from typing import Any

from ... import jsonutil
from ...errors import default_error_type
from ...streaming import Decoder, FramedTranslator
from ...streams import FramingSniffer, JSONArrayDecoder, SSEDecoder
from ..base import Call, uses_functions
from .common import finish_reason, usage_of
from .errors import _stream_error_status
from .response import _parts, _tool_call


class GeminiStream(FramedTranslator):
    """Translates a streamGenerateContent body into OpenAI chunks, response object by response object.

    Every object is a complete GenerateContentResponse: `parts[].text` are deltas, `functionCall` parts arrive
    whole, `usageMetadata` is cumulative (the last one wins) and `finishReason` may repeat on every object
    (older models), so the end of the body, not a finishReason, ends the stream. Gemini sends no [DONE]: a body
    that ends before any finishReason was cut short. Each usageMetadata goes into the record as it arrives; the
    client's usage chunk still comes only at the end.
    """

    __slots__ = ("_array", "_finish", "_functions", "_sniffer", "_started", "_tools", "_usage_raw")
    provider = "gemini"
    incomplete = "ended before a finishReason"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._array = False
        self._sniffer = FramingSniffer()
        self._started = False
        self._finish: str | None = None
        self._tools = 0  # tool calls emitted so far (their OpenAI index)
        self._functions = uses_functions(call)  # deprecated API: answer with delta.function_call
        self._usage_raw: Any = None

    # ---- framing -------------------------------------------------------------------------------------------

    def _decoder_for(self, chunk: bytes) -> tuple[Decoder, bytes] | None:
        """Buffer until the first byte that is not whitespace or BOM: '[' is the JSON-array form, else SSE."""
        found = self._sniffer.sniff(chunk)
        if found is None:
            return None
        first, rest, head = found
        if first == b"[":
            self._array = True
            return JSONArrayDecoder(), rest
        return SSEDecoder(), head  # SSE drops the BOM and blank lines itself

    def _body_ended(self) -> bytes:
        """The end of the body is the end of the answer, once some object carried a finishReason."""
        if self._finish is None:
            return super()._body_ended()
        self._done = True
        reason = "function_call" if self._functions and self._finish == "tool_calls" else self._finish
        return self._start() + self.out.finish(reason, usage_of(self._usage_raw))

    def _event(self, event: Any) -> bytes:
        """One SSE event or JSON-array element: the GenerateContentResponse it holds."""
        if self._array:
            return self._object(event)
        if event.data == "[DONE]":  # not Gemini's, but some OpenAI-ish gateways in front of it add one
            return b""
        try:
            obj = jsonutil.loads(event.data)
        except ValueError:
            obj = _NOT_JSON
        return self._object(obj)

    # ---- translation ---------------------------------------------------------------------------------------

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.out.role()

    def _object(self, obj: Any) -> bytes:
        if self._done:
            return b""
        if obj is _NOT_JSON or not isinstance(obj, dict):
            return self._fail("gemini sent a stream event that is not a JSON object")
        err = obj.get("error")
        if isinstance(err, dict):
            status = _stream_error_status(err)
            rpc = err.get("status") if isinstance(err.get("status"), str) else None
            message = err.get("message") if isinstance(err.get("message"), str) else "gemini stream error"
            return self._fail(message, status=status, type=default_error_type(status), code=rpc or "stream_error")
        if not self._started:
            self.out.set_model(obj.get("modelVersion"))
        out = self._start()
        if "usageMetadata" in obj:
            self._usage_raw = obj["usageMetadata"]  # cumulative: the latest wins
            self.out.note_usage(usage_of(self._usage_raw))  # the record has it at once, should the stream be cut
        candidates = obj.get("candidates")
        if not candidates:
            feedback = obj.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._finish = "content_filter"
            return out
        first = candidates[0] if isinstance(candidates, list) else None
        candidate = first if isinstance(first, dict) else {}
        for part in _parts(candidate):
            if isinstance(part.get("text"), str):
                out += self.out.reasoning(part["text"]) if part.get("thought") else self.out.text(part["text"])
            elif isinstance(part.get("functionCall"), dict):
                call = _tool_call(part)
                fn = call["function"]
                if self._functions:
                    if self._tools:
                        return out + self._fail("gemini answered a functions request with several function calls")
                    out += self._function_delta(call)
                else:
                    out += self.out.tool_call_start(self._tools, call["id"], fn["name"])
                    out += self.out.tool_call_arguments(self._tools, fn["arguments"])
                self._tools += 1
        reason = finish_reason(candidate.get("finishReason"), self._tools > 0)
        if reason is not None:
            self._finish = reason
        return out

    def _function_delta(self, call: dict[str, Any]) -> bytes:
        """The deprecated `delta.function_call` (name first, then the arguments); the audit record gets the call
        as a tool call."""
        result = self.result
        if result.tool_calls is not None:
            result.tool_calls.append(call)
        out = self.out.function_call_delta(name=call["function"]["name"])
        out += self.out.function_call_delta(arguments=call["function"]["arguments"])
        if result.first_token_at is None:
            result.first_token_at = time.time()
        return out


_NOT_JSON = object()
