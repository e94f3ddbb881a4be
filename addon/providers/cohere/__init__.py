"""Cohere: OpenAI chat/completions <-> Cohere's v2 Chat API (`/v2/chat`, the default), and the v1 APIs (`/v1/chat`,
`/v1/generate`) when a rule asks for them: `options.cohere_api: v1`, or an upstream_url/upstream_path ending in
`/v1/chat` or `/v1/generate` (Kong's cohere driver speaks v1, so Kong configurations keep working).

Tools: v2 takes OpenAI-shaped tools and tool calls (`tool_plan` carries the text that leads them). v1 tools are
`parameter_definitions`, its tool calls have no ids: the proxy synthesises `call_...` ids and resolves them back
through the assistant's tool calls in the next turn's history (`tool_results[{call, outputs}]`).

Responses and streams are recognised by their shape, whatever the rule said: a v2 body has a `message` object,
a v1 chat body a `text`, a v1 generate body `generations`; a v2 stream is SSE with `type` in each event, a v1
stream one JSON object per line with `event_type`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from ... import jsonutil
from ...errors import ProxyError, bad_request
from ...openai_format import (
    CHAT,
    EMBEDDINGS,
    chat_response,
    chat_to_completion,
    completion_response,
    embedding_texts,
    embedding_usage,
    embeddings_response,
    max_tokens_of,
    refuse_unsupported,
    single_prompt,
    stop_list,
    text_of,
    usage,
)
from ...streaming import ChunkWriter, guarded, stream_error
from ...streams import FramingSniffer, NDJSONDecoder, SSEDecoder, StreamDecodeError
from ..base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    as_list,
    build_url,
    register,
    upstream_error,
    url_path,
)

BASE_URL = "https://api.cohere.com"

# The three native APIs.
V2 = "v2"  # /v2/chat: OpenAI-like messages
V1_CHAT = "v1-chat"  # /v1/chat: message + chat_history + preamble
V1_GENERATE = "v1-generate"  # /v1/generate: prompt (completions only)
PATHS = {V2: "/v2/chat", V1_CHAT: "/v1/chat", V1_GENERATE: "/v1/generate"}

# Cohere finish reasons (v1 and v2) -> OpenAI. Unknown values become "stop" (providers.md: pass unknowns safely).
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",  # v1: the model's context limit was reached before the generation completed
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
# Finish reasons that mean the generation failed: the client gets an error, not a truncated answer as if it were
# complete. Value: the HTTP status of that error.
FAILED = {"ERROR": 502, "TIMEOUT": 504, "USER_CANCEL": 502}

# OpenAI fields Cohere has no equivalent for: refused unless absent or neutral, so a client never silently gets
# other behaviour than it asked for. `user`, `metadata`, `store` and `service_tier` are OpenAI account features
# with no effect on the answer: they are dropped.
_UNSUPPORTED = {
    "logit_bias": None,
    "logprobs": False,  # chat: a boolean; completions: an int (0 is neutral too)
    "top_logprobs": None,
    "audio": None,
    "prediction": None,
    "functions": None,
    "function_call": None,
    "reasoning_effort": None,
    "web_search_options": None,
    "echo": False,
    "suffix": None,
    "best_of": 1,
}

# Error codes OpenAI clients recognise, for the statuses Cohere uses that the shared mapping leaves without one.
_ERROR_CODES = {401: "invalid_api_key", 498: "invalid_api_key", 499: "request_cancelled"}

# Cohere's `p` (top_p) is documented as "min value of 0.01, max value of 0.99" (cohere-python v2 and v1 chat):
# OpenAI's 0-1 range is clamped, so OpenAI's common `top_p: 1` (no nucleus filtering) is the widest Cohere takes
# instead of a 400.
MIN_P, MAX_P = 0.01, 0.99


class GenerationFailed(ProxyError, UpstreamFormatError):
    """A 2xx Cohere answer whose finish reason says the generation failed (ERROR, TIMEOUT).

    A ProxyError with a meaningful status; also an UpstreamFormatError, so that glue which only knows that type
    still answers the client with a 502 error envelope carrying this message."""


def api_of(options: Any, route_type: str) -> str:
    """Which Cohere API a rule's call goes to: cohere_api wins, then the path the rule pins, then v2."""
    if options.cohere_api == "v2":
        return V2
    path = (url_path(options) or "").rstrip("/")
    if path.endswith("/v1/generate"):
        return V1_GENERATE
    if path.endswith("/v1/chat"):
        return V1_CHAT
    if options.cohere_api == "v1":
        return V1_CHAT if route_type == CHAT else V1_GENERATE
    return V2


