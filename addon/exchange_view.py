"""A handled exchange as a person reads it, as text: what mitmweb's and mitmproxy console's "AI Exchange" view shows
(addon/webview.py is the glue). Pure: a function of the exchange's summary (webview.summary) and its bodies.

The request tab shows the summary, the conversation (system, turns, tool calls and results; images and other
binary parts as placeholders), the answer, then the client's request as it came beside the request sent upstream.
The response tab shows the summary, the answer, then the provider's answer beside what the client received. The
two sides are columns of fixed width (addon/columns.py), so they line up in mitmweb and in the console.
Credentials are already out of everything handed in (the glue redacts); long base64 payloads are elided.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import columns, jsonutil
from .formats import FORMATS, OPENAI, format_for

RULE = "─" * 3
WIDTH = 120  # cells of the view's lines (mitmweb's detail pane on a 1920-pixel screen; the console passes its own)
NOTHING_SENT = "(nothing was sent upstream: the proxy answered itself)"
STAND_IN_MAX = 64 * 1024
STAND_IN_NOTE = (
    "[AI proxy] A streamed response: its events reached the client as they came and mitmproxy kept no body."
    " What the proxy kept of it:"
)
NOT_TRANSLATED = "(as the provider sent it: see the provider's answer in the response tab)"
# Strings at least this long made only of base64 characters are shown as their size, not their bytes.
BASE64_MIN = 512
_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\r\n]+\Z")  # MIME base64 breaks lines; prose has spaces
_DATA_URL = re.compile(r"data:([\w.+/-]+)?(?:;[\w=.+-]+)*;base64,", re.ASCII)


@dataclass(frozen=True, slots=True)
class Message:
    """One HTTP message as shown: its first line (method and URL, or status), headers and body."""

    title: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    content_type: str = ""


# ---- sizes and placeholders ------------------------------------------------------------------------------------


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def base64_size(data: str) -> int:
    """The decoded size of base64 text (whitespace ignored)."""
    n = len(data) - data.count("\n") - data.count(" ")
    return max(0, n * 3 // 4 - data[-2:].count("="))


def placeholder(kind: str, media_type: str | None, data: str | None) -> str:
    """`[image: image/png, 12 KB]`, `[image: https://…]`, `[audio: wav]`."""
    if data is None:
        return f"[{kind}{': ' + media_type if media_type else ''}]"
    found = _DATA_URL.match(data)
    if found is None and data.startswith(("http://", "https://", "gs://", "s3://", "file-")):
        return f"[{kind}: {data[:200]}]"
    if found is not None:
        media_type = media_type or found.group(1)
        data = data[found.end() :]
    parts = [p for p in (media_type, size_text(base64_size(data))) if p]
    return f"[{kind}: {', '.join(parts)}]"


def elide(value: Any) -> Any:
    """A JSON value with data URLs and long base64 strings replaced by a placeholder (the rest unchanged)."""
    if isinstance(value, str):
        if len(value) >= 64 and _DATA_URL.match(value):
            return placeholder("data", None, value)
        if len(value) >= BASE64_MIN and _BASE64.match(value):
            return f"[base64: {size_text(base64_size(value))}]"
        return value
    if isinstance(value, dict):
        return {k: elide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [elide(v) for v in value]
    return value


def pretty_body(body: bytes | None, content_type: str = "") -> str:
    """A body for reading: JSON indented (binary payloads elided), SSE and text as they are, binary as its size."""
    if body is None:
        return "(not kept)"
    if not body:
        return "(empty)"
    try:
        data = jsonutil.loads(body)
    except ValueError:
        pass
    else:
        return json.dumps(elide(data), indent=2, ensure_ascii=False)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return f"[binary: {content_type or 'unknown type'}, {size_text(len(body))}]"
    return text if len(text) <= 200_000 else text[:200_000] + f"\n… ({size_text(len(body))} in all)"


# ---- the conversation -------------------------------------------------------------------------------------------


def standard_request(client_format: str, route_type: str, path: str, body: bytes | None) -> dict[str, Any] | None:
    """The client's request as the standard (OpenAI) request, decoded by its client format; None when it cannot
    be (not JSON, not valid, or a native format without a decoder here)."""
    if not body:
        return None
    if route_type == "preserve":  # any endpoint, passed through: shown when it has a conversation's fields
        try:
            data = jsonutil.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) and _SHOWN_APART.intersection(data) else None
    fmt = format_for(client_format, route_type)
    if fmt is OPENAI and client_format not in ("openai", *FORMATS):
        return None  # a provider's native format: no decoder for it
    try:
        data = jsonutil.loads(body)
        if not isinstance(data, dict):
            return None
        return fmt.decode(route_type, path, data, [])
    except Exception:  # an invalid request: its raw body is shown further down
        return None


def part_text(part: Any) -> str:
    """One content part of a message: text as it is, anything else as a placeholder."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return json.dumps(part)[:200]
    kind = part.get("type")
    if kind == "text":
        return str(part.get("text", ""))
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return placeholder("image", None, url if isinstance(url, str) else None)
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return placeholder("audio", audio.get("format"), audio.get("data"))
    if kind == "file":
        file = part.get("file") or {}
        name = file.get("filename") or file.get("file_id")
        data = file.get("file_data")
        shown = placeholder("file", None, data) if isinstance(data, str) else "[file]"
        return shown[:-1] + f" {name}]" if name else shown
    if kind == "refusal":
        return f"[refusal] {part.get('refusal', '')}"
    return f"[{kind}]"


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):
        return "\n".join(part_text(p) for p in content)
    return part_text(content)


