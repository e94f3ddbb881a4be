"""An Anthropic client's structured output (`output_config.format`, and the deprecated beta `output_format`) as the
standard request's `response_format`. Anthropic constrains decoding to the schema, so the client was promised an
answer that matches it: the standard request says `strict: true`, and the answer is held to the schema
(schema_check.py) whatever provider serves it."""

from __future__ import annotations

from typing import Any

from ..fields import fail as _fail
from ..fields import obj as _dict


def decode(body: dict[str, Any], out: dict[str, Any], drop: Any) -> None:
    """Set out["response_format"] from the client's output format; other output_config fields go to `drop`."""
    fmt = None
    config = body.get("output_config")
    if config is not None:
        config = _dict(config, "output_config")
        for key in config:
            if key != "format":
                drop(f"output_config.{key}")
        if config.get("format") is not None:
            fmt, param = _dict(config["format"], "output_config.format"), "output_config.format"
    if fmt is None and body.get("output_format") is not None:
        fmt, param = _dict(body["output_format"], "output_format"), "output_format"
    if fmt is None:
        return
    if fmt.get("type") != "json_schema":
        _fail(f"{param}.type", "must be 'json_schema'")
    schema = _dict(fmt.get("schema"), f"{param}.schema")
    spec = {"name": "output", "schema": schema, "strict": True}
    out["response_format"] = {"type": "json_schema", "json_schema": spec}
