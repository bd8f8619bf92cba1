"""Cost of ``pytest --deriva-run`` per sweep child, next to plain pytest on the same file.

For each N (default 10, 100, 1000) it writes an experiment file with a sweep of N children,
each writing one 10 KB output, into a fresh git repository, then times in the same run:

- plain pytest with the plugin disabled (``-p no:deriva``), where each child writes its file
  to a folder of its own, and
- ``pytest --deriva-run``, where each child writes it through ``execution.asset_file_path``
  and the plugin records the sweep (parent + N children, outputs uploaded).

It prints the extra milliseconds per child, the start-up time added (a run with one child),
and the peak memory of each pytest process.

    python benchmarks/bench_plugin.py              # N = 10, 100, 1000
    python benchmarks/bench_plugin.py 10 100       # other N
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import committed_repo

EXPERIMENT = """
import os
from pathlib import Path

import pytest

PAYLOAD = bytes(range(256)) * 40  # 10 KB
OUT = Path(__file__).parent / "plain-out"


@pytest.mark.parametrize("i", range({n}))
def experiment_bench(i, execution=None):
    if execution is not None:
        path = execution.asset_file_path("Execution_Asset", "output.bin")
    else:
        folder = OUT / str(i)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "output.bin"
    path.write_bytes(PAYLOAD)
"""

_WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def _project(root: Path, n: int) -> Path:
    return committed_repo(root / f"n{n}", {"experiment_bench.py": EXPERIMENT.replace("{n}", str(n))})


def _run(repo: Path, args: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one pytest run in ``repo``."""
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"pytest failed in {repo} with {args}:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    rss = next(float(line.split()[1]) / 1024 for line in out.stdout.splitlines() if line.startswith("MAXRSS"))
    return elapsed, rss


PLAIN = ["-p", "no:deriva", "-o", "python_files=experiment_*.py", "-o", "python_functions=experiment_*"]
TRACKED = ["--deriva-run"]


def measure(root: Path, n: int, repeat: int) -> dict[str, float]:
    plain_t, tracked_t, plain_m, tracked_m = [], [], [], []
    for r in range(repeat):
        (root / f"r{r}").mkdir(parents=True)
        repo = _project(root / f"r{r}", n)
        t, m = _run(repo, PLAIN)
        plain_t.append(t)
        plain_m.append(m)
        t, m = _run(repo, TRACKED)
        tracked_t.append(t)
        tracked_m.append(m)
    return {
        "plain": statistics.median(plain_t),
        "tracked": statistics.median(tracked_t),
        "plain_mb": max(plain_m),
        "tracked_mb": max(tracked_m),
    }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    repeat = 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = measure(root / "startup", 1, repeat)
        startup_ms = (start["tracked"] - start["plain"]) * 1e3
        print(f"median of {repeat} runs; each run a fresh pytest process (and, tracked, a fresh catalog)")
        print(f"start-up added by --deriva-run (a sweep of 1): {startup_ms:.0f} ms")
        print(f"{'N':>6} {'plain s':>9} {'tracked s':>10} {'extra ms/child':>15} {'plain MB':>9} {'tracked MB':>11}")
        for n in sizes:
            r = measure(root / f"n{n}", n, repeat)
            extra = ((r["tracked"] - r["plain"]) * 1e3 - startup_ms) / n
            print(
                f"{n:>6} {r['plain']:>9.2f} {r['tracked']:>10.2f} {extra:>15.2f} "
                f"{r['plain_mb']:>9.1f} {r['tracked_mb']:>11.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
