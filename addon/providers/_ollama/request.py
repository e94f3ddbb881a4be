"""Ollama's native API (`/api/chat`, `/api/generate`), shared by the llama2 and mistral providers.

OpenAI chat -> `/api/chat` with the messages; OpenAI completions -> `/api/generate` with the prompt (Ollama applies
the model's template to both). Generation parameters live under `options` (Modelfile names: `num_predict`, ...).
Ollama streams by default, so `stream` is always sent. Streams are NDJSON: one object per line, the last one has
`done: true`, the finish reason and the token counts; an error mid-stream is a `{"error": "..."}` line.

Tools (docs/providers.md §8.1, §11.1): `tools` go in OpenAI's shape; assistant `tool_calls` go as
`{function: {name, arguments: <object>}}` (the client's JSON string parsed); a `tool` result goes as `role: tool`
with `tool_name`, the name resolved from the earlier assistant message that holds its `tool_call_id` (and the id
itself as `tool_call_id`, which newer builds read). Ollama has no `tool_choice`: `auto` is its behaviour, `none`
sends no tools, `required` and a named function are refused. Answers: object arguments become JSON strings, calls
without an id get a synthesised `call_...` id, and `done_reason: stop` with tool calls is `finish_reason: tool_calls`
(what Ollama's own /v1 layer does), streamed and not.
"""

from __future__ import annotations

import uuid
from typing import Any

from .. import jsonutil, openai_format
from ..errors import ProxyError, bad_request
from ..openai_format import (
    CHAT,
    chat_response,
    chat_to_completion,
    completion_response,
    embedding_texts,
    embedding_usage,
    embeddings_response,
    max_tokens_of,
    single_prompt,
    stop_list,
    text_of,
    usage,
)
from ..spec import ModelOptions
from ..streaming import ChunkWriter, guarded, stream_error
from ..streams import NDJSONDecoder, StreamDecodeError
from .base import Call, UpstreamFormatError, UpstreamRequest, build_url, url_path

CHAT_PATH = "/api/chat"
GENERATE_PATH = "/api/generate"
EMBED_PATH = "/api/embed"

# `load`/`unload` answer empty requests (model management), not generations: nothing was cut short.
FINISH_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}

# OpenAI fields with no Ollama-native equivalent: refused unless neutral, so a client never silently gets other
# behaviour than it asked for. (`user`, `store`, `metadata`, `service_tier` are bookkeeping and simply dropped.)
UNSUPPORTED = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "audio": None,
    "prediction": None,
    "web_search_options": None,
    "functions": None,
    "function_call": None,
    "reasoning_effort": None,
    "best_of": 1,
    "echo": False,
}
# Sampling parameters that go under `options` with the same name.
_SAME_NAME_OPTIONS = ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty")


def require_upstream_url(options: ModelOptions, provider: str, fmt: str) -> None:
    """Self-hosted formats have no standard host: a rule without upstream_url is a configuration error (500)."""
    if not options.upstream_url:
        raise ProxyError(
            500,
            f"provider {provider} with format '{fmt}' is self-hosted: the rule must set model.options.upstream_url "
            "(for example http://127.0.0.1:11434 for Ollama)",
            type="server_error",
            code="proxy_misconfigured",
        )


def refuse_unsupported(body: dict[str, Any], provider: str, table: dict[str, Any] = UNSUPPORTED) -> None:
    openai_format.refuse_unsupported(body, provider, table)


def refuse_tools(body: dict[str, Any], provider: str) -> None:
    """For formats without tool calling: refuse tools rather than let the model answer without them."""
    if body.get("tools"):
        raise bad_request(
            f"tools are not supported by provider {provider}: use llama2_format ollama or openai", param="tools"
        )
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise bad_request(f"tool_choice needs tools, which provider {provider} does not support", param="tool_choice")


def tools(body: dict[str, Any], provider: str) -> list[dict[str, Any]] | None:
    """OpenAI `tools` in the shape Ollama takes (OpenAI's own), or None when none are to be sent."""
    declared = body.get("tools")
    choice = body.get("tool_choice")
    if declared is not None and not isinstance(declared, list):
        raise bad_request("'tools' must be an array", param="tools")
    if choice is not None and choice not in ("auto", "none"):
        what = repr(choice) if isinstance(choice, str) else "a named function"
        raise bad_request(
            f"tool_choice {what} is not supported by provider {provider} (ollama): Ollama has no tool_choice, "
            "use 'auto' or 'none'",
            param="tool_choice",
        )
    if body.get("parallel_tool_calls") is False:
        raise bad_request(
            f"parallel_tool_calls false is not supported by provider {provider} (ollama)", param="parallel_tool_calls"
        )
    if not declared or choice == "none":
        return None  # `none`: the model gets no tools (tool calls and results in the history still go)
    out = []
    for i, tool in enumerate(declared):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise bad_request(
                f"tools[{i}]: only function tools are supported by provider {provider}", param=f"tools[{i}]"
            )
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"tools[{i}].function.name is required", param=f"tools[{i}].function.name")
        out.append({"type": "function", "function": fn})
    return out


