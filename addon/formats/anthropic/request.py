"""An Anthropic Messages request (what Claude Code and the anthropic SDKs send) as the standard request, the OpenAI
Chat body the providers take. Every field read is checked first: a request of another shape is a 400 naming the
field in Anthropic's own terms (`messages[2].content[0].source.data`). What the standard request has no place for is
dropped and listed in `dropped` (the loss report), or refused where dropping it would change the answer's meaning.

Mapping (Anthropic -> OpenAI Chat), after Anthropic's API reference (messages/create) and Kong's and LiteLLM's
translations of the same fields:
- `system` (string or text blocks) -> a leading system message; `messages` user/assistant turns in order;
- user `tool_result` blocks -> `tool` messages (first, in their order, as OpenAI wants them straight after the
  assistant turn that called), the rest of that user turn -> a user message after them;
- assistant `text` -> content, `tool_use` -> tool_calls (input serialised once), `thinking`/`redacted_thinking`
  of earlier turns -> the extension `thinking_blocks` (LiteLLM's shape; the core drops and reports them for
  providers that cannot take signed reasoning back);
- `cache_control` on system, user, tool-result blocks and tools -> the standard extension `cache_control` on that
  content part (or tool), as LiteLLM and Kong take it (system blocks then stay parts, joined text unchanged);
  on assistant blocks -> dropped and reported; top-level `cache_control` (automatic caching) -> on the last part of
  the client's last message;
- `tools` -> function tools (`input_schema` -> parameters); server tools (a `type` such as `web_search_20250305`)
  -> 400, no provider here runs Anthropic's server tools;
- `output_config.format` (structured outputs, a JSON schema) -> `response_format` json_schema; the rest of
  `output_config` -> dropped and reported;
- `tool_choice` auto/any/tool/none -> auto/required/{function}/none; `disable_parallel_tool_use` ->
  `parallel_tool_calls: false`; `stop_sequences` -> `stop`; `metadata.user_id` -> `user`;
- `thinking` enabled with `budget_tokens` -> `reasoning_effort` (low up to 4,096 tokens, medium up to 16,384,
  high above), and the standard extension `thinking` (`{"type": "enabled", "budget_tokens": n}`, as LiteLLM takes
  it) for providers with a token budget; the core keeps the one the provider takes and drops and reports
  `thinking` where it takes neither.
"""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...cache_breakpoints import mark_last_turn
from ...errors import bad_request
from ...openai_format import THINKING_BLOCKS
from ...openai_validate import checked_model
from ...reasoning import effort_for_budget
from ..fields import array as _list
from ..fields import fail as _fail
from ..fields import integer as _int
from ..fields import number as _number
from ..fields import obj as _dict
from ..fields import string as _str
from . import output

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_KNOWN = frozenset(
    {
        "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences", "temperature",
        "top_p", "top_k", "metadata", "stream", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config", "output_format", "cache_control",
    }
)  # fmt: skip


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """Content as a list of blocks (a string is one text block); every block an object with a string type."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = _list(content, param)
    for i, block in enumerate(blocks):
        _str(_dict(block, f"{param}[{i}]").get("type"), f"{param}[{i}].type")
    return blocks


class _Decoder:
    """One request's decoding: the OpenAI body being built and the loss report."""

    def __init__(self, dropped: list[str]) -> None:
        self.dropped = dropped

    def drop(self, what: str) -> None:
        if what not in self.dropped:
            self.dropped.append(what)

    def decode(self, body: Any) -> dict[str, Any]:
        body = _dict(body, "body")
        out: dict[str, Any] = {"model": checked_model(_str(body.get("model"), "model"))}
        max_tokens = _int(body, "max_tokens", 1)
        if max_tokens is None:
            _fail("max_tokens", "is required")
        out["max_tokens"] = max_tokens
        messages = self.system(body.get("system"))
        for i, message in enumerate(_list(body.get("messages"), "messages")):
            messages += self.message(_dict(message, f"messages[{i}]"), f"messages[{i}]")
        if not messages:
            _fail("messages", "must hold at least one message")
        control = body.get("cache_control")
        if control is not None:  # automatic caching: a breakpoint on the last block the client wrote
            messages = mark_last_turn(messages, _dict(control, "cache_control"))
        out["messages"] = messages
        self.sampling(body, out)
        self.tools(body, out)
        if body.get("stream") is not None:
            if not isinstance(body["stream"], bool):
                _fail("stream", "must be a boolean")
            if body["stream"]:
                out["stream"] = True
                out["stream_options"] = {"include_usage": True}  # Anthropic streams always end with usage
        self.thinking(body.get("thinking"), out)
        output.decode(body, out, self.drop)
        metadata = body.get("metadata")
        if metadata is not None:
            user = _dict(metadata, "metadata").get("user_id")
            if user is not None:
                out["user"] = _str(user, "metadata.user_id")
        for key in body:
            if key not in _KNOWN:
                self.drop(key)
        for key in ("service_tier", "container", "mcp_servers", "context_management"):
            if body.get(key) is not None:
                self.drop(key)
        return out

    def system(self, system: Any) -> list[dict[str, Any]]:
        if system is None:
            return []
        parts: list[dict[str, Any]] = []
        for i, block in enumerate(_blocks(system, "system")):
            if block["type"] != "text":
                _fail(f"system[{i}].type", "must be 'text'")
            text = _str(block.get("text"), f"system[{i}].text")
            parts.append(self.cached({"type": "text", "text": "\n\n" + text if parts else text}, block, f"system[{i}]"))
        if not parts:
            return []
        if any("cache_control" in p for p in parts):  # the breakpoints need the blocks; joined, they say the same
            return [{"role": "system", "content": parts}]
        return [{"role": "system", "content": "".join(p["text"] for p in parts)}]

    def cached(self, part: dict[str, Any], block: dict[str, Any], param: str) -> dict[str, Any]:
        """`part` with the block's cache breakpoint, as the standard extension (content-part `cache_control`, as
        LiteLLM and Kong take it): providers that cache explicitly place it, the others drop and report it."""
        control = block.get("cache_control")
        if control is not None:
            part["cache_control"] = _dict(control, f"{param}.cache_control")
        return part

    def cache_control(self, block: dict[str, Any]) -> None:
        """A breakpoint on a block the standard request has no part for (assistant turns): dropped and reported."""
        if block.get("cache_control") is not None:
            self.drop("cache_control")

    def message(self, message: dict[str, Any], param: str) -> list[dict[str, Any]]:
        role = message.get("role")
        blocks = _blocks(message.get("content"), f"{param}.content")
        if role == "user":
            return self.user(blocks, f"{param}.content")
        if role == "assistant":
            return [self.assistant(blocks, f"{param}.content")]
        _fail(f"{param}.role", "must be 'user' or 'assistant'")

    def user(self, blocks: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
        tool_messages: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for i, block in enumerate(blocks):
            where = f"{param}[{i}]"
            kind = block["type"]
            if kind == "tool_result":
                tool_messages.append(self.tool_result(block, where))
            elif kind == "text":
                parts.append(
                    self.cached({"type": "text", "text": _str(block.get("text"), f"{where}.text")}, block, where)
                )
            elif kind == "image":
                parts.append(self.cached(self.image(block, where), block, where))
            elif kind == "document":
                raise bad_request(
                    f"{where}: document blocks (PDF) cannot be translated to this provider; send the text instead",
                    param=where,
                )
            else:
                _fail(f"{where}.type", f"'{kind}' is not a user content block this proxy can translate")
        out = tool_messages
        if parts:
            plain = len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]
            content: Any = parts[0]["text"] if plain else parts
            out.append({"role": "user", "content": content})
        return out

    def image(self, block: dict[str, Any], param: str) -> dict[str, Any]:
        source = _dict(block.get("source"), f"{param}.source")
        kind = source.get("type")
        if kind == "base64":
            media_type = _str(source.get("media_type"), f"{param}.source.media_type")
            if media_type not in IMAGE_TYPES:
                _fail(f"{param}.source.media_type", f"must be one of {', '.join(sorted(IMAGE_TYPES))}")
            data = _str(source.get("data"), f"{param}.source.data")
            return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
        if kind == "url":
            return {"type": "image_url", "image_url": {"url": _str(source.get("url"), f"{param}.source.url")}}
        _fail(f"{param}.source.type", "must be 'base64' or 'url'")

    def tool_result(self, block: dict[str, Any], param: str) -> dict[str, Any]:
        call_id = _str(block.get("tool_use_id"), f"{param}.tool_use_id")
        content = block.get("content")
        texts: list[str] = []
        if content is not None:
            for i, inner in enumerate(_blocks(content, f"{param}.content")):
                if inner["type"] == "text":
                    texts.append(_str(inner.get("text"), f"{param}.content[{i}].text"))
                else:
                    self.drop("tool_result.content." + inner["type"])  # OpenAI tool messages carry text only
        if block.get("is_error") is True:
            self.drop("tool_result.is_error")
        text = "\n".join(texts)
        if block.get("cache_control") is None:
            return {"role": "tool", "tool_call_id": call_id, "content": text}
        return {
            "role": "tool",
            "tool_call_id": call_id,
            "content": [self.cached({"type": "text", "text": text}, block, param)],
        }

    def assistant(self, blocks: list[dict[str, Any]], param: str) -> dict[str, Any]:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        reasoning: list[dict[str, Any]] = []
        for i, block in enumerate(blocks):
            where = f"{param}[{i}]"
            self.cache_control(block)
            kind = block["type"]
            if kind == "text":
                texts.append(_str(block.get("text"), f"{where}.text"))
            elif kind == "tool_use":
                name = _str(block.get("name"), f"{where}.name")
                arguments = jsonutil.dumps_str(_dict(block.get("input", {}), f"{where}.input"))
                call_id = _str(block.get("id"), f"{where}.id")
                calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
            elif kind == "thinking":
                thinking = _str(block.get("thinking"), f"{where}.thinking")
                signature = _str(block.get("signature", ""), f"{where}.signature")
                reasoning.append({"type": "thinking", "thinking": thinking, "signature": signature})
            elif kind == "redacted_thinking":
                reasoning.append({"type": "redacted_thinking", "data": _str(block.get("data"), f"{where}.data")})
            else:
                _fail(f"{where}.type", f"'{kind}' is not an assistant content block this proxy can translate")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message[THINKING_BLOCKS] = reasoning  # the core keeps them for providers that take them back
        return message

    def sampling(self, body: dict[str, Any], out: dict[str, Any]) -> None:
        for key, high in (("temperature", 1.0), ("top_p", 1.0)):
            value = _number(body, key, high)
            if value is not None:
                out[key] = value
        top_k = _int(body, "top_k")
        if top_k is not None:
            out["top_k"] = top_k
        stops = body.get("stop_sequences")
        if stops is not None:
            stops = [_str(s, f"stop_sequences[{i}]") for i, s in enumerate(_list(stops, "stop_sequences"))]
            if stops:
                out["stop"] = stops

    def tools(self, body: dict[str, Any], out: dict[str, Any]) -> None:
        tools = body.get("tools")
        if tools is not None:
            functions = [
                self.tool(_dict(tool, f"tools[{i}]"), f"tools[{i}]") for i, tool in enumerate(_list(tools, "tools"))
            ]
            if functions:
                out["tools"] = functions
        choice = body.get("tool_choice")
        if choice is None:
            return
        choice = _dict(choice, "tool_choice")
        kind = choice.get("type")
        if kind == "auto":
            out["tool_choice"] = "auto"
        elif kind == "any":
            out["tool_choice"] = "required"
        elif kind == "none":
            out["tool_choice"] = "none"
        elif kind == "tool":
            name = _str(choice.get("name"), "tool_choice.name")
            out["tool_choice"] = {"type": "function", "function": {"name": name}}
        else:
            _fail("tool_choice.type", "must be 'auto', 'any', 'tool' or 'none'")
        parallel = choice.get("disable_parallel_tool_use")
        if parallel is not None and not isinstance(parallel, bool):
            _fail("tool_choice.disable_parallel_tool_use", "must be a boolean")
        if parallel and out.get("tools") and kind != "none":
            out["parallel_tool_calls"] = False

    def tool(self, tool: dict[str, Any], param: str) -> dict[str, Any]:
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise bad_request(
                f"{param}: Anthropic server tool '{kind}' is not available through this proxy's provider",
                param=f"{param}.type",
            )
        function: dict[str, Any] = {"name": _str(tool.get("name"), f"{param}.name")}
        if tool.get("description") is not None:
            function["description"] = _str(tool["description"], f"{param}.description")
        function["parameters"] = _dict(tool.get("input_schema"), f"{param}.input_schema")
        if tool.get("strict") is True:  # strict tool use: the provider's answer is held to input_schema
            function["strict"] = True
        return self.cached({"type": "function", "function": function}, tool, param)

    def thinking(self, thinking: Any, out: dict[str, Any]) -> None:
        if thinking is None:
            return
        thinking = _dict(thinking, "thinking")
        kind = thinking.get("type")
        if kind == "disabled":
            return
        if kind not in ("enabled", "adaptive"):
            _fail("thinking.type", "must be 'enabled', 'adaptive' or 'disabled'")
        budget = _int(thinking, "budget_tokens", 0, "thinking.budget_tokens") if kind == "enabled" else None
        out["reasoning_effort"] = effort_for_budget(budget)
        # The exact request too, as the standard extension providers with a thinking budget read (Bedrock Claude):
        # the core keeps whichever of the two the provider takes.
        out["thinking"] = {"type": "enabled", "budget_tokens": budget} if budget is not None else {"type": kind}


def decode(body: Any, dropped: list[str]) -> dict[str, Any]:
    """The standard request for an Anthropic Messages body; what it could not carry is appended to `dropped`."""
    return _Decoder(dropped).decode(body)
