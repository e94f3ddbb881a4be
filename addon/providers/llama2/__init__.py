"""Llama on a self-hosted server (`upstream_url` is required), in one of three formats (`llama2_format`):

- `raw` (default): a text-generation endpoint (TGI `/generate`, Hugging Face `{"inputs": ...}` APIs) given the
  conversation rendered in the Llama 2 `[INST]`/`<<SYS>>` template or the Llama 3 header template
  (`llama_template`), every turn kept, assistant turns included (docs/providers.md §9);
- `ollama`: Ollama's native `/api/chat` and `/api/generate` (shared with mistral in _ollama.py);
- `openai`: an OpenAI-compatible server (Ollama `/v1`, vLLM, llama.cpp server): passed through as for openai.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import jsonutil
from ..errors import bad_request
from ..openai_format import (
    CHAT,
    EMBEDDINGS,
    chat_response,
    completion_response,
    embeddings_body,
    embeddings_passthrough,
    max_tokens_of,
    single_prompt,
    stop_list,
    text_of,
    usage,
)
from ..spec import ModelOptions, RuleSpec
from ..streaming import OpenAIPassthrough, SSETranslator
from ..streams import SSEEvent
from . import _ollama
from .base import Call, Provider, UpstreamFormatError, UpstreamRequest, as_str, build_url, register

# ---- Llama 2: meta-llama/llama llama/generation.py::chat_completion ----
B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
BOS, EOS = "<s>", "</s>"
# ---- Llama 3: meta-llama/llama3 llama/tokenizer.py::ChatFormat ----
BEGIN_OF_TEXT = "<|begin_of_text|>"
START_HEADER, END_HEADER = "<|start_header_id|>", "<|end_header_id|>"
EOT = "<|eot_id|>"

# The token that ends a turn in each template: always a stop sequence (servers do not all stop on it).
END_OF_TURN = {"llama2": EOS, "llama3": EOT}
TEMPLATE_START = {"llama2": BOS, "llama3": BEGIN_OF_TEXT}

# TGI's finish reasons (`details.finish_reason`).
RAW_FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}

# OpenAI fields a text-generation endpoint has no equivalent for: refused unless neutral.
_RAW_UNSUPPORTED = {**_ollama.UNSUPPORTED, "presence_penalty": 0}
_CHAT_PATHS = {CHAT: "/v1/chat/completions", "llm/v1/completions": "/v1/completions", EMBEDDINGS: "/v1/embeddings"}


def llama_format(options: ModelOptions) -> str:
    return options.llama2_format or "raw"


def template_of(options: ModelOptions) -> str:
    return options.llama_template or "llama2"


# --------------------------------------------------------------------------------------------------------------
# Prompt templates
# --------------------------------------------------------------------------------------------------------------


def _text(m: dict[str, Any], i: int) -> str:
    content = m.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part["type"] != "text":
                where = f"messages[{i}].content[{j}]"
                raise bad_request(f"{where}: '{part['type']}' parts cannot go into a raw llama prompt", param=where)
    if m.get("tool_calls"):
        raise bad_request(
            f"messages[{i}]: tool calls are not supported by provider llama2 (raw): use llama2_format ollama or openai",
            param=f"messages[{i}].tool_calls",
        )
    return text_of(content)


def _role(m: dict[str, Any], i: int) -> str:
    role = m["role"]
    if role == "developer":
        return "system"
    if role not in ("system", "user", "assistant"):
        raise bad_request(
            f"messages[{i}]: role '{role}' is not supported by provider llama2 (raw)"
            + (": use llama2_format ollama or openai for tools" if role in ("tool", "function") else ""),
            param=f"messages[{i}].role",
        )
    return role


def render_llama2(messages: list[dict[str, Any]]) -> str:
    """The Llama 2 chat prompt: every system message in the first user turn's <<SYS>> block; consecutive turns of
    one role merged (the template needs strict user/assistant alternation, starting and ending with the user);
    every completed exchange `<s>[INST] user [/INST] assistant </s>`, the last user turn `<s>[INST] user [/INST]`."""
    system: list[str] = []
    turns: list[list[str]] = []  # [role, text]
    for i, m in enumerate(messages):
        role = _role(m, i)
        text = _text(m, i).strip()
        if role == "system":
            if text:
                system.append(text)
        elif turns and turns[-1][0] == role:
            turns[-1][1] += "\n\n" + text
        else:
            turns.append([role, text])
    if not turns or turns[0][0] != "user":
        raise bad_request("the llama2 template needs a user message before any assistant message", param="messages")
    if turns[-1][0] != "user":
        raise bad_request("the llama2 template needs the conversation to end with a user message", param="messages")
    if system:
        turns[0][1] = B_SYS + "\n\n".join(system) + E_SYS + turns[0][1]
    out = [
        f"{BOS}{B_INST} {turns[k][1].strip()} {E_INST} {turns[k + 1][1].strip()} {EOS}"
        for k in range(0, len(turns) - 1, 2)
    ]
    out.append(f"{BOS}{B_INST} {turns[-1][1].strip()} {E_INST}")
    return "".join(out)


def render_llama3(messages: list[dict[str, Any]]) -> str:
    """The Llama 3 chat prompt: every message under its role header, in order, then an open assistant header."""
    out = [BEGIN_OF_TEXT]
    for i, m in enumerate(messages):
        out.append(f"{START_HEADER}{_role(m, i)}{END_HEADER}\n\n{_text(m, i).strip()}{EOT}")
    out.append(f"{START_HEADER}assistant{END_HEADER}\n\n")
    return "".join(out)


def render(template: str, messages: list[dict[str, Any]]) -> str:
    return render_llama3(messages) if template == "llama3" else render_llama2(messages)


def raw_prompt(call: Call) -> str:
    template = template_of(call.options)
    if call.route_type == CHAT:
        return render(template, call.body["messages"])
    prompt = single_prompt(call.body)
    if prompt.startswith(TEMPLATE_START[template]):
        return prompt  # already rendered by the client: sent as it is
    return render(template, [{"role": "user", "content": prompt}])


def strip_echo(text: str, prompt: str) -> str:
    """The generated text without an echo of the prompt (servers that ignore return_full_text: false)."""
    if text.startswith(prompt):
        return text[len(prompt) :].lstrip()
    if text.startswith((BOS, B_INST, BEGIN_OF_TEXT, START_HEADER)):
        # An echo of a prompt rendered differently than ours: the answer follows the last end-of-prompt marker.
        for marker in (E_INST, END_HEADER):
            cut = text.rfind(marker)
            if cut >= 0:
                return text[cut + len(marker) :].lstrip()
    return text


def strip_stop(text: str, stops: list[str]) -> str:
    """TGI includes the stop sequence that ended the generation; OpenAI's text never contains it."""
    for stop in sorted(stops, key=len, reverse=True):
        if stop and text.endswith(stop):
            return text[: -len(stop)]
    return text