def _embeddings_request(call: Call) -> UpstreamRequest:
    """OpenAI embeddings -> `/v2/embed` (`/v1/embed` with cohere_api v1): `texts`, `input_type` from
    `options.cohere.embedding_input_type` (default search_document), float vectors, `dimensions` as
    `output_dimension` (embed-v4)."""
    cohere = call.options.cohere
    out: dict[str, Any] = {
        "model": call.model,
        "texts": embedding_texts(call.body, "cohere"),
        "input_type": (cohere.embedding_input_type if cohere else None) or "search_document",
        "embedding_types": ["float"],
    }
    if call.body.get("dimensions") is not None:
        out["output_dimension"] = call.body["dimensions"]
    if out["model"] is None:
        del out["model"]  # v1 falls back to Cohere's default embedding model
    path = "/v1/embed" if call.options.cohere_api == "v1" else "/v2/embed"
    return UpstreamRequest(url=build_url(call.options, BASE_URL, path), body=out)


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    """`embeddings.float` (or v1's bare array of vectors), usage from `meta.billed_units.input_tokens`."""
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected a Cohere embed response object")
    vectors = data.get("embeddings")
    if isinstance(vectors, dict):
        vectors = vectors.get("float")
    if not isinstance(vectors, list):
        raise UpstreamFormatError("expected a Cohere embed response with embeddings.float")
    billed = _dig(data, "meta", "billed_units")
    found = embedding_usage(billed.get("input_tokens")) if isinstance(billed, dict) else None
    model = call.model or ""
    return embeddings_response(vectors, model, found, call.body.get("encoding_format"))


def finish_reason(reason: Any) -> str:
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def _count(value: Any) -> int | None:
    # Cohere's SDK types token counts as floats; JSON true is not a count.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _pair(raw: Any, prompt_key: str, completion_key: str) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = _count(raw.get(prompt_key)), _count(raw.get(completion_key))
    if prompt is None or completion is None:
        return None
    return usage(prompt, completion)


def usage_of(raw: Any) -> dict[str, Any] | None:
    """v2 `usage` or v1 `meta` -> OpenAI usage. `tokens` (what the model processed) is preferred over
    `billed_units` (what is billed, without the prompt template); either may be absent."""
    if not isinstance(raw, dict):
        return None
    return _pair(raw.get("tokens"), "input_tokens", "output_tokens") or _pair(
        raw.get("billed_units"), "input_tokens", "output_tokens"
    )


def v1_usage(response: Any) -> dict[str, Any] | None:
    """A v1 response's usage: `meta.tokens`, then the older `token_count`, then `meta.billed_units`."""
    if not isinstance(response, dict):
        return None
    meta = response.get("meta") if isinstance(response.get("meta"), dict) else {}
    return (
        _pair(meta.get("tokens"), "input_tokens", "output_tokens")
        or _pair(response.get("token_count"), "prompt_tokens", "response_tokens")
        or _pair(meta.get("billed_units"), "input_tokens", "output_tokens")
    )


def failure(reason: Any, detail: Any = None) -> GenerationFailed | None:
    """The error for a failed generation's finish reason, or None when the reason is not a failure."""
    if not isinstance(reason, str) or reason not in FAILED:
        return None
    message = f"cohere could not complete the generation (finish_reason {reason})"
    if isinstance(detail, str) and detail:
        message += f": {detail}"
    status = FAILED[reason]
    return GenerationFailed(status, message, code="generation_failed", type="server_error")


