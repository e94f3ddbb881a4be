"""`python -m addon.check [rules.yaml ...]` / `ai-proxy-check`: validate rules files exactly as the addon loads
them and say what each rule does; `--schema` prints the JSON Schema of rules.yaml. Exit status 0 when every file
is valid, 1 otherwise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .schema import REGENERATE, schema_text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ai-proxy-check",
        description="Validate AI proxy rules files as the addon loads them (the environment's ${VARS} included) "
        "and print, per rule, what it matches and where it sends it.",
    )
    p.add_argument(
        "files", nargs="*", type=Path, default=[Path("rules.yaml")], help="rules files (default: rules.yaml)"
    )
    p.add_argument("--schema", action="store_true", help=f"print the JSON Schema of rules.yaml ({REGENERATE})")
    p.add_argument("-q", "--quiet", action="store_true", help="only say whether each file is valid")
    return p


def check(path: Path, quiet: bool = False) -> bool:
    from ..rules import RulesError
    from ..rulesfile import load_rules  # the addon's own loader: the same errors, naming the rule and the field
    from .describe import describe

    try:
        rules = load_rules(path)
    except RulesError as e:
        print(f"{path}: invalid: {e}", file=sys.stderr)
        return False
    print(f"{path}: valid, {len(rules)} rule(s); the first rule that matches a flow handles it")
    if not quiet:
        for rule in rules:
            print()
            print("\n".join(describe(rule)))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.schema:
        sys.stdout.write(schema_text())
        return 0
    results = [check(path, args.quiet) for path in args.files]
    return 0 if all(results) else 1
