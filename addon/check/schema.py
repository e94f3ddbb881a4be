"""The JSON Schema of rules.yaml, generated from the pydantic models (spec.RulesFile), for editors.

Generated from RulesFile as it is at run time, after the providers have registered (their rule keys are part of
the schema). model.provider and llm_format, which the models take as strings checked against the registries when
a rule compiles, get the registries' names as their choices. Declared as draft-07, the draft that editors' YAML
support (yaml-language-server) validates with: pydantic's output uses nothing later drafts added but `$defs`,
which is a plain JSON-pointer reference there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).resolve().parents[2] / "schema" / "rules.schema.json"
REGENERATE = "python -m addon.check --schema > schema/rules.schema.json"


def rules_schema() -> dict[str, Any]:
    from .. import spec
    from ..formats import FORMATS
    from ..providers import REGISTRY  # importing the providers completes the models

    generated = spec.RulesFile.model_json_schema()
    # What the models leave open and the rules' compilation checks against the registries, offered as choices.
    properties = generated["$defs"]
    properties["ModelSpec"]["properties"]["provider"]["enum"] = sorted(REGISTRY)
    natives = {p.native_format for p in REGISTRY.values() if p.native_format}
    formats = ["openai", *sorted({*FORMATS, *natives} - {"openai"})]
    properties["RuleSpec"]["properties"]["llm_format"]["enum"] = formats
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "AI Proxy rules.yaml",
        "description": f"Rules of the AI proxy mitmproxy addon (README: rules.yaml reference). Generated from the "
        f"pydantic models: {REGENERATE}",
        **{k: v for k, v in generated.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    return json.dumps(rules_schema(), indent=2, ensure_ascii=False) + "\n"