def indent(text: str, prefix: str = "  ") -> list[str]:
    return [prefix + line for line in text.splitlines()] if text else []


def tool_call_lines(calls: Any) -> list[str]:
    out = []
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") or {} if isinstance(call, dict) else {}
        out.append(f"  → tool call {fn.get('name', '?')} ({call.get('id', '')}): {fn.get('arguments', '')}")
    return out


def message_lines(message: dict[str, Any]) -> list[str]:
    role = message.get("role", "?")
    head = f"[{role}"
    if role == "tool":
        head += f" result {message.get('tool_call_id', '')}"
    elif message.get("name"):
        head += f" {message['name']}"
    out = [head + "]"]
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out += ["  (reasoning)", *indent(reasoning, "    ")]
    out += indent(content_text(message.get("content")))
    if message.get("refusal"):
        out.append(f"  [refusal] {message['refusal']}")
    out += tool_call_lines(message.get("tool_calls"))
    return out


_SHOWN_APART = {"messages", "tools", "prompt", "input", "functions"}


def conversation(request: dict[str, Any]) -> list[str]:
    """The standard request as a conversation: parameters, tools offered, then every turn."""
    params = {k: v for k, v in request.items() if k not in _SHOWN_APART and not isinstance(v, (dict, list))}
    out = ["Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items())] if params else []
    for key in ("response_format", "tool_choice", "stream_options"):
        if isinstance(request.get(key), (dict, list)):
            out.append(f"{key}: {json.dumps(request[key])[:300]}")
    tools = request.get("tools")
    if isinstance(tools, list) and tools:
        names = [((t.get("function") or {}).get("name") or t.get("type", "?")) for t in tools if isinstance(t, dict)]
        out.append(f"Tools offered: {', '.join(names)}")
    messages = request.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                out += message_lines(m)
    elif "prompt" in request:
        prompt = request["prompt"]
        out += ["[prompt]", *indent(prompt if isinstance(prompt, str) else json.dumps(prompt))]
    elif "input" in request:
        items = request["input"]
        count = len(items) if isinstance(items, list) else 1
        out += [f"[embeddings input: {count} item(s)]", *indent(json.dumps(elide(items))[:2000])]
    return out


def answer(response: Any, streamed: bool = False) -> list[str]:
    """The standard (OpenAI-format) answer as turns: text, reasoning, tool calls, finish reason; or its error."""
    if not isinstance(response, dict) or not response:
        return [NOT_TRANSLATED]
    if isinstance(response.get("error"), dict):
        err = response["error"]
        return [
            f"[error {err.get('type') or ''} {err.get('code') or ''}]".replace("  ", " "),
            *indent(err.get("message") or ""),
        ]
    out: list[str] = []
    choices = response.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("message"), dict):
            out += message_lines(choice["message"])
        elif "text" in choice:
            out += ["[completion]", *indent(str(choice["text"]))]
        if choice.get("finish_reason"):
            out.append(f"  finish: {choice['finish_reason']}")
    if isinstance(response.get("data"), list) and response.get("object") == "list":
        out.append(f"[{len(response['data'])} embedding(s)]")
    if not out and "choices" not in response:
        if not streamed:  # a native or passed-through answer: kept as the provider sent it
            return [NOT_TRANSLATED]
        # finish_stream keeps only model and usage of a stream whose text was not assembled
        return ["(the text of this streamed answer was not kept: the rule's logging.log_payloads is off)"]
    return out or ["(no choices)"]


# ---- the whole view ---------------------------------------------------------------------------------------------


