"""``make bench``: run every benchmark and print one table of the goals of issue 13, with the
measured figure and whether it holds.

    python benchmarks/goals.py                  # all of them
    python benchmarks/goals.py plugin datasets  # some (bench_<name>.py)

Each benchmark prints its own detailed table as it runs; the goals table comes last. The exit
status is 0 whether or not the goals hold (a benchmark measures; it is not a test), and 1 when a
benchmark itself failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _goals import GOALS_ENV

HERE = Path(__file__).parent
ALL = ["executions", "plugin", "datasets", "hydra"]


def main(argv: list[str]) -> int:
    names = argv or ALL
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        goals = Path(tmp) / "goals.jsonl"
        goals.touch()
        for name in names:
            script = HERE / f"bench_{name}.py"
            print(f"\n=== {script.name}", flush=True)
            done = subprocess.run([sys.executable, str(script)], env={**os.environ, GOALS_ENV: str(goals)}, check=False)
            if done.returncode != 0:
                failed.append(script.name)
        rows = [json.loads(line) for line in goals.read_text(encoding="utf-8").splitlines() if line.strip()]
    print()
    print(table(rows))
    held = sum(r["holds"] for r in rows)
    print(f"{held} of {len(rows)} goals hold" + (f"; failed to run: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def table(rows: list[dict]) -> str:
    """The goals as a fixed-width table: benchmark, goal, measured figure, limit, holds."""
    head = ("benchmark", "goal", "measured", "goal limit", "holds")
    body = [
        (
            r["bench"],
            r["goal"],
            f"{r['figure']:.3g} {r['unit']}",
            f"{r['holds_when']} {r['limit']:g} {r['unit']}",
            "yes" if r["holds"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
