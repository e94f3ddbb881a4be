"""The feature matrix in the README is what the code does: regenerated here and compared, no cell a silent loss, and
a sample of its cells checked against the translations themselves (the provider's request as it would be sent)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from addon import matrix
from addon.matrix import answers, features, probe
from addon.matrix.__main__ import main
from addon.providers.anthropic.request import JSON_OBJECT_INSTRUCTION

COLUMN = {c.provider: c for c in probe.COLUMNS}
FEATURE = {f.key: f for f in features.FEATURES}


@cache
def cells() -> matrix.Cells:
    return matrix.cells()


@cache
def generated() -> str:
    return matrix.tables(cells())


def test_the_readmes_matrix_is_the_codes() -> None:
    shipped = matrix.in_readme(matrix.README.read_text(encoding="utf-8"))
    assert shipped == generated(), f"README.md's feature matrix is out of date: run {matrix.REGENERATE}"


def test_no_cell_is_a_silent_loss() -> None:
    found = [(client, key, cell.kind) for client, rows in cells().items() for key, row in rows.items()
             for cell in row.values()]  # fmt: skip
    assert [f for f in found if f[2] == "ignored"] == [], "a feature reaches the provider neither sent nor reported"
    # Answers: only reasoning signatures are still lost on the way back (issue #14: kept by the proxy for clients
    # whose format has no place for them, mapped where it has one); every other answer field arrives.
    assert {key for _, key, kind in found if kind == "lost"} <= {"signature"}


def test_every_table_has_every_provider_and_only_known_words() -> None:
    text = generated()
    assert text.count("| feature | ") == len(probe.CLIENTS)
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| feature", "|---")):
            words = [c.strip().split(" (")[0] for c in line.strip("|").split("|")[1:]]
            assert len(words) == len(probe.COLUMNS)
            assert set(words) <= {*probe.KINDS, "—"}, line


def test_write_and_check(tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("addon.matrix.__main__.tables", generated)  # probed once for the module
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{matrix.BEGIN}\nold\n{matrix.END}\n\nafter\n", encoding="utf-8")
    assert main(["--check", "--readme", str(readme)]) == 1
    assert "python -m addon.matrix --write" in capsys.readouterr().err
    assert main(["--write", "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"# T\n\n{matrix.BEGIN}\n") and text.endswith(f"{matrix.END}\n\nafter\n")
    assert main(["--check", "--readme", str(readme)]) == 0


# ---- a sample of cells, against the translation they stand for ------------------------------------------------


def translated(key: str, client: str, provider: str) -> probe.Translation:
    """The provider's request for the client's request with the feature."""
    column = COLUMN[provider]
    _, with_it = FEATURE[key].pairs[client].bodies(features.BASE[client])
    return probe.translate(probe.rule_for(client, column), client, column, with_it)


def cell(key: str, client: str, provider: str) -> str:
    return cells()[client][key][provider].kind


def test_cache_breakpoints_reach_bedrock_as_cache_points() -> None:
    assert cell("cache_control", "anthropic", "bedrock") == "mapped"
    body = translated("cache_control", "anthropic", "bedrock").upstream["body"]
    assert body["system"] == [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}]


def test_cache_breakpoints_are_dropped_and_reported_on_mistral() -> None:
    assert cell("cache_control", "anthropic", "mistral") == "dropped"
    t = translated("cache_control", "anthropic", "mistral")
    assert t.dropped == ["cache_control"] and "cache_control" not in json.dumps(t.upstream)
    assert t.upstream["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_a_thinking_budget_reaches_gemini_as_its_thinking_config() -> None:
    assert cell("reasoning", "anthropic", "gemini") == "mapped"
    config = translated("reasoning", "anthropic", "gemini").upstream["body"]["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] == 8000


def test_log_probabilities_are_refused_by_anthropic_for_openai_clients() -> None:
    assert cell("logprobs", "openai", "anthropic") == "refused"
    refused = translated("logprobs", "openai", "anthropic").refused
    assert refused is not None and refused.status == 400 and refused.param == "logprobs"


def test_json_mode_is_an_instruction_on_anthropic() -> None:
    assert cell("json_object", "openai", "anthropic") == "emulated"
    assert JSON_OBJECT_INSTRUCTION in translated("json_object", "openai", "anthropic").upstream["body"]["system"]


def test_tools_reach_anthropic_in_its_own_shape_and_cohere_as_sent() -> None:
    assert cell("tools", "openai", "anthropic") == "mapped" and cell("tools", "openai", "cohere") == "kept"
    assert translated("tools", "openai", "anthropic").upstream["body"]["tools"][0]["input_schema"] == features.ADD
    tools = translated("tools", "openai", "cohere").upstream["body"]["tools"]
    assert tools[0]["function"]["parameters"] == features.ADD


def test_cache_reads_from_gemini_reach_an_anthropic_client() -> None:
    assert cell("cache_read", "anthropic", "gemini") == "kept"
    native = answers.ANSWERS["gemini"][0](False, True)
    answer = answers.client_answer("anthropic", COLUMN["gemini"], native)
    assert answer["usage"]["cache_read_input_tokens"] == answers.READ
    assert answer["usage"]["input_tokens"] == 100 - answers.READ


def test_bedrocks_signed_reasoning_reaches_an_anthropic_client_as_a_thinking_block() -> None:
    assert (
        cell("signature", "anthropic", "bedrock") == "kept" and cell("reasoning_text", "anthropic", "bedrock") == "kept"
    )
    answer = answers.client_answer("anthropic", COLUMN["bedrock"], answers.ANSWERS["bedrock"][0](True, False))
    assert answer["content"][0] == {"type": "thinking", "thinking": answers.THINKING, "signature": features.SIGNATURE}


def test_an_answer_field_the_provider_lacks_is_called_none() -> None:
    assert cell("cache_read", "openai", "cohere") == "none" and cell("cache_write", "openai", "gemini") == "none"


def test_a_responses_client_passes_through_to_openai() -> None:
    assert {cell(f.key, "responses", "openai") for f in features.FEATURES} <= {"native", "n/a"}


def test_several_candidates_are_refused_by_the_gemini_client_format_everywhere_else() -> None:
    assert {cell("n", "gemini", p) for p in COLUMN if p != "gemini"} == {"refused"}
    refused = translated("n", "gemini", "openai").refused
    assert refused is not None and "candidateCount" in (refused.param or "")


def test_a_cell_that_would_be_lost_silently_is_called_so() -> None:
    """The classifier's own check: a feature that changes neither the provider's request nor the loss report."""
    nothing = features.Feature("x", "x", {"openai": features.Pair(lambda body: None)})
    assert probe.classify(nothing, "openai", COLUMN["anthropic"]).kind == "ignored"
