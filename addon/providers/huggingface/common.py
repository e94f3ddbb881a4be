"""Hugging Face wire facts the other modules share: hosts and paths, the three API modes, finish reasons, error
statuses, TGI's token counts and stop sequences, tool-call ids."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

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


def finish_reason(reason: Any) -> str | None:
    """A TGI or OpenAI finish reason in OpenAI's vocabulary; unknown values become "stop"."""
    if reason is None or reason == "":
        return None
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


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
