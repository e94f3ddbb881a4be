"""Seeded fuzz: Gemini generateContent bodies (gemini-cli-shaped), mutated every way tests/support/fuzzing.py
knows with Gemini's own field names, through the Gemini client format to every provider set-up: each ends in a
valid upstream request or a 400-class ProxyError in Google's envelope, never another exception. FUZZ_SEED replays
a run."""

from __future__ import annotations

import json
import os
from typing import Any

from addon.errors import ProxyError
from addon.formats import GEMINI
from tests.support import format_fuzz
from tests.support.format_fuzz import no_last_resort  # noqa: F401 (an autouse fixture)
from tests.support.rules import Target

SEED = int(os.environ.get("FUZZ_SEED", "20261212"))
CASES = 1200
TOP_KEYS = ["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
            "cachedContent", "labels", "model", "x-unknown"]  # fmt: skip
INNER_KEYS = [
    "role", "parts", "text", "thought", "thoughtSignature", "inlineData", "fileData", "mimeType", "data", "fileUri",
    "functionCall", "functionResponse", "name", "args", "id", "response", "functionDeclarations", "parameters",
    "parametersJsonSchema", "type", "properties", "items", "anyOf", "nullable", "enum", "required",
    "functionCallingConfig", "mode", "allowedFunctionNames", "temperature", "topP", "topK", "maxOutputTokens",
    "stopSequences", "candidateCount", "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
    "thinkingBudget", "thinkingLevel", "includeThoughts", "googleSearch", "codeExecution", "executableCode",
]  # fmt: skip
DECLARATION = {
    "name": "run_shell_command",
    "description": "Run",
    "parametersJsonSchema": {"type": "object", "properties": {"command": {"type": "string"}}},
}
BODIES: list[dict[str, Any]] = [
    {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
    {
        "systemInstruction": {"role": "user", "parts": [{"text": "You are gemini-cli."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "ls"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]},
            {
                "role": "model",
                "parts": [
                    {"text": "hm", "thought": True},
                    {
                        "functionCall": {"name": "run_shell_command", "args": {"command": "ls"}},
                        "thoughtSignature": "c2",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "run_shell_command", "response": {"output": "a"}}}],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    DECLARATION,
                    {"name": "read", "parameters": {"type": "OBJECT", "properties": {"p": {"type": "STRING"}}}},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "topK": 4,
            "maxOutputTokens": 1000,
            "stopSequences": ["END"],
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048},
            "responseMimeType": "text/plain",
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    },
]


def path(target: Target, case: int) -> str:
    method = "streamGenerateContent?alt=sse" if case % 3 else "generateContent"
    return f"/v1beta/models/{target.name or target.client_model}:{method}"


def check(e: ProxyError, body: bytes) -> None:
    assert json.loads(body)["error"]["code"] == e.status


def test_gemini_bodies_never_crash() -> None:
    accepted = format_fuzz.run(GEMINI, BODIES, SEED, CASES, path, check, (TOP_KEYS, INNER_KEYS))
    assert accepted > CASES // 10  # the mutations start from bodies the providers take