class Cohere(Provider):
    name = "cohere"
    api_base = "https://api.cohere.com"
    price_id = "cohere"
    native_format = "cohere"
    supports_streaming = True

    def requires_model(self, options: Any) -> bool:
        # v2 requires a model; the v1 APIs fall back to Cohere's default model.
        return api_of(options, CHAT) == V2

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.route_type == EMBEDDINGS:
            return _embeddings_request(call)
        api = api_of(call.options, call.route_type)
        if api == V1_GENERATE and call.route_type == CHAT:
            raise bad_request(
                "this route's Cohere endpoint is /v1/generate, which serves completions only: "
                "use /v1/chat or the v2 API for chat",
                param="messages",
            )
        body = self._common(call, api)
        if api == V2:
            body.update(self._v2_body(call))
        elif api == V1_CHAT:
            body.update(self._v1_chat_body(call))
        else:
            body.update(self._generate_body(call))
        body["stream"] = call.stream
        # The operation is the same URL streamed or not (the body says `stream`): nothing to switch.
        url = build_url(call.options, BASE_URL, PATHS[api])
        return UpstreamRequest(url=url, body=body)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        err = upstream_error(status, body, content_type, self.name)
        if err.code is None:
            err.code = _ERROR_CODES.get(status)
        return err

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> CohereStream:
        return CohereStream(call, include_usage, keep_payload)

    # ---- to Cohere -----------------------------------------------------------------------------------------

    def _common(self, call: Call, api: str) -> dict[str, Any]:
        body = call.body
        refuse_unsupported(body, "cohere", _UNSUPPORTED)
        n = body.get("n")
        if n is not None and n != 1:
            if api != V1_GENERATE:
                raise bad_request("'n' other than 1 is not supported by Cohere chat; send n: 1", param="n")
            if call.stream:
                raise bad_request("'n' other than 1 cannot be streamed from Cohere /v1/generate", param="n")
        out: dict[str, Any] = {}
        if call.model:
            out["model"] = call.model
        max_tokens = max_tokens_of(body)
        if max_tokens is not None:
            out["max_tokens"] = max_tokens
        for ours, theirs in (("temperature", "temperature"), ("top_p", "p"), ("top_k", "k"), ("seed", "seed")):
            if body.get(ours) is not None:
                out[theirs] = body[ours]
        if "p" in out:
            out["p"] = min(max(float(out["p"]), MIN_P), MAX_P)
        for key in ("frequency_penalty", "presence_penalty"):
            if body.get(key):  # 0 is Cohere's default, and some models refuse both keys at once
                out[key] = body[key]
        stop = stop_list(body)
        if stop:
            out["stop_sequences"] = stop
        return out

    def _v2_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        if call.route_type == CHAT:
            messages = _v2_messages(body["messages"])
        else:
            messages = [{"role": "user", "content": single_prompt(body)}]
        out: dict[str, Any] = {"messages": messages}
        tools = _v2_tools(body)
        if tools:
            out["tools"] = tools
            if any(isinstance(t.get("function"), dict) and t["function"].get("strict") for t in body["tools"]):
                out["strict_tools"] = True
        choice = _v2_tool_choice(body)
        if choice:
            out["tool_choice"] = choice
        _refuse_serial_tools(body)
        response_format = _response_format(body, "json_schema", V2)
        if response_format:
            out["response_format"] = response_format
        return out

    def _v1_chat_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        out: dict[str, Any] = {}
        has_tool_turns = False
        if call.route_type == CHAT:
            preamble, history, message, tool_results = _v1_messages(body["messages"])
            if preamble:
                out["preamble"] = preamble
            if history:
                out["chat_history"] = history
            out["message"] = message
            if tool_results:
                out["tool_results"] = tool_results
            has_tool_turns = bool(tool_results) or any("tool_calls" in h or "tool_results" in h for h in history)
        else:
            out["message"] = single_prompt(body)
        tools = _v1_tools(body, has_tool_turns)
        if tools is not None:
            out["tools"] = tools
        response_format = _response_format(body, "schema", V1_CHAT)
        if response_format:
            out["response_format"] = response_format
        return out

    def _generate_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        _refuse_tools(body, "Cohere /v1/generate")
        _response_format(body, "", V1_GENERATE)
        out: dict[str, Any] = {"prompt": single_prompt(body)}
        n = body.get("n")
        if n is not None and n != 1:
            out["num_generations"] = n
        return out

    # ---- from Cohere ---------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            return _embeddings_response(call, data)
        if not isinstance(data, dict):
            raise UpstreamFormatError("expected a JSON object")
        if isinstance(data.get("message"), dict):
            response = self._parse_v2(call, data)
        elif isinstance(data.get("generations"), list):
            return self._parse_generate(call, data)
        elif isinstance(data.get("text"), str) or isinstance(data.get("tool_calls"), list):
            response = self._parse_v1_chat(call, data)
        else:
            raise UpstreamFormatError(
                "expected a Cohere chat response: a 'message' object (v2), a 'text' (v1 chat) or 'generations'"
            )
        return response if call.route_type == CHAT else chat_to_completion(response)

    def _parse_v2(self, call: Call, data: dict[str, Any]) -> dict[str, Any]:
        reason = data.get("finish_reason")
        message_in = data["message"]
        err = failure(reason, data.get("error") or message_in.get("error"))
        if err:
            raise err
        texts: list[str] = []
        thinking: list[str] = []
        for block in as_list(message_in.get("content")):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                thinking.append(block["thinking"])
        tool_calls = [_tool_call(c) for c in as_list(message_in.get("tool_calls")) if isinstance(c, dict)]
        text = "".join(texts)
        if not text and tool_calls and isinstance(message_in.get("tool_plan"), str):
            # The text the model writes before its tool calls, as OpenAI models put it in `content`.
            text = message_in["tool_plan"]
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if thinking:
            message["reasoning_content"] = "".join(thinking)
        return chat_response(
            id=_str_or_none(data.get("id")),
            model=call.model or "",
            message=message,
            finish_reason=finish_reason(reason),
            usage=usage_of(data.get("usage")),
        )

    def _parse_v1_chat(self, call: Call, data: dict[str, Any]) -> dict[str, Any]:
        reason = data.get("finish_reason")
        err = failure(reason)
        if err:
            raise err
        text = data.get("text") if isinstance(data.get("text"), str) else ""
        tool_calls = v1_tool_calls(data.get("tool_calls"))
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return chat_response(
            id=_str_or_none(data.get("generation_id")) or _str_or_none(data.get("response_id")),
            model=call.model or "",
            message=message,
            # v1 says COMPLETE when it asks for tool calls: their presence is the finish reason (providers.md §11.2).
            finish_reason="tool_calls" if tool_calls and reason in (None, "COMPLETE") else finish_reason(reason),
            usage=v1_usage(data),
        )

    def _parse_generate(self, call: Call, data: dict[str, Any]) -> dict[str, Any]:
        generations = [g for g in data["generations"] if isinstance(g, dict) and isinstance(g.get("text"), str)]
        if not generations:
            raise UpstreamFormatError("expected 'generations' with at least one text")
        for g in generations:
            err = failure(g.get("finish_reason"))
            if err:
                raise err
        model = call.model or ""
        id = _str_or_none(data.get("id"))
        first = generations[0]
        if call.route_type == CHAT:
            message = {"role": "assistant", "content": first["text"]}
            reason = finish_reason(first.get("finish_reason"))
            return chat_response(id=id, model=model, message=message, finish_reason=reason, usage=v1_usage(data))
        out = completion_response(
            id=id, model=model, text=first["text"], finish_reason=finish_reason(first.get("finish_reason")), usage=None
        )
        out["choices"] = [
            {"index": i, "text": g["text"], "logprobs": None, "finish_reason": finish_reason(g.get("finish_reason"))}
            for i, g in enumerate(generations)
        ]
        found = v1_usage(data)
        if found is not None:
            out["usage"] = found
        return out


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = fn.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": fn.get("name") or "", "arguments": arguments},
    }


