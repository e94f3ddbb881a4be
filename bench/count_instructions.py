#!/usr/bin/env python3
"""Instructions per exchange through the addon's hooks (recording on), counted by valgrind's callgrind: the same
count for the same code whatever else the machine is doing, unlike the timing benchmarks on a shared 2-core box.

    .venv/bin/python bench/count_instructions.py [--agent] [--format FORMAT] [--root CHECKOUT]

Runs the in-process exchange of bench_hooks.py (an Anthropic-translated chat call, payloads recorded) twice under
callgrind, with few and with more exchanges, and prints the difference per exchange (start-up cancels out) and the
start-up itself. --agent sends the ~200 KB request of bench/workloads.py. --root measures another checkout (e.g. a
worktree of an older commit) with this script. About three minutes per run; needs valgrind."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEW, MORE = 20, 120

CHILD = """
import importlib.util, sys, tempfile
from pathlib import Path
root, n, agent, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[5]
sys.path.insert(0, root)
# An editable install of another checkout resolves `addon` before sys.path: measure the one under root.
sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
import addon  # before bench_hooks, which puts this script's own checkout first on sys.path
spec = importlib.util.spec_from_file_location("bench_hooks", sys.argv[4])
bh = importlib.util.module_from_spec(spec); spec.loader.exec_module(bh)
bh.configure(fmt, agent)
assert addon.__file__.startswith(root), addon.__file__
from mitmproxy.test import taddons
from addon.proxy import AIProxy
with tempfile.TemporaryDirectory() as tmp:
    rules = Path(tmp) / "rules.yaml"; rules.write_text(bh.RULES)
    proxy = AIProxy()
    with taddons.context(proxy) as tctx:
        tctx.configure(proxy, ai_rules=str(rules), ai_recordings=str(Path(tmp) / "rec"))
        for _ in range(n):
            bh.one_exchange(proxy)
        proxy.done()
"""


def count(root: Path, n: int, agent: bool, fmt: str, tmp: Path) -> int:
    child = tmp / "child.py"
    child.write_text(CHILD)
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp / 'cg.out'}", sys.executable, str(child),
         str(root), str(n), "1" if agent else "0", str(HERE / "bench_hooks.py"), fmt],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agent", action="store_true", help="the ~200 KB agent-sized request")
    ap.add_argument("--format", choices=("openai", "anthropic", "responses", "gemini"), default="openai",
                    help="the client's API (bench/formats.py), translated as in bench_chat")  # fmt: skip
    ap.add_argument("--root", type=Path, default=HERE.parent, help="the checkout whose addon is measured")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("count_instructions: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        few, more = (count(args.root.resolve(), n, args.agent, args.format, Path(tmp)) for n in (FEW, MORE))
    per = (more - few) / (MORE - FEW)
    label = ("agent" if args.agent else "chat") + ("" if args.format == "openai" else f" ({args.format})")
    print(f"{label} exchange: {per / 1e6:.2f} M instructions each; "
          f"start-up and {FEW} exchanges: {few / 1e9:.2f} G")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