# --------------------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------------------


def endpoint(call: Call) -> str:
    """`chat` or `generate`: the route decides, unless the rule pins one of the two native paths."""
    path = (url_path(call.options) or "").rstrip("/")
    if path.endswith(CHAT_PATH):
        return "chat"
    if path.endswith(GENERATE_PATH):
        if call.route_type == CHAT:
            raise ProxyError(
                500,
                f"model.options.upstream_url/upstream_path pins {GENERATE_PATH}, which takes a single prompt: chat "
                f"routes need {CHAT_PATH} (or a URL without a path)",
                type="server_error",
                code="proxy_misconfigured",
            )
        return "generate"
    return "chat" if call.route_type == CHAT else "generate"


def build_request(call: Call, provider: str, fmt: str = "ollama") -> UpstreamRequest:
    require_upstream_url(call.options, provider, fmt)
    body = call.body
    refuse_unsupported(body, provider)
    kind = endpoint(call)
    out: dict[str, Any] = {"model": call.model}
    if call.route_type == CHAT:
        out["messages"] = messages(body["messages"], provider)
        declared = tools(body, provider)
        if declared:
            out["tools"] = declared
    else:
        refuse_tools(body, f"{provider} (ollama {GENERATE_PATH})")
        prompt = single_prompt(body)
        if kind == "generate":
            out["prompt"] = prompt
            if body.get("suffix"):
                out["suffix"] = body["suffix"]
        else:
            if body.get("suffix"):
                raise bad_request(f"'suffix' needs {GENERATE_PATH} with provider {provider}", param="suffix")
            out["messages"] = [{"role": "user", "content": prompt}]
    fmt_value = response_format(body, provider)
    if fmt_value is not None:
        out["format"] = fmt_value
    generation = options(body)
    if generation:
        out["options"] = generation
    out["stream"] = call.stream  # Ollama streams unless told not to
    url = build_url(call.options, "", CHAT_PATH if kind == "chat" else GENERATE_PATH)
    headers = {"accept": "application/x-ndjson"} if call.stream else {}
    return UpstreamRequest(url=url, body=out, headers=headers)


def embeddings_request(call: Call, provider: str) -> UpstreamRequest:
    """OpenAI embeddings -> `/api/embed` `{"model", "input": [texts], "dimensions"?}`."""
    require_upstream_url(call.options, provider, "ollama")
    out: dict[str, Any] = {"model": call.model, "input": embedding_texts(call.body, provider)}
    if call.body.get("dimensions") is not None:
        out["dimensions"] = call.body["dimensions"]
    return UpstreamRequest(url=build_url(call.options, "", EMBED_PATH), body=out)


def parse_embeddings(call: Call, data: Any) -> dict[str, Any]:
    """`{"embeddings": [[...]], "prompt_eval_count"}` -> the OpenAI embeddings list."""
    if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
        raise UpstreamFormatError("expected an Ollama /api/embed response with 'embeddings'")
    model = data.get("model") or call.model or ""
    found = embedding_usage(data.get("prompt_eval_count"))
    return embeddings_response(data["embeddings"], model, found, call.body.get("encoding_format"))


def options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        out["num_predict"] = max_tokens
    for key in _SAME_NAME_OPTIONS:
        if body.get(key) is not None:
            out[key] = body[key]
    stop = stop_list(body)
    if stop:
        out["stop"] = stop
    return out


def response_format(body: dict[str, Any], provider: str) -> Any:
    rf = body.get("response_format")
    if rf is None:
        return None
    kind = rf.get("type") if isinstance(rf, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
        raise bad_request("response_format.json_schema.schema must be an object", param="response_format")
    raise bad_request(f"unsupported response_format for provider {provider}", param="response_format")


def messages(msgs: list[dict[str, Any]], provider: str) -> list[dict[str, Any]]:
    out = []
    names: dict[str, str] = {}  # tool_call_id -> function name, from the assistant turns so far
    for i, m in enumerate(msgs):
        role = m["role"]
        if role == "developer":
            role = "system"
        elif role not in ("system", "user", "assistant", "tool"):
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider {provider}; use 'tool' messages",
                param=f"messages[{i}].role",
            )
        if role == "tool":
            out.append(_tool_result(m, i, names, provider))
            continue
        message: dict[str, Any] = {"role": role, "content": text_of(m.get("content"))}
        images = _images(m.get("content"), i, provider, role)
        if images:
            message["images"] = images
        if m.get("tool_calls"):
            if role != "assistant":
                raise bad_request(f"messages[{i}]: only assistant messages carry tool_calls", param=f"messages[{i}]")
            message["tool_calls"] = _tool_calls(m["tool_calls"], i, names)
        out.append(message)
    return out