# --------------------------------------------------------------------------------------------------------------
# Message mapping
# --------------------------------------------------------------------------------------------------------------


def _text_only(content: Any, where: str, what: str) -> str:
    """The text of a message that may hold only text parts (`refusal` parts of an assistant turn are text)."""
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part.get("type") not in ("text", "refusal"):
                param = f"{where}.content[{j}]"
                raise bad_request(f"{param}: {what} may hold only text with provider cohere", param=param)
        return "".join(p.get("text") or p.get("refusal") or "" for p in content)
    return text_of(content)


def _v2_user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return text_of(content)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise bad_request(f"{where}.content[{j}]: image_url.url is required", param=f"{where}.content[{j}]")
            out: dict[str, Any] = {"url": url}
            if isinstance(image, dict) and image.get("detail"):
                out["detail"] = image["detail"]
            parts.append({"type": "image_url", "image_url": out})
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' parts are not supported by provider cohere",
                param=f"{where}.content[{j}]",
            )
    return parts


def _v2_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages -> Cohere v2 messages (same roles; system and developer are `system`)."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m["role"]
        content = m.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text_only(content, where, f"a {role} message")})
        elif role == "user":
            out.append({"role": "user", "content": _v2_user_content(content, where)})
        elif role == "assistant":
            text = _text_only(content, where, "an assistant message")
            message: dict[str, Any] = {"role": "assistant"}
            calls = m.get("tool_calls")
            if calls:
                message["tool_calls"] = [_v2_call_out(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)]
                if text:
                    message["tool_plan"] = text  # Cohere's name for the text that leads tool calls
            else:
                message["content"] = text
            out.append(message)
        elif role == "tool":
            if not isinstance(m.get("tool_call_id"), str) or not m["tool_call_id"]:
                raise bad_request(f"{where}.tool_call_id is required", param=f"{where}.tool_call_id")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": m["tool_call_id"],
                    "content": _text_only(content, where, "a tool message"),
                }
            )
        else:
            raise bad_request(
                f"{where}: role '{role}' is not supported by provider cohere; use tools", param=f"{where}.role"
            )
    return out


