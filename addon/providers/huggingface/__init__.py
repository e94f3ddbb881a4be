"""Hugging Face: Text Generation Inference (TGI), the serverless Inference API and the HF router.

- Chat (`llm/v1/chat`) goes to the OpenAI-compatible Messages API, `/v1/chat/completions` of TGI or of the router
  (default `https://router.huggingface.co`). It is a passthrough, like the OpenAI provider, with TGI's quirks
  smoothed out: `stop` must be an array, `top_p` must be strictly between 0 and 1, `max_completion_tokens` is
  unknown to TGI, response and chunk ids are empty strings, and `eos_token`/`stop_sequence` finish reasons leak.
- Completions (`llm/v1/completions`) go to the native text-generation API: TGI `/generate` and
  `/generate_stream`, or, with no `upstream_url`, the serverless `https://api-inference.huggingface.co/models/{model}`.
  A whole `upstream_url` ending in `/v1/completions` selects TGI's OpenAI-compatible completions instead.

Sampling (TGI validates `temperature > 0` and `0 < top_p < 1`): OpenAI's `temperature: 0` and `top_p: 0` both mean
greedy decoding. Natively that is `do_sample: false` with no temperature/top_p/top_k; on the Messages API it is
`temperature: 0` (TGI turns that into greedy itself) with no `top_p`. `top_p: 1` is "no nucleus filtering" and is
omitted. Any other request samples (`do_sample: true`), as OpenAI does by default.

Pure code: no mitmproxy, no I/O.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ... import jsonutil
from ...errors import ProxyError, bad_request, default_error_type
from ...openai_format import (
    CHAT,
    EMBEDDINGS,
    completion_response,
    embedding_texts,
    embedding_usage,
    embeddings_body,
    embeddings_passthrough,
    embeddings_response,
    max_tokens_of,
    new_id,
    single_prompt,
    stop_list,
)
from ...spec import ModelOptions
from ...streaming import OpenAIPassthrough, SSETranslator, chunk_problem
from ...streams import SSEEvent
from ..base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    build_url,
    client_status,
    register,
    upstream_error,
    url_path,
)

ROUTER_BASE = "https://router.huggingface.co"
SERVERLESS_BASE = "https://api-inference.huggingface.co"
CHAT_PATH = "/v1/chat/completions"
GENERATE_PATH = "/generate"
# TGI's name for "the model this server loaded", accepted where a model is required.
DEFAULT_MODEL = "tgi"

# The three ways a rule can talk to Hugging Face.
MESSAGES = "messages"  # OpenAI-compatible /v1/chat/completions (TGI, router)
OPENAI_COMPLETIONS = "openai-completions"  # OpenAI-compatible /v1/completions (TGI)
NATIVE = "native"  # /generate, /generate_stream, /models/{model}, TGI's compat route /

# TGI finish reasons (and OpenAI's own, which the router and TGI's chat route also send) -> OpenAI.
FINISH_REASONS = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "stop": "stop",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "function_call",
}
# TGI error_type -> status, for errors that arrive inside a stream (router/src/server.rs).
ERROR_TYPE_STATUS = {
    "validation": 422,
    "template_error": 422,
    "tool_error": 422,
    "overloaded": 429,
    "generation": 502,
    "incomplete_generation": 502,
}
# Statuses OpenAI clients do not know: TGI's 424 "generation error" is an upstream failure.
STATUS_MAP = {424: 502}

# Native completions: OpenAI fields with no TGI equivalent, refused unless neutral (None is always fine).
_NATIVE_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False, 0),
    "echo": (False,),
    "suffix": ("",),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "tools": ([],),
}


def finish_reason(reason: Any) -> str | None:
    """A TGI or OpenAI finish reason in OpenAI's vocabulary; unknown values become "stop"."""
    if reason is None or reason == "":
        return None
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


class HuggingFace(Provider):
    name = "huggingface"
    api_base = "https://router.huggingface.co"
    native_format = "huggingface"
    supports_streaming = True

    def requires_model(self, options: ModelOptions) -> bool:
        # The router and the serverless API need one; a self-hosted TGI serves the model it loaded.
        return not options.upstream_url

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.route_type == EMBEDDINGS:
            return _embeddings_request(call)
        mode = _mode(call)
        if mode == NATIVE:
            url = _native_url(call)
            return UpstreamRequest(url=url, body=_native_body(call, url))
        url = build_url(call.options, ROUTER_BASE, CHAT_PATH)
        return UpstreamRequest(url=url, body=_openai_body(call), headers=_hf_headers(call.options))

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> HFOpenAIStream | TGIStream:
        if _mode(call) == NATIVE:
            return TGIStream(call, include_usage, keep_payload)
        return HFOpenAIStream(call.route_type, not include_usage, keep_payload)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            return _embeddings_response(call, data)
        if _mode(call) == NATIVE:
            return _parse_native(call, data)
        return _parse_openai(call, data)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        return _upstream_error(status, body, content_type, self.name)


