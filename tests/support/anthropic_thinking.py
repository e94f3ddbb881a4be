"""A fake Anthropic Messages API with extended thinking, as a FakeUpstream responder: it refuses what the real API
refuses (Anthropic's own error messages) and answers with signed thinking blocks whose signatures it remembers.

What it refuses (each a 400 invalid_request_error, after the anthropic SDK's ThinkingConfigEnabledParam and the
extended-thinking documentation):
* `budget_tokens` under 1,024, `max_tokens` not above `budget_tokens`;
* with thinking on: a temperature other than 1, any top_k, a top_p under 0.95, a forced tool_choice (any/tool), a
  final assistant turn (prefill), and a tool loop whose calling assistant turn does not start with its thinking
  ("Expected `thinking` or `redacted_thinking`, but found `tool_use`");
* any thinking / redacted_thinking block in the history that it did not issue (invalid signature), thinking on
  or off.

What it answers: with tools and no tool result in the last turn, [thinking?, tool_use get_weather]; else
[thinking?, text]. Thinking blocks come when thinking is on (one signed block, plus a redacted one when
`redacted`), streamed as the API streams them (thinking_delta pieces, then one signature_delta)."""

from __future__ import annotations

import threading
from typing import Any

from tests.support.fakes import Recorded, Reply, sse

THOUGHT = ["Weather needs ", "a lookup."]
FINAL = "It is 22C in Paris."
CALL_ID = "toolu_think01"
CALL_INPUT = {"city": "Paris"}


def _error(message: str) -> Reply:
    return Reply(status=400, json={"type": "error", "error": {"type": "invalid_request_error", "message": message}})


class ThinkingAnthropic:
    """The responder (`fake.responder = ThinkingAnthropic()`); `issued` holds every signature and redacted data it
    answered with, `refusals` every refusal message it sent."""

    def __init__(self, redacted: bool = False) -> None:
        self.redacted = redacted
        self.issued: list[str] = []
        self.refusals: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, req: Recorded) -> Reply:
        body = req.json
        problem = self.refusal(body)
        if problem:
            self.refusals.append(problem)
            return _error(problem)
        blocks = self._answer(body)
        if body.get("stream"):
            return Reply(chunks=_stream(blocks))
        stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        return Reply(json=_message(blocks, stop))

    # ---- the real API's refusals ------------------------------------------------------------------------------

    def refusal(self, body: dict[str, Any]) -> str | None:
        messages = body.get("messages") or []
        for i, m in enumerate(messages):
            for j, block in enumerate(m["content"] if isinstance(m.get("content"), list) else ()):
                proof = block.get("signature") if block.get("type") == "thinking" else block.get("data")
                if block.get("type") in ("thinking", "redacted_thinking") and proof not in self.issued:
                    return f"messages.{i}.content.{j}: Invalid `signature` in `{block['type']}` block"
        thinking = body.get("thinking")
        if not isinstance(thinking, dict) or thinking.get("type") == "disabled":
            return None
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            if body["max_tokens"] <= budget:
                return "`max_tokens` must be greater than `thinking.budget_tokens`."
        if body.get("temperature") not in (None, 1, 1.0):
            return "`temperature` may only be set to 1 when thinking is enabled or in extended thinking mode."
        if body.get("top_k") is not None:
            return "`top_k` must be unset when thinking is enabled."
        if body.get("top_p") is not None and body["top_p"] < 0.95:
            return "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled."
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return "Thinking may not be enabled when tool_choice forces tool use."
        return _history_refusal(messages)

    # ---- answers ----------------------------------------------------------------------------------------------

    def _sign(self, what: str) -> str:
        with self._lock:
            value = f"{what}-{len(self.issued) + 1:04d}-fake"
            self.issued.append(value)
            return value

    def _answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in ("enabled", "adaptive"):
            blocks.append({"type": "thinking", "thinking": "".join(THOUGHT), "signature": self._sign("sig")})
            if self.redacted:
                blocks.append({"type": "redacted_thinking", "data": self._sign("redacted")})
        last = body["messages"][-1]["content"]
        answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
        if body.get("tools") and not answered:
            blocks.append({"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": CALL_INPUT})
        else:
            blocks.append({"type": "text", "text": FINAL})
        return blocks


def _history_refusal(messages: list[dict[str, Any]]) -> str | None:
    if messages and messages[-1]["role"] == "assistant":
        return "This model does not support assistant message prefill when thinking is enabled."
    last = messages[-1]["content"] if messages else ""
    if len(messages) < 2 or not isinstance(last, list) or not any(b.get("type") == "tool_result" for b in last):
        return None
    calling = messages[-2]["content"]
    if isinstance(calling, list) and calling and calling[0].get("type") not in ("thinking", "redacted_thinking"):
        return (
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{calling[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start with a "
            "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
        )
    return None


def _message(blocks: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {
        "id": "msg_think01",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake-1",
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 40},
    }


def _ev(obj: dict[str, Any]) -> bytes:
    return sse(obj, obj["type"])


def _stream(blocks: list[dict[str, Any]]) -> list[bytes]:
    """The answer as the API streams it: thinking text in pieces then its signature, redacted thinking whole in its
    start event, text in one delta, tool input as partial JSON."""
    start = {**_message([], None), "usage": {"input_tokens": 30, "output_tokens": 1}}  # type: ignore[arg-type]
    events = [_ev({"type": "message_start", "message": start})]
    for i, block in enumerate(blocks):
        kind = block["type"]
        if kind == "thinking":
            events.append(
                _ev(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {**block, "thinking": "", "signature": ""},
                    }
                )
            )
            for piece in THOUGHT:
                delta = {"type": "thinking_delta", "thinking": piece}
                events.append(_ev({"type": "content_block_delta", "index": i, "delta": delta}))
            delta = {"type": "signature_delta", "signature": block["signature"]}
            events.append(_ev({"type": "content_block_delta", "index": i, "delta": delta}))
        elif kind == "redacted_thinking":
            events.append(_ev({"type": "content_block_start", "index": i, "content_block": block}))
        elif kind == "text":
            events.append(
                _ev({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
            )
            delta = {"type": "text_delta", "text": block["text"]}
            events.append(_ev({"type": "content_block_delta", "index": i, "delta": delta}))
        else:
            events.append(_ev({"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}}))
            delta = {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'}
            events.append(_ev({"type": "content_block_delta", "index": i, "delta": delta}))
        events.append(_ev({"type": "content_block_stop", "index": i}))
    stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
    events.append(_ev({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 40}}))
    events.append(_ev({"type": "message_stop"}))
    return events