def _v2_call_out(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name") or not isinstance(call.get("id"), str) or not call["id"]:
        raise bad_request(f"{where} needs an id and a function name", param=where)
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": arguments}}


def _v1_messages(
    messages: list[dict[str, Any]],
) -> tuple[str, list[dict[str, Any]], str, list[dict[str, Any]]]:
    """OpenAI messages -> (preamble, chat_history, message, tool_results) for /v1/chat.

    Leading system/developer messages are the preamble. The last message is the current turn: the user's
    (`message`), or the tool results that answer the assistant's last tool calls (`tool_results`, with an empty
    `message`, as Cohere's own multi-step loop sends them). Everything between is chat_history with Cohere's
    USER/CHATBOT/SYSTEM/TOOL roles. v1 tool calls have no ids: a tool message's `tool_call_id` is resolved through
    the assistant tool call that carries it (the id this proxy gave it), and the result repeats that `call`."""
    start = 0
    preamble: list[str] = []
    while start < len(messages) and messages[start]["role"] in ("system", "developer"):
        m = messages[start]
        preamble.append(_text_only(m.get("content"), f"messages[{start}]", f"a {m['role']} message"))
        start += 1
    last = len(messages) - 1
    if start > last or messages[last]["role"] not in ("user", "tool"):
        raise bad_request(
            "the Cohere v1 chat API needs the last message to be the user's or a tool result",
            param=f"messages[{last}].role",
        )
    history: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}  # tool_call_id -> the v1 call it stands for
    pending: dict[str, str] = {}  # tool calls not answered yet: id -> where they were made
    results: list[dict[str, Any]] = []  # the tool results of the turn being built
    for i in range(start, last + 1):
        m = messages[i]
        where = f"messages[{i}]"
        role = m["role"]
        if role != "tool" and results:
            history.append({"role": "TOOL", "tool_results": results})
            results = []
        if role != "tool" and pending:
            raise bad_request(
                f"{pending[next(iter(pending))]}: every tool call needs a tool message with its tool_call_id "
                "before the next turn",
                param=f"{pending[next(iter(pending))]}.tool_calls",
            )
        if role == "tool":
            call_id = m.get("tool_call_id")
            call = calls.get(call_id) if isinstance(call_id, str) else None
            if call is None:
                raise bad_request(
                    f"{where}: a tool message must answer a tool call of an earlier assistant message "
                    "(its tool_call_id names none)",
                    param=f"{where}.role",
                )
            pending.pop(call_id, None)
            text = _text_only(m.get("content"), where, "a tool message with the Cohere v1 API")
            results.append({"call": call, "outputs": _v1_outputs(text)})
            continue
        if role in ("system", "developer"):
            entry: dict[str, Any] = {"role": "SYSTEM"}
        elif role == "user":
            entry = {"role": "USER"}
        elif role == "assistant":
            entry = {"role": "CHATBOT"}
            tool_calls = m.get("tool_calls")
            if tool_calls:
                entry["tool_calls"] = []
                for j, tool_call in enumerate(tool_calls):
                    call_where = f"{where}.tool_calls[{j}]"
                    call_id, v1_call = _v1_call(tool_call, call_where)
                    calls[call_id] = v1_call
                    pending[call_id] = where
                    entry["tool_calls"].append(v1_call)
        else:
            raise bad_request(
                f"{where}: role '{role}' is not supported with the Cohere v1 API; use cohere_api: v2",
                param=f"{where}.role",
            )
        entry["message"] = _text_only(m.get("content"), where, f"a {role} message with the Cohere v1 API")
        history.append(entry)
    if results:  # the conversation ends with tool results: they are the current turn
        if pending:
            where = pending[next(iter(pending))]
            raise bad_request(
                f"{where}: every tool call needs a tool message with its tool_call_id", param=f"{where}.tool_calls"
            )
        return "\n\n".join(p for p in preamble if p), history, "", results
    message = history.pop()["message"]
    return "\n\n".join(p for p in preamble if p), history, message, []


