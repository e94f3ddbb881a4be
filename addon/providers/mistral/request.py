"""OpenAI chat/completions -> Mistral's chat (or FIM) body: `seed` is `random_seed`, fields Mistral refuses with a
422 dropped (bookkeeping) or refused (behaviour), tool-call ids made valid, the last-role rule checked."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...openai_format import CHAT, single_prompt
from .. import _ollama
from ..base import Call, url_path
from .ids import mistral_id
from .thinking import mistral_effort

FIM_PATH = "/fim/completions"
# OpenAI bookkeeping fields Mistral does not take (it answers 422 to unknown fields): dropped.
_DROPPED = (
    "user",
    "store",
    "metadata",
    "service_tier",
    "stream_options",
    "prompt_cache_key",
    "safety_identifier",
    "modalities",  # refused unless ["text"] (refuse_unsupported)
)
# OpenAI fields that change the answer and that Mistral has no equivalent for: refused unless neutral.
_UNSUPPORTED = {
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "audio": None,
    "web_search_options": None,
    "functions": None,  # the deprecated function-calling fields: use tools / tool_choice
    "function_call": None,
    "echo": False,
    "best_of": 1,
}


# The message fields Mistral takes per role: it refuses any other (422 extra_forbidden), e.g. OpenAI's `name` on a
# user message or the `refusal`/`reasoning_content` of an assistant answer replayed as history. Those are dropped.
_MESSAGE_FIELDS = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "prefix"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client's messages as Mistral takes them: developer -> system, tool-call ids made valid, tool results
    named, the last-role rule checked."""
    out = []
    names: dict[str, str] = {}
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "developer":
            m = {**m, "role": "system"}
        elif role == "function":
            raise bad_request(
                f"messages[{i}]: role 'function' (deprecated) is not supported by provider mistral; use 'tool'",
                param=f"messages[{i}].role",
            )
        elif role == "assistant" and m.get("function_call") is not None:
            raise bad_request(
                f"messages[{i}]: function_call (deprecated) is not supported by provider mistral; use tool_calls",
                param=f"messages[{i}].function_call",
            )
        if role == "assistant" and m.get("tool_calls"):
            calls = m["tool_calls"]
            if not isinstance(calls, list):
                raise bad_request(f"messages[{i}].tool_calls must be an array", param=f"messages[{i}].tool_calls")
            mapped = []
            for tc in calls:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise bad_request(
                        f"messages[{i}].tool_calls: each must be a function call with a name",
                        param=f"messages[{i}].tool_calls",
                    )
                if isinstance(tc.get("id"), str):
                    names[tc["id"]] = fn["name"]
                mapped.append({**tc, "id": mistral_id(tc.get("id")), "type": "function"})
            m = {**m, "tool_calls": mapped}
        elif role == "tool":
            call_id = m.get("tool_call_id")
            m = {**m, "tool_call_id": mistral_id(call_id)}
            if "name" not in m and isinstance(call_id, str) and call_id in names:
                m["name"] = names[call_id]
        out.append({k: v for k, v in m.items() if k in _MESSAGE_FIELDS.get(m.get("role"), m.keys())})
    last = out[-1]
    if last.get("role") not in ("user", "tool") and not (last.get("role") == "assistant" and last.get("prefix")):
        raise bad_request(
            f"provider mistral needs the conversation to end with a user or tool message (or an assistant message "
            f"with prefix: true), not {last.get('role')!r}",
            param=f"messages[{len(out) - 1}].role",
        )
    return out


def body(call: Call) -> dict[str, Any]:
    """The Mistral body of a chat or completions call (OpenAI format)."""
    body = call.body
    _ollama.refuse_unsupported(body, "mistral", _UNSUPPORTED)
    # The refused fields with a neutral value are dropped too: Mistral forbids unknown fields (422).
    out = {k: v for k, v in body.items() if k not in _DROPPED and k not in _UNSUPPORTED}
    out.pop("thinking", None)  # the extension: Mistral's own control is reasoning_effort (mistral_effort)
    effort, relaxed = mistral_effort(call.model, body)
    call.dropped.extend(k for k in relaxed if k not in call.dropped)
    if effort is None:
        out.pop("reasoning_effort", None)
    else:
        out["reasoning_effort"] = effort
    if call.options.top_k is not None or body.get("top_k") is None:
        out.pop("top_k", None)  # a rule's top_k is for providers that have one (as for openai)
    else:
        raise bad_request("'top_k' is not supported by provider mistral", param="top_k")
    if call.route_type == CHAT:
        out["messages"] = chat_messages(body["messages"])
    else:
        _completions_body(call, out)
    out["model"] = call.model
    if body.get("seed") is not None:
        out["random_seed"] = out.pop("seed")
    if body.get("max_completion_tokens") is not None:
        out["max_tokens"] = out.pop("max_completion_tokens")
    out.pop("max_completion_tokens", None)
    out.pop("seed", None)
    out["stream"] = call.stream
    return out


def _completions_body(call: Call, out: dict[str, Any]) -> None:
    body = call.body
    prompt = single_prompt(body)
    for key in ("prompt", "suffix", "echo", "best_of", "logprobs"):
        out.pop(key, None)
    if call.stream and (body.get("n") or 1) > 1:
        raise bad_request("n > 1 cannot be streamed on the completions route of provider mistral", param="n")
    if (url_path(call.options) or "").rstrip("/").endswith(FIM_PATH):
        out["prompt"] = prompt
        if body.get("suffix"):
            out["suffix"] = body["suffix"]
        return
    if body.get("suffix"):
        raise bad_request(
            f"'suffix' needs Mistral's FIM endpoint: set model.options.upstream_path to /v1{FIM_PATH} (codestral)",
            param="suffix",
        )
    out["messages"] = [{"role": "user", "content": prompt}]
