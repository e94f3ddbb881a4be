"""Fake providers that sign their reasoning and refuse a conversation that does not send it back, as the real ones do:
the provider's side of a three-turn tool loop (turn 1 and 2 reason and call `add`, turn 3 answers in text).

- Claude on Anthropic's Messages API and on Bedrock Converse: each answer's thinking block carries a signature the
  fake issued; with thinking enabled, a request whose last assistant turn (the one whose tool calls the request
  answers) does not start with its thinking block is a 400 ("Expected `thinking` or `redacted_thinking`, but found
  `tool_use`"), and a thinking block whose signature the fake never issued for that text is a 400 ("Invalid
  `signature` in `thinking` block");
- Gemini 3: each functionCall part carries a thoughtSignature; a functionCall sent back without the signature the
  fake issued for it is a 400 INVALID_ARGUMENT ("Function call is missing a thought_signature").

The fakes reason on every turn (as with thinking on, whether or not the request turned it on: what comes back is
the point here). Each fake keeps the requests it got; `received` says, per request, which signatures came back."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.support.bedrock import BedrockReply, Seen, converse_answer
from tests.support.fakes import Recorded, Reply, sse
from tests.support.replies import gemini

FINAL = "The total is 4."
CALLS = [{"a": 1, "b": 1}, {"a": 2, "b": 2}]  # the add calls of turns 1 and 2; turn 3 answers FINAL
TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Adds two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
}


def thought(turn: int) -> str:
    return f"Turn {turn}: I should add with the tool."


class Signer:
    """Issues signatures for texts and knows which it issued (a provider's check of its own signatures); `turns`:
    the opaque tokens (signatures, redacted data) of each answer that reasoned, as `received` reads them back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.issued: dict[str, str] = {}
        self.turns: list[list[str]] = []

    def sign(self, text: str) -> str:
        signature = f"{self.name}-sig-" + hashlib.sha256(f"{self.name}:{text}".encode()).hexdigest()[:24]
        self.issued[signature] = text
        return signature

    def valid(self, text: str, signature: Any) -> bool:
        return isinstance(signature, str) and self.issued.get(signature) == text


def tool_results(messages: list[dict[str, Any]], kind: str) -> int:
    """How many tool results a request holds (blocks or parts with a `kind` key): the turn it is, less one."""
    blocks = [b for m in messages for b in _blocks(m)]
    return sum(1 for block in blocks if isinstance(block, dict) and kind in block)


def _blocks(message: dict[str, Any]) -> list[Any]:
    """A message's content blocks (Gemini: its parts)."""
    content = message.get("content", message.get("parts"))
    return content if isinstance(content, list) else []


# ---- Claude (Anthropic Messages API) ----------------------------------------------------------------------------

ANTHROPIC_MISSING = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{kind}`. When `thinking` is "
    "enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` "
    "and `tool_result` blocks). To avoid this requirement, disable `thinking`."
)


class FakeClaude:
    """Claude on the Messages API, as a FakeUpstream responder."""

    def __init__(self) -> None:
        self.signer = Signer("claude")

    def refusal(self, body: dict[str, Any]) -> str | None:
        messages = body.get("messages") or []
        for i, m in enumerate(messages):
            for block in m["content"] if isinstance(m.get("content"), list) else []:
                kind = block.get("type")
                if kind in ("thinking", "redacted_thinking") and not self._issued(block):
                    return f"messages.{i}.content.0: Invalid `signature` in `{kind}` block"
        thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if thinking and len(messages) >= 2 and tool_results(messages[-1:], "tool_use_id"):
            i = len(messages) - 2
            first = messages[i]["content"][0] if isinstance(messages[i]["content"], list) else {"type": "text"}
            if first.get("type") not in ("thinking", "redacted_thinking"):
                return ANTHROPIC_MISSING.format(i=i, kind=first.get("type"))
        return None

    def _issued(self, block: dict[str, Any]) -> bool:
        if block["type"] == "redacted_thinking":
            return block.get("data") in self.signer.issued
        return self.signer.valid(block.get("thinking"), block.get("signature"))

    def __call__(self, rec: Recorded) -> Reply:
        body = rec.json
        refused = self.refusal(body)
        if refused is not None:
            return Reply(400, json={"type": "error", "error": {"type": "invalid_request_error", "message": refused}})
        turn = tool_results(body["messages"], "tool_use_id") + 1
        content: list[dict[str, Any]] = []
        if turn <= len(CALLS):
            text = thought(turn)
            content.append({"type": "thinking", "thinking": text, "signature": self.signer.sign(text)})
            if turn == 1:  # turn 1 also redacts some reasoning
                content.append({"type": "redacted_thinking", "data": self.signer.sign(f"redacted {turn}")})
            self.signer.turns.append([b.get("signature") or b["data"] for b in content])
            content.append({"type": "tool_use", "id": f"toolu_0{turn}", "name": "add", "input": CALLS[turn - 1]})
        else:
            content.append({"type": "text", "text": FINAL})
        stop = "tool_use" if turn <= len(CALLS) else "end_turn"
        message = {"id": f"msg_0{turn}", "type": "message", "role": "assistant", "model": body.get("model"),
                   "content": content, "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": 30, "output_tokens": 20}}  # fmt: skip
        return Reply(chunks=anthropic_events(message)) if body.get("stream") else Reply(json=message)


