"""Which API a call uses (Messages, OpenAI completions or native text generation), and its URL and headers."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from ...errors import bad_request
from ...openai_format import CHAT
from ..base import Call, build_url, url_path
from .common import CHAT_PATH, GENERATE_PATH, MESSAGES, NATIVE, OPENAI_COMPLETIONS, SERVERLESS_BASE

if TYPE_CHECKING:
    from ...spec import ModelOptions


def _mode(call: Call) -> str:
    path = (url_path(call.options) or "").rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if call.route_type == CHAT:
        if last in ("generate", "generate_stream"):
            raise bad_request(
                f"provider huggingface serves chat on the Messages API ({CHAT_PATH}); the rule's upstream points "
                f"at TGI's native /{last}, which takes a raw prompt: use route_type llm/v1/completions there"
            )
        return MESSAGES
    if path.endswith("/chat/completions"):
        raise bad_request(
            "the rule's upstream is a chat endpoint (/chat/completions): use route_type llm/v1/chat for it"
        )
    if path.endswith("/completions"):
        return OPENAI_COMPLETIONS
    return NATIVE


def _native_url(call: Call) -> str:
    options = call.options
    if options.upstream_url:
        default_path = GENERATE_PATH
    else:
        if not call.model:
            raise bad_request("no model: the serverless Inference API needs one in its URL", param="model")
        default_path = "/models/" + _model_path(call.model)
    url = build_url(options, SERVERLESS_BASE, default_path)
    parts = urlsplit(url)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    # A whole upstream_url naming one TGI operation gets the one that matches the client's stream flag.
    if last in ("generate", "generate_stream"):
        wanted = "generate_stream" if call.stream else "generate"
        if last != wanted:
            url = urlunsplit(parts._replace(path=f"{head}/{wanted}"))
    return url


def _model_path(model: str) -> str:
    """A Hub model id ("org/name") as URL path segments, each percent-encoded; no empty or dot segments."""
    segments = model.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise bad_request(f"invalid Hugging Face model id {model!r}", param="model")
    return "/".join(quote(s, safe="") for s in segments)


def _is_tgi_operation(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] in ("generate", "generate_stream")


def _hf_headers(options: ModelOptions) -> dict[str, str]:
    """The serverless API's cache and cold-start switches, as the headers its OpenAI-compatible routes read."""
    hf = options.huggingface
    headers: dict[str, str] = {}
    if hf is not None:
        if hf.use_cache is not None:
            headers["x-use-cache"] = "true" if hf.use_cache else "false"
        if hf.wait_for_model is not None:
            headers["x-wait-for-model"] = "true" if hf.wait_for_model else "false"
    return headers
