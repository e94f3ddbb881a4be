"""OAuth access tokens for Google Cloud from a service account or Application Default Credentials.

Not part of the pure core: this module does network I/O (the token endpoint), always in a worker thread so the
event loop never blocks. It imports no mitmproxy. One GcpTokenSource serves the whole addon: tokens are cached
per service account and refreshed shortly before they expire, one refresh at a time per account, so a burst of
requests costs one token fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport
from google.oauth2 import service_account

from ..errors import ProxyError
from ..spec import AuthSpec

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Refresh this long before the token expires, so a request never leaves with a token that dies on the way.
REFRESH_MARGIN_SECONDS = 300.0
# A token without an expiry (rare: some ADC sources) is still re-fetched this often.
UNKNOWN_LIFETIME_SECONDS = 1800.0
TOKEN_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float  # epoch seconds


class _Account:
    """One service account (or ADC): its credentials, its current token and the lock serialising refreshes."""

    __slots__ = ("credentials", "error", "fetches", "lock", "token")

    def __init__(self) -> None:
        self.credentials: Any = None
        self.token: _Token | None = None
        self.lock = asyncio.Lock()
        self.fetches = 0  # fetches finished, so a waiter can tell that one ended (and failed) while it waited
        self.error: ProxyError | None = None  # how the last fetch failed


class GcpTokenSource:
    """`await token(auth)` -> a valid access token with the cloud-platform scope for the rule's account."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
        request: google.auth.transport.Request | None = None,
    ) -> None:
        self._clock = clock
        self._margin = refresh_margin
        self._request = request or UrllibRequest()
        self._accounts: dict[str, _Account] = {}

    async def token(self, auth: AuthSpec) -> str:
        key = _account_key(auth.gcp_service_account_json)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account()
        token = account.token
        if token is not None and self._fresh(token):
            return token.value  # the hot path: no lock, no thread
        fetches = account.fetches
        async with account.lock:
            # Whoever waited on the lock finds the token the fetch before it got, or shares that fetch's failure
            # (a burst of requests must not queue one slow failing fetch each).
            token = account.token
            if token is not None and self._fresh(token):
                return token.value
            if account.fetches != fetches and account.error is not None:
                e = account.error
                raise ProxyError(e.status, e.message, type=e.type, code=e.code)
            try:
                token = await asyncio.to_thread(self._fetch, account, auth.gcp_service_account_json)
            except ProxyError as e:
                account.error = e
                raise
            finally:
                account.fetches += 1
            account.token, account.error = token, None
            return token.value

    def _fresh(self, token: _Token) -> bool:
        return self._clock() < token.expires_at - self._margin

    def _fetch(self, account: _Account, info_json: str | None) -> _Token:
        """Runs in a worker thread: load the credentials once, then refresh them (a call to the token endpoint)."""
        try:
            if account.credentials is None:
                account.credentials = _credentials(info_json)
            credentials = account.credentials
            credentials.refresh(self._request)
        except ProxyError:
            raise
        except google.auth.exceptions.DefaultCredentialsError as e:
            raise _misconfigured(f"no Google Cloud credentials for this rule: {e}") from None
        except google.auth.exceptions.GoogleAuthError as e:
            raise ProxyError(
                502, f"could not get a Google Cloud access token: {e}", type="server_error", code="gcp_auth_error"
            ) from None
        if not credentials.token:
            raise ProxyError(502, "Google Cloud returned no access token", type="server_error", code="gcp_auth_error")
        expiry = credentials.expiry  # naive UTC, stamped by google-auth from the wall clock
        if expiry is None:
            lifetime = UNKNOWN_LIFETIME_SECONDS
        else:
            expiry_epoch = expiry.replace(tzinfo=UTC).timestamp() if expiry.tzinfo is None else expiry.timestamp()
            lifetime = expiry_epoch - time.time()
        # Kept as an instant of our clock (the wall clock, unless a test injects another).
        return _Token(credentials.token, self._clock() + lifetime)


def _account_key(info_json: str | None) -> str:
    if info_json is None:
        return "adc"
    return hashlib.sha256(info_json.encode()).hexdigest()


def _credentials(info_json: str | None) -> Any:
    if info_json is None:
        credentials, _project = google.auth.default(scopes=list(SCOPES))
        return credentials
    try:
        info = json.loads(info_json)
    except ValueError as e:
        raise _misconfigured(f"auth.gcp_service_account_json is not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise _misconfigured("auth.gcp_service_account_json must be a JSON object (a service account key file)")
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    except (ValueError, KeyError) as e:
        raise _misconfigured(f"auth.gcp_service_account_json is not a usable service account key: {e}") from None


def _misconfigured(message: str) -> ProxyError:
    return ProxyError(500, message, type="server_error", code="proxy_misconfigured")


# --------------------------------------------------------------------------------------------------------------
# A stdlib transport for google-auth (no `requests` dependency)
# --------------------------------------------------------------------------------------------------------------


class _Response(google.auth.transport.Response):
    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status = status
        self._headers = {k.lower(): v for k, v in headers.items()}
        self._data = data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class UrllibRequest(google.auth.transport.Request):
    """google-auth's transport interface over urllib. Proxy environment variables are ignored on purpose: a
    shell that points HTTPS_PROXY at this very proxy must not route its own token fetches through itself."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with self._opener.open(request, timeout=timeout or TOKEN_TIMEOUT_SECONDS) as response:
                return _Response(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as e:  # an answer with an error status: google-auth reads its body
            with e:
                return _Response(e.code, dict(e.headers.items()) if e.headers else {}, e.read())
        except (OSError, ValueError) as e:
            raise google.auth.exceptions.TransportError(f"{type(e).__name__}: {e}") from e
