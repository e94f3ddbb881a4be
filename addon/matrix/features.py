"""The features the matrix probes, each as a pair of minimal client requests per client format: one without the
feature and one with it, alike in everything else, so that what the feature changes in the provider's request is
the difference between the two translations. A format without the feature has no pair (the cell says so)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .requests import (
    ADD,
    BASE,
    MODEL,
    PNG,
    SCHEMA,
    SIGNATURE,
    TOOLS,
    Body,
    Edit,
    answered,
    config,
    image_detail,
    named,
    replaced,
    system_blocks,
    then,
    tool_history,
    user_parts,
)

__all__ = ["ADD", "BASE", "FEATURES", "MODEL", "PNG", "SCHEMA", "SIGNATURE", "Feature", "Pair"]


@dataclass(frozen=True)
class Pair:
    """A feature in one client format: `feature` edits the base request into the request with the feature, `base`
    (when set) into the request without it, alike in everything else (the tools a tool choice needs)."""

    feature: Edit
    base: Edit | None = None

    def bodies(self, start: Body) -> tuple[Body, Body]:
        without, with_it = copy.deepcopy(start), copy.deepcopy(start)
        if self.base is not None:
            self.base(without)
        self.feature(with_it)
        return without, with_it


@dataclass(frozen=True)
class Feature:
    key: str
    label: str
    pairs: dict[str, Pair]  # client format -> its pair


# ---- the features ----------------------------------------------------------------------------------------------

_TOOLS_BASE = {fmt: Pair(edit) for fmt, edit in TOOLS.items()}


def _with_tools(fmt: str, edit: Edit) -> Pair:
    """A tool-use feature: the request without it has the tools too."""
    return Pair(then(TOOLS[fmt], edit), TOOLS[fmt])


FEATURES: list[Feature] = [
    Feature(
        "reasoning",
        "reasoning effort / budget",
        {
            "openai": Pair(replaced(reasoning_effort="high")),
            "anthropic": Pair(replaced(thinking={"type": "enabled", "budget_tokens": 8000})),
            "responses": Pair(replaced(reasoning={"effort": "high"})),
            "gemini": Pair(config(thinkingConfig={"thinkingBudget": 8000, "includeThoughts": True})),
        },
    ),
    Feature(
        "signed_reasoning",
        "earlier turns' signed reasoning sent back",
        {fmt: Pair(answered(fmt, True), answered(fmt, False)) for fmt in BASE},
    ),
    Feature(
        "cache_control",
        "cache breakpoints (`cache_control`)",
        {fmt: Pair(system_blocks(fmt, True)) for fmt in ("openai", "anthropic")},
    ),
    Feature(
        "prompt_cache_key",
        "`prompt_cache_key`",
        {fmt: Pair(replaced(prompt_cache_key="probe-key")) for fmt in ("openai", "responses")},
    ),
    Feature("tools", "function tools", _TOOLS_BASE),
    Feature(
        "tool_history",
        "tool calls and results in the history",
        {fmt: Pair(then(TOOLS[fmt], tool_history(fmt)), TOOLS[fmt]) for fmt in BASE},
    ),
    Feature(
        "tool_choice",
        "forced tool use (`required` / `any`)",
        {
            "openai": _with_tools("openai", replaced(tool_choice="required")),
            "anthropic": _with_tools("anthropic", replaced(tool_choice={"type": "any"})),
            "responses": _with_tools("responses", replaced(tool_choice="required")),
            "gemini": _with_tools("gemini", replaced(toolConfig={"functionCallingConfig": {"mode": "ANY"}})),
        },
    ),
    Feature(
        "parallel_tool_calls",
        "parallel tool calls off",
        {
            "openai": _with_tools("openai", replaced(parallel_tool_calls=False)),
            "anthropic": Pair(
                then(TOOLS["anthropic"], replaced(tool_choice={"type": "auto", "disable_parallel_tool_use": True})),
                then(TOOLS["anthropic"], replaced(tool_choice={"type": "auto"})),
            ),
            "responses": _with_tools("responses", replaced(parallel_tool_calls=False)),
        },
    ),
    Feature("images", "images in", {fmt: Pair(user_parts(fmt, True), user_parts(fmt, False)) for fmt in BASE}),
    Feature(
        "image_detail",
        "image detail (`detail: low`)",
        {
            "openai": Pair(image_detail("openai"), user_parts("openai", True)),
            "responses": Pair(image_detail("responses"), user_parts("responses", True)),
        },
    ),
    Feature("name", "participant names (`name`)", {"openai": Pair(named)}),
    Feature(
        "json_schema",
        "structured output (JSON schema)",
        {
            "openai": Pair(
                replaced(response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}})
            ),
            "anthropic": Pair(replaced(output_config={"format": {"type": "json_schema", "schema": SCHEMA}})),
            "responses": Pair(replaced(text={"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA}})),
            "gemini": Pair(config(responseMimeType="application/json", responseJsonSchema=SCHEMA)),
        },
    ),
    Feature(
        "json_object",
        "JSON mode (any object)",
        {
            "openai": Pair(replaced(response_format={"type": "json_object"})),
            "responses": Pair(replaced(text={"format": {"type": "json_object"}})),
            "gemini": Pair(config(responseMimeType="application/json")),
        },
    ),
    Feature(
        "top_k",
        "`top_k`",
        {"openai": Pair(replaced(top_k=40)), "anthropic": Pair(replaced(top_k=40)), "gemini": Pair(config(topK=40))},
    ),
    Feature(
        "stop",
        "stop sequences",
        {
            "openai": Pair(replaced(stop=["END"])),
            "anthropic": Pair(replaced(stop_sequences=["END"])),
            "gemini": Pair(config(stopSequences=["END"])),
        },
    ),
    Feature(
        "penalties",
        "presence / frequency penalty",
        {
            "openai": Pair(replaced(presence_penalty=0.5, frequency_penalty=0.5)),
            "gemini": Pair(config(presencePenalty=0.5, frequencyPenalty=0.5)),
        },
    ),
    Feature(
        "seed",
        "`seed`",
        {"openai": Pair(replaced(seed=7)), "gemini": Pair(config(seed=7))},
    ),
    Feature(
        "logprobs",
        "log probabilities",
        {
            "openai": Pair(replaced(logprobs=True, top_logprobs=2)),
            "responses": Pair(replaced(top_logprobs=2, include=["message.output_text.logprobs"])),
            "gemini": Pair(config(responseLogprobs=True, logprobs=2)),
        },
    ),
    Feature(
        "n",
        "several choices (`n` > 1)",
        {"openai": Pair(replaced(n=2)), "gemini": Pair(config(candidateCount=2))},
    ),
    Feature(
        "user",
        "end-user id",
        {
            "openai": Pair(replaced(user="user-probe")),
            "anthropic": Pair(replaced(metadata={"user_id": "user-probe"})),
            "responses": Pair(replaced(safety_identifier="user-probe")),
        },
    ),
    Feature(
        "verbosity",
        "`verbosity`",
        {"openai": Pair(replaced(verbosity="low")), "responses": Pair(replaced(text={"verbosity": "low"}))},
    ),
    Feature(
        "web_search",
        "the API's own web search",
        {
            "openai": Pair(replaced(web_search_options={"search_context_size": "low"})),
            "anthropic": Pair(replaced(tools=[{"type": "web_search_20250305", "name": "web_search"}])),
            "responses": Pair(replaced(tools=[{"type": "web_search"}])),
            "gemini": Pair(replaced(tools=[{"googleSearch": {}}])),
        },
    ),
    Feature(
        "unknown",
        "a field the proxy does not know (`x_vendor_option`)",
        {"openai": Pair(replaced(x_vendor_option=1))},
    ),
    Feature(
        "service_tier",
        "`service_tier`",
        {
            "openai": Pair(replaced(service_tier="flex")),
            "anthropic": Pair(replaced(service_tier="auto")),
            "responses": Pair(replaced(service_tier="flex")),
        },
    ),
]