def _v1_call(tool_call: Any, where: str) -> tuple[str, dict[str, Any]]:
    """An OpenAI assistant tool call -> (its id, the v1 call `{name, parameters}`)."""
    fn = tool_call.get("function") if isinstance(tool_call, dict) else None
    call_id = tool_call.get("id") if isinstance(tool_call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name") or not isinstance(call_id, str) or not call_id:
        raise bad_request(f"{where} needs an id and a function name", param=where)
    arguments = fn.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = jsonutil.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise bad_request(f"{where}.function.arguments is not valid JSON", param=where) from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise bad_request(f"{where}.function.arguments must be a JSON object", param=where)
    return call_id, {"name": fn["name"], "parameters": arguments}


def _v1_outputs(text: str) -> list[dict[str, Any]]:
    """A tool message's text -> v1 `outputs` (a list of objects): a JSON object is one output, a JSON array of
    objects is the list, anything else is `[{"result": <the text>}]`."""
    try:
        value = jsonutil.loads(text) if text.strip() else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return [{"result": text}]


# JSON Schema types -> the Python-style type names of v1 parameter_definitions.
_V1_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "Dict", "array": "List"}


def _v1_type(schema: Any, where: str) -> str:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):  # ["string", "null"]: an optional value of one type
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind not in _V1_TYPES:
        raise bad_request(
            f"{where}: the Cohere v1 API takes parameters of one JSON type each (string, integer, number, "
            "boolean, object, array); use cohere_api: v2 for full JSON Schema",
            param=where,
        )
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, dict) and items.get("type") in _V1_TYPES and items.get("type") != "array":
            return f"List[{_V1_TYPES[items['type']]}]"
    return _V1_TYPES[kind]


