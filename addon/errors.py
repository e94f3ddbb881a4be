"""The OpenAI error envelope, and the one exception type the core raises for any error a client should see."""

from __future__ import annotations

import json
from typing import Any


class ProxyError(Exception):
    """An error answered to the client in the OpenAI envelope.

    Raised anywhere in the pure core; the addon glue turns it into a response and nothing is sent upstream
    (or, for upstream failures, the upstream's answer is replaced by it).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or default_error_type(status)
        self.code = code
        self.param = param
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return error_envelope(self.message, type=self.type, code=self.code, param=self.param)

    def body(self) -> bytes:
        return json.dumps(self.envelope()).encode()


def default_error_type(status: int) -> str:
    """The `type` OpenAI uses for a status, so SDK users see familiar values."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_envelope(
    message: str, *, type: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ProxyError:
    return ProxyError(400, message, param=param, code=code)


def from_envelope(status: int, data: Any) -> ProxyError:
    """The ProxyError of an OpenAI-envelope error the core produced (a provider's mapped error), for a client
    format that writes errors in its own envelope."""
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}
    message = err.get("message") if isinstance(err.get("message"), str) else "upstream error"
    return ProxyError(status, message, code=err.get("code") if isinstance(err.get("code"), str) else None)
