"""The standard (OpenAI) format: request validation, response builders, finish reasons and usage.

Requests stay plain dicts: every provider reads a few keys and the OpenAI passthrough must keep fields we do
not model. Validation (openai_validate) checks what the translations rely on and answers anything else with a
clear 400 naming the field; openai_answer checks the shape of every translated answer before it leaves.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

from . import jsonutil
from .errors import bad_request
from .openai_answer import check_answer, count
from .openai_validate import (  # noqa: F401 - validation lives there; these names are the format's API
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGE_ROLES,
    checked_model,
    is_list_of,
    is_tokens,
    validate,
    validate_chat,
    validate_completions,
    validate_embeddings,
)

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})

# OpenAI chat fields that only OpenAI-compatible servers understand, with their neutral values: a provider with
# no equivalent refuses them (refuse_unsupported) unless neutral. (reasoning_effort is mapped per provider through
# addon/reasoning.py.)
OPENAI_ONLY = {
    "n": 1,
    "seed": None,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "audio": None,
    "prediction": None,
    "web_search_options": None,  # a search the provider would not run
}

# The image media types the vision providers take, by the labels clients use for them (`image/jpg` is common:
# browsers, pasteboards) -> the registered type.
IMAGE_MEDIA_TYPES = {
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}


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


def response_format_type(response_format: Any) -> str | None:
    """The type of a request's response_format: "text" when there is none (OpenAI's default), None when malformed."""
    if response_format is None:
        return "text"
    return response_format.get("type") if isinstance(response_format, dict) else None


def arguments_object(arguments: Any, where: str, param: str, suffix: str = "") -> dict[str, Any]:
    """A tool call's `arguments` (`where`) as the object providers take: a JSON string as OpenAI sends it (empty or
    absent: {}), or an object as some clients send it. Anything else is a 400 naming `param` (`suffix` says more)."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            arguments = jsonutil.loads(arguments)
        except ValueError:
            raise bad_request(f"{where} is not valid JSON", param=param) from None
    if not isinstance(arguments, dict):
        raise bad_request(f"{where} must be a JSON object{suffix}", param=param)
    return arguments


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
    if not is_list_of(value, str):
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


# A standard-usage extension (LiteLLM's name): the prompt tokens written to the provider's cache, in
# prompt_tokens_details next to OpenAI's cached_tokens (the tokens read from it); both are part of prompt_tokens.
# OpenAI's own name for the same count (cache_write_tokens, in the openai SDK's PromptTokensDetails) goes beside it.
CACHE_CREATION_TOKENS = "cache_creation_tokens"
CACHE_WRITE_TOKENS = "cache_write_tokens"
# The part of the cache writes kept for an hour rather than five minutes (Anthropic's cache_creation
# .ephemeral_1h_input_tokens), which costs more: a standard-usage extension beside them, for the price.
CACHE_WRITE_1H_TOKENS = "cache_creation_1h_tokens"


def usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None, cache_write: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    details = prompt_details(cached_tokens, cache_write)
    if details:
        out["prompt_tokens_details"] = details
    return out


def prompt_details(cached_tokens: int | None, cache_write: int | None) -> dict[str, int] | None:
    """prompt_tokens_details for counts of tokens read from and written to a cache (None when both are 0)."""
    details = {"cached_tokens": cached_tokens} if cached_tokens else {}
    if cache_write:
        details[CACHE_CREATION_TOKENS] = details[CACHE_WRITE_TOKENS] = cache_write
    return details or None


def cache_counts(usage: dict[str, Any]) -> tuple[int, int]:
    """(prompt tokens read from the cache, written to it) of a standard usage: OpenAI's cached_tokens, and the
    extension cache_creation_tokens (or OpenAI's own cache_write_tokens, as an OpenAI upstream reports them)."""
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict):
        return 0, 0
    read = count(details.get("cached_tokens")) or 0
    write = count(details.get(CACHE_CREATION_TOKENS)) or count(details.get(CACHE_WRITE_TOKENS)) or 0
    return read, write


def usage_with_cache(raw: Any, input_key: str, output_key: str, read_key: str, write_key: str) -> dict[str, Any] | None:
    """OpenAI usage from a provider that counts cache reads and writes apart from its input tokens: all of them
    are prompt tokens, cache reads are OpenAI's cached tokens and cache writes the extension cache_creation_tokens.
    None if malformed."""
    if not isinstance(raw, dict):
        return None
    input_tokens, output_tokens = count(raw.get(input_key)), count(raw.get(output_key))
    if input_tokens is None or output_tokens is None:
        return None
    cache_read = count(raw.get(read_key)) or 0
    cache_write = count(raw.get(write_key)) or 0
    return usage(input_tokens + cache_read + cache_write, output_tokens, cache_read, cache_write)


# A standard extension on assistant messages (LiteLLM's name and shape), in answers and in requests: the reasoning
# blocks as the provider signed them, `{"type": "thinking", "thinking", "signature"}` and
# `{"type": "redacted_thinking", "data"}`, which a client must send back unchanged (reasoning_content keeps the text).
THINKING_BLOCKS = "thinking_blocks"

# A standard-response extension on a choice: the stop sequence that ended the answer, where the provider says a stop
# sequence did (finish_reason is then "stop"). OpenAI's own format has no such field: OpenAI clients never see it.
STOP_SEQUENCE = "stop_sequence"


def matched_stop(body: dict[str, Any], named: Any) -> str:
    """The stop sequence that ended an answer: the one the provider names, else the request's only one, else ""
    (a stop sequence matched, the provider does not say which)."""
    if isinstance(named, str):
        return named
    stops = stop_list(body) or []
    return stops[0] if len(stops) == 1 and isinstance(stops[0], str) else ""


def chat_response(
    *,
    id: str | None,
    model: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    created: int | None = None,
    stop_sequence: str | None = None,
) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    if stop_sequence is not None:
        choice[STOP_SEQUENCE] = stop_sequence
    return _answer("chat.completion", id or new_id("chatcmpl"), model, choice, usage, created)


def completion_response(
    *,
    id: str | None,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    created: int | None = None,
) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return _answer("text_completion", id or new_id("cmpl"), model, choice, usage, created)


def _answer(
    kind: str, id: str, model: str, choice: dict[str, Any], usage: dict[str, Any] | None, created: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "object": kind,
        "created": created or int(time.time()),
        "model": model,
        "choices": [choice],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def chat_to_completion(response: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion reshaped as a text_completion (completions served by a chat backend). Raises ValueError
    (the client gets a 502) for a response of another shape."""
    check_answer(CHAT, response)
    choices = [
        {
            "index": c.get("index", 0),
            "text": c["message"].get("content") or "",
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