# --------------------------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------------------------


class Llama2(Provider):
    name = "llama2"
    supports_streaming = True

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        if not spec.model.options.upstream_url and "model.options.upstream_url" not in unset:
            return "model.options.upstream_url is required for llama2 (self-hosted)"
        return super().check_rule(spec, unset)

    def embeddings_problem(self, options: ModelOptions) -> str | None:
        if options.llama2_format in (None, "raw"):
            return "provider llama2 has no embeddings API in llama2_format raw (use ollama or openai)"
        return None

    def requires_model(self, options: ModelOptions) -> bool:
        return llama_format(options) != "raw"  # a raw endpoint serves one model, chosen by its URL

    def build_request(self, call: Call) -> UpstreamRequest:
        fmt = llama_format(call.options)
        _ollama.require_upstream_url(call.options, self.name, fmt)
        if call.route_type == EMBEDDINGS:
            return self._embeddings_request(call, fmt)
        if fmt == "ollama":
            return _ollama.build_request(call, self.name)
        if fmt == "openai":
            return self._openai_request(call)
        return self._raw_request(call)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        fmt = llama_format(call.options)
        if call.route_type == EMBEDDINGS:
            if fmt == "ollama":
                return _ollama.parse_embeddings(call, data)
            return embeddings_passthrough(data, call.model or "", call.body.get("encoding_format"))
        if fmt == "ollama":
            return _ollama.parse_response(call, data)
        if fmt == "openai":
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
                raise UpstreamFormatError("expected an OpenAI-format object with 'choices'")
            return data
        return self._parse_raw(call, data)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> Any:
        fmt = llama_format(call.options)
        if fmt == "ollama":
            return _ollama.OllamaStream(call, include_usage, keep_payload, self.name)
        if fmt == "openai":
            return OpenAIPassthrough(call.route_type, not include_usage, keep_payload)
        return RawStream(call, include_usage, keep_payload)

    # ---- embeddings (ollama /api/embed, or an OpenAI-compatible /v1/embeddings) ------------------------------

    def _embeddings_request(self, call: Call, fmt: str) -> UpstreamRequest:
        if fmt == "ollama":
            return _ollama.embeddings_request(call, self.name)
        if fmt != "openai":
            raise bad_request("provider llama2 has no embeddings in llama2_format raw: use ollama or openai")
        url = build_url(call.options, "", _CHAT_PATHS[EMBEDDINGS])
        return UpstreamRequest(url=url, body=embeddings_body(call.body, call.model, self.name, tokens=True))

    # ---- openai format -------------------------------------------------------------------------------------

    def _openai_request(self, call: Call) -> UpstreamRequest:
        body = dict(call.body)
        if call.model:
            body["model"] = call.model
        max_tokens = max_tokens_of(body)
        body.pop("max_completion_tokens", None)
        if max_tokens is not None:
            # Ollama's /v1 reads only max_tokens (a max_completion_tokens would be ignored, the answer unbounded);
            # vLLM and llama.cpp take it too.
            body["max_tokens"] = max_tokens
        body["stream"] = call.stream
        if call.stream:
            # Ollama /v1, vLLM and llama.cpp report usage in a last chunk when asked; the client only sees it if
            # it asked too.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return UpstreamRequest(url=build_url(call.options, "", _CHAT_PATHS[call.route_type]), body=body)

    # ---- raw format ----------------------------------------------------------------------------------------

    def _raw_request(self, call: Call) -> UpstreamRequest:
        body = call.body
        _ollama.refuse_unsupported(body, "llama2 (raw)", _RAW_UNSUPPORTED)
        _ollama.refuse_tools(body, "llama2 (raw)")
        rf = body.get("response_format")
        if rf is not None and (not isinstance(rf, dict) or rf.get("type") != "text"):
            raise bad_request("response_format is not supported by provider llama2 (raw)", param="response_format")
        if call.route_type != CHAT and body.get("suffix"):
            raise bad_request("'suffix' is not supported by provider llama2 (raw)", param="suffix")
        out: dict[str, Any] = {"inputs": raw_prompt(call), "parameters": raw_parameters(call)}
        parts = urlsplit(build_url(call.options, "", "/generate"))
        path = parts.path
        if call.stream:
            if path.endswith("/generate"):
                path += "_stream"  # TGI's streaming operation
            elif not path.endswith("/generate_stream"):
                out["stream"] = True  # TGI's compat route `/`, Hugging Face's Inference API
        elif path.endswith("/generate_stream"):
            path = path[: -len("_stream")]
        url = urlunsplit(parts._replace(path=path))
        return UpstreamRequest(url=url, body=out)

    def _parse_raw(self, call: Call, data: Any) -> dict[str, Any]:
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]  # {"data": [...]} wrappers (seen in Kong's fixtures)
        if isinstance(data, list):
            if not data:
                raise UpstreamFormatError("expected [{'generated_text': ...}], got an empty array")
            data = data[0]
        if not isinstance(data, dict) or not isinstance(data.get("generated_text"), str):
            raise UpstreamFormatError("expected {'generated_text': ...} or [{'generated_text': ...}]")
        text = strip_echo(data["generated_text"], raw_prompt(call))
        text = strip_stop(text, raw_stops(call))
        if call.route_type == CHAT:
            text = text.lstrip()  # Llama 2 answers start with the space after [/INST]
        details = data.get("details") if isinstance(data.get("details"), dict) else {}
        reason = RAW_FINISH_REASONS.get(as_str(details.get("finish_reason")), "stop")
        model = call.model or ""
        use = raw_usage(details)
        if call.route_type == CHAT:
            message = {"role": "assistant", "content": text}
            return chat_response(id=None, model=model, message=message, finish_reason=reason, usage=use)
        return completion_response(id=None, model=model, text=text, finish_reason=reason, usage=use)