# --------------------------------------------------------------------------------------------------------------
# Which API, which URL
# --------------------------------------------------------------------------------------------------------------


# ---- embeddings: the OpenAI-compatible /v1/embeddings (router, TEI), or TEI's native /embed ----------------------

EMBEDDINGS_PATH = "/v1/embeddings"
TEI_EMBED = "/embed"


def _tei_embed(call: Call) -> bool:
    return (url_path(call.options) or "").rstrip("/").endswith(TEI_EMBED)


def _embeddings_request(call: Call) -> UpstreamRequest:
    url = build_url(call.options, ROUTER_BASE, EMBEDDINGS_PATH)
    if not _tei_embed(call):
        body = embeddings_body(call.body, call.model or DEFAULT_MODEL, "huggingface")
        return UpstreamRequest(url=url, body=body, headers=_hf_headers(call.options))
    if call.body.get("dimensions") is not None:
        raise bad_request(f"'dimensions' is not supported by TEI's {TEI_EMBED}: use /v1/embeddings", param="dimensions")
    return UpstreamRequest(url=url, body={"inputs": embedding_texts(call.body, "huggingface")})


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    encoding = call.body.get("encoding_format")
    if not _tei_embed(call):
        return embeddings_passthrough(data, call.model or DEFAULT_MODEL, encoding)
    if not isinstance(data, list):
        raise UpstreamFormatError(f"expected TEI's {TEI_EMBED} answer: an array of vectors")
    headers = call.response_headers or {}
    tokens = headers.get("x-compute-tokens")  # TEI's count of the tokens it embedded
    found = embedding_usage(int(tokens)) if isinstance(tokens, str) and tokens.isdigit() else None
    return embeddings_response(data, call.model or DEFAULT_MODEL, found, encoding)


def _mode(call: Call) -> str:
    path = (url_path(call.options) or "").rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if call.route_type == CHAT:
        if last in ("generate", "generate_stream"):
            raise bad_request(
                f"provider huggingface serves chat on the Messages API ({CHAT_PATH}); the rule's upstream points "
                f"at TGI's native /{last}, which takes a raw prompt: use route_type llm/v1/completions there"
            )
        return MESSAGES
    if path.endswith("/chat/completions"):
        raise bad_request(
            "the rule's upstream is a chat endpoint (/chat/completions): use route_type llm/v1/chat for it"
        )
    if path.endswith("/completions"):
        return OPENAI_COMPLETIONS
    return NATIVE


def _native_url(call: Call) -> str:
    options = call.options
    if options.upstream_url:
        default_path = GENERATE_PATH
    else:
        if not call.model:
            raise bad_request("no model: the serverless Inference API needs one in its URL", param="model")
        default_path = "/models/" + _model_path(call.model)
    url = build_url(options, SERVERLESS_BASE, default_path)
    parts = urlsplit(url)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    # A whole upstream_url naming one TGI operation gets the one that matches the client's stream flag.
    if last in ("generate", "generate_stream"):
        wanted = "generate_stream" if call.stream else "generate"
        if last != wanted:
            url = urlunsplit(parts._replace(path=f"{head}/{wanted}"))
    return url


def _model_path(model: str) -> str:
    """A Hub model id ("org/name") as URL path segments, each percent-encoded; no empty or dot segments."""
    segments = model.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise bad_request(f"invalid Hugging Face model id {model!r}", param="model")
    return "/".join(quote(s, safe="") for s in segments)


def _is_tgi_operation(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] in ("generate", "generate_stream")


def _hf_headers(options: ModelOptions) -> dict[str, str]:
    """The serverless API's cache and cold-start switches, as the headers its OpenAI-compatible routes read."""
    hf = options.huggingface
    headers: dict[str, str] = {}
    if hf is not None:
        if hf.use_cache is not None:
            headers["x-use-cache"] = "true" if hf.use_cache else "false"
        if hf.wait_for_model is not None:
            headers["x-wait-for-model"] = "true" if hf.wait_for_model else "false"
    return headers