def _v1_tools(body: dict[str, Any], has_tool_turns: bool) -> list[dict[str, Any]] | None:
    """OpenAI tools -> v1 `tools[{name, description, parameter_definitions}]` (providers.md §6.1, §11.1).

    parameter_definitions is flat: each top-level property becomes `{description, type, required}` with a
    Python-style type name; nested object and array schemas keep only their kind (`Dict`, `List[str]`).
    tool_choice: auto (the default) is v1's only mode; none drops the tools when the conversation holds no tool
    turns; required and a named function cannot be expressed and are refused."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        if not tools:
            raise bad_request("tool_choice needs tools", param="tool_choice")
        raise bad_request(
            "the Cohere v1 API cannot force a tool call (tool_choice 'required' or a named function); "
            "use cohere_api: v2",
            param="tool_choice",
        )
    if not tools:
        if has_tool_turns:
            raise bad_request(
                "the conversation holds tool calls: the Cohere v1 API needs the request's 'tools' too", param="tools"
            )
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    if choice == "none":
        if has_tool_turns:
            raise bad_request(
                "tool_choice 'none' cannot be expressed with the Cohere v1 API in a conversation that holds tool "
                "calls; use cohere_api: v2",
                param="tool_choice",
            )
        return None  # without tools the model cannot call one
    _refuse_serial_tools(body)
    out = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        where = f"tools[{k}].function.parameters"
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if (
            not isinstance(schema, dict)
            or schema.get("type", "object") != "object"
            or not isinstance(properties or {}, dict)
        ):
            raise bad_request(f"{where} must be an object schema with properties", param=where)
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        definitions: dict[str, Any] = {}
        for name, prop in (properties or {}).items():
            definition: dict[str, Any] = {"type": _v1_type(prop, f"{where}.properties.{name}")}
            if isinstance(prop.get("description"), str) and prop["description"]:
                definition["description"] = prop["description"]
            definition["required"] = name in required
            definitions[name] = definition
        spec: dict[str, Any] = {"name": fn["name"], "parameter_definitions": definitions}
        spec["description"] = fn.get("description") or ""  # required by v1
        out.append(spec)
    return out


def _refuse_serial_tools(body: dict[str, Any]) -> None:
    if body.get("tools") and body.get("parallel_tool_calls") is False:
        raise bad_request(
            "'parallel_tool_calls: false' is not supported by provider cohere", param="parallel_tool_calls"
        )


def v1_tool_calls(raw: Any) -> list[dict[str, Any]]:
    """v1 tool calls `[{name, parameters}]` (no ids) -> OpenAI tool calls with synthesised ids. The client sends
    the id back in its next turn's history, where `_v1_messages` resolves it through the assistant tool call."""
    out = []
    for call in raw if isinstance(raw, list) else ():
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            continue
        parameters = call.get("parameters")
        out.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": json.dumps(parameters if parameters is not None else {}),
                },
            }
        )
    return out


def _refuse_tools(body: dict[str, Any], where: str) -> None:
    if body.get("tools"):
        raise bad_request(f"tools are not supported with {where}", param="tools")
    choice = body.get("tool_choice")
    if choice not in (None, "none", "auto"):
        raise bad_request("tool_choice needs tools", param="tool_choice")


