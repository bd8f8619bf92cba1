"""Goals of the benchmarks (issue 13): each benchmark reports its figures against their goals here,
and ``benchmarks/goals.py`` (``make bench``) runs them all and prints one table.

A benchmark calls :func:`report` once per goal. The figure is printed by the benchmark itself, and,
when ``DERIVA_BENCH_GOALS`` names a file, appended to it as a JSON line for the table.
"""

from __future__ import annotations

import json
import os
from typing import Literal

GOALS_ENV = "DERIVA_BENCH_GOALS"


def report(
    bench: str,
    goal: str,
    figure: float,
    limit: float,
    unit: str,
    *,
    holds_when: Literal["<=", ">="] = "<=",
    detail: str = "",
) -> bool:
    """Record one goal's measured ``figure`` next to its ``limit``; whether it holds."""
    holds = figure <= limit if holds_when == "<=" else figure >= limit
    line = {
        "bench": bench,
        "goal": goal,
        "figure": figure,
        "limit": limit,
        "unit": unit,
        "holds_when": holds_when,
        "holds": holds,
        "detail": detail,
    }
    print(f"goal: {goal}: {figure:.3g} {unit} (limit {holds_when} {limit:g} {unit}) {'holds' if holds else 'MISSED'}")
    if path := os.environ.get(GOALS_ENV):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    return holds