# --------------------------------------------------------------------------------------------------------------
# Sampling parameters
# --------------------------------------------------------------------------------------------------------------


def _sampling(body: dict[str, Any]) -> tuple[bool, Any, Any]:
    """(greedy, temperature, top_p) after range checks; top_p is None when it filters nothing."""
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    if temperature is not None and temperature < 0:
        raise bad_request("'temperature' must be between 0 and 2", param="temperature")
    if top_p is not None and not 0 <= top_p <= 1:
        raise bad_request("'top_p' must be between 0 and 1", param="top_p")
    greedy = temperature == 0 or top_p == 0
    if top_p == 1:
        top_p = None
    return greedy, temperature, top_p


# --------------------------------------------------------------------------------------------------------------
# To Hugging Face: OpenAI-compatible routes
# --------------------------------------------------------------------------------------------------------------


def _openai_body(call: Call) -> dict[str, Any]:
    body = dict(call.body)
    _refuse_functions(body)
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request("'n' > 1 is not supported by provider huggingface (TGI answers one choice)", param="n")
    top_k = body.pop("top_k", None)
    if top_k and call.options.top_k is None:  # a rule's top_k is for the native route: dropped, like OpenAI's
        raise bad_request(
            "'top_k' is not supported on Hugging Face's OpenAI-compatible routes; "
            "the native API (route_type llm/v1/completions) takes it",
            param="top_k",
        )
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
        # TGI's grammar takes {"type": "json", "value": <schema>}, not OpenAI's shape: not mapped yet.
        raise bad_request(
            "response_format json_object/json_schema is not supported for provider huggingface yet",
            param="response_format",
        )
    body.pop("response_format", None)
    body["model"] = call.model or DEFAULT_MODEL
    stop = stop_list(body)
    if stop is not None:
        body["stop"] = stop  # TGI refuses a bare string (422)
    if body.get("max_completion_tokens") is not None:
        body["max_tokens"] = body.pop("max_completion_tokens")  # TGI knows only max_tokens
    else:
        body.pop("max_completion_tokens", None)
    greedy, _temperature, top_p = _sampling(body)
    if greedy:
        body["temperature"] = 0  # TGI: temperature 0 -> do_sample false
        body.pop("top_p", None)  # any top_p < 1 would switch TGI back to sampling
    elif top_p is None:
        body.pop("top_p", None)
    if call.route_type == CHAT:
        body["messages"] = [
            {**m, "role": "system"} if m.get("role") == "developer" else m for m in body["messages"]
        ]  # chat templates know system, not developer
    body["stream"] = call.stream
    if call.stream:
        # Ask for the usage chunk so the record has tokens; the client only sees it if it asked too.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream_options", None)
    return body


def _refuse_functions(body: dict[str, Any]) -> None:
    """The deprecated function-calling fields: TGI does not know them and would ignore them, silently."""
    for key in ("functions", "function_call"):
        if body.get(key) is not None:
            raise bad_request(
                f"'{key}' (deprecated) is not supported by provider huggingface: use tools / tool_choice", param=key
            )
    for i, m in enumerate(body.get("messages") or ()):
        if isinstance(m, dict) and (m.get("role") == "function" or m.get("function_call") is not None):
            raise bad_request(
                f"messages[{i}]: function messages (deprecated) are not supported by provider huggingface: use "
                "tool_calls and tool messages",
                param=f"messages[{i}]",
            )


# --------------------------------------------------------------------------------------------------------------
# To Hugging Face: native text generation
# --------------------------------------------------------------------------------------------------------------


