"""Schemas real clients send, for the JSON Schema adaptation tests: what the Vercel AI SDK emits for zod and what
the openai SDK's `.parse` emits for a pydantic model with Field(ge=...)."""

from __future__ import annotations

from typing import Any

from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

MAX_SAFE = 9007199254740991

# zod: z.object({ count: z.number().int(), name: z.string().min(1).max(40), tags: z.array(z.string()).min(2),
# email: z.string().email().nullable() }) as zod-to-json-schema / the AI SDK emit it.
ZOD: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": -MAX_SAFE, "maximum": MAX_SAFE},
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "email": {"type": ["string", "null"], "format": "email"},
    },
    "required": ["count", "name", "tags", "email"],
    "additionalProperties": False,
}


class Item(BaseModel):
    name: str = Field(min_length=2, description="what it is")
    qty: int = Field(ge=1)


class Order(BaseModel):
    items: list[Item]
    note: str | None = None
    main: Item = Field(description="the main one")
    ratio: float = Field(gt=0, le=1)


def pydantic_schema() -> dict[str, Any]:
    """Order's schema exactly as `client.chat.completions.parse(response_format=Order)` sends it."""
    return to_strict_json_schema(Order)


# pydantic's own model_json_schema(): $ref next to description, default, no additionalProperties.
PYDANTIC_PLAIN: dict[str, Any] = Order.model_json_schema()

VALID_ORDER = {"items": [{"name": "pen", "qty": 2}], "note": None, "main": {"name": "ink", "qty": 1}, "ratio": 0.5}


def structured(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """A chat request asking for structured output with `schema`."""
    spec = {"name": "out", "schema": schema, "strict": strict}
    fmt = {"type": "json_schema", "json_schema": spec}
    return {"messages": [{"role": "user", "content": "Hi"}], "response_format": fmt}


def sent(rule: Any, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the upstream body, the loss report) of `body` through `rule`."""
    from addon.exchange import build_upstream
    from tests.support.pipeline import call

    c = call(rule, body)
    up = build_upstream(rule, c)
    assert up.body is not None
    return up.body, c.dropped


def answered(rule: Any, body: dict[str, Any], reply: Any) -> tuple[int, dict[str, Any]]:
    """(status, OpenAI-format answer) of the provider's JSON `reply` to `body` through `rule`, the upstream request
    built first (its translation fills the loss report the strict check reads)."""
    import json

    from addon.exchange import build_upstream, provider_for, translate_response
    from tests.support.pipeline import call

    c = call(rule, body)
    build_upstream(rule, c)
    return translate_response(provider_for(rule), c, 200, json.dumps(reply).encode(), "application/json")
