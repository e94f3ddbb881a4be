"""The seam every client format implements (see formats/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ProxyError
from ..streaming import StreamResult, StreamWriter


class ClientFormat(Protocol):
    name: str  # the rule's llm_format for this client format

    def decode(self, route_type: str, path: str, body: Any, dropped: list[str]) -> dict[str, Any]:
        """The client's parsed body as the standard request; a 400 ProxyError naming the field if it is not
        a valid request of this format. `path` is the client's request path with its query (a format may name the
        model or streaming there). What the standard request cannot carry is appended to `dropped`."""
        ...

    def encode(self, route_type: str, response: dict[str, Any]) -> dict[str, Any]:
        """A standard (OpenAI-format) response as this format's response."""
        ...

    def writer(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> StreamWriter:
        """The stream writer that provider translators emit through (role, text, reasoning, tool calls, finish
        with usage, error), writing this format's stream events."""
        ...

    # Optional: `writer_for(path)`, the writer factory for a request path, and `stream_media_type(path)`, the
    # stream's content type, where the stream form depends on the request (Gemini's alt=sse); `hint_names`, the
    # format's own names of the standard hint fields (reasoning_effort, top_k, parallel_tool_calls) for the loss
    # report when a provider lacks them (exchange.HINT_FIELDS).

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        """An error as this format's error body, and extra headers."""
        ...

    def error_status(self, status: int) -> int:
        """The status this format's clients expect for an error of `status` (e.g. Anthropic's 529 for a 503)."""
        ...

    def error_from_envelope(self, status: int, data: Any) -> ProxyError:
        """A provider's error, already mapped into the OpenAI envelope by the core, as an error of this format."""
        ...

    def stream_error(self, result: StreamResult, err: ProxyError) -> bytes:
        """The event that ends a stream of this format with an error; the result keeps the error for the record."""
        ...

    def local_answer(
        self, method: str, path: str, body: bytes, models: list[str]
    ) -> dict[str, Any] | TokenCount | None:
        """The answer to an endpoint of this format that the proxy serves itself (model lists), a TokenCount for a
        token-count request (the route asks the provider's counter where it has one), or None for a request that
        goes to the provider. `models`: the models the rule serves."""
        ...


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A client's request to count the input tokens of a request of its format."""

    standard: dict[str, Any]  # the standard request whose input is counted
    estimate: int  # the format's local estimate: the answer when the provider has no counter or its counter fails
    answer: Callable[[int], dict[str, Any]]  # a count as the format's answer
