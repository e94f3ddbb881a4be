"""OpenAI messages as Gemini contents: texts, images, tool calls and their results."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from ... import jsonutil
from ...errors import bad_request
from ...openai_format import arguments_object
from .common import _NOT_YET
from .ids import parse_tool_call_id


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """OpenAI messages -> (system texts, Gemini contents with consecutive same-role turns merged).

    Assistant tool calls become `functionCall` parts of the model turn (with the native id and thoughtSignature
    decoded from the tool-call id, see `tool_call_id`); `tool` results become `functionResponse` parts of a user
    turn, named by the function of the assistant tool call their `tool_call_id` answers (Gemini matches results
    by name: Kong hard-coded that name)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    calls: dict[str, tuple[str, str | None, int]] = {}  # tool_call_id -> (function name, native id, position)
    order: dict[int, int] = {}  # id(functionResponse part) -> position of the call it answers
    for i, m in enumerate(messages):
        role = m["role"]
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_texts(m.get("content"), where, role))
            continue
        if role == "user":
            parts = _user_parts(m.get("content"), where)
            turn = "user"
        elif role == "assistant":
            parts = [{"text": t} for t in _texts(m.get("content"), where, role)]
            parts.extend(_call_parts(m, where, calls))
            turn = "model"
        elif role == "tool":
            parts = [_tool_result(m, where, calls, order)]
            turn = "user"
        else:  # function: the deprecated form of a tool result, named by the message itself
            name = m.get("name")
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}: a 'function' message needs its function's 'name'", param=f"{where}.name")
            parts = [{"functionResponse": {"name": name, "response": _result_object(m.get("content"), where)}}]
            turn = "user"
        if not parts:
            continue  # Gemini refuses a turn without parts
        if out and out[-1]["role"] == turn:
            out[-1]["parts"].extend(parts)  # Gemini wants user and model turns to alternate
        else:
            out.append({"role": turn, "parts": parts})
    for turn in out:
        if turn["role"] == "user" and order:
            # Results in the order of their calls: a function called twice in one turn is told apart only by it.
            indexed = list(enumerate(turn["parts"]))
            indexed.sort(key=lambda p: (0, order[id(p[1])], 0) if id(p[1]) in order else (1, 0, p[0]))
            turn["parts"] = [part for _, part in indexed]
    return [s for s in system if s], out