def _native_body(call: Call, url: str) -> dict[str, Any]:
    body = call.body
    for key, neutral in _NATIVE_UNSUPPORTED.items():
        value = body.get(key)
        if value is not None and value not in neutral:
            raise bad_request(f"'{key}' is not supported by provider huggingface (text generation)", param=key)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
        raise bad_request(
            "response_format json_object/json_schema is not supported for provider huggingface yet",
            param="response_format",
        )
    params: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        params["max_new_tokens"] = max_tokens
    greedy, temperature, top_p = _sampling(body)
    top_k = body.get("top_k")
    if top_k is not None and top_k < 0:
        raise bad_request("'top_k' must be 0 or more", param="top_k")
    if greedy:
        params["do_sample"] = False
    else:
        # A present `parameters` object without do_sample is greedy on TGI; OpenAI samples unless told not to.
        params["do_sample"] = True
        if temperature is not None:
            params["temperature"] = temperature
        if top_p is not None:
            params["top_p"] = top_p
        if top_k:
            params["top_k"] = top_k
    stop = stop_list(body)
    if stop:
        params["stop"] = stop
    if body.get("seed") is not None:
        params["seed"] = body["seed"]
    if body.get("frequency_penalty"):
        params["frequency_penalty"] = body["frequency_penalty"]
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        params["best_of"] = best_of
    params["return_full_text"] = False  # the serverless API and TGI's compat route echo the prompt by default
    params["details"] = True  # finish reason and token counts
    out: dict[str, Any] = {"inputs": single_prompt(body), "parameters": params}
    hf = call.options.huggingface
    if hf is not None:
        hf_options = {
            k: v for k, v in (("use_cache", hf.use_cache), ("wait_for_model", hf.wait_for_model)) if v is not None
        }
        if hf_options:
            out["options"] = hf_options
    if not _is_tgi_operation(url):
        out["stream"] = call.stream  # /models/{model} and TGI's compat route choose the answer format by body
    return out


# --------------------------------------------------------------------------------------------------------------
# From Hugging Face
# --------------------------------------------------------------------------------------------------------------


def _parse_openai(call: Call, data: Any) -> dict[str, Any]:
    expected = "chat.completion" if call.route_type == CHAT else "text_completion"
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamFormatError(f"expected a {expected} object with 'choices'")
    out = dict(data)
    if not out.get("id"):
        out["id"] = new_id("chatcmpl" if call.route_type == CHAT else "cmpl")  # TGI sends ""
    choices = []
    for choice in data["choices"]:
        if isinstance(choice, dict):
            choice = {**choice, "finish_reason": finish_reason(choice.get("finish_reason"))}
            message = choice.get("message")
            if isinstance(message, dict) and message.get("tool_calls"):
                calls = message["tool_calls"]
                calls = [_tool_call(c) for c in (calls if isinstance(calls, list) else [calls])]
                choice["message"] = {**message, "tool_calls": calls}
                if choice["finish_reason"] == "stop":
                    choice["finish_reason"] = "tool_calls"  # TGI says eos_token after a (grammar) tool call
        choices.append(choice)
    out["choices"] = choices
    return out


def _tool_call(call: Any) -> Any:
    """Older TGI versions send tool-call arguments as an object (OpenAI's are a JSON string), some send an empty
    id or none: synthesised, so that the client can match its tool result to the call."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    fn = call["function"]
    call = {**call, "type": "function"}
    if not call.get("id"):
        call["id"] = new_tool_call_id()
    if isinstance(fn.get("arguments"), (dict, list)):
        call["function"] = {**fn, "arguments": json.dumps(fn["arguments"])}
    elif fn.get("arguments") is None:
        call["function"] = {**fn, "arguments": "{}"}
    return call


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _parse_native(call: Call, data: Any) -> dict[str, Any]:
    item = data[0] if isinstance(data, list) and data else data  # /models/{model} and compat: an array of one
    if not isinstance(item, dict):
        raise UpstreamFormatError("expected a text-generation object or array with 'generated_text'")
    text = item.get("generated_text")
    if not isinstance(text, str):
        if "error" in item:
            raise UpstreamFormatError(f"the upstream answered 200 with an error: {str(item['error'])[:300]}")
        raise UpstreamFormatError("expected a text-generation object or array with 'generated_text'")
    details = item.get("details") if isinstance(item.get("details"), dict) else {}
    raw_reason = details.get("finish_reason")
    if raw_reason in (None, "stop_sequence"):
        text = _strip_stop(text, stop_list(call.body) or [])
    return completion_response(
        id=None,
        model=call.model or DEFAULT_MODEL,
        text=text,
        finish_reason=finish_reason(raw_reason) or "stop",
        usage=_native_usage(details, getattr(call, "response_headers", None)),
    )


def _native_usage(details: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Usage from TGI `details`: `generated_tokens` and the prompt length, which is `input_length` (stream
    details), the length of `prefill` (only filled when decoder_input_details was asked for) or TGI's
    `x-prompt-tokens` response header. Without a prompt length there is no usage: no made-up zero."""
    generated = details.get("generated_tokens")
    if not _is_count(generated):
        return None
    prompt = details.get("input_length")
    if not _is_count(prompt):
        prefill = details.get("prefill")
        prompt = len(prefill) if isinstance(prefill, list) and prefill else None
    if prompt is None and headers is not None:
        header = headers.get("x-prompt-tokens")
        prompt = int(header) if isinstance(header, str) and header.isdigit() else None
    if prompt is None:
        return None
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _strip_stop(text: str, stops: list[str]) -> str:
    """TGI keeps the stop sequence that ended generation at the end of the text; OpenAI leaves it out."""
    for stop in sorted(stops, key=len, reverse=True):
        if stop and text.endswith(stop):
            return text[: -len(stop)]
    return text


