"""Gemini's Google RPC errors in the OpenAI error envelope."""

from __future__ import annotations

import math
from typing import Any

from ... import jsonutil
from ...errors import ProxyError, default_error_type
from ...google_rpc import RPC_STATUS
from ..base import client_status, upstream_error


def gemini_error(status: int, body: bytes, content_type: str) -> ProxyError:
    """A Google RPC error body (`{"error": {code, message, status, details}}`, sometimes inside an array) in
    the OpenAI envelope, keeping the HTTP status; anything else goes to the generic mapping."""
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("message"), str):
        return upstream_error(status, body, content_type, "gemini")
    return _rpc_error(client_status(status), err)


def _rpc_error(status: int, err: dict[str, Any]) -> ProxyError:
    rpc = err.get("status") if isinstance(err.get("status"), str) else None
    headers = {}
    for detail in err.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = _seconds(detail.get("retryDelay"))
            if delay is not None:
                headers["retry-after"] = str(math.ceil(delay))
    return ProxyError(
        status,
        err.get("message") or f"gemini error {rpc or status}",
        type=default_error_type(status),
        code=rpc,
        headers=headers,
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            return None
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


def _stream_error_status(err: dict[str, Any]) -> int:
    code = err.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return client_status(code)
    return RPC_STATUS.get(str(err.get("status")), 502)
