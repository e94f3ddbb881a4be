"""The shipped JSON Schema of rules.yaml is what the models generate now, and rules.yaml names it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from addon.check.schema import REGENERATE, SHIPPED, rules_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_schema_matches_the_models() -> None:
    assert SHIPPED == ROOT / "schema" / "rules.schema.json"
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert shipped == rules_schema(), f"schema/rules.schema.json is out of date with addon/spec.py: run {REGENERATE}"
    assert SHIPPED.read_text(encoding="utf-8") == schema_text(), f"regenerate it as it is written: {REGENERATE}"


def test_the_schema_knows_the_rules_keys() -> None:
    schema = rules_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["required"] == ["rules"] and schema["additionalProperties"] is False
    rule = schema["$defs"]["RuleSpec"]
    assert {"name", "match", "route_type", "llm_format", "model", "auth", "logging"} <= set(rule["properties"])
    assert rule["additionalProperties"] is False  # a typo is flagged in the editor as the addon refuses it
    options = schema["$defs"]["ModelOptions"]["properties"]
    assert {"max_tokens", "upstream_url", "input_cost"} <= set(options)  # common and providers' own options
    assert "anthropic_version" in options
    provider = schema["$defs"]["ModelSpec"]["properties"]["provider"]
    assert {"openai", "anthropic", "gemini", "bedrock"} <= set(provider["enum"])
    formats = rule["properties"]["llm_format"]["enum"]
    assert formats[0] == "openai" and {"anthropic", "gemini", "bedrock"} <= set(formats)


def test_shipped_rules_yaml_names_the_schema() -> None:
    first = (ROOT / "rules.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./schema/rules.schema.json"
    assert (ROOT / first.split("$schema=", 1)[1]).resolve() == SHIPPED


def test_schema_command_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "addon.check", "--schema"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout == schema_text()
