"""A Gemini generateContent request (what gemini-cli and the google-genai SDKs send) as the standard request, the
OpenAI Chat body the providers take: the model and streaming from the path, `contents` and `systemInstruction`
as messages (here), tools and generation settings (config.py). Every field read is checked first: a request of
another shape is a 400 naming the field in Gemini's terms (`contents[2].parts[0].inlineData.mimeType`). What the
standard request has no place for is dropped and listed in `dropped` (the loss report), or refused where
dropping it would change the answer's meaning.

Mapping (Gemini -> OpenAI Chat):
- the path's model (`/v1beta/models/{model}:generateContent`) -> `model`; `:streamGenerateContent` -> `stream`;
- `systemInstruction` text parts -> a leading system message;
- `user` turns: `text` -> text content, `inlineData` images -> data: URL images, `fileData` with an http(s)
  image URI -> image URL (the provider fetches it; gs:// and other URIs are refused), `functionResponse` ->
  `tool` messages (first, in order, as OpenAI wants them straight after the assistant turn that called);
- `model` turns: `text` -> content, `functionCall` -> tool_calls (args serialised once), `thought` parts and
  every `thoughtSignature` -> dropped (no standard place; reported);
- tool-call ids: a `functionCall` without an `id` gets `call_<turn>_<part>` (stable: the same history gives the
  same ids); a `functionResponse` answers the call of the latest model turn with its `id`, else the first
  unanswered one of its `name`, as Gemini matches them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from ... import jsonutil
from ...openai_validate import checked_model
from ..fields import array, fail, string
from . import config
from .names import SnakeCase, camel_case, check_name, fields

# The generateContent family of methods, on the Gemini API's and Vertex AI's model paths.
# A model id may hold a slash or a colon (org/model, a Bedrock id): all between /models/ and the method is the id.
_PATH = re.compile(r"/models/(.+):(generateContent|streamGenerateContent|countTokens)$")
_DATA_KEYS = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                        "codeExecutionResult"})  # fmt: skip
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"})
# Every other field (safetySettings, labels, ...) has no place in the standard request: dropped and reported.
_KNOWN = frozenset({"model", "contents", "systemInstruction", "tools", "toolConfig", "generationConfig"})
# A result object a tool's output is commonly wrapped in ({"output": "..."}, gemini-cli's): the text itself.
_RESULT_KEYS = frozenset({"output", "result", "content"})


def method_of(path: str) -> tuple[str, str] | None:
    """(model, method) named by a generateContent-family path (its query ignored), or None."""
    found = _PATH.search(path.split("?", 1)[0].rstrip("/"))
    if found is None:
        return None
    return unquote(found.group(1)), found.group(2)


class _Decoder:
    """One request's decoding: the loss report and the function calls awaiting their responses."""

    def __init__(self, dropped: list[str]) -> None:
        self.dropped = dropped
        self.pending: list[list[Any]] = []  # [name, id, answered] of the latest model turn's calls

    def drop(self, what: str) -> None:
        if what not in self.dropped:
            self.dropped.append(what)

    def decode(self, body: Any, model: str, stream: bool) -> dict[str, Any]:
        body = fields(body, "body")
        out: dict[str, Any] = {"model": checked_model(model, "model")}
        messages = self.system(body.get("systemInstruction"))
        for i, content in enumerate(array(body.get("contents"), "contents")):
            messages += self.content(fields(content, f"contents[{i}]"), i)
        if not any(m["role"] != "system" for m in messages):
            fail("contents", "must hold at least one turn with parts")
        out["messages"] = messages
        config.tools(body, out, self.drop)
        config.generation(body.get("generationConfig"), out, self.drop)
        if stream:
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}  # Gemini streams end with usageMetadata
        if body.get("cachedContent") is not None:
            fail("cachedContent", "cached contents live on Gemini's servers; send the contents themselves")
        for key, value in body.items():
            if key not in _KNOWN and value is not None:
                self.drop(key)
        return out

    def system(self, system: Any) -> list[dict[str, Any]]:
        if system is None:
            return []
        if isinstance(system, str):
            return [{"role": "system", "content": system}] if system else []
        texts = []
        for j, part in enumerate(array(fields(system, "systemInstruction").get("parts"), "systemInstruction.parts")):
            where = f"systemInstruction.parts[{j}]"
            texts.append(string(fields(part, where).get("text"), f"{where}.text"))
        text = "\n".join(t for t in texts if t)
        return [{"role": "system", "content": text}] if text else []

    def content(self, content: dict[str, Any], i: int) -> list[dict[str, Any]]:
        role = content.get("role") or "user"
        parts = content.get("parts")
        if not isinstance(parts, list):
            array(parts, f"contents[{i}].parts")
        if role == "model":
            message = self.model_turn(parts, i)
            return [message] if message is not None else []
        if role in ("user", "function"):  # "function": the older spelling of a turn of function responses
            return self.user_turn(parts, i)
        fail(f"contents[{i}].role", "must be 'user' or 'model'")

    def kind(self, part: Any, i: int, j: int) -> str:
        """The part's one data field (text, inlineData, ...); its other fields checked on the way. Field paths are
        built only for errors: this runs for every part of an agent's whole history."""
        if not isinstance(part, dict):
            fail(at(i, j), "must be an object")
        found = None
        for key, value in part.items():
            if "_" in key:
                check_name(key)
            if value is None:
                continue
            if key in _DATA_KEYS:
                if found is not None:
                    found = ""
                    break
                found = key
            elif key != "thought":
                self.drop(key)  # thoughtSignature (opaque to every provider but Gemini), videoMetadata, ...
        if not found:
            fail(at(i, j), "must hold exactly one of text, inlineData, fileData, functionCall or functionResponse")
        if found in ("executableCode", "codeExecutionResult"):
            fail(f"{at(i, j)}.{found}", "code execution parts cannot be translated to this provider")
        return found

    def text(self, part: dict[str, Any], i: int, j: int) -> str | None:
        """A text part's text; None for a thought (earlier reasoning: no standard place yet, reported)."""
        text = part["text"]
        if not isinstance(text, str):
            fail(f"{at(i, j)}.text", "must be a string")
        if part.get("thought") is True:
            self.drop("thought")
            return None
        return text

    def user_turn(self, parts: list[Any], i: int) -> list[dict[str, Any]]:
        tool_messages: list[dict[str, Any]] = []
        content: list[dict[str, Any]] = []
        for j, part in enumerate(parts):
            kind = self.kind(part, i, j)
            if kind == "text":
                text = self.text(part, i, j)
                if text:
                    content.append({"type": "text", "text": text})
            elif kind == "inlineData":
                where = f"{at(i, j)}.inlineData"
                content.append(inline_image(fields(part[kind], where), where))
            elif kind == "fileData":
                where = f"{at(i, j)}.fileData"
                content.append(file_image(fields(part[kind], where), where))
            elif kind == "functionResponse":
                tool_messages.append(self.function_response(part[kind], i, j))
            else:
                fail(f"{at(i, j)}.{kind}", "a user turn cannot hold a functionCall")
        out = tool_messages
        if content:
            single = len(content) == 1 and content[0]["type"] == "text"
            out.append({"role": "user", "content": content[0]["text"] if single else content})
        return out

    def model_turn(self, parts: list[Any], i: int) -> dict[str, Any] | None:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        pending: list[list[Any]] = []
        for j, part in enumerate(parts):
            kind = self.kind(part, i, j)
            if kind == "text":
                text = self.text(part, i, j)
                if text is not None:
                    texts.append(text)
            elif kind == "functionCall":
                call = part[kind]
                if not isinstance(call, dict):
                    fail(f"{at(i, j)}.functionCall", "must be an object")
                name, args, call_id = call.get("name"), call.get("args"), call.get("id") or f"call_{i}_{j}"
                if not isinstance(name, str):
                    fail(f"{at(i, j)}.functionCall.name", "must be a string")
                if args is not None and not isinstance(args, dict):
                    fail(f"{at(i, j)}.functionCall.args", "must be an object")
                if not isinstance(call_id, str):
                    fail(f"{at(i, j)}.functionCall.id", "must be a string")
                pending.append([name, call_id, False])
                fn = {"name": name, "arguments": jsonutil.dumps_str(args or {})}
                calls.append({"id": call_id, "type": "function", "function": fn})
            else:
                fail(f"{at(i, j)}.{kind}", "a model turn holds only text and functionCall parts")
        if not texts and not calls:
            return None  # a turn of thoughts only: nothing the provider can be shown
        if calls:
            self.pending = pending
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
        if calls:
            message["tool_calls"] = calls
        return message

    def function_response(self, response: Any, i: int, j: int) -> dict[str, Any]:
        response = fields(response, f"{at(i, j)}.functionResponse") if not isinstance(response, dict) else response
        for key in response:
            if "_" in key:
                check_name(key)
        name, wanted, result = response.get("name"), response.get("id"), response.get("response")
        if not isinstance(name, str):
            fail(f"{at(i, j)}.functionResponse.name", "must be a string")
        if wanted is not None and not isinstance(wanted, str):
            fail(f"{at(i, j)}.functionResponse.id", "must be a string")
        match = next((c for c in self.pending if wanted is not None and c[1] == wanted), None) or next(
            (c for c in self.pending if c[0] == name and not c[2]), None
        )
        if match is None:
            fail(f"{at(i, j)}.functionResponse.name", f"'{name}' answers no functionCall of the model turn before it")
        match[2] = True
        if result is not None and not isinstance(result, dict):
            fail(f"{at(i, j)}.functionResponse.response", "must be an object")
        for key in ("parts", "willContinue", "scheduling"):
            if response.get(key) is not None:
                self.drop(f"functionResponse.{key}")
        return {"role": "tool", "tool_call_id": match[1], "content": result_text(result or {})}


