"""Errors as Google spells them: `{"error": {"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED"}}` with
the HTTP status Google would use, so the google-genai SDK raises its own errors.ClientError (4xx) and
errors.ServerError (5xx) and gemini-cli retries where it retries on Gemini."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...errors import ProxyError
from ...google_rpc import rpc_status


def envelope(err: ProxyError) -> dict[str, Any]:
    return {"error": {"code": err.status, "message": err.message, "status": rpc_status(err.status)}}


def body(err: ProxyError) -> bytes:
    return jsonutil.dumps(envelope(err))


def event(err: ProxyError) -> bytes:
    """The event that ends an alt=sse stream with an error (the SDK raises on a `{"error": ...}` chunk)."""
    return b"data: " + body(err) + b"\r\n\r\n"
