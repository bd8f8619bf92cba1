"""Cost of ``pytest --deriva-run`` per sweep child, next to plain pytest on the same file.

For each N it writes an experiment file with a sweep of N children, each writing one 10 KB
output, into a fresh git repository whose catalog exists (a first ``--deriva-run`` of another
experiment file made it, as a user's earlier runs would have), then times, in the same run:

- plain pytest with the plugin disabled (``-p no:deriva``), where each child writes its file
  to a folder of its own, and
- ``pytest --deriva-run``, where each child writes it through ``execution.asset_file_path``
  and the plugin records the sweep (parent + N children, outputs uploaded).

It prints the start-up time added (a sweep of one child, median of alternating runs) with an
existing catalog (the goal) and, for information, without bytecode caches and with a fresh
catalog made by the run; the extra milliseconds per child (that start-up taken out); and the
peak memory of each pytest process. Then it reports the goals of issue 13 through
:func:`_goals.report`.

Python writes and reads its bytecode caches as it does for a user (in a folder of the benchmark's
own, ``PYTHONPYCACHEPREFIX``, whatever ``PYTHONDONTWRITEBYTECODE`` says; the first runs make
them); "without bytecode caches" reads none and writes none.

    python benchmarks/bench_plugin.py                  # N = 100, 1000 and 10000 (the last run once)
    python benchmarks/bench_plugin.py 10 100           # other N
    python benchmarks/bench_plugin.py --repeat 5 100   # more runs of each
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import committed_repo
from _goals import report

BENCH = "bench_plugin"
PER_CHILD_LIMIT_MS = 2.0
STARTUP_LIMIT_S = 0.15
RSS_LIMIT_MB = 10.0
RSS_AT = 1000  # the N of the memory goal
LARGE = 10_000  # an N this large or more runs once
STARTUP_PAIRS = 7  # runs of each kind for the start-up with an existing catalog

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

# A first run in each project makes its catalog (a sweep: its run index too) and the bytecode caches.
WARM = """
import pytest


@pytest.mark.parametrize("i", [0])
def experiment_warm(i, execution):
    pass
"""

PLAIN = ["-p", "no:deriva", "-o", "python_files=experiment_*.py", "-o", "python_functions=experiment_*"]
TRACKED = ["--deriva-run"]
BENCH_FILE = "experiment_bench.py"


_PYCACHE = Path(tempfile.gettempdir())  # replaced by main(): a folder of the run's own


def _env(bytecode_cache: bool) -> dict[str, str]:
    """The pytest processes' environment: bytecode caches in a folder of the benchmark's own, written
    and read as for a user; or none at all (nothing read there, nothing written)."""
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE / "cached")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE / "none")
    return env


def _project(root: Path, n: int, catalog: bool = True) -> Path:
    """A repository with the sweep of ``n`` children and, if ``catalog``, its catalog made."""
    files = {BENCH_FILE: EXPERIMENT.replace("{n}", str(n)), "experiment_warm.py": WARM}
    repo = committed_repo(root / f"n{n}", files)
    if catalog:
        _run(repo, [*TRACKED, "experiment_warm.py"])
    return repo


def _run(repo: Path, args: list[str], bytecode_cache: bool = True) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one pytest run in ``repo``."""
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False, env=_env(bytecode_cache))
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"pytest failed in {repo} with {args}:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    rss = next(float(line.split()[1]) / 1024 for line in out.stdout.splitlines() if line.startswith("MAXRSS"))
    return elapsed, rss


def measure(root: Path, n: int, repeat: int, catalog: bool = True) -> dict[str, float]:
    """Medians (time) and maxima (RSS) of ``repeat`` pairs of runs, each pair in a fresh project
    (with its catalog made first, if ``catalog``)."""
    plain_t, tracked_t, plain_m, tracked_m = [], [], [], []
    for r in range(repeat):
        (root / f"r{r}").mkdir(parents=True)
        repo = _project(root / f"r{r}", n, catalog)
        t, m = _run(repo, [*PLAIN, BENCH_FILE])
        plain_t.append(t)
        plain_m.append(m)
        t, m = _run(repo, [*TRACKED, BENCH_FILE])
        tracked_t.append(t)
        tracked_m.append(m)
    return {
        "plain": statistics.median(plain_t),
        "tracked": statistics.median(tracked_t),
        "plain_mb": max(plain_m),
        "tracked_mb": max(tracked_m),
    }