def at(i: int, j: int) -> str:
    """The field path of a part, for an error."""
    return f"contents[{i}].parts[{j}]"


def result_text(result: dict[str, Any]) -> str:
    """A functionResponse's response object as a tool message's text: a lone output/result/content string as it
    is, any other object as its JSON."""
    if len(result) == 1:
        ((key, value),) = result.items()
        if key in _RESULT_KEYS and isinstance(value, str):
            return value
    return jsonutil.dumps_str(result)


def inline_image(data: dict[str, Any], where: str) -> dict[str, Any]:
    mime = string(data.get("mimeType"), f"{where}.mimeType").lower()
    if mime not in IMAGE_TYPES:
        fail(f"{where}.mimeType", f"'{mime}' cannot be translated to this provider (it takes images)")
    payload = string(data.get("data"), f"{where}.data")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{payload}"}}


def file_image(data: dict[str, Any], where: str) -> dict[str, Any]:
    uri = string(data.get("fileUri"), f"{where}.fileUri")
    mime = data.get("mimeType")
    if mime is not None and string(mime, f"{where}.mimeType").lower() not in IMAGE_TYPES:
        fail(f"{where}.mimeType", f"'{mime}' cannot be translated to this provider (it takes images)")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.netloc.endswith("googleapis.com"):
        fail(
            f"{where}.fileUri",
            "this provider cannot fetch Google storage or Files API URIs; send the image as inlineData or as a "
            "public http(s) URL",
        )
    return {"type": "image_url", "image_url": {"url": uri}}


def decode(body: Any, model: str, stream: bool, dropped: list[str]) -> dict[str, Any]:
    """The standard request for a generateContent body (field names in camelCase or snake_case); what it could not
    carry is appended to `dropped`. Read as camelCase first (the SDKs' spelling, no copy); a snake_case field name
    met on the way restarts the reading on a camelCase copy."""
    lost: list[str] = []
    try:
        out = _Decoder(lost).decode(body, model, stream)
    except SnakeCase:
        lost = []
        try:
            out = _Decoder(lost).decode(camel_case(body), model, stream)
        except SnakeCase as e:  # beyond the depth names are converted at
            fail(e.key, "field names nested this deep must be camelCase")
    dropped.extend(x for x in lost if x not in dropped)
    return out
