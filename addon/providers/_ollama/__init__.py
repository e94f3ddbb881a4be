"""Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`), shared by the llama2 and mistral providers
(not a provider itself: the registry skips `_` names).

OpenAI chat -> `/api/chat` with the messages; OpenAI completions -> `/api/generate` with the prompt (Ollama applies
the model's template to both). Generation parameters live under `options` (Modelfile names: `num_predict`, ...).
Ollama streams by default, so `stream` is always sent. Streams are NDJSON: one object per line, the last one has
`done: true`, the finish reason and the token counts; an error mid-stream is a `{"error": "..."}` line.

Tools (docs/providers.md §8.1, §11.1): `tools` go in OpenAI's shape; assistant `tool_calls` go as
`{function: {name, arguments: <object>}}` (the client's JSON string parsed); a `tool` result goes as `role: tool`
with `tool_name`, the name resolved from the earlier assistant message that holds its `tool_call_id` (and the id
itself as `tool_call_id`, which newer builds read). Ollama has no `tool_choice`: `auto` is its behaviour, `none`
sends no tools, `required` and a named function are refused. Answers: object arguments become JSON strings, calls
without an id get a synthesised `call_...` id, and `done_reason: stop` with tool calls is `finish_reason: tool_calls`
(what Ollama's own /v1 layer does), streamed and not.

Here: request.py (OpenAI -> Ollama), response.py (Ollama answers -> OpenAI), stream.py (NDJSON -> OpenAI chunks).
"""

from .request import (
    CHAT_PATH,
    EMBED_PATH,
    GENERATE_PATH,
    UNSUPPORTED,
    build_request,
    embeddings_request,
    endpoint,
    messages,
    options,
    refuse_tools,
    refuse_unsupported,
    require_upstream_url,
    response_format,
    tools,
)
from .response import (
    FINISH_REASONS,
    finish_reason,
    new_call_id,
    parse_embeddings,
    parse_response,
    tool_call_out,
    tool_finish,
    usage_of,
)
from .stream import OllamaStream

__all__ = [
    "CHAT_PATH",
    "EMBED_PATH",
    "FINISH_REASONS",
    "GENERATE_PATH",
    "UNSUPPORTED",
    "OllamaStream",
    "build_request",
    "embeddings_request",
    "endpoint",
    "finish_reason",
    "messages",
    "new_call_id",
    "options",
    "parse_embeddings",
    "parse_response",
    "refuse_tools",
    "refuse_unsupported",
    "require_upstream_url",
    "response_format",
    "tool_call_out",
    "tool_finish",
    "tools",
    "usage_of",
]