def _v2_tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    if not tools:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    out = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        spec: dict[str, Any] = {
            "name": fn["name"],
            "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        out.append({"type": "function", "function": spec})
    return out


def _v2_tool_choice(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if choice in (None, "auto"):
        return None  # Cohere's default: the model decides
    if not body.get("tools"):
        if choice == "none":
            return None
        raise bad_request("tool_choice needs tools", param="tool_choice")
    if choice == "required":
        return "REQUIRED"
    if choice == "none":
        return "NONE"
    if isinstance(choice, dict):
        raise bad_request(
            "Cohere cannot be made to call one named tool; send only that tool with tool_choice 'required'",
            param="tool_choice",
        )
    raise bad_request("unsupported tool_choice", param="tool_choice")


def _response_format(body: dict[str, Any], schema_key: str, api: str) -> dict[str, Any] | None:
    """OpenAI response_format -> Cohere's: json_object as is, json_schema as json_object with the schema under
    `json_schema` (v2) or `schema` (v1). /v1/generate has no JSON mode."""
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind not in ("json_object", "json_schema"):
        raise bad_request("response_format type must be text, json_object or json_schema", param="response_format")
    if api == V1_GENERATE:
        raise bad_request("response_format is not supported by Cohere /v1/generate", param="response_format")
    if kind == "json_object":
        return {"type": "json_object"}
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise bad_request("response_format json_schema needs json_schema.schema", param="response_format")
    return {"type": "json_object", schema_key: schema}


# --------------------------------------------------------------------------------------------------------------
# Streams: Cohere v2 SSE or v1 NDJSON -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class CohereStream:
    """Translates a Cohere stream into OpenAI chunks, event by event, in constant memory.

    The framing is chosen from the first byte that is not whitespace: `{` is v1 NDJSON (one JSON object per
    line; Kong's mock labels it text/event-stream), anything else v2 SSE. Events are dispatched on their JSON
    `type` (v2) or `event_type` (v1); the names of the two APIs do not overlap. Finish reason and usage arrive in
    the last event (`message-end`, `stream-end`), so the finish chunk and the usage chunk follow it at once.
    Cohere counts no token before that event: a stream cut off earlier is recorded without usage.
    """

    __slots__ = (
        "_decoder",
        "_done",
        "_plan_streamed",
        "_role_sent",
        "_sniffer",
        "_sse",
        "_v1_tool_calls",
        "out",
        "result",
    )

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder: NDJSONDecoder | SSEDecoder | None = None
        self._sse = False
        self._sniffer = FramingSniffer()
        self._role_sent = False
        self._done = False
        self._v1_tool_calls = 0  # v1 tool calls sent so far
        self._plan_streamed = False  # v1: the text leading tool calls was streamed by tool-calls-chunk events

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return b""
        if self._decoder is None:
            found = self._sniffer.sniff(chunk)
            if found is None:
                return b""
            first, chunk, _ = found
            self._sse = first != b"{"
            self._decoder = SSEDecoder() if self._sse else NDJSONDecoder()
        if self._sse:
            return self._decode(chunk)
        # NDJSON is decoded a line at a time, so that the lines before a bad one are translated whatever the
        # chunking: the decoder raises for its whole input.
        out: list[bytes] = []
        start = 0
        while not self._done:
            end = chunk.find(b"\n", start) + 1
            if not end:
                out.append(self._decode(chunk[start:] if start else chunk))
                break
            out.append(self._decode(chunk[start:end]))
            start = end
        return b"".join(out)

    def _decode(self, data: bytes) -> bytes:
        assert self._decoder is not None
        try:
            events = self._decoder.feed(data)
        except StreamDecodeError as e:
            return self._fail(f"cohere stream is malformed: {e}")
        return self._events(events)

    @guarded
    def finish(self) -> bytes:
        if self._done:
            return b""
        out = b""
        if self._decoder is not None:
            try:
                out = self._events(self._decoder.flush())
            except StreamDecodeError as e:
                return out + self._fail(f"cohere stream is malformed: {e}")
        if not self._done:
            last = "message-end" if self._sse else "stream-end"
            what = f"before {last}" if self._decoder is not None else "without any event"
            out += self._fail(f"cohere stream ended {what}")
        return out

    def _events(self, events: list[Any]) -> bytes:
        if not events:
            return b""
        if self._sse:
            return b"".join(self._sse_event(e.event, e.data) for e in events)
        return b"".join(self._event(e, "") for e in events)

    def _sse_event(self, name: str, data: str) -> bytes:
        if self._done or data == "[DONE]":  # some mocks append OpenAI's sentinel: tolerated
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("cohere sent an event that is not JSON")
        return self._event(event, name)

    def _fail(self, message: str, status: int = 502, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, status=status, code=code))

    def _role(self) -> bytes:
        if self._role_sent:
            return b""
        self._role_sent = True
        return self.out.role()

    def _event(self, event: Any, name: str) -> bytes:
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


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


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


COHERE = register(Cohere())