def _tool_calls(calls: Any, i: int, names: dict[str, str]) -> list[dict[str, Any]]:
    """An assistant turn's OpenAI tool calls as Ollama's: arguments as an object, the id kept (newer builds)."""
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise bad_request(f"{where} must be an array", param=where)
    out = []
    for j, tc in enumerate(calls):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"{where}[{j}] must be a function call with a name", param=where)
        arguments = fn.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = jsonutil.loads(arguments) if arguments.strip() else {}
            except ValueError:
                raise bad_request(
                    f"{where}[{j}].function.arguments is not valid JSON", param=f"{where}[{j}].function.arguments"
                ) from None
        elif arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise bad_request(
                f"{where}[{j}].function.arguments must be a JSON object", param=f"{where}[{j}].function.arguments"
            )
        call: dict[str, Any] = {"function": {"index": j, "name": fn["name"], "arguments": arguments}}
        if isinstance(tc.get("id"), str) and tc["id"]:
            call["id"] = tc["id"]
            names[tc["id"]] = fn["name"]
        out.append(call)
    return out


def _tool_result(m: dict[str, Any], i: int, names: dict[str, str], provider: str) -> dict[str, Any]:
    """A `tool` message: Ollama matches results by `tool_name`, resolved from the call that has this id."""
    call_id = m.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None and isinstance(m.get("name"), str) and m["name"]:
        name = m["name"]  # no call with this id, but the client named the function
    if name is None:
        raise bad_request(
            f"messages[{i}].tool_call_id {call_id!r} matches no tool call of an earlier assistant message "
            f"(provider {provider} needs the function name of each tool result)",
            param=f"messages[{i}].tool_call_id",
        )
    content = m.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part["type"] != "text":
                where = f"messages[{i}].content[{j}]"
                raise bad_request(f"{where}: tool results take text parts only", param=where)
    out = {"role": "tool", "content": text_of(content), "tool_name": name}
    if isinstance(call_id, str):
        out["tool_call_id"] = call_id
    return out


def _images(content: Any, i: int, provider: str, role: str) -> list[str]:
    if not isinstance(content, list):
        return []
    images = []
    for j, part in enumerate(content):
        kind = part["type"]
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            continue
        if kind != "image_url" or role != "user":
            raise bad_request(f"{where}: '{kind}' parts are not supported by provider {provider}", param=where)
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        header, _, data = url.partition(",") if isinstance(url, str) else ("", "", "")
        if not (header.startswith("data:image/") and header.endswith(";base64") and data):
            # Ollama takes raw base64 only; fetching remote images is not the proxy's business.
            raise bad_request(f"{where}: images must be base64 data: URLs for provider {provider}", param=where)
        images.append(data)
    return images


# --------------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------------


def finish_reason(done_reason: Any) -> str:
    return FINISH_REASONS.get(done_reason, "stop") if isinstance(done_reason, str) else "stop"


def usage_of(data: dict[str, Any]) -> dict[str, Any] | None:
    completion = data.get("eval_count")
    if not isinstance(completion, int):
        return None
    prompt = data.get("prompt_eval_count")  # omitted when the prompt was fully cached
    return usage(prompt if isinstance(prompt, int) else 0, completion)


