"""A rules file as the addon takes it: rules.py's loader (pure), then each rule's `match.filter` parsed with
mitmproxy's flowfilter. The addon (proxy.py) installs rules through it and `python -m addon.check` checks files
with it, so both give the same verdict and the same errors."""

from __future__ import annotations

import os
from pathlib import Path

from mitmproxy import flowfilter

from .rules import Rule, RulesError, load_rules_file


def load_rules(path: Path) -> list[Rule]:
    """Validated, compiled, its filters parsed. Raises RulesError naming the rule and the field."""
    try:
        rules = load_rules_file(path)
    except UnicodeDecodeError as e:
        raise RulesError(f"not UTF-8 text: {e}") from None
    for rule in rules:
        expr = rule.spec.match.filter
        if expr:
            try:
                rule.flow_filter = flowfilter.parse(expr)
            except ValueError as e:
                raise RulesError(f"rule '{rule.name}': match.filter: {e}") from None
    return rules


def file_stamp(path: Path) -> tuple[int, int] | None:
    """What tells a rules file changed on disk (modification time and size), or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
