"""`llama2_format: raw`: a text-generation endpoint (TGI `/generate`, Hugging Face `{"inputs": ...}` APIs) given
the rendered prompt (templates.py); its `generated_text` answer, finish reasons and token counts back to OpenAI's."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import bad_request
from ...openai_format import CHAT, chat_response, completion_response, max_tokens_of, stop_list, usage
from .. import _ollama
from ..base import Call, UpstreamFormatError, UpstreamRequest, as_str, build_url
from .templates import END_OF_TURN, raw_prompt, strip_echo, strip_stop, template_of

# TGI's finish reasons (`details.finish_reason`).
RAW_FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}

# OpenAI fields a text-generation endpoint has no equivalent for: refused unless neutral.
_RAW_UNSUPPORTED = {**_ollama.UNSUPPORTED, "presence_penalty": 0}


def raw_request(call: Call) -> UpstreamRequest:
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


def parse_raw(call: Call, data: Any) -> dict[str, Any]:
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