def raw_stops(call: Call) -> list[str]:
    stops = stop_list(call.body) or []
    end = END_OF_TURN[template_of(call.options)]
    return stops if end in stops else [*stops, end]


def raw_parameters(call: Call) -> dict[str, Any]:
    """TGI's GenerateParameters. TGI refuses temperature 0 and top_p outside (0, 1): those mean greedy decoding
    (temperature 0, top_p 0) or no nucleus filtering (top_p 1), said the way TGI accepts."""
    body = call.body
    params: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        params["max_new_tokens"] = max_tokens
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    greedy = temperature == 0 or top_p == 0
    if temperature is not None and temperature > 0 and not greedy:
        params["temperature"] = temperature
    if top_p is not None and 0 < top_p < 1 and not greedy:
        params["top_p"] = top_p
    if body.get("top_k") and not greedy:
        params["top_k"] = body["top_k"]
    if greedy:
        params["do_sample"] = False
    params["stop"] = raw_stops(call)
    if body.get("seed") is not None:
        params["seed"] = body["seed"]
    if body.get("frequency_penalty"):
        params["frequency_penalty"] = body["frequency_penalty"]
    params["return_full_text"] = False
    params["details"] = True  # finish reason and token counts
    return params


def raw_usage(details: dict[str, Any]) -> dict[str, Any] | None:
    prompt, completion = details.get("input_length"), details.get("generated_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return usage(prompt, completion)
    return None  # TGI's non-streamed details have no prompt count: no usage rather than a wrong one


# --------------------------------------------------------------------------------------------------------------
# Streams: TGI text-generation SSE -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class RawStream(SSETranslator):
    """Translates a TGI `/generate_stream` SSE stream (`data:{"token": {...}, "generated_text", "details"}`).

    Special tokens (`</s>`, `<|eot_id|>`) are skipped. Text that could be the start of a stop sequence is held
    back until it is known not to be one, because TGI sends the stop sequence's tokens before it stops and
    OpenAI's answer never contains it. The stream ends with the event whose `generated_text`/`details` is set.
    TGI counts tokens only in that last event's `details`: a stream cut off before it is recorded without usage.
    """

    __slots__ = ("_began", "_held", "_lead", "_max_stop", "_stops")
    provider = "llama2"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or "", include_usage, keep_payload)
        self._stops = [s for s in raw_stops(call) if s]
        self._max_stop = max((len(s) for s in self._stops), default=0)
        self._held = ""  # the tail that may begin a stop sequence
        self._lead = call.route_type == CHAT  # still dropping the whitespace a chat answer starts with
        self._began = False

    def _event(self, sse: SSEEvent) -> bytes:
        data = sse.data
        if self._done:
            return b""
        out = b""
        if not self._began:
            self._began = True
            out = self.out.role()
        if data == "[DONE]":
            return out + self._end({})
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return out + self._fail("llama2 sent an event that is not JSON")
        if not isinstance(obj, dict):
            return out
        if "error" in obj:
            err = obj["error"]
            message = err.get("message") if isinstance(err, dict) else err
            code = obj.get("error_type")
            return out + self._fail(str(message or "llama2 stream error"), code=str(code) if code else "upstream_error")
        token = obj.get("token")
        if isinstance(token, dict) and not token.get("special") and isinstance(token.get("text"), str):
            out += self._text(token["text"])
        details = obj.get("details")
        if obj.get("generated_text") is not None or isinstance(details, dict):
            out += self._end(details if isinstance(details, dict) else {})
        return out

    def _text(self, text: str) -> bytes:
        if self._lead:
            text = text.lstrip()
            if not text:
                return b""
            self._lead = False
        if not self._max_stop:
            return self.out.text(text)
        held = self._held + text
        keep = 0
        for n in range(min(len(held), self._max_stop), 0, -1):
            tail = held[-n:]
            if any(s.startswith(tail) for s in self._stops):
                keep = n
                break
        self._held = held[len(held) - keep :] if keep else ""
        return self.out.text(held[: len(held) - keep])

    def _end(self, details: dict[str, Any]) -> bytes:
        self._done = True
        out = self.out.text(strip_stop(self._held, self._stops))
        self._held = ""
        reason = RAW_FINISH_REASONS.get(as_str(details.get("finish_reason")), "stop")
        return out + self.out.finish(reason, raw_usage(details))


LLAMA2 = register(Llama2())
