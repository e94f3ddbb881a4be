"""Errors as Anthropic spells them: `{"type": "error", "error": {"type": ..., "message": ...}}`, with the status
Anthropic would use, so the anthropic SDK raises its usual exception classes (BadRequestError, RateLimitError,
InternalServerError, OverloadedError...) and Claude Code retries where it retries on Anthropic."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...errors import ProxyError
from ...errors import from_envelope as from_envelope  # the seam reads it here

# Anthropic's error types by status (docs: "Errors"); 529 is its "overloaded".
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def status_for(status: int) -> int:
    """An overloaded provider (503) is Anthropic's 529, which Anthropic clients retry with back-off."""
    return 529 if status == 503 else status


def error_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def envelope(err: ProxyError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status_for(err.status)), "message": err.message}}


def body(err: ProxyError) -> bytes:
    return jsonutil.dumps(envelope(err))


def event(err: ProxyError) -> bytes:
    """The `error` event that ends an Anthropic stream."""
    return b"event: error\ndata: " + body(err) + b"\n\n"