def new_call_id() -> str:
    """A tool-call id for a call Ollama sent without one (the next turn resolves it by scanning the history)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call_out(tc: Any) -> tuple[str, str, str]:
    """(id, name, arguments as a JSON string) of one Ollama tool call."""
    fn = tc.get("function") if isinstance(tc, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise UpstreamFormatError("expected Ollama tool calls as {function: {name, arguments}}")
    arguments = fn.get("arguments")
    if arguments is None:
        arguments = {}
    text = arguments if isinstance(arguments, str) else jsonutil.dumps_str(arguments)
    call_id = tc.get("id")
    return (call_id if isinstance(call_id, str) and call_id else new_call_id()), fn["name"], text


def tool_finish(reason: str, has_tool_calls: bool) -> str:
    """Ollama says `stop` when the model called tools; OpenAI says `tool_calls` (as Ollama's own /v1 layer)."""
    return "tool_calls" if has_tool_calls and reason == "stop" else reason


def parse_response(call: Call, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected an Ollama JSON object")
    model = data.get("model") or call.model or ""
    reason = finish_reason(data.get("done_reason"))
    message = data.get("message")
    if isinstance(message, dict):  # /api/chat
        content = message.get("content")
        calls = message.get("tool_calls") or []
        if not isinstance(content, str) and not (content is None and calls):
            raise UpstreamFormatError("expected an Ollama chat response with message.content")
        if not isinstance(calls, list):
            raise UpstreamFormatError("expected message.tool_calls to be an array")
        out_message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
        if message.get("thinking"):
            out_message["reasoning_content"] = message["thinking"]
        if calls and call.route_type == CHAT:
            out_message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                for call_id, name, arguments in map(tool_call_out, calls)
            ]
            reason = tool_finish(reason, True)
        response = chat_response(id=None, model=model, message=out_message, finish_reason=reason, usage=usage_of(data))
        return response if call.route_type == CHAT else chat_to_completion(response)
    text = data.get("response")  # /api/generate
    if not isinstance(text, str) or call.route_type == CHAT:
        raise UpstreamFormatError(
            "expected an Ollama response with 'message' (/api/chat) or 'response' (/api/generate)"
        )
    return completion_response(id=None, model=model, text=text, finish_reason=reason, usage=usage_of(data))


# --------------------------------------------------------------------------------------------------------------
# Streams: Ollama NDJSON -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class OllamaStream:
    """Translates an Ollama NDJSON stream (`/api/chat` or `/api/generate`) into OpenAI chunks, line by line."""

    __slots__ = ("_decoder", "_done", "_started", "_tool_calls", "out", "provider", "result")

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool, provider: str) -> None:
        self.provider = provider
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder = NDJSONDecoder()
        self._started = False
        self._done = False
        self._tool_calls = 0  # tool calls emitted so far: the OpenAI index of the next one

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return b""
        # One line per chunk is the rule; a chunk holding several is decoded line by line, so that a malformed
        # line loses none of the good lines before it, wherever the chunk boundaries fall.
        out = b""
        start, end = 0, len(chunk)
        while start < end and not self._done:
            cut = chunk.find(b"\n", start, end - 1)
            stop = end if cut < 0 else cut + 1
            try:
                lines = self._decoder.feed(chunk[start:stop] if start or stop < end else chunk)
            except StreamDecodeError as e:
                return out + self._fail(f"{self.provider} (ollama) stream is malformed: {e}")
            out += b"".join(self._line(line) for line in lines)
            start = stop
        return out

    @guarded
    def finish(self) -> bytes:
        if self._done:
            return b""
        try:
            out = b"".join(self._line(line) for line in self._decoder.flush())
        except StreamDecodeError as e:
            return self._fail(f"{self.provider} (ollama) stream is malformed: {e}")
        if not self._done:
            out += self._fail(f"{self.provider} (ollama) stream ended before its final (done) line")
        return out

    def _fail(self, message: str, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, code=code))

    def _line(self, line: Any) -> bytes:
        if self._done or not isinstance(line, dict):
            return b""
        if "error" in line:
            err = line["error"]
            message = err.get("message") if isinstance(err, dict) else err
            return self._fail(str(message or "ollama stream error"), code="upstream_error")
        if line.get("done"):
            # Ollama counts tokens only in its final line (a stream cut before it has no usage); they go into the
            # record before the line is translated, so that a line that fails (a malformed tool call) keeps them.
            self.out.note_usage(usage_of(line))
        out = b""
        if not self._started:
            self._started = True
            self.out.set_model(line.get("model"))
            out += self.out.role()
        message = line.get("message")
        if isinstance(message, dict):
            if message.get("thinking"):
                out += self.out.reasoning(message["thinking"])
            content = message.get("content")
        else:
            if line.get("thinking"):
                out += self.out.reasoning(line["thinking"])
            content = line.get("response")
        if isinstance(content, str) and content:
            out += self.out.text(content)
        calls = message.get("tool_calls") if isinstance(message, dict) and self.out.chat else None
        if calls:
            # Ollama sends each call whole (in one line): id and name first, then the arguments in one fragment.
            if not isinstance(calls, list):
                return out + self._fail(f"{self.provider} (ollama) sent tool_calls that are not an array")
            for tc in calls:
                try:
                    call_id, name, arguments = tool_call_out(tc)
                except UpstreamFormatError as e:
                    return out + self._fail(f"{self.provider} (ollama) stream: {e}")
                index = self._tool_calls
                self._tool_calls += 1
                out += self.out.tool_call_start(index, call_id, name) + self.out.tool_call_arguments(index, arguments)
        if line.get("done"):
            self._done = True
            reason = tool_finish(finish_reason(line.get("done_reason")), self._tool_calls > 0)
            out += self.out.finish(reason, usage_of(line))
        return out
