"""TGI text-generation SSE (`/generate_stream`) -> OpenAI chunks, for `llama2_format: raw`."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...openai_format import CHAT
from ...streaming import SSETranslator
from ...streams import SSEEvent
from ..base import Call, as_str
from .raw import RAW_FINISH_REASONS, raw_stops, raw_usage
from .templates import strip_stop


class RawStream(SSETranslator):
    """Translates a TGI `/generate_stream` SSE stream (`data:{"token": {...}, "generated_text", "details"}`).

    Special tokens (`</s>`, `<|eot_id|>`) are skipped. Text that could be the start of a stop sequence is held
    back until it is known not to be one, because TGI sends the stop sequence's tokens before it stops and
    OpenAI's answer never contains it. The stream ends with the event whose `generated_text`/`details` is set.
    TGI counts tokens only in that last event's `details`: a stream cut off before it is recorded without usage.
    """

    __slots__ = ("_began", "_held", "_lead", "_max_stop", "_stops")
    provider = "llama2"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._stops = [s for s in raw_stops(call) if s]
        self._max_stop = max((len(s) for s in self._stops), default=0)
        self._held = ""  # the tail that may begin a stop sequence
        self._lead = call.route_type == CHAT  # still dropping the whitespace a chat answer starts with
        self._began = False

    def _event(self, sse: SSEEvent) -> bytes:
        data = sse.data
        if self._done:
            return b""
        out = b""
        if not self._began:
            self._began = True
            out = self.out.role()
        if data == "[DONE]":
            return out + self._end({})
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return out + self._fail("llama2 sent an event that is not JSON")
        if not isinstance(obj, dict):
            return out
        if "error" in obj:
            err = obj["error"]
            message = err.get("message") if isinstance(err, dict) else err
            code = obj.get("error_type")
            return out + self._fail(str(message or "llama2 stream error"), code=str(code) if code else "upstream_error")
        token = obj.get("token")
        if isinstance(token, dict) and not token.get("special") and isinstance(token.get("text"), str):
            out += self._text(token["text"])
        details = obj.get("details")
        if obj.get("generated_text") is not None or isinstance(details, dict):
            out += self._end(details if isinstance(details, dict) else {})
        return out

    def _text(self, text: str) -> bytes:
        if self._lead:
            text = text.lstrip()
            if not text:
                return b""
            self._lead = False
        if not self._max_stop:
            return self.out.text(text)
        held = self._held + text
        keep = 0
        for n in range(min(len(held), self._max_stop), 0, -1):
            tail = held[-n:]
            if any(s.startswith(tail) for s in self._stops):
                keep = n
                break
        self._held = held[len(held) - keep :] if keep else ""
        return self.out.text(held[: len(held) - keep])

    def _end(self, details: dict[str, Any]) -> bytes:
        self._done = True
        out = self.out.text(strip_stop(self._held, self._stops))
        self._held = ""
        reason = RAW_FINISH_REASONS.get(as_str(details.get("finish_reason")), "stop")
        return out + self.out.finish(reason, raw_usage(details))