def _held_back(text: str, stops: list[str]) -> int:
    """The length of the longest end of `text` that is the start of a stop sequence (it may yet complete one)."""
    held = 0
    for stop in stops:
        for k in range(min(len(stop), len(text)), held, -1):
            if text.endswith(stop[:k]):
                held = k
                break
    return held


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------


def _upstream_error(status: int, body: bytes, content_type: str, provider: str) -> ProxyError:
    out_status = STATUS_MAP.get(status, client_status(status))
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _with_status(upstream_error(status, body, content_type, provider), out_status)
    err = data.get("error")
    if isinstance(err, list) and err:  # the serverless API lists validation errors
        err = "; ".join(str(e) for e in err)
    if not isinstance(err, str) or not err:
        return _with_status(upstream_error(status, body, content_type, provider), out_status)
    estimated = data.get("estimated_time")
    if isinstance(estimated, (int, float)) and not isinstance(estimated, bool):
        # A cold model on the serverless API: say how long to wait, and how not to have to.
        seconds = max(1, math.ceil(estimated))
        message = (
            f"{err} (estimated time {seconds} s): retry then, or set "
            "model.options.huggingface.wait_for_model: true on the rule"
        )
        return ProxyError(503, message, code="model_loading", headers={"retry-after": str(seconds)})
    error_type = data.get("error_type")
    code = error_type if isinstance(error_type, str) and error_type else None
    # TGI's error_type (validation, generation, overloaded, ...) is kept as the code; the type is OpenAI's.
    return ProxyError(out_status, err, type=default_error_type(out_status), code=code)


def _with_status(err: ProxyError, status: int) -> ProxyError:
    err.status = status
    return err


def _stream_error(obj: dict[str, Any]) -> ProxyError:
    """A `data:{"error": ...}` event: TGI's {"error","error_type"}, its chat route's {"error":{"message",
    "http_status_code"}}, or an OpenAI-style error object from the router."""
    err = obj.get("error")
    if isinstance(err, dict):
        message = err.get("message")
        status = err.get("http_status_code")
        code = err.get("code") or err.get("error_type") or err.get("type")
        etype = err.get("type")
    else:
        message = err
        code = obj.get("error_type")
        status = None
        etype = None
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        status = ERROR_TYPE_STATUS.get(code, 502) if isinstance(code, str) else 502
    status = STATUS_MAP.get(status, client_status(status))
    text = message if isinstance(message, str) and message else "huggingface stream error"
    return ProxyError(
        status,
        text,
        type=etype if isinstance(etype, str) and etype else default_error_type(status),
        code=str(code) if code is not None else "stream_error",
    )


# --------------------------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------------------------


