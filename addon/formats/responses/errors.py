"""Errors for Responses clients: OpenAI's own envelope and statuses (the openai SDK raises BadRequestError,
RateLimitError, NotFoundError... from them), the `error` stream event, and a failed response's `error` object."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...errors import ProxyError

# A failed response's error.code (openai-python types/responses/response_error.py) by status.
_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt"}


def from_envelope(status: int, data: Any) -> ProxyError:
    """The core's OpenAI-envelope error (a provider's mapped error) as a ProxyError that answers it unchanged."""
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}

    def text(key: str) -> str | None:
        return err[key] if isinstance(err.get(key), str) else None

    return ProxyError(status, text("message") or "upstream error", type=text("type"), code=text("code"),
                      param=text("param"))  # fmt: skip


def event(err: ProxyError, seq: int) -> bytes:
    """The `error` event of a Responses stream: the fields of openai-python's ResponseErrorEvent, and the OpenAI
    envelope's `error` object, on which the SDK raises openai.APIError for the caller."""
    envelope = err.envelope()
    body = {
        "type": "error",
        "sequence_number": seq,
        "code": err.code,
        "message": err.message,
        "param": err.param,
        **envelope,
    }
    return b"event: error\ndata: " + jsonutil.dumps(body) + b"\n\n"


def response_error(err: ProxyError) -> dict[str, Any]:
    return {"code": _CODES.get(err.status, "server_error"), "message": err.message}
