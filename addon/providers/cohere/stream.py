"""Streams: Cohere v2 SSE or v1 NDJSON -> OpenAI chunks."""

from __future__ import annotations

import uuid
from typing import Any

from ... import jsonutil
from ...openai_format import matched_stop
from ...streaming import Decoder, FramedTranslator
from ...streams import FramingSniffer, NDJSONDecoder, SSEDecoder
from ..base import Call
from .common import STOP_SEQUENCE, _dig, failure, finish_reason, usage_of, v1_tool_calls, v1_usage


class CohereStream(FramedTranslator):
    """Translates a Cohere stream into OpenAI chunks, event by event, in constant memory.

    The framing is chosen from the first byte that is not whitespace: `{` is v1 NDJSON (one JSON object per
    line; Kong's mock labels it text/event-stream), anything else v2 SSE. Events are dispatched on their JSON
    `type` (v2) or `event_type` (v1); the names of the two APIs do not overlap. Finish reason and usage arrive in
    the last event (`message-end`, `stream-end`), so the finish chunk and the usage chunk follow it at once.
    Cohere counts no token before that event: a stream cut off earlier is recorded without usage.
    """

    __slots__ = ("_body", "_plan_streamed", "_role_sent", "_sniffer", "_sse", "_v1_tool_calls")
    provider = "cohere"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._body = call.body
        self._sse = False
        self._sniffer = FramingSniffer()
        self._role_sent = False
        self._v1_tool_calls = 0  # v1 tool calls sent so far
        self._plan_streamed = False  # v1: the text leading tool calls was streamed by tool-calls-chunk events

    def _decoder_for(self, chunk: bytes) -> tuple[Decoder, bytes] | None:
        found = self._sniffer.sniff(chunk)
        if found is None:
            return None
        first, chunk, _ = found
        self._sse = first != b"{"
        return (SSEDecoder() if self._sse else NDJSONDecoder()), chunk

    def _decode(self, chunk: bytes) -> bytes:
        if self._sse:
            return super()._decode(chunk)
        # NDJSON is decoded a line at a time, so that the lines before a bad one are translated whatever the
        # chunking: the decoder raises for its whole input.
        out: list[bytes] = []
        start = 0
        while not self._done:
            end = chunk.find(b"\n", start) + 1
            if not end:
                out.append(super()._decode(chunk[start:] if start else chunk))
                break
            out.append(super()._decode(chunk[start:end]))
            start = end
        return b"".join(out)

    def _body_ended(self) -> bytes:
        last = "message-end" if self._sse else "stream-end"
        what = f"before {last}" if self._decoder is not None else "without any event"
        return self._fail(f"cohere stream ended {what}")

    def _event(self, event: Any) -> bytes:
        if self._sse:
            return self._sse_event(event.event, event.data)
        return self._dispatch(event, "")

    def _sse_event(self, name: str, data: str) -> bytes:
        if self._done or data == "[DONE]":  # some mocks append OpenAI's sentinel: tolerated
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("cohere sent an event that is not JSON")
        return self._dispatch(event, name)

    def _role(self) -> bytes:
        if self._role_sent:
            return b""
        self._role_sent = True
        return self.out.role()

    def _dispatch(self, event: Any, name: str) -> bytes:
        if self._done:
            return b""
        if not isinstance(event, dict):
            return self._fail("cohere sent an event that is not a JSON object")
        kind = event.get("type") or event.get("event_type")
        if not isinstance(kind, str):
            if name == "error" or "message" in event or "error" in event:
                kind = "error"
            elif "is_finished" in event:  # older /v1/generate streams carry no event_type
                kind = "stream-end" if event["is_finished"] else "text-generation"
            else:
                kind = name
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler else b""  # unknown events are ignored (versioning policy)

    # ---- v2 ------------------------------------------------------------------------------------------------

    def _message_start(self, event: dict[str, Any]) -> bytes:
        return self._role()

    def _content(self, event: dict[str, Any]) -> bytes:
        """content-start and content-delta: `delta.message.content` holds `text` or `thinking`."""
        content = _dig(event, "delta", "message", "content")
        if not isinstance(content, dict):
            return b""
        out = self._role()
        text = content.get("text")
        if isinstance(text, str) and text:
            out += self.out.text(text)
        thinking = content.get("thinking")
        if isinstance(thinking, str) and thinking:
            out += self.out.reasoning(thinking)
        return out

    def _tool_plan(self, event: dict[str, Any]) -> bytes:
        plan = _dig(event, "delta", "message", "tool_plan")
        return self._role() + self.out.text(plan) if isinstance(plan, str) and plan else b""

    def _tool_call_start(self, event: dict[str, Any]) -> bytes:
        call = _dig(event, "delta", "message", "tool_calls")
        if not isinstance(call, dict):
            return b""
        index = event.get("index") if isinstance(event.get("index"), int) else 0
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        call_id = call.get("id") or f"call_{uuid.uuid4().hex[:24]}"
        out = self._role() + self.out.tool_call_start(index, call_id, fn.get("name") or "")
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self.out.tool_call_arguments(index, arguments)
        return out

    def _tool_call_delta(self, event: dict[str, Any]) -> bytes:
        arguments = _dig(event, "delta", "message", "tool_calls", "function", "arguments")
        index = event.get("index") if isinstance(event.get("index"), int) else 0
        return self.out.tool_call_arguments(index, arguments) if isinstance(arguments, str) else b""

    def _message_end(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        reason = delta.get("finish_reason")
        return self._end(reason, usage_of(delta.get("usage")), delta.get("error"))

    def _end(self, reason: Any, found_usage: dict[str, Any] | None, detail: Any = None) -> bytes:
        self.out.note_usage(found_usage)  # a failed generation was counted too: the record keeps it
        err = failure(reason, detail)
        if err:
            return self._fail(err.message, status=err.status, code="generation_failed")
        self._done = True
        if reason == STOP_SEQUENCE:  # Cohere does not say which: the request's only one, if it had one
            self.result.stop_sequence = matched_stop(self._body, None)
        return self._role() + self.out.finish(finish_reason(reason), found_usage)

    # ---- v1 ------------------------------------------------------------------------------------------------

    def _stream_start(self, event: dict[str, Any]) -> bytes:
        return self._role()

    def _text_generation(self, event: dict[str, Any]) -> bytes:
        text = event.get("text")
        return self._role() + self.out.text(text) if isinstance(text, str) and text else b""

    def _tool_calls_chunk(self, event: dict[str, Any]) -> bytes:
        """v1 `tool-calls-chunk`: the text leading the tool calls arrives here, piece by piece; the calls' own
        fragments (`tool_call_delta`) are not used: `tool-calls-generation` repeats every call whole."""
        text = event.get("text")
        if isinstance(text, str) and text and not isinstance(event.get("tool_call_delta"), dict):
            self._plan_streamed = True
            return self._role() + self.out.text(text)
        return b""

    def _tool_calls_generation(self, event: dict[str, Any]) -> bytes:
        """v1 `tool-calls-generation`: the turn's tool calls, whole and id-less -> one OpenAI call each, with a
        synthesised id, its name in the first delta and its arguments in the next."""
        out = self._role()
        text = event.get("text")
        if isinstance(text, str) and text and not self._plan_streamed:
            out += self.out.text(text)
        self._plan_streamed = True
        return out + self._emit_v1_calls(event.get("tool_calls"))

    def _emit_v1_calls(self, raw: Any) -> bytes:
        out = b""
        for call in v1_tool_calls(raw):
            index = self._v1_tool_calls
            self._v1_tool_calls += 1
            fn = call["function"]
            out += self.out.tool_call_start(index, call["id"], fn["name"])
            out += self.out.tool_call_arguments(index, fn["arguments"])
        return out

    def _stream_end(self, event: dict[str, Any]) -> bytes:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        reason = event.get("finish_reason") or response.get("finish_reason")
        generations = response.get("generations")
        if reason is None and isinstance(generations, list) and generations and isinstance(generations[0], dict):
            reason = generations[0].get("finish_reason")  # /v1/generate
        out = b""
        if not self._v1_tool_calls and response.get("tool_calls") and not failure(reason):
            out = self._role() + self._emit_v1_calls(response["tool_calls"])  # no tool-calls-generation was sent
        if self._v1_tool_calls and reason in (None, "COMPLETE"):
            reason = "TOOL_CALL"  # v1 says COMPLETE when it asks for tool calls
        return out + self._end(reason, v1_usage(response) or v1_usage(event))

    def _stream_error(self, event: dict[str, Any]) -> bytes:
        detail = event.get("err") or event.get("message") or event.get("error")
        if isinstance(detail, dict):
            detail = detail.get("message")
        message = str(detail) if detail else "cohere stream error"
        return self._fail(f"cohere: {message}")


_HANDLERS = {
    # v2 (SSE)
    "message-start": CohereStream._message_start,
    "content-start": CohereStream._content,
    "content-delta": CohereStream._content,
    "tool-plan-delta": CohereStream._tool_plan,
    "tool-call-start": CohereStream._tool_call_start,
    "tool-call-delta": CohereStream._tool_call_delta,
    "message-end": CohereStream._message_end,
    # v1 (NDJSON)
    "stream-start": CohereStream._stream_start,
    "text-generation": CohereStream._text_generation,
    "tool-calls-chunk": CohereStream._tool_calls_chunk,
    "tool-calls-generation": CohereStream._tool_calls_generation,
    "stream-end": CohereStream._stream_end,
    "stream-error": CohereStream._stream_error,
    "error": CohereStream._stream_error,
}
