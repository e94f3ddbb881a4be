"""Mistral La Plateforme: OpenAI-shaped chat with a few differences (`mistral_format: openai`, the default), or a
Mistral model served by Ollama (`mistral_format: ollama`, shared with llama2 in _ollama.py).

OpenAI format differences handled here: `seed` is `random_seed`; fields Mistral refuses with a 422 are dropped
(bookkeeping) or refused (behaviour); finish reason `model_length` means `length` and `error` is an error; a stream
carries its usage in the last content chunk, which becomes OpenAI's separate usage chunk when the client asked for
it. Completions are served by the chat endpoint (the prompt as one user message), or by the FIM endpoint
(`/v1/fim/completions`, codestral) when the rule's upstream path names it.

Tools are OpenAI-shaped on Mistral too, with two rules of its own (docs/providers.md §7.1, §12): tool-call ids must
be exactly 9 characters of [a-zA-Z0-9], so any other id in the history (`call_...` from OpenAI or another
provider) is replaced by a deterministic hash of itself in both the assistant's `tool_calls[].id` and the tool
message's `tool_call_id` (the ids Mistral returns already fit both formats and go back unchanged); and the last
message must be `user` or `tool` (or an `assistant` with Mistral's `prefix: true`), else a clear 400 here. Tool
messages get the function `name` (some models need it). In answers, tool calls get `type: function`, string
arguments and an id; streamed tool-call deltas are renumbered so that `index` counts tool calls (several calls in
one delta share no index), and a `stop` after tool calls is `tool_calls`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any

from .. import jsonutil
from ..errors import ProxyError, bad_request
from ..openai_format import CHAT, EMBEDDINGS, chat_to_completion, embeddings_body, embeddings_passthrough, single_prompt
from ..openai_format import FINISH_REASONS as OPENAI_FINISH_REASONS
from ..spec import RuleSpec
from ..streaming import OpenAIPassthrough, SSETranslator, chunk_problem, stream_error
from ..streams import SSEEvent
from . import _ollama
from .base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    build_url,
    register,
    upstream_error,
    url_path,
)

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",  # the context window was hit
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
FIM_PATH = "/fim/completions"
# OpenAI bookkeeping fields Mistral does not take (it answers 422 to unknown fields): dropped.
_DROPPED = (
    "user",
    "store",
    "metadata",
    "service_tier",
    "stream_options",
    "prompt_cache_key",
    "safety_identifier",
    "modalities",  # refused unless ["text"] (refuse_unsupported)
)
# OpenAI fields that change the answer and that Mistral has no equivalent for: refused unless neutral.
_UNSUPPORTED = {
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "audio": None,
    "web_search_options": None,
    "functions": None,  # the deprecated function-calling fields: use tools / tool_choice
    "function_call": None,
    "echo": False,
    "best_of": 1,
}


# The message fields Mistral takes per role: it refuses any other (422 extra_forbidden), e.g. OpenAI's `name` on a
# user message or the `refusal`/`reasoning_content` of an assistant answer replayed as history. Those are dropped.
_MESSAGE_FIELDS = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "prefix"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}

_ID = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = string.ascii_letters + string.digits


def mistral_id(call_id: Any) -> Any:
    """A tool-call id Mistral accepts (`[a-zA-Z0-9]{9}`): kept when it already is one, else a hash of it (the same
    id always gives the same result, so an assistant call and its tool result still match)."""
    if not isinstance(call_id, str) or _ID.fullmatch(call_id):
        return call_id
    n = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8])
    out = []
    for _ in range(9):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def new_tool_call_id() -> str:
    """An id for a tool call that came without one: valid for Mistral too, so it goes back unchanged."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(9))


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client's messages as Mistral takes them: developer -> system, tool-call ids made valid, tool results
    named, the last-role rule checked."""
    out = []
    names: dict[str, str] = {}
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "developer":
            m = {**m, "role": "system"}
        elif role == "function":
            raise bad_request(
                f"messages[{i}]: role 'function' (deprecated) is not supported by provider mistral; use 'tool'",
                param=f"messages[{i}].role",
            )
        elif role == "assistant" and m.get("function_call") is not None:
            raise bad_request(
                f"messages[{i}]: function_call (deprecated) is not supported by provider mistral; use tool_calls",
                param=f"messages[{i}].function_call",
            )
        if role == "assistant" and m.get("tool_calls"):
            calls = m["tool_calls"]
            if not isinstance(calls, list):
                raise bad_request(f"messages[{i}].tool_calls must be an array", param=f"messages[{i}].tool_calls")
            mapped = []
            for tc in calls:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise bad_request(
                        f"messages[{i}].tool_calls: each must be a function call with a name",
                        param=f"messages[{i}].tool_calls",
                    )
                if isinstance(tc.get("id"), str):
                    names[tc["id"]] = fn["name"]
                mapped.append({**tc, "id": mistral_id(tc.get("id")), "type": "function"})
            m = {**m, "tool_calls": mapped}
        elif role == "tool":
            call_id = m.get("tool_call_id")
            m = {**m, "tool_call_id": mistral_id(call_id)}
            if "name" not in m and isinstance(call_id, str) and call_id in names:
                m["name"] = names[call_id]
        out.append({k: v for k, v in m.items() if k in _MESSAGE_FIELDS.get(m.get("role"), m.keys())})
    last = out[-1]
    if last.get("role") not in ("user", "tool") and not (last.get("role") == "assistant" and last.get("prefix")):
        raise bad_request(
            f"provider mistral needs the conversation to end with a user or tool message (or an assistant message "
            f"with prefix: true), not {last.get('role')!r}",
            param=f"messages[{len(out) - 1}].role",
        )
    return out


def tool_calls_out(calls: Any) -> Any:
    """Mistral's tool calls in OpenAI's shape: `type` set, arguments a JSON string, an id on each."""
    if not isinstance(calls, list):
        raise UpstreamFormatError("expected message.tool_calls to be an array")
    out = []
    for tc in calls:
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise UpstreamFormatError("expected tool calls as {id, function: {name, arguments}}")
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = jsonutil.dumps_str(arguments if arguments is not None else {})
        call_id = tc.get("id") if isinstance(tc.get("id"), str) and tc.get("id") else new_tool_call_id()
        out.append({"id": call_id, "type": "function", "function": {"name": fn["name"], "arguments": arguments}})
    return out


def finish_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def flatten_content(content: Any) -> tuple[Any, str | None]:
    """Mistral reasoning models answer content as chunks ([{type: thinking|text}]): (text, reasoning)."""
    if not isinstance(content, list):
        return content, None
    texts: list[str] = []
    thinking: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thinking.append(inner)
            elif isinstance(inner, list):
                thinking += [str(p.get("text") or "") for p in inner if isinstance(p, dict)]
    return "".join(texts), "".join(thinking) or None


class Mistral(Provider):
    name = "mistral"
    supports_streaming = True
    api_base = "https://api.mistral.ai"
    price_id = "mistral"

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        options = spec.model.options
        if (
            options.mistral_format == "ollama"
            and not options.upstream_url
            and "model.options.upstream_url" not in unset
        ):
            return "model.options.upstream_url is required for mistral (self-hosted)"
        return super().check_rule(spec, unset)

    @staticmethod
    def _ollama(call: Call) -> bool:
        return call.options.mistral_format == "ollama"

    # ---- to Mistral ----------------------------------------------------------------------------------------

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.route_type == EMBEDDINGS:
            return self._embeddings_request(call)
        if self._ollama(call):
            return _ollama.build_request(call, self.name)
        url = build_url(call.options, "https://api.mistral.ai", "/v1/chat/completions")
        return UpstreamRequest(url=url, body=self._body(call))

    def _embeddings_request(self, call: Call) -> UpstreamRequest:
        """`/v1/embeddings`, OpenAI-shaped; `dimensions` is `output_dimension` (codestral-embed)."""
        if self._ollama(call):
            return _ollama.embeddings_request(call, self.name)
        url = build_url(call.options, "https://api.mistral.ai", "/v1/embeddings")
        return UpstreamRequest(url=url, body=embeddings_body(call.body, call.model, self.name, "output_dimension"))

    def _body(self, call: Call) -> dict[str, Any]:
        body = call.body
        _ollama.refuse_unsupported(body, self.name, _UNSUPPORTED)
        # The refused fields with a neutral value are dropped too: Mistral forbids unknown fields (422).
        out = {k: v for k, v in body.items() if k not in _DROPPED and k not in _UNSUPPORTED}
        if call.options.top_k is not None or body.get("top_k") is None:
            out.pop("top_k", None)  # a rule's top_k is for providers that have one (as for openai)
        else:
            raise bad_request("'top_k' is not supported by provider mistral", param="top_k")
        if call.route_type == CHAT:
            out["messages"] = chat_messages(body["messages"])
        else:
            self._completions_body(call, out)
        out["model"] = call.model
        if body.get("seed") is not None:
            out["random_seed"] = out.pop("seed")
        if body.get("max_completion_tokens") is not None:
            out["max_tokens"] = out.pop("max_completion_tokens")
        out.pop("max_completion_tokens", None)
        out.pop("seed", None)
        out["stream"] = call.stream
        return out

    def _completions_body(self, call: Call, out: dict[str, Any]) -> None:
        body = call.body
        prompt = single_prompt(body)
        for key in ("prompt", "suffix", "echo", "best_of", "logprobs"):
            out.pop(key, None)
        if call.stream and (body.get("n") or 1) > 1:
            raise bad_request("n > 1 cannot be streamed on the completions route of provider mistral", param="n")
        if (url_path(call.options) or "").rstrip("/").endswith(FIM_PATH):
            out["prompt"] = prompt
            if body.get("suffix"):
                out["suffix"] = body["suffix"]
            return
        if body.get("suffix"):
            raise bad_request(
                f"'suffix' needs Mistral's FIM endpoint: set model.options.upstream_path to /v1{FIM_PATH} (codestral)",
                param="suffix",
            )
        out["messages"] = [{"role": "user", "content": prompt}]

    # ---- from Mistral --------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            if self._ollama(call):
                return _ollama.parse_embeddings(call, data)
            return embeddings_passthrough(data, call.model or "", call.body.get("encoding_format"))
        if self._ollama(call):
            return _ollama.parse_response(call, data)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamFormatError("expected a chat.completion object with 'choices'")
        choices = []
        for choice in data["choices"]:
            if not isinstance(choice, dict):
                raise UpstreamFormatError("expected choices to be objects")
            reason = choice.get("finish_reason")
            if reason == "error":
                raise UpstreamFormatError("mistral stopped generating with finish_reason 'error'")
            choice = {**choice, "finish_reason": finish_reason(reason)}
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), list):
                text, reasoning = flatten_content(message["content"])
                message = {**message, "content": text}
                if reasoning:
                    message["reasoning_content"] = reasoning
                choice["message"] = message
            if isinstance(message, dict) and message.get("tool_calls"):
                choice["message"] = {**message, "tool_calls": tool_calls_out(message["tool_calls"])}
                if choice["finish_reason"] == "stop":
                    choice["finish_reason"] = "tool_calls"
            choices.append(choice)
        response = {**data, "choices": choices}
        if call.route_type != CHAT and any("message" in c for c in choices):
            return chat_to_completion(response)
        return response

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        err = upstream_error(status, body, content_type, self.name)
        try:
            data = jsonutil.loads(body) if body else None
        except ValueError:
            return err
        if isinstance(data, dict):
            # FastAPI validation errors: {"detail": [...]}, sometimes inside {"object": "error", "message": {...}}
            detail = data.get("detail")
            if detail is None and isinstance(data.get("message"), dict):
                detail = data["message"].get("detail")
            if isinstance(detail, list) and detail:
                err.message = "; ".join(_detail_text(d) for d in detail)
                first = detail[0] if isinstance(detail[0], dict) else {}
                err.param = _loc(first.get("loc")) or err.param
            elif isinstance(detail, str):
                err.message = detail
        return err

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> Any:
        if self._ollama(call):
            return _ollama.OllamaStream(call, include_usage, keep_payload, self.name)
        if call.route_type == CHAT:
            return MistralChatStream(include_usage, keep_payload)
        return MistralTextStream(call, include_usage, keep_payload)


def _loc(loc: Any) -> str | None:
    if not isinstance(loc, list):
        return None
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _detail_text(d: Any) -> str:
    if not isinstance(d, dict):
        return str(d)
    loc = _loc(d.get("loc"))
    msg = str(d.get("msg") or d.get("message") or jsonutil.dumps_str(d))
    return f"{loc}: {msg}" if loc else msg


def _stream_error(obj: dict[str, Any]) -> ProxyError:
    """An error event in a Mistral stream: OpenAI-style {"error": {...}} or Mistral's {"object": "error", ...}."""
    err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
    message = err.get("message") if isinstance(err, dict) else obj.get("error")
    if not isinstance(message, str):
        message = jsonutil.dumps_str(message) if message is not None else "mistral stream error"
    etype = err.get("type") if isinstance(err, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return stream_error(
        message, type=etype if isinstance(etype, str) else None, code=str(code) if code is not None else "stream_error"
    )


# --------------------------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------------------------


class MistralChatStream(OpenAIPassthrough):
    """Mistral's chat stream is OpenAI's format: passed through event by event, except the events that need a fix
    (re-serialised, only those): finish reasons mapped, content chunks flattened, and the usage that Mistral puts
    in the last content chunk moved to a usage-only chunk before [DONE] when the client asked for it (the record
    has that usage as soon as its chunk arrives, so a stream cut before [DONE] keeps it).

    Tool calls (Mistral sends each whole, id, name and arguments in one delta, often several in one delta): each
    gets the OpenAI `index` of its position among the tool calls of its choice, whatever index Mistral gave it (an
    absent or shared index would make the SDK's accumulator merge two calls: a LiteLLM bug), `type: function` and
    string arguments; a `stop` finish after tool calls is `tool_calls`."""

    __slots__ = ("_include_usage", "_tools", "_usage_chunk")

    def __init__(self, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(CHAT, not include_usage, keep_payload)
        self._include_usage = include_usage
        self._usage_chunk = b""
        # per choice index: [calls so far, {upstream index: our index}, [id of each call], our index of the last]
        self._tools: dict[Any, list[Any]] = {}

    def _tool_deltas(self, choice_index: Any, deltas: Any) -> list[dict[str, Any]]:
        state = self._tools.setdefault(choice_index, [0, {}, [], None])
        out = []
        for d in deltas if isinstance(deltas, list) else [deltas]:
            if not isinstance(d, dict):
                continue
            fn = d.get("function") if isinstance(d.get("function"), dict) else {}
            arguments = fn.get("arguments")
            if arguments is not None and not isinstance(arguments, str):
                arguments = jsonutil.dumps_str(arguments)
            call_id, name, up = d.get("id"), fn.get("name"), d.get("index")
            known = state[1].get(up)
            # A new call: a new id (Mistral may give several calls the same index), or a name at a new index.
            new = (known is None or state[2][known] != call_id) if call_id else (bool(name) and known is None)
            if new:
                index = state[0]
                state[0] += 1
                state[1][up] = index
                state[2].append(call_id or new_tool_call_id())
                entry = {"index": index, "id": state[2][index], "type": "function"}
                entry["function"] = {"name": name or "", "arguments": arguments or ""}
            else:
                index = known if known is not None else state[3]
                if index is None:
                    continue  # arguments of no call: nothing to attach them to
                entry = {"index": index, "function": {"arguments": arguments or ""}}
            state[3] = index
            out.append(entry)
        return out

    def _event(self, data: str) -> bytes:
        if self._done:
            return b""
        if data == "[DONE]":
            return self._usage_chunk + super()._event(data)
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("mistral sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if obj.get("error") or obj.get("object") == "error":
            self.result.error = _stream_error(obj)
            self._done = True
            return b"data: " + self.result.error.body() + b"\n\n"
        problem = chunk_problem(obj)
        if problem:
            return self._fail(f"mistral sent a malformed chunk: {problem}")
        changed = failed = False
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            if not isinstance(index, int):
                continue  # not a choice of any answer
            delta = choice.get("delta")
            if isinstance(delta, dict) and delta.get("tool_calls"):
                delta["tool_calls"] = self._tool_deltas(index, delta["tool_calls"])
                changed = True
            reason = choice.get("finish_reason")
            if reason == "error":
                choice["finish_reason"] = None
                changed = failed = True
            elif reason is not None and (not isinstance(reason, str) or reason not in OPENAI_FINISH_REASONS):
                choice["finish_reason"] = finish_reason(reason) if isinstance(reason, str) else "stop"
                changed = True
            if choice.get("finish_reason") == "stop" and index in self._tools:
                choice["finish_reason"] = "tool_calls"
                changed = True
            if isinstance(delta, dict) and isinstance(delta.get("content"), list):
                delta["content"], reasoning = flatten_content(delta["content"])
                if reasoning:
                    delta["reasoning_content"] = reasoning
                changed = True
        self._capture(obj)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            if choices:
                # Mistral's usage rides on the last content chunk; OpenAI's comes alone, after the finish chunk.
                if self._include_usage:
                    obj["usage"] = None
                    head = {k: obj.get(k) for k in ("id", "object", "created", "model")}
                    usage_chunk = {**head, "choices": [], "usage": usage}
                    self._usage_chunk = b"data: " + jsonutil.dumps(usage_chunk) + b"\n\n"
                else:
                    del obj["usage"]
                changed = True
            elif not self._include_usage:
                return b""
        out = b"data: " + jsonutil.dumps(obj) + b"\n\n" if changed else f"data: {data}\n\n".encode()
        if failed:
            out += self._fail("mistral stopped generating with finish_reason 'error'")
        return out


class MistralTextStream(SSETranslator):
    """The completions route: Mistral's chat (or FIM) stream, reshaped as OpenAI text_completion chunks."""

    __slots__ = ("_finish", "_started", "_usage")
    provider = "mistral"
    incomplete = "ended before [DONE]"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._started = False

    def _event(self, sse: SSEEvent) -> bytes:
        data = sse.data
        if self._done:
            return b""
        if data == "[DONE]":
            self._done = True
            return self.out.finish(self._finish or "stop", self._usage)
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("mistral sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if obj.get("error") or obj.get("object") == "error":
            self._done = True
            return self.out.error(_stream_error(obj))
        problem = chunk_problem(obj)
        if problem:
            return self._fail(f"mistral sent a malformed chunk: {problem}")
        if not self._started:
            self._started = True
            self.out.set_model(obj.get("model"))
        if isinstance(obj.get("usage"), dict):
            # On the last content chunk, before [DONE]: into the record at once (also when that chunk fails).
            self._usage = obj["usage"]
            self.out.note_usage(self._usage)
        out = b""
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            text = flatten_content(delta.get("content"))[0] if isinstance(delta, dict) else choice.get("text")
            if isinstance(text, str):
                out += self.out.text(text)
            reason = choice.get("finish_reason")
            if reason == "error":
                return out + self._fail("mistral stopped generating with finish_reason 'error'")
            if reason is not None:
                self._finish = finish_reason(reason)
        return out


MISTRAL = register(Mistral())
