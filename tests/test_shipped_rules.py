"""The shipped rules.yaml audits coding agents out of the box: each endpoint of OpenAI (chat, completions,
responses, embeddings), Anthropic (messages, count_tokens) and Gemini (generateContent, countTokens) goes to the
provider with the client's own key and untranslated, and each exchange is recorded with its usage. Driven through
the addon's hooks with answers made here: nothing leaves the machine."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addon.proxy import AIProxy

ROOT = Path(__file__).resolve().parents[1]
KEY = "client-own-key-not-real-0001"
OPENAI_USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
CHAT_ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": OPENAI_USAGE,
}  # fmt: skip
COMPLETION_ANSWER = {
    "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct",
    "choices": [{"index": 0, "text": "hi", "finish_reason": "stop", "logprobs": None}], "usage": OPENAI_USAGE,
}  # fmt: skip
RESPONSE_ANSWER = {
    "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-5-codex",
    "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "hi", "annotations": []}]}],
    "usage": {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14},
}  # fmt: skip
EMBEDDINGS_ANSWER = {
    "object": "list", "model": "text-embedding-3-small",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
    "usage": {"prompt_tokens": 11, "total_tokens": 11},
}  # fmt: skip
MESSAGE_ANSWER = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 11, "output_tokens": 3},
}  # fmt: skip
GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14},
    "modelVersion": "gemini-2.5-flash",
}  # fmt: skip
CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

# (rule, host, path, the client's credential header, body, the provider's answer, the prompt tokens recorded)
ENDPOINTS = [
    ("openai-audit", "api.openai.com", "/v1/chat/completions", "authorization", CHAT, CHAT_ANSWER, 11),
    ("openai-audit-completions", "api.openai.com", "/v1/completions", "authorization",
     {"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}, COMPLETION_ANSWER, 11),
    ("openai-audit-responses", "api.openai.com", "/v1/responses", "authorization",
     {"model": "gpt-5-codex", "input": "hi"}, RESPONSE_ANSWER, 11),
    ("openai-audit-embeddings", "api.openai.com", "/v1/embeddings", "authorization",
     {"model": "text-embedding-3-small", "input": "hi"}, EMBEDDINGS_ANSWER, 11),
    ("anthropic-audit", "api.anthropic.com", "/v1/messages", "x-api-key", MESSAGES, MESSAGE_ANSWER, 11),
    ("anthropic-audit", "api.anthropic.com", "/v1/messages/count_tokens", "x-api-key",
     {k: v for k, v in MESSAGES.items() if k != "max_tokens"}, {"input_tokens": 11}, None),
    ("gemini-audit", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent",
     "x-goog-api-key", CONTENTS, GEMINI_ANSWER, 11),
    ("gemini-audit", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:countTokens",
     "x-goog-api-key", CONTENTS, {"totalTokens": 11}, None),
]  # fmt: skip


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in folder.glob("*.jsonl") for line in p.read_text().splitlines()]


@pytest.mark.parametrize(
    ("rule", "host", "path", "credential", "body", "answer", "prompt_tokens"), ENDPOINTS, ids=[e[2] for e in ENDPOINTS]
)
def test_the_shipped_rules_audit_each_endpoint_with_the_clients_own_key(
    tmp_path: Path, rule: str, host: str, path: str, credential: str, body: dict, answer: dict, prompt_tokens: int
) -> None:
    proxy = AIProxy()
    with taddons.context(proxy) as tctx:
        tctx.configure(proxy, ai_rules=str(ROOT / "rules.yaml"), ai_recordings=str(tmp_path / "rec"))
        value = f"Bearer {KEY}" if credential == "authorization" else KEY
        headers = http.Headers([(b"content-type", b"application/json"), (credential.encode(), value.encode())])
        req = tutils.treq(host=host, port=443, scheme=b"https", method=b"POST", path=path.encode(), headers=headers)
        req.content = json.dumps(body).encode()
        flow = tflow.tflow(req=req)
        asyncio.run(proxy.request(flow))
        assert flow.response is None, flow.response and flow.response.content  # sent to the provider
        assert flow.request.url == f"https://{host}{path}"
        assert flow.request.headers[credential] == value  # the client's own key, kept
        sent = json.loads(flow.request.content)
        for key in ("messages", "prompt", "input", "contents"):  # what the client asked, as it asked it
            assert sent.get(key) == body.get(key)
        content = json.dumps(answer).encode()
        flow.response = tutils.tresp(content=content, headers=http.Headers(content_type="application/json"))
        proxy.responseheaders(flow)
        proxy.response(flow)
        assert flow.response.status_code == 200
        got = json.loads(flow.response.content)
        # The provider's answer as it was (OpenAI's own answers are only completed where a field was missing).
        assert {k: v for k, v in got.items() if k != "usage"} == {k: v for k, v in answer.items() if k != "usage"}
        proxy.done()
    deadline = time.monotonic() + 5
    while not (found := records(tmp_path / "rec")) and time.monotonic() < deadline:
        time.sleep(0.02)
    [record] = found
    assert record["meta"]["rule"] == rule and record["meta"]["status"] == 200
    assert record["usage"]["prompt_tokens"] == prompt_tokens
    assert record["payload"]["client_request"] == body and KEY not in json.dumps(record)