def startup_existing(root: Path, pairs: int, bytecode_cache: bool) -> tuple[float, float]:
    """Seconds ``--deriva-run`` adds to a run of one child in a project whose catalog exists
    (median of ``pairs`` alternating runs), and the spread of those differences."""
    repo = _project(root, 1)
    _run(repo, [*PLAIN, BENCH_FILE], bytecode_cache)
    diffs = []
    for _ in range(pairs):
        plain, _ = _run(repo, [*PLAIN, BENCH_FILE], bytecode_cache)
        tracked, _ = _run(repo, [*TRACKED, BENCH_FILE], bytecode_cache)
        diffs.append(tracked - plain)
    return statistics.median(diffs), max(diffs) - min(diffs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, help=f"sweep sizes (default 100 {RSS_AT} {LARGE})")
    parser.add_argument("--repeat", type=int, default=3, help=f"runs of each N below {LARGE} (default 3)")
    args = parser.parse_args(argv)
    sizes = args.sizes or [100, RSS_AT, LARGE]
    global _PYCACHE
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _PYCACHE = root / "pycache"
        existing, existing_spread = startup_existing(root / "existing", STARTUP_PAIRS, bytecode_cache=True)
        uncached, _ = startup_existing(root / "uncached", 3, bytecode_cache=False)
        start = measure(root / "fresh", 1, args.repeat, catalog=False)
        fresh = start["tracked"] - start["plain"]
        print("bytecode caches written and read as for a user (in a folder of the benchmark's own)")
        print(
            f"start-up added by --deriva-run (a sweep of 1), existing catalog: {existing * 1e3:.0f} ms "
            f"(median of {STARTUP_PAIRS} pairs, spread {existing_spread * 1e3:.0f} ms)"
        )
        print(f"  the same without bytecode caches (none read, none written): {uncached * 1e3:.0f} ms")
        print(f"  with a fresh catalog (made by the run): {fresh * 1e3:.0f} ms (median of {args.repeat})")
        print("each N in a fresh project whose catalog exists; extra ms/child = (tracked - plain - start-up) / N")
        head = ("N", "runs", "plain s", "tracked s", "extra ms/child", "plain MB", "tracked MB")
        print(" ".join(f"{h:>{w}}" for h, w in zip(head, (6, 4, 9, 10, 15, 9, 11), strict=True)))
        extra_ms: dict[int, float] = {}
        extra_mb: dict[int, float] = {}
        for n in sizes:
            repeat = 1 if n >= LARGE else args.repeat
            r = measure(root / f"n{n}", n, repeat)
            extra_ms[n] = ((r["tracked"] - r["plain"]) - existing) * 1e3 / n
            extra_mb[n] = r["tracked_mb"] - r["plain_mb"]
            print(
                f"{n:>6} {repeat:>4} {r['plain']:>9.2f} {r['tracked']:>10.2f} {extra_ms[n]:>15.2f} "
                f"{r['plain_mb']:>9.1f} {r['tracked_mb']:>11.1f}"
            )
    small, large = min(sizes), max(sizes)
    report(BENCH, f"tracked child at N={small}, above plain pytest", extra_ms[small], PER_CHILD_LIMIT_MS, "ms")
    if large != small:
        report(BENCH, f"tracked child at N={large}, above plain pytest", extra_ms[large], PER_CHILD_LIMIT_MS, "ms")
    report(
        BENCH,
        "start-up with an existing catalog, above plain pytest",
        existing,
        STARTUP_LIMIT_S,
        "s",
        detail=f"without bytecode caches {uncached:.2f} s; with a fresh catalog {fresh:.2f} s",
    )
    if RSS_AT in extra_mb:
        growth = ", ".join(f"N={n}: {mb:+.1f} MB" for n, mb in extra_mb.items())
        goal = f"peak RSS at N={RSS_AT}, above plain pytest"
        report(BENCH, goal, extra_mb[RSS_AT], RSS_LIMIT_MB, "MB", detail=growth)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
