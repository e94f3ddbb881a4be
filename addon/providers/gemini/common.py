"""What every side of the Gemini provider shares: its surfaces' names, finish reasons, usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...openai_format import usage

if TYPE_CHECKING:
    from ...spec import ModelOptions

GEMINI_API = "https://generativelanguage.googleapis.com"
GENERATE = "generateContent"
STREAM = "streamGenerateContent"

# Gemini has no tool-call finish reason: STOP with functionCall parts means tool_calls (handled in the code).
_LENGTH = frozenset({"MAX_TOKENS"})
_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR", "LANGUAGE", "JAILBREAK"}
)


_NOT_YET = "is not supported by provider gemini yet"


def finish_reason(reason: str | None, tool_calls: bool = False) -> str | None:
    """A Gemini finishReason as an OpenAI finish_reason (None: no reason yet)."""
    if not reason:
        return None
    if not isinstance(reason, str):
        return "stop"
    if reason in _LENGTH:
        return "length"
    if reason in _FILTERED or (reason.startswith("IMAGE_") and reason != "IMAGE_OTHER"):
        return "content_filter"
    # STOP, and the ones OpenAI has no word for (OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, ...).
    return "tool_calls" if tool_calls else "stop"


def usage_of(raw: Any) -> dict[str, Any] | None:
    """usageMetadata -> OpenAI usage. Thoughts are output tokens Gemini counts apart from the candidates."""
    if not isinstance(raw, dict) or not isinstance(raw.get("promptTokenCount"), int):
        return None
    thoughts = _int(raw.get("thoughtsTokenCount"))
    out = usage(
        raw["promptTokenCount"],
        _int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(raw.get("cachedContentTokenCount")) or None,
    )
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _vertex(options: ModelOptions) -> bool:
    g = options.gemini
    return g is not None and bool(g.project_id or g.location_id)


def _model_segment(model: str | None) -> str:
    model = model or ""
    if model.startswith("models/"):  # the Gemini SDKs' resource-name spelling of a model id
        model = model[len("models/") :]
    return quote(model, safe="")
