"""python -m addon.matrix [--write | --check] [--readme PATH]: the feature matrix (see addon/matrix/__init__.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import README, REGENERATE, in_readme, tables, written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m addon.matrix", description=__doc__)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the tables in the README")
    group.add_argument("--check", action="store_true", help="exit 1 when the README's tables are out of date")
    p.add_argument("--readme", type=Path, default=README, help="the README to read or write (default: the project's)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # providers' notes about probe requests are not the matrix's output
    generated = tables()
    if not (args.write or args.check):
        sys.stdout.write(generated)
        return 0
    text = args.readme.read_text(encoding="utf-8")
    if args.check:
        if in_readme(text) != generated:
            print(f"{args.readme}: the feature matrix is out of date with the code: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(written(text, generated), encoding="utf-8")
    print(f"{args.readme}: feature matrix written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