def _call_parts(m: dict[str, Any], where: str, calls: dict[str, tuple[str, str | None, int]]) -> list[dict[str, Any]]:
    """An assistant message's tool_calls (or deprecated function_call) as Gemini functionCall parts."""
    tool_calls = m.get("tool_calls")
    legacy = m.get("function_call")
    if tool_calls and legacy:
        raise bad_request(f"{where}: both 'tool_calls' and 'function_call'", param=f"{where}.function_call")
    parts: list[dict[str, Any]] = []
    if legacy:
        parts.append(_call_part(legacy, None, None, f"{where}.function_call"))
    if tool_calls is None:
        return parts
    if not isinstance(tool_calls, list):
        raise bad_request(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    for j, tc in enumerate(tool_calls):
        here = f"{where}.tool_calls[{j}]"
        if not isinstance(tc, dict) or tc.get("type", "function") != "function":
            raise bad_request(f"{here}: only function tool calls are supported by provider gemini", param=here)
        call_id = tc.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise bad_request(f"{here}.id is required", param=f"{here}.id")
        native_id, signature = parse_tool_call_id(call_id)
        extra = tc.get("extra_content")  # Google's own OpenAI-compatible endpoint carries the signature here
        google = extra.get("google") if isinstance(extra, dict) else None
        if signature is None and isinstance(google, dict) and isinstance(google.get("thought_signature"), str):
            signature = google["thought_signature"]
        part = _call_part(tc.get("function"), native_id, signature, f"{here}.function")
        calls[call_id] = (part["functionCall"]["name"], native_id, len(calls))
        parts.append(part)
    return parts


def _call_part(fn: Any, native_id: str | None, signature: str | None, where: str) -> dict[str, Any]:
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise bad_request(f"{where}.name is required", param=f"{where}.name")
    args = arguments_object(fn.get("arguments"), f"{where}.arguments", f"{where}.arguments", " for provider gemini")
    call: dict[str, Any] = {"name": fn["name"], "args": args}
    if native_id:
        call["id"] = native_id
    part: dict[str, Any] = {"functionCall": call}
    if signature:
        part["thoughtSignature"] = signature
    return part


def _tool_result(
    m: dict[str, Any], where: str, calls: dict[str, tuple[str, str | None, int]], order: dict[int, int]
) -> dict[str, Any]:
    call_id = m.get("tool_call_id")
    known = calls.get(call_id) if isinstance(call_id, str) else None
    if known is None:
        name = m.get("name")  # some clients name the function on the result itself
        if not isinstance(name, str) or not name:
            raise bad_request(
                f"{where}: tool_call_id {call_id!r} answers no tool call of an earlier assistant message "
                "(provider gemini matches tool results to calls by function name)",
                param=f"{where}.tool_call_id",
            )
        known = (name, None, -1)
    name, native_id, position = known
    response: dict[str, Any] = {"name": name, "response": _result_object(m.get("content"), where)}
    if native_id:
        response["id"] = native_id
    part = {"functionResponse": response}
    if position >= 0:
        order[id(part)] = position
    return part


def _result_object(content: Any, where: str) -> dict[str, Any]:
    """A tool result as the JSON object Gemini requires: a JSON object result as is, anything else (plain text,
    a JSON array, number, string) wrapped as {"result": ...}."""
    text = "".join(_texts(content, where, "tool"))
    try:
        value = jsonutil.loads(text) if text.strip() else text
    except ValueError:
        value = text
    return value if isinstance(value, dict) else {"result": value}


def _texts(content: Any, where: str, role: str) -> list[str]:
    """The non-empty texts of a content that may hold only text."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    texts = []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind == "text" or (kind == "refusal" and role == "assistant"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise bad_request(f"{where}.content[{j}].{kind} must be a string", param=f"{where}.content[{j}]")
            if text:
                texts.append(text)
        else:
            raise bad_request(
                f"{where}.content[{j}]: a {role} message may hold only text", param=f"{where}.content[{j}]"
            )
    return texts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part["type"]
        here = f"{where}.content[{j}]"
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{here}.text must be a string", param=here)
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image_part(part, here))
        else:
            raise bad_request(f"{here}: '{kind}' parts {_NOT_YET}", param=here)
    return parts


_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)((?:;[^,;]*)*);base64,(.*)$", re.DOTALL)


_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_FILES_API = re.compile(r"^/v1(?:beta)?/files/[^/]+$")


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    """A data: URL -> inlineData; an http(s) or gs:// URL -> fileData (Gemini fetches it), its MIME type guessed
    from the file extension (a Files API URI needs none). An image of unknown type is refused."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request(f"{where}: image_url.url is required", param=where)
    m = _DATA_URL.match(url)
    if m and m.group(1).lower().startswith("image/"):
        # Gemini answers 400 "Unsupported MIME type: image/jpg" to the common non-standard jpg label.
        mime = m.group(1).lower()
        return {"inlineData": {"mimeType": "image/jpeg" if mime == "image/jpg" else mime, "data": m.group(3)}}
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "gs") and parts.netloc:
        path = unquote(parts.path)
        suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
        mime = _IMAGE_TYPES.get(suffix)
        if mime:
            return {"fileData": {"mimeType": mime, "fileUri": url}}
        if parts.netloc == "generativelanguage.googleapis.com" and _FILES_API.match(parts.path):
            return {"fileData": {"fileUri": url}}  # an uploaded file: Gemini knows its type
        raise bad_request(
            f"{where}: provider gemini cannot tell this image URL's type from its name (it takes .png, .jpg, "
            ".jpeg, .webp, .heic and .heif URLs); send it as a data: URL",
            param=where,
        )
    raise bad_request(
        f"{where}: provider gemini takes images as base64 data: URLs (data:image/png;base64,...) or http(s):// "
        "and gs:// URLs",
        param=where,
    )
