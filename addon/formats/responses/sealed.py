"""A provider's signed reasoning (the standard extension `thinking_blocks`) as a reasoning item's `encrypted_content`,
the Responses API's place for reasoning state a client keeps without reading it and sends back with the item (Codex
asks for it with `include: ["reasoning.encrypted_content"]` and replays every reasoning item it got).

The text is opaque to the client: a version prefix, then the blocks as compact JSON in base64url. A client that sends
it back gets the blocks back on the assistant turn that follows the item; content of any other origin (OpenAI's own
encrypted reasoning) is not ours to read and is dropped, as before."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ... import jsonutil

PREFIX = "aiproxy.r1."


def seal(blocks: list[dict[str, Any]]) -> str:
    return PREFIX + base64.urlsafe_b64encode(jsonutil.dumps(blocks)).decode().rstrip("=")


def unseal(text: str) -> list[dict[str, Any]] | None:
    """The blocks a sealed text holds; None for any text this proxy did not seal (or that is damaged)."""
    if not text.startswith(PREFIX):
        return None
    data = text[len(PREFIX) :]
    try:
        blocks = jsonutil.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(blocks, list) or not all(_block(b) for b in blocks):
        return None
    return blocks


def _block(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    if block.get("type") == "thinking":
        return isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str)
    return block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str)
