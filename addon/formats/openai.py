"""The OpenAI client format (Chat Completions, legacy Completions, Embeddings): the standard format itself, so
decoding is validation and encoding is the identity; its stream writer is streaming.ChunkWriter."""

from __future__ import annotations

from typing import Any

from .. import openai_format
from ..errors import ProxyError
from ..streaming import ChunkWriter, StreamResult, stream_error_event


class OpenAIFormat:
    name = "openai"

    def decode(self, route_type: str, path: str, body: Any, dropped: list[str]) -> dict[str, Any]:
        return openai_format.validate(route_type, body)

    def encode(self, route_type: str, response: dict[str, Any]) -> dict[str, Any]:
        """The standard response less the extensions OpenAI's format has no place for (changed in place)."""
        for choice in response.get("choices") or ():
            if isinstance(choice, dict):
                choice.pop(openai_format.STOP_SEQUENCE, None)
                if isinstance(choice.get("message"), dict):
                    choice["message"].pop(openai_format.THINKING_BLOCKS, None)
        return response

    # The standard stream writer itself (not a wrapper): the stream bridge recognises it by identity and lets
    # OpenAI-format upstream streams pass through untouched for OpenAI clients.
    writer = staticmethod(ChunkWriter)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return err.body(), {}

    def error_status(self, status: int) -> int:
        return status

    def error_from_envelope(self, status: int, data: Any) -> ProxyError:
        raise NotImplementedError("the core's envelope is already OpenAI's")

    def stream_error(self, result: StreamResult, err: ProxyError) -> bytes:
        return stream_error_event(result, err)

    def local_answer(self, method: str, path: str, body: bytes, models: list[str]) -> dict[str, Any] | None:
        return None


OPENAI = OpenAIFormat()
