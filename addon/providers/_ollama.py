"""Ollama's native API (`/api/chat`, `/api/generate`), shared by the llama2 and mistral providers.

OpenAI chat -> `/api/chat` with the messages; OpenAI completions -> `/api/generate` with the prompt (Ollama applies
the model's template to both). Generation parameters live under `options` (Modelfile names: `num_predict`, ...).
Ollama streams by default, so `stream` is always sent. Streams are NDJSON: one object per line, the last one has
`done: true`, the finish reason and the token counts; an error mid-stream is a `{"error": "..."}` line.
"""

from __future__ import annotations

from typing import Any

from ..errors import ProxyError, bad_request
from ..openai_format import (
    CHAT,
    chat_response,
    chat_to_completion,
    completion_response,
    max_tokens_of,
    single_prompt,
    stop_list,
    text_of,
    usage,
)
from ..rules import ModelOptions
from ..streaming import ChunkWriter, stream_error
from ..streams import NDJSONDecoder, StreamDecodeError
from .base import Call, UpstreamFormatError, UpstreamRequest, build_url, url_path

CHAT_PATH = "/api/chat"
GENERATE_PATH = "/api/generate"

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
    for key, neutral in table.items():
        value = body.get(key)
        if value is not None and value != neutral:
            raise bad_request(f"'{key}' is not supported by provider {provider}", param=key)
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise bad_request(
            f"'modalities' other than ['text'] are not supported by provider {provider}", param="modalities"
        )


def refuse_tools(body: dict[str, Any], provider: str) -> None:
    """Tool calling is not mapped yet: refuse it rather than let the model answer without the tools."""
    if body.get("tools"):
        raise bad_request(f"tools are not supported by provider {provider} yet", param="tools")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise bad_request("tool_choice needs tools", param="tool_choice")


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
    refuse_tools(body, provider)
    kind = endpoint(call)
    out: dict[str, Any] = {"model": call.model}
    if call.route_type == CHAT:
        out["messages"] = messages(body["messages"], provider)
    else:
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
    for i, m in enumerate(msgs):
        role = m["role"]
        if role == "developer":
            role = "system"
        elif role not in ("system", "user", "assistant"):
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider {provider} yet",
                param=f"messages[{i}].role",
            )
        if m.get("tool_calls"):
            raise bad_request(
                f"messages[{i}]: tool calls are not supported by provider {provider} yet",
                param=f"messages[{i}].tool_calls",
            )
        message: dict[str, Any] = {"role": role, "content": text_of(m.get("content"))}
        images = _images(m.get("content"), i, provider, role)
        if images:
            message["images"] = images
        out.append(message)
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


def parse_response(call: Call, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected an Ollama JSON object")
    model = data.get("model") or call.model or ""
    reason = finish_reason(data.get("done_reason"))
    message = data.get("message")
    if isinstance(message, dict):  # /api/chat
        content = message.get("content")
        if not isinstance(content, str):
            raise UpstreamFormatError("expected an Ollama chat response with message.content")
        out_message: dict[str, Any] = {"role": "assistant", "content": content}
        if message.get("thinking"):
            out_message["reasoning_content"] = message["thinking"]
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

    __slots__ = ("_decoder", "_done", "_started", "out", "provider", "result")

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool, provider: str) -> None:
        self.provider = provider
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder = NDJSONDecoder()
        self._started = False
        self._done = False

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
        if line.get("done"):
            self._done = True
            out += self.out.finish(finish_reason(line.get("done_reason")), usage_of(line))
        return out
