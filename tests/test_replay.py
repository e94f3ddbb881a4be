"""python -m addon.replay: the translation of a live exchange, run again from its audit record or its saved flow,
gives the same upstream request; a changed rule shows the difference."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import io

from addon import replay
from tests.support.addon import answer, exchange, running

RULES = """
rules:
  - name: claude
    match: {host: anthropic.internal, path: /v1/chat/completions}
    model:
      provider: anthropic
      name: claude-test
      options: {upstream_url: "http://127.0.0.1:9/v1/messages", max_tokens: 300}
    auth: {header_name: x-api-key, header_value: replay-not-a-key}
    logging: {log_payloads: true}
  - name: audit
    match: {host: anthropic.internal, path: /v1/messages}
    llm_format: anthropic
    model: {provider: anthropic, options: {upstream_url: "http://127.0.0.1:9/v1/messages"}}
"""
BODY = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add 1 and 2."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1,\"b\":2}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "3"},
    ],
    "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
    "temperature": 0.3,
}  # fmt: skip
ANSWER = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
    "content": [{"type": "text", "text": "3"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 9, "output_tokens": 1},
}  # fmt: skip


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A live exchange through the addon: its rules file, its audit records and the saved flow."""
    flows = tmp_path / "flows.mitm"
    with running(tmp_path, RULES) as proxy:
        flow = exchange(proxy, BODY)
        answer(proxy, flow, ANSWER)
    with flows.open("wb") as f:
        io.FlowWriter(f).add(flow)
    [records] = list((tmp_path / "rec").glob("*.jsonl"))
    return tmp_path / "rules.yaml", records, flows


def test_a_record_and_a_saved_flow_replay_to_the_live_upstream_request(
    live: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rules, records, flows = live
    assert replay.main(["--rules", str(rules), str(records), str(flows)]) == 0
    out = capsys.readouterr().out
    assert out.count("same upstream request as the live run") == 2 and "2 exchange(s), 0 failed" in out


def test_a_changed_rule_shows_what_differs(live: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules, records, _ = live
    rules.write_text(RULES.replace("max_tokens: 300", "max_tokens: 500"))
    assert replay.main(["--rules", str(rules), str(records)]) == 1
    out = capsys.readouterr().out
    assert "differs from the live run" in out and '-  "max_tokens": 300,' in out and '+  "max_tokens": 500,' in out


def test_a_passed_through_rule_has_nothing_to_replay(live: tuple[Path, Path, Path]) -> None:
    rules, records, _ = live
    [sent] = list(replay.from_records(records))
    assert replay.replay(replay.load_rules(rules), sent, "audit") == (
        "skipped",
        "passed through untranslated: nothing to replay",
    )


def test_an_unreadable_file_fails_with_its_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    bad = tmp_path / "x.jsonl"
    bad.write_text("not json\n")
    assert replay.main(["--rules", str(tmp_path / "rules.yaml"), str(bad)]) == 1
    assert f"{bad}:1: not an audit record" in capsys.readouterr().err