class HFOpenAIStream(OpenAIPassthrough):
    """TGI's / the router's OpenAI-format stream, passed through event by event with the ids made non-empty,
    finish reasons mapped to OpenAI's and error events put in the OpenAI envelope. TGI writes `data:` without
    a space; the client gets the usual `data: `.

    Tool-call deltas are passed in OpenAI's shape: older TGI sends `tool_calls` as one object, not an array, with
    an empty id and a null name after the first delta; the first delta of each call gets an id (synthesised when
    empty) and `type: function`, later ones lose their empty id and null name (the SDK's accumulator would
    otherwise concatenate ids), and `eos_token`/`stop` after tool calls is `tool_calls`."""

    __slots__ = ("_id", "_tool_ids")

    def __init__(self, route_type: str, hide_usage_chunk: bool, keep_payload: bool) -> None:
        super().__init__(route_type, hide_usage_chunk, keep_payload)
        self._id = new_id("chatcmpl" if route_type == CHAT else "cmpl")
        self._tool_ids: dict[tuple[Any, Any], str] = {}  # (choice index, tool-call index) -> id

    def _tool_deltas(self, choice_index: Any, deltas: Any) -> list[Any]:
        out = []
        for d in deltas if isinstance(deltas, list) else [deltas]:
            if not isinstance(d, dict):
                continue
            d = {**d, "index": d.get("index", 0)}
            fn = d.get("function") if isinstance(d.get("function"), dict) else {}
            arguments = fn.get("arguments")
            if arguments is not None and not isinstance(arguments, str):
                fn = {**fn, "arguments": json.dumps(arguments)}
            key = (choice_index, d["index"])
            if key not in self._tool_ids:
                self._tool_ids[key] = d.get("id") or new_tool_call_id()
                d.update(id=self._tool_ids[key], type="function")
                d["function"] = {**fn, "name": fn.get("name") or "", "arguments": fn.get("arguments") or ""}
            else:
                if not d.get("id") or d["id"] == self._tool_ids[key]:
                    d.pop("id", None)
                if not d.get("type"):
                    d.pop("type", None)
                d["function"] = {k: v for k, v in fn.items() if v is not None and not (k == "name" and not v)}
            out.append(d)
        return out

    def _event(self, data: str) -> bytes:
        if self._done:
            return b""
        if data == "[DONE]":
            return super()._event(data)
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("upstream sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if obj.get("error"):  # as the OpenAI SDK: an `"error": null` field is no error
            self.result.error = _stream_error(obj)
            self._done = True
            return b"data: " + self.result.error.body() + b"\n\n"
        problem = chunk_problem(obj)
        if problem:
            return self._fail(f"upstream sent a malformed chunk: {problem}")
        changed = False
        if not obj.get("id"):
            obj["id"] = self._id
            changed = True
        for choice in obj.get("choices") or ():
            if isinstance(choice, dict):
                delta = choice.get("delta")
                if isinstance(delta, dict) and delta.get("tool_calls"):
                    delta["tool_calls"] = self._tool_deltas(choice.get("index", 0), delta["tool_calls"])
                    changed = True
                reason = choice.get("finish_reason")
                mapped = finish_reason(reason)
                if mapped == "stop" and any(k[0] == choice.get("index", 0) for k in self._tool_ids):
                    mapped = "tool_calls"
                if mapped != reason:
                    choice["finish_reason"] = mapped
                    changed = True
        self._capture(obj)
        if self.hide_usage_chunk and not obj.get("choices") and obj.get("usage"):
            return b""
        return b"data: " + (json.dumps(obj).encode() if changed else data.encode()) + b"\n\n"


class TGIStream(SSETranslator):
    """TGI `/generate_stream` (and the serverless API's stream) -> OpenAI text_completion chunks.

    Events are `data:{"index","token":{"text","special"},"generated_text","details"}`; the last one carries
    `generated_text` and `details` and the connection then closes: there is no `[DONE]`. Special tokens (e.g.
    `<|eot_id|>`) are not text. TGI leaves the stop sequence that ended generation in the text, OpenAI does
    not: text that could be the start of a stop sequence is held back (at most the longest stop's length)
    until it is known not to be one. The token counts are in the last event's `details` only: a stream cut off
    before it is recorded without usage.
    """

    __slots__ = ("_pending", "_stops")
    provider = "huggingface"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or DEFAULT_MODEL, include_usage, keep_payload)
        self._stops = [s for s in stop_list(call.body) or [] if s]
        self._pending = ""

    def _event(self, sse: SSEEvent) -> bytes:
        data = sse.data
        if self._done:
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("huggingface sent an event that is not JSON")
        if not isinstance(event, dict):
            return b""
        if "error" in event:
            self._done = True
            return self.out.error(_stream_error(event))
        out = b""
        token = event.get("token")
        if isinstance(token, dict) and not token.get("special"):
            text = token.get("text")
            if isinstance(text, str) and text:
                out += self._text(text)
        details = event.get("details")
        if event.get("generated_text") is not None or details is not None:
            details = details if isinstance(details, dict) else {}
            raw_reason = details.get("finish_reason")
            tail = self._pending
            self._pending = ""
            if raw_reason in (None, "stop_sequence"):
                tail = _strip_stop(tail, self._stops)
            out += self.out.text(tail)
            self._done = True
            out += self.out.finish(finish_reason(raw_reason) or "stop", _native_usage(details))
        return out

    def _text(self, text: str) -> bytes:
        if not self._stops:
            return self.out.text(text)
        pending = self._pending + text
        held = _held_back(pending, self._stops)
        self._pending = pending[len(pending) - held :]
        return self.out.text(pending[: len(pending) - held])


HUGGINGFACE = register(HuggingFace())
