"""The standard (OpenAI) format: request validation, response builders, finish reasons and usage.

Requests stay plain dicts: every provider reads a few keys and the OpenAI passthrough must keep fields we do
not model. Validation checks what the translations rely on and answers anything else with a clear 400.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .errors import bad_request

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
EMBEDDINGS = "llm/v1/embeddings"

MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def _check_type(body: dict[str, Any], key: str, types: type | tuple[type, ...], what: str) -> None:
    value = body.get(key)
    # bool is an int in Python; a JSON true is never a valid number of tokens.
    if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types))):
        raise bad_request(f"'{key}' must be {what}", param=key)


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _validate_common(body: dict[str, Any]) -> None:
    _check_type(body, "model", str, "a string")
    _check_type(body, "stream", bool, "a boolean")
    for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _check_type(body, key, (int, float), "a number")
    for key in ("max_tokens", "max_completion_tokens", "n", "seed", "top_k"):
        _check_type(body, key, int, "an integer")
    for key, least in (("max_tokens", 0), ("max_completion_tokens", 0), ("n", 1)):
        # OpenAI refuses these; a negative limit would reach Ollama as num_predict -1: no limit at all.
        if body.get(key) is not None and body[key] < least:
            raise bad_request(f"'{key}' must be at least {least}", param=key)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise bad_request("'stop' must be a string or an array of strings", param="stop")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options")


def validate_chat(body: Any) -> dict[str, Any]:
    """Check a Chat Completions body; returns it unchanged or raises a 400 ProxyError."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    messages = body.get("messages")
    if messages is None:
        raise bad_request("'messages' is a required property", param="messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{param} must be an object", param=param)
        role = message.get("role")
        if role not in MESSAGE_ROLES:
            raise bad_request(f"{param}.role must be one of {', '.join(sorted(MESSAGE_ROLES))}", param=f"{param}.role")
        content = message.get("content")
        if content is None:
            # Only an assistant turn (it then carries tool calls) and a deprecated function result may be
            # content-less (openai-python: ChatCompletionFunctionMessageParam.content is Optional[str]).
            if role not in ("assistant", "function"):
                raise bad_request(f"{param}.content is required for role '{role}'", param=f"{param}.content")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise bad_request(
                        f"{param}.content[{j}] must be an object with a 'type'", param=f"{param}.content[{j}]"
                    )
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise bad_request(f"{param}.content[{j}].text must be a string", param=f"{param}.content[{j}].text")
        elif not isinstance(content, str):
            raise bad_request(f"{param}.content must be a string or an array of parts", param=f"{param}.content")
    _validate_common(body)
    return body


