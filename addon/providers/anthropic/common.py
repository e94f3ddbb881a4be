"""Anthropic wire facts the other modules share: API version and limits, finish reasons, usage, functions mode."""

from __future__ import annotations

from typing import Any

from ...openai_answer import count
from ...openai_format import CACHE_CREATION_TOKENS, CACHE_WRITE_1H_TOKENS, usage_with_cache
from ...reasoning import CLAUDE_DEFAULT_MAX_TOKENS
from ...streaming import usage_so_far

DEFAULT_VERSION = "2023-06-01"
# Anthropic requires max_tokens; 4096 is within every current Claude model's output limit (one value with the
# answer's room a thinking budget keeps, addon/reasoning.py).
DEFAULT_MAX_TOKENS = CLAUDE_DEFAULT_MAX_TOKENS
MAX_TEMPERATURE = 1.0  # OpenAI allows 0-2, Anthropic 0-1: values above 1 are clamped

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
LEGACY_FINISH_REASONS = {"stop_sequence": "stop", "max_tokens": "length"}


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_of(raw: Any) -> dict[str, Any] | None:
    """Anthropic usage -> OpenAI usage; cache reads and writes are part of the prompt, and the writes kept for an
    hour (cache_creation.ephemeral_1h_input_tokens) are told apart for the price."""
    return _with_hour_writes(
        raw,
        usage_with_cache(
            raw, "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"
        ),
    )


def _with_hour_writes(raw: Any, usage: dict[str, Any] | None) -> dict[str, Any] | None:
    creation = raw.get("cache_creation") if isinstance(raw, dict) else None
    hour = count(creation.get("ephemeral_1h_input_tokens")) if isinstance(creation, dict) else None
    details = usage.get("prompt_tokens_details") if usage else None
    if hour and isinstance(details, dict) and details.get(CACHE_CREATION_TOKENS):
        details[CACHE_WRITE_1H_TOKENS] = min(hour, details[CACHE_CREATION_TOKENS])
    return usage


def usage_so_far_of(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The usage of a stream not yet ended, from the counts merged so far: as `usage_of` once an output count has
    come (message_start usually carries a first one), else the prompt alone with completion_tokens null."""
    found = usage_of(raw)
    input_tokens = raw.get("input_tokens")
    if found is not None or not isinstance(input_tokens, int):
        return found
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return _with_hour_writes(raw, usage_so_far(input_tokens + cache_read + cache_write, None, cache_read, cache_write))