def anthropic_events(message: dict[str, Any]) -> list[bytes]:
    """A Messages API answer as its stream: thinking_delta and signature_delta, input_json_delta in two pieces."""
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}
    out = [sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {"thinking": {"thinking": "", "signature": ""}, "text": {"text": ""}, "tool_use": {"input": {}}}
        shell = {**{k: v for k, v in block.items() if k not in ("thinking", "signature", "text", "input")}}
        shell.update(empty.get(kind, {}))  # redacted_thinking comes whole in its start event
        out.append(sse({"type": "content_block_start", "index": index, "content_block": shell}, "content_block_start"))
        if kind == "redacted_thinking":
            deltas = []
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "text":
            deltas = [{"type": "text_delta", "text": block["text"]}]
        else:
            arguments = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in (arguments[:5], arguments[5:])]
        out += [sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta") for d in deltas]
        out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
             "usage": {"output_tokens": 20}}  # fmt: skip
    return [*out, sse(delta, "message_delta"), sse({"type": "message_stop"}, "message_stop")]


def claude_signatures(body: dict[str, Any]) -> list[list[str]]:
    """Per assistant turn of a Messages request, the signatures of its thinking blocks and its redacted data."""
    return [
        [b["signature"] if b["type"] == "thinking" else b["data"] for b in m["content"] if "thinking" in b["type"]]
        for m in body["messages"]
        if m["role"] == "assistant" and isinstance(m["content"], list)
    ]


# ---- Claude on Bedrock Converse ---------------------------------------------------------------------------------


class FakeBedrockClaude:
    """Claude on Bedrock Converse, as a FakeBedrock responder."""

    def __init__(self) -> None:
        self.signer = Signer("bedrock")

    def refusal(self, body: dict[str, Any]) -> str | None:
        messages = body.get("messages") or []
        for i, m in enumerate(messages):
            for block in m["content"]:
                text = (block.get("reasoningContent") or {}).get("reasoningText")
                if text is not None and not self.signer.valid(text.get("text"), text.get("signature")):
                    return f"messages.{i}.content.0: Invalid `signature` in `thinking` block"
        thinking = "thinking" in (body.get("additionalModelRequestFields") or {})
        if thinking and len(messages) >= 2 and tool_results(messages[-1:], "toolResult"):
            i = len(messages) - 2
            first = messages[i]["content"][0]
            if "reasoningContent" not in first:
                return ANTHROPIC_MISSING.format(i=i, kind="tool_use" if "toolUse" in first else "text")
        return None

    def __call__(self, seen: Seen) -> BedrockReply:
        body = seen.json
        refused = self.refusal(body)
        if refused is not None:
            return BedrockReply(400, {"message": refused}, {"x-amzn-ErrorType": "ValidationException"})
        turn = tool_results(body["messages"], "toolResult") + 1
        if turn <= len(CALLS):
            text = thought(turn)
            arguments = json.dumps(CALLS[turn - 1])
            signature, redacted = self.signer.sign(text), f"UkVEQUNURUQ{turn}"  # turn 1 also redacts some reasoning
            blocks: list[tuple[Any, ...]] = [("reasoning", signature, text[:7], text[7:])]
            blocks += [("redacted", redacted)] if turn == 1 else []
            blocks.append(("tool", f"tooluse_0{turn}", "add", arguments[:5], arguments[5:]))
            self.signer.turns.append([signature, redacted] if turn == 1 else [signature])
            answer, frames = converse_answer(blocks, stop="tool_use")
        else:
            answer, frames = converse_answer([("text", FINAL)])
        return BedrockReply(frames=frames) if seen.path.endswith("/converse-stream") else BedrockReply(json=answer)


def bedrock_signatures(body: dict[str, Any]) -> list[list[str]]:
    """Per assistant turn of a Converse request, the signatures of its reasoning blocks and its redacted data."""
    return [
        [_opaque(b["reasoningContent"]) for b in m["content"] if "reasoningContent" in b]
        for m in body["messages"]
        if m["role"] == "assistant"
    ]


def _opaque(reasoning: dict[str, Any]) -> str:
    return reasoning["redactedContent"] if "redactedContent" in reasoning else reasoning["reasoningText"]["signature"]


# ---- Gemini 3 ---------------------------------------------------------------------------------------------------

GEMINI_MISSING = "Function call is missing a thought_signature in functionCall parts. This is required for tools."


class FakeGemini:
    """Gemini 3 on generateContent, as a FakeUpstream responder."""

    def __init__(self) -> None:
        self.signer = Signer("gemini")

    def __call__(self, rec: Recorded) -> Reply:
        body = rec.json
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                call = part.get("functionCall")
                if call is not None and not self.signer.valid(_signed_call(call), part.get("thoughtSignature")):
                    error = {"code": 400, "message": GEMINI_MISSING, "status": "INVALID_ARGUMENT"}
                    return Reply(400, json={"error": error})
        turn = tool_results(body.get("contents") or [], "functionResponse") + 1
        if turn <= len(CALLS):
            call = {"name": "add", "args": CALLS[turn - 1]}
            signature = self.signer.sign(_signed_call(call))
            parts = [{"text": thought(turn), "thought": True}, {"functionCall": call, "thoughtSignature": signature}]
            self.signer.turns.append([signature])
        else:
            parts = [{"text": FINAL, "thoughtSignature": self.signer.sign(FINAL)}]  # Gemini 3 signs text too
        answer = gemini(parts)
        if rec.path.endswith(":streamGenerateContent"):
            return Reply(chunks=[b"data: " + json.dumps(answer).encode() + b"\r\n\r\n"])
        return Reply(json=answer)


def _signed_call(call: dict[str, Any]) -> str:
    return f"{call.get('name')}:{json.dumps(call.get('args'), sort_keys=True)}"


def gemini_signatures(body: dict[str, Any]) -> list[list[str]]:
    """Per model turn of a generateContent request, the thoughtSignatures of its functionCall parts."""
    return [
        [p["thoughtSignature"] for p in c["parts"] if "functionCall" in p and "thoughtSignature" in p]
        for c in body["contents"]
        if c.get("role") == "model"
    ]
