"""Rule templating: $(headers.x), $(uri_captures.x), $(query_params.x) in a rule's model name and options,
compiled once at load (rules.py) and rendered per request from its TemplateContext.

Pure code: no mitmproxy import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import bad_request
from .spec import encode_url_value

_TEMPLATE_REF = re.compile(r"\$\((headers|uri_captures|query_params)\.([A-Za-z0-9_.-]+)\)")
_ANY_TEMPLATE = re.compile(r"\$\(([^)]*)\)")


@dataclass(frozen=True, slots=True)
class TemplateContext:
    headers: Mapping[str, str]  # case-insensitive mapping expected (mitmproxy Headers)
    uri_captures: Mapping[str, str]
    query_params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Template:
    """A string with $(source.name) references, split once at load into literal and reference parts."""

    where: str
    parts: tuple[str | tuple[str, str], ...]
    url_encode: bool

    @classmethod
    def compile(cls, text: str, where: str, url_encode: bool) -> Template:
        for m in _ANY_TEMPLATE.finditer(text):
            if not _TEMPLATE_REF.fullmatch(m.group(0)):
                raise ValueError(
                    f"unknown template {m.group(0)!r}: use $(headers.NAME), $(uri_captures.NAME) "
                    "or $(query_params.NAME)"
                )
        parts: list[str | tuple[str, str]] = []
        pos = 0
        for m in _TEMPLATE_REF.finditer(text):
            if m.start() > pos:
                parts.append(text[pos : m.start()])
            source, name = m.group(1), m.group(2)
            parts.append((source, name.lower() if source == "headers" else name))  # header names: any case
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return cls(where, tuple(parts), url_encode)

    def render(self, ctx: TemplateContext) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            source, name = part
            value = getattr(ctx, source).get(name)
            if value is None or value == "":
                raise bad_request(
                    f"this route needs $({source}.{name}) (used in {self.where}) but the request has none",
                    code="missing_template_value",
                )
            if not value.isprintable():  # CR/LF or NUL could split a header or a log line
                raise bad_request(f"$({source}.{name}) holds control characters", code="invalid_template_value")
            out.append(encode_url_value(value) if self.url_encode else value)
        return "".join(out)


def has_template(text: str | None) -> bool:
    return bool(text) and "$(" in text  # type: ignore[operator]