def _num(value: Any, unit: str = "") -> str:
    return "?" if value is None else f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def headline(s: dict[str, Any]) -> list[str]:
    """Who served it and how it went: route, status, tokens, cost, latency, TTFT, the loss report, the error."""
    model = s.get("model") or "?"
    sent = s.get("request_model")
    requested = f" (requested {sent})" if sent and sent != model else ""
    asked = f" (client asked {s['client_model']})" if s.get("client_model") else ""
    out = [
        f"AI proxy · rule {s.get('rule')} · {s.get('provider')}/{model}{requested}{asked}",
        f"{s.get('client_format')} client → {s.get('provider')} · {s.get('route')}"
        + (f" {s.get('route_type')}" if s.get("route_type") != s.get("route") else "")
        + (" · streamed" if s.get("stream") else ""),
        f"Status {_num(s.get('status'))} (upstream {_num(s.get('upstream_status'))})"
        f" · latency {_num(s.get('latency_ms'), ' ms')}"
        # time to first token means something only for a stream
        + (f" · TTFT {_num(s.get('ttft_ms'), ' ms')}" if s.get("stream") else ""),
    ]
    usage = s.get("usage") or {}
    if usage:
        extra = [
            f"{usage[k]} {k.removesuffix('_tokens').replace('_', ' ')}"
            for k in ("cached_tokens", "cache_write_tokens", "reasoning_tokens")
            if usage.get(k)
        ]
        out.append(
            f"Tokens: {_num(usage.get('prompt_tokens'))} prompt + {_num(usage.get('completion_tokens'))} completion"
            f" = {_num(usage.get('total_tokens'))}" + (f" ({', '.join(extra)})" if extra else "")
        )
    else:
        out.append("Tokens: not reported")
    cost = s.get("cost")
    out.append(f"Cost: ${cost:.6f}" if isinstance(cost, (int, float)) else "Cost: unknown (no price for this model)")
    dropped = s.get("dropped") or []
    out.append(
        f"Loss report: not carried to the provider: {', '.join(dropped)}" if dropped else "Loss report: nothing dropped"
    )
    if s.get("error"):
        out.append(f"ERROR{' (timeout ' + s['timeout'] + ')' if s.get('timeout') else ''}: {s['error']}")
    return out


def section(title: str) -> str:
    return f"\n{RULE} {title} {RULE}"


def message_blocks(message: Message | None, missing: str) -> list[list[str]]:
    """A message as the blocks of its column: first line, headers, body (or what stands for a missing message)."""
    if message is None:
        return [[missing]]
    headers = [f"{k}: {v}" for k, v in message.headers]
    return [[message.title], headers, ["", *pretty_body(message.body, message.content_type).splitlines()]]


Side = tuple[str, Message | None, str]  # the column's title, its message, what stands for a missing message


def both_sides(title: str, left: Side, right: Side, width: int) -> list[str]:
    """A section with two messages side by side, each in its own column under its own title."""
    return [
        *section(title).split("\n"),
        *columns.heading(left[0], right[0], width),
        *columns.side_by_side(message_blocks(*left[1:]), message_blocks(*right[1:]), width),
    ]


def request_text(
    s: dict[str, Any],
    client: Message | None,
    upstream: Message | None,
    standard: dict[str, Any] | None,
    reply: Any,
    width: int = WIDTH,
) -> str:
    """The request tab: summary, conversation, answer, then the client's request beside the one sent upstream."""
    lead = [section("Conversation")]
    lead += conversation(standard) if standard is not None else ["(the client's request is shown as it came, below)"]
    out = columns.fit([*headline(s), *lead, section("Answer"), *answer(reply, bool(s.get("stream")))], width)
    out += both_sides(
        "Requests",
        (f"client sent ({s.get('client_format')})", client, "(not kept)"),
        (f"sent upstream ({s.get('provider')})", upstream, NOTHING_SENT),
        width,
    )
    return "\n".join(out)


def response_text(
    s: dict[str, Any], provider: Message | None, received: Message | None, reply: Any, width: int = WIDTH
) -> str:
    """The response tab: summary, answer, then the provider's answer beside what the client received."""
    out = columns.fit([*headline(s), section("Answer"), *answer(reply, bool(s.get("stream")))], width)
    out += both_sides(
        "Answers",
        (f"provider answered ({s.get('provider')})", provider, "(no answer from the provider)"),
        (f"client received ({s.get('client_format')})", received, "(nothing)"),
        width,
    )
    return "\n".join(out)


def stream_stand_in(s: dict[str, Any], reply: Any) -> bytes:
    """What a streamed response's body holds once the stream is over, mitmproxy having kept none: what the proxy
    kept of it (the answer's text, tool calls and finish, when the rule logs payloads; the usage), at most
    STAND_IN_MAX bytes. It says what it is, for whoever reads the flow's body elsewhere (Raw view, exports)."""
    kept = answer(reply, streamed=True) if reply is not None else ["(passed on as the provider sent it: not kept)"]
    lines = [STAND_IN_NOTE, "", *headline(s), "", *kept]
    data = "\n".join(lines).encode()
    if len(data) > STAND_IN_MAX:
        data = data[:STAND_IN_MAX].decode(errors="ignore").encode() + f"\n… ({size_text(len(data))} in all)".encode()
    return data


def header_pairs(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in fields]
