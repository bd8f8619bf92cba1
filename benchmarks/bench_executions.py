"""Cost of recording executions in the embedded catalog, next to a plain loop writing the same files.

For each N (default 100, 1000) a fresh process makes a fresh catalog and records N executions,
each with one 10 KB output of its own bytes (create, run, register the file, upload). The baseline,
measured in the same process right before, writes the same N files in a plain loop. It prints the
milliseconds per execution of both, the difference, and the process's peak memory (flat in N is
the goal). Goal (issue 13): at most 1.5 ms per execution above the plain loop, at every N.

    python benchmarks/bench_executions.py                 # N = 100, 1000, median of 3 runs each
    python benchmarks/bench_executions.py --repeat 5 100  # other N and repeats
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import committed_repo
from _goals import report

PAYLOAD = os.urandom(10 * 1024)


def payload(i: int) -> bytes:
    """10 KB that differ from run to run, as outputs of real runs do (none is stored only once)."""
    return i.to_bytes(8, "big") + PAYLOAD[8:]


def run_one(n: int) -> dict[str, float]:
    """Measure one N in this process (called in a child process by main)."""
    from pytest_deriva import DerivaML, ExecutionConfiguration

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = committed_repo(root / "project", {"train.py": "print('train')\n"})

        # Baseline: the same files written by a plain loop.
        plain = root / "plain"
        plain.mkdir()
        t0 = time.perf_counter()
        for i in range(n):
            d = plain / str(i)
            d.mkdir()
            (d / "output.bin").write_bytes(payload(i))
        baseline = time.perf_counter() - t0

        ml = DerivaML(repo / ".deriva")
        wf = ml.create_workflow("bench", "Training", source_path=repo / "train.py")
        # One warm-up execution: the environment snapshot and term caches are per process.
        warm = ml.create_execution(ExecutionConfiguration(workflow=wf, description="warm-up"))
        with warm:
            warm.asset_file_path("Execution_Asset", "output.bin").write_bytes(payload(n + 1))
        warm.upload_execution_outputs()

        t0 = time.perf_counter()
        for i in range(n):
            exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"run {i}"))
            with exe:
                exe.asset_file_path("Execution_Asset", "output.bin").write_bytes(payload(i))
            exe.upload_execution_outputs()
        tracked = time.perf_counter() - t0
        count = len(ml.catalog.select("deriva-ml", "Execution", columns=["RID"]))
        assert count == n + 1, f"expected {n + 1} executions, found {count}"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "plain_ms": baseline / n * 1e3, "tracked_ms": tracked / n * 1e3, "peak_mb": peak_mb}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(run_one(int(argv[1]))))
        return 0
    repeat = 3
    if argv[:1] == ["--repeat"]:
        repeat, argv = int(argv[1]), argv[2:]
    sizes = [int(a) for a in argv] or [100, 1000]
    print(f"median of {repeat} runs per N, each in a fresh process with a fresh catalog")
    results: list[tuple[int, float]] = []
    print(f"{'N':>6} {'plain loop ms/run':>18} {'tracked ms/run':>15} {'overhead ms/run':>16} {'peak RSS MB':>12}")
    for n in sizes:
        runs = []
        for _ in range(repeat):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        plain = statistics.median(r["plain_ms"] for r in runs)
        tracked = statistics.median(r["tracked_ms"] for r in runs)
        overhead = statistics.median(r["tracked_ms"] - r["plain_ms"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        print(f"{n:>6} {plain:>18.3f} {tracked:>15.3f} {overhead:>16.3f} {peak:>12.1f}")
        results.append((n, overhead))
    for n, overhead in results:
        report("executions", f"an execution with one 10 KB output, above a plain loop, N={n}", overhead, 1.5, "ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