def validate_completions(body: Any) -> dict[str, Any]:
    """Check a legacy Completions body; returns it unchanged or raises a 400 ProxyError."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    prompt = body.get("prompt")
    if prompt is None:
        raise bad_request("you must provide a 'prompt' parameter", param="prompt")
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
        raise bad_request("'prompt' must be a string or a non-empty array", param="prompt")
    _validate_common(body)
    return body


def validate_embeddings(body: Any) -> dict[str, Any]:
    """Check an Embeddings body (`input`, `model`, `dimensions`, `encoding_format`, `user`); no streaming exists."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    value = body.get("input")
    if value is None:
        raise bad_request("'input' is a required property", param="input")
    if not (isinstance(value, str) or _is_tokens(value) or _is_list_of(value, str) or _is_list_of(value, _is_tokens)):
        raise bad_request(
            "'input' must be a string, an array of strings, an array of token ids or an array of such arrays",
            param="input",
        )
    _check_type(body, "model", str, "a string")
    _check_type(body, "user", str, "a string")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise bad_request("'dimensions' must be a positive integer", param="dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    for key in ("stream", "stream_options"):
        if body.get(key) not in (None, False):
            raise bad_request(f"embeddings are not streamed: remove '{key}'", param=key, code="streaming_unsupported")
    return body


def _is_tokens(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _is_list_of(value: Any, kind: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(v, kind) for v in value) if isinstance(kind, type) else all(kind(v) for v in value)


def validate(route_type: str, body: Any) -> dict[str, Any]:
    if route_type == CHAT:
        return validate_chat(body)
    if route_type == EMBEDDINGS:
        return validate_embeddings(body)
    return validate_completions(body)


def refuse_unsupported(body: dict[str, Any], provider: str, table: Mapping[str, Any]) -> None:
    """Refuse (400) the OpenAI fields a provider has no equivalent for, unless they hold their neutral value
    (`table`: field -> neutral value), so a client never silently gets other behaviour than it asked for. These
    providers answer text only, so `modalities` other than ["text"] is refused too."""
    for key, neutral in table.items():
        value = body.get(key)
        if value is not None and value != neutral:
            raise bad_request(f"'{key}' is not supported by provider {provider}", param=key)
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise bad_request(
            f"'modalities' other than ['text'] are not supported by provider {provider}", param="modalities"
        )


def text_of(content: Any) -> str:
    """The text of a message content (string, or array of text parts); other parts are the caller's business."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def single_prompt(body: dict[str, Any]) -> str:
    """The one prompt string of a completions request, for providers without batch prompts."""
    prompt = body["prompt"]
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    raise bad_request(
        "this provider takes one text prompt per request; arrays of prompts and token ids are not supported",
        param="prompt",
    )


def embedding_texts(body: dict[str, Any], provider: str) -> list[str]:
    """The inputs of an embeddings request as a list of texts (token-id arrays are for OpenAI-served models only)."""
    value = body["input"]
    if isinstance(value, str):
        return [value]
    if not _is_list_of(value, str):
        raise bad_request(f"provider {provider} embeds text: token-id arrays are not supported", param="input")
    return list(value)


def max_tokens_of(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens")
    return value if value is not None else body.get("max_tokens")


def stop_list(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


# --------------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return out


def usage_with_cache(raw: Any, input_key: str, output_key: str, read_key: str, write_key: str) -> dict[str, Any] | None:
    """OpenAI usage from a provider that counts cache reads and writes apart from its input tokens (Anthropic,
    Bedrock): all of them are prompt tokens, and cache reads are OpenAI's cached tokens. None if malformed."""
    if not isinstance(raw, dict):
        return None
    input_tokens, output_tokens = raw.get(input_key), raw.get(output_key)
    if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
        return None
    cache_read = raw.get(read_key) or 0
    cache_write = raw.get(write_key) or 0
    return usage(input_tokens + cache_read + cache_write, output_tokens, cached_tokens=cache_read)


def chat_response(
    *,
    id: str | None,
    model: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    created: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id or new_id("chatcmpl"),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def completion_response(
    *,
    id: str | None,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    created: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id or new_id("cmpl"),
        "object": "text_completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def chat_to_completion(response: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion reshaped as a text_completion (completions served by a chat backend)."""
    choices = [
        {
            "index": c.get("index", 0),
            "text": text_of(c.get("message", {}).get("content")),
            "logprobs": None,
            "finish_reason": c.get("finish_reason"),
        }
        for c in response.get("choices", [])
    ]
    out = {**response, "object": "text_completion", "choices": choices}
    if isinstance(out.get("id"), str) and out["id"].startswith("chatcmpl"):
        out["id"] = "cmpl" + out["id"][len("chatcmpl") :]
    return out


# --------------------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------------------


def encode_embedding(vector: list[float]) -> str:
    """A vector as OpenAI's `encoding_format: base64` sends it: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_usage(prompt_tokens: Any) -> dict[str, Any] | None:
    """Embeddings usage for the client and the record: only input tokens (None when the provider reports none)."""
    if isinstance(prompt_tokens, float) and prompt_tokens.is_integer():
        prompt_tokens = int(prompt_tokens)  # some providers count in JSON floats (5.0)
    if not isinstance(prompt_tokens, int) or isinstance(prompt_tokens, bool):
        return None
    return usage(prompt_tokens, 0)


def embeddings_response(
    vectors: Any, model: str, usage: dict[str, Any] | None, encoding_format: Any = None
) -> dict[str, Any]:
    """The OpenAI embeddings list for vectors of floats; base64-encoded when the client asked for it. Raises
    ValueError (the glue answers 502) for vectors that are not arrays of numbers."""
    if not isinstance(vectors, list):
        raise ValueError("expected an array of embeddings")
    data = []
    for i, vector in enumerate(vectors):
        if not isinstance(vector, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector
        ):
            raise ValueError(f"embedding {i} is not an array of numbers")
        embedding: Any = encode_embedding(vector) if encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    out: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage is not None:
        out["usage"] = usage
    return out


def embeddings_body(
    body: dict[str, Any],
    model: str | None,
    provider: str,
    dimensions_key: str | None = "dimensions",
    tokens: bool = False,
) -> dict[str, Any]:
    """The body for an OpenAI-compatible embeddings server other than OpenAI's: floats asked for (a base64 answer
    is encoded here), `dimensions` under the server's name for it (None: the server has none, refused), token-id
    arrays only where the server takes them."""
    out: dict[str, Any] = {"model": model, "input": body["input"] if tokens else embedding_texts(body, provider)}
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if dimensions_key is None:
            raise bad_request(f"'dimensions' is not supported by provider {provider}", param="dimensions")
        out[dimensions_key] = dimensions
    return out


def embeddings_passthrough(data: Any, model: str, encoding_format: Any = None) -> dict[str, Any]:
    """An OpenAI-shaped embeddings answer checked, its usage normalised (completion_tokens 0) and, when the
    client asked for base64 and the upstream (asked for floats) sent floats, encoded."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError("expected an embeddings list object with 'data'")
    items = sorted((d for d in data["data"] if isinstance(d, dict)), key=lambda d: d.get("index", 0))
    if encoding_format == "base64" and all(isinstance(d.get("embedding"), list) for d in items):
        out = embeddings_response([d["embedding"] for d in items], data.get("model") or model, None, "base64")
    else:
        for d in items:
            if not isinstance(d.get("embedding"), (list, str)):
                raise ValueError("expected each item of 'data' to carry an 'embedding'")
        out = {**data, "object": "list", "data": items}
        out.setdefault("model", model)
    raw = data.get("usage")
    found = embedding_usage(raw.get("prompt_tokens")) if isinstance(raw, dict) else None
    if found is not None:
        out["usage"] = found
    else:
        out.pop("usage", None)
    return out
