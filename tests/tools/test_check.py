"""The check command: the shipped rules.yaml, what it says of each kind of rule, and broken files (exit 1, the
message naming the rule and the field, as the addon's loader does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from addon.check.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    got = capsys.readouterr()
    return code, got.out, got.err


def blocks(text: str) -> dict[str, dict[str, str]]:
    """The output per rule: {rule name: {key: value}}."""
    out: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n")[1:]:
        head, *lines = block.strip().splitlines()
        out[head.split("'")[1]] = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return out


def test_shipped_rules_yaml(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys)  # default: rules.yaml
    assert code == 0 and err == ""
    assert out.startswith("rules.yaml: valid, ")
    rules = blocks(out)
    assert rules["openai-audit"]["matches"] == "host api.openai.com, path /v1/chat/completions, any method"
    assert rules["openai-audit"]["upstream"] == "https://api.openai.com/v1/chat/completions"
    assert rules["openai-audit"]["route"].startswith("translated:")
    assert "allow_override" in rules["openai-audit"]["auth"]


RULES = """
rules:
  - name: claude
    match: {host: anthropic.internal, path: /v1/chat/completions, methods: [post], filter: "~h x-team"}
    model: {provider: anthropic, name: claude-sonnet-4-5, options: {max_tokens: 1024}}
    auth: {header_name: x-api-key, header_value: "${CHECK_TEST_UNSET_KEY}"}
  - name: gemini
    match: {host: gemini.internal}
    model: {provider: gemini, aliases: {"gpt-*": gemini-2.5-flash}}
    auth: {param_name: key, param_value: check-test-secret, param_location: query}
  - name: keep
    match: {host: keep.internal, path: "/v1/*"}
    route_type: preserve
    model: {provider: openai}
  - name: native
    match: {host: native.internal}
    llm_format: gemini
    model: {provider: gemini}
    auth: {param_name: key, param_value: check-test-secret, param_location: query}
  - name: templated
    match: {host: t.internal, path: "/{region}/chat"}
    model: {provider: llama2, name: llama3, options: {llama2_format: openai, upstream_url: "http://127.0.0.1:9/$(uri_captures.region)/v1"}}
  - name: unset
    match: {host: u.internal}
    model: {provider: llama2, name: llama3, options: {llama2_format: ollama, upstream_url: "${CHECK_TEST_UNSET_URL}"}}
"""


def test_what_each_kind_of_rule_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    code, out, _ = run(capsys, str(path))
    assert code == 0, out
    rules = blocks(out)
    claude = rules["claude"]
    assert claude["matches"] == "host anthropic.internal, path /v1/chat/completions, methods POST, filter '~h x-team'"
    assert claude["route"] == "translated: openai format to anthropic's API and back (llm/v1/chat)"
    assert claude["client"] == "openai format" and claude["provider"] == "anthropic"
    assert claude["model"].startswith("claude-sonnet-4-5")
    assert claude["upstream"] == "https://api.anthropic.com/v1/messages"
    assert "CHECK_TEST_UNSET_KEY" in claude["warning"]
    gemini = rules["gemini"]
    assert gemini["model"].startswith("aliases gpt-* -> gemini-2.5-flash")
    # the model comes from the request, and so does the URL: the provider's URL with the model's place named
    assert gemini["upstream"] == (
        "https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent (streams: "
        "https://generativelanguage.googleapis.com/v1beta/models/{model}:streamGenerateContent?alt=sse), "
        "{model} being the model the request resolves to"
    )
    keep = rules["keep"]
    assert keep["route"].startswith("preserve:") and keep["upstream"] == "https://api.openai.com{client path}"
    native = rules["native"]
    assert native["route"].startswith("native passthrough:") and native["client"] == "gemini format"
    assert native["upstream"] == "https://generativelanguage.googleapis.com{client path}"
    assert "check-test-secret" not in out  # credentials in the query are never printed
    assert rules["templated"]["upstream"] == "depends on the request (model.options.upstream_url taken from it)"
    assert rules["unset"]["upstream"].startswith("depends on environment variable CHECK_TEST_UNSET_URL")


def test_a_stream_url_is_shown_beside_the_plain_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n- {name: g, match: {host: g.internal}, model: {provider: gemini, name: gemini-2.5-flash}}\n"
    )
    _, out, _ = run(capsys, str(path))
    assert blocks(out)["g"]["upstream"] == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent (streams: "
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse)"
    )


BROKEN = [
    ("rules: [{name: a, match: {host: x}, model: {provider: nope}}]", "rule 'a': model.provider 'nope' is unknown"),
    ("rules: [{name: b, match: {host: x, path: v1}, model: {provider: openai}}]", "rule 'b': match.path:"),
    ("rules: [{name: c, match: {host: x, filter: '~q ('}, model: {provider: openai}}]", "rule 'c': match.filter:"),
    (
        "rules: [{name: d, match: {host: x}, model: {provider: openai, options: {max_tokenz: 3}}}]",
        "rule 'd': model.options.max_tokenz: unknown key",
    ),
    ("rules: [{name: e, match: {host: x}, model: {provider: openai}, route_type: llm/v9}]", "rule 'e': route_type:"),
    ("rules: [{match: {host: x}, model: {provider: openai}}]", "rule #1: name: Field required"),
    ("rules: {name: f}", "the file must be a mapping with a 'rules' list"),
    ("rules: [{{", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BROKEN, ids=[m.split(":")[0] for _, m in BROKEN])
def test_broken_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text + "\n")
    code, out, err = run(capsys, str(path))
    assert code == 1 and out == ""
    assert err.startswith(f"{path}: invalid: ") and message in err


def test_every_file_is_checked_and_any_failure_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("rules: []\n")
    bad.write_text("rules: [{name: x}]\n")
    code, out, err = run(capsys, str(good), str(bad), str(tmp_path / "missing.yaml"))
    assert code == 1
    assert f"{good}: valid, 0 rule(s)" in out
    assert f"{bad}: invalid: rule 'x'" in err and "cannot read rules file" in err


def test_console_entry_point_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: x, match: {host: h}, model: {provider: openai, options: {temperature: 9}}}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "addon.check", "-q", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "rule 'x': model.options.temperature" in done.stderr


def test_responses_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Route type llm/v1/responses: translated to other providers (their chat API), passed through to OpenAI."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "- {name: r, match: {host: r.internal}, route_type: llm/v1/responses,"
        " model: {provider: anthropic, name: claude-sonnet-4-5}}\n"
        "- {name: o, match: {host: api.openai.com}, route_type: llm/v1/responses, model: {provider: openai}}\n"
    )
    code, out, _ = run(capsys, str(path))
    assert code == 0
    rules = blocks(out)
    assert rules["r"]["route"].startswith("translated: openai-responses format to anthropic's API")
    assert rules["r"]["upstream"] == "https://api.anthropic.com/v1/messages"
    assert rules["o"]["route"].startswith("native passthrough:") and rules["o"]["client"] == "openai-responses format"
    assert rules["o"]["upstream"] == "https://api.openai.com{client path}"
