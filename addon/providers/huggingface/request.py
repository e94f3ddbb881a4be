"""To Hugging Face: the OpenAI-compatible body (Messages API, TGI's /v1/completions) and the native
text-generation body (/generate, /generate_stream, /models/{model})."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...openai_format import CHAT, max_tokens_of, single_prompt, stop_list
from ..base import Call
from .common import DEFAULT_MODEL
from .urls import _is_tgi_operation

# Native completions: OpenAI fields with no TGI equivalent, refused unless neutral (None is always fine).
_NATIVE_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False, 0),
    "echo": (False,),
    "suffix": ("",),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "tools": ([],),
}


# --------------------------------------------------------------------------------------------------------------
# Sampling parameters
# --------------------------------------------------------------------------------------------------------------


def _sampling(body: dict[str, Any]) -> tuple[bool, Any, Any]:
    """(greedy, temperature, top_p) after range checks; top_p is None when it filters nothing."""
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    if temperature is not None and temperature < 0:
        raise bad_request("'temperature' must be between 0 and 2", param="temperature")
    if top_p is not None and not 0 <= top_p <= 1:
        raise bad_request("'top_p' must be between 0 and 1", param="top_p")
    greedy = temperature == 0 or top_p == 0
    if top_p == 1:
        top_p = None
    return greedy, temperature, top_p


# --------------------------------------------------------------------------------------------------------------
# To Hugging Face: OpenAI-compatible routes
# --------------------------------------------------------------------------------------------------------------


def _openai_body(call: Call) -> dict[str, Any]:
    body = dict(call.body)
    _refuse_functions(body)
    n = body.get("n")
    if n is not None and n != 1:
        raise bad_request("'n' > 1 is not supported by provider huggingface (TGI answers one choice)", param="n")
    top_k = body.pop("top_k", None)
    if top_k and call.options.top_k is None:  # a rule's top_k is for the native route: dropped, like OpenAI's
        raise bad_request(
            "'top_k' is not supported on Hugging Face's OpenAI-compatible routes; "
            "the native API (route_type llm/v1/completions) takes it",
            param="top_k",
        )
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
        # TGI's grammar takes {"type": "json", "value": <schema>}, not OpenAI's shape: not mapped yet.
        raise bad_request(
            "response_format json_object/json_schema is not supported for provider huggingface yet",
            param="response_format",
        )
    body.pop("response_format", None)
    body["model"] = call.model or DEFAULT_MODEL
    stop = stop_list(body)
    if stop is not None:
        body["stop"] = stop  # TGI refuses a bare string (422)
    if body.get("max_completion_tokens") is not None:
        body["max_tokens"] = body.pop("max_completion_tokens")  # TGI knows only max_tokens
    else:
        body.pop("max_completion_tokens", None)
    greedy, _temperature, top_p = _sampling(body)
    if greedy:
        body["temperature"] = 0  # TGI: temperature 0 -> do_sample false
        body.pop("top_p", None)  # any top_p < 1 would switch TGI back to sampling
    elif top_p is None:
        body.pop("top_p", None)
    if call.route_type == CHAT:
        body["messages"] = [
            {**m, "role": "system"} if m.get("role") == "developer" else m for m in body["messages"]
        ]  # chat templates know system, not developer
    body["stream"] = call.stream
    if call.stream:
        # Ask for the usage chunk so the record has tokens; the client only sees it if it asked too.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream_options", None)
    return body


def _refuse_functions(body: dict[str, Any]) -> None:
    """The deprecated function-calling fields: TGI does not know them and would ignore them, silently."""
    for key in ("functions", "function_call"):
        if body.get(key) is not None:
            raise bad_request(
                f"'{key}' (deprecated) is not supported by provider huggingface: use tools / tool_choice", param=key
            )
    for i, m in enumerate(body.get("messages") or ()):
        if isinstance(m, dict) and (m.get("role") == "function" or m.get("function_call") is not None):
            raise bad_request(
                f"messages[{i}]: function messages (deprecated) are not supported by provider huggingface: use "
                "tool_calls and tool messages",
                param=f"messages[{i}]",
            )


# --------------------------------------------------------------------------------------------------------------
# To Hugging Face: native text generation
# --------------------------------------------------------------------------------------------------------------


def _native_body(call: Call, url: str) -> dict[str, Any]:
    body = call.body
    for key, neutral in _NATIVE_UNSUPPORTED.items():
        value = body.get(key)
        if value is not None and value not in neutral:
            raise bad_request(f"'{key}' is not supported by provider huggingface (text generation)", param=key)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
        raise bad_request(
            "response_format json_object/json_schema is not supported for provider huggingface yet",
            param="response_format",
        )
    params: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        params["max_new_tokens"] = max_tokens
    greedy, temperature, top_p = _sampling(body)
    top_k = body.get("top_k")
    if top_k is not None and top_k < 0:
        raise bad_request("'top_k' must be 0 or more", param="top_k")
    if greedy:
        params["do_sample"] = False
    else:
        # A present `parameters` object without do_sample is greedy on TGI; OpenAI samples unless told not to.
        params["do_sample"] = True
        if temperature is not None:
            params["temperature"] = temperature
        if top_p is not None:
            params["top_p"] = top_p
        if top_k:
            params["top_k"] = top_k
    stop = stop_list(body)
    if stop:
        params["stop"] = stop
    if body.get("seed") is not None:
        params["seed"] = body["seed"]
    if body.get("frequency_penalty"):
        params["frequency_penalty"] = body["frequency_penalty"]
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        params["best_of"] = best_of
    params["return_full_text"] = False  # the serverless API and TGI's compat route echo the prompt by default
    params["details"] = True  # finish reason and token counts
    out: dict[str, Any] = {"inputs": single_prompt(body), "parameters": params}
    hf = call.options.huggingface
    if hf is not None:
        hf_options = {
            k: v for k, v in (("use_cache", hf.use_cache), ("wait_for_model", hf.wait_for_model)) if v is not None
        }
        if hf_options:
            out["options"] = hf_options
    if not _is_tgi_operation(url):
        out["stream"] = call.stream  # /models/{model} and TGI's compat route choose the answer format by body
    return out
