"""Round trips per tracked run on a DERIVA server, next to the embedded store's figure.

Runs ``pytest --deriva-run --deriva-verbose`` on a sweep whose children each write one 10 KB
output, into a fresh catalog on the local DERIVA server (``../shared/deriva-server``; source its
env file first) and into a fresh embedded store, and prints for each:

- requests per child (counted at the transport by a ``requests`` response hook): while the
  child runs (the summary's ``requests`` column), and with its share of the session's planning
  (the slope of the session's total between N1 and N2), and
- seconds per child, as the slope between a sweep of N1 and of N2 children (start-up cancels).

    python benchmarks/bench_server.py            # N1 = 5, N2 = 25
    python benchmarks/bench_server.py 5 50
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import committed_repo

EXPERIMENT = """
import pytest

PAYLOAD = bytes(range(256)) * 40  # 10 KB


@pytest.mark.parametrize("i", range({n}))
def experiment_bench(i, execution):
    # one output file per child
    execution.asset_file_path("Execution_Asset", f"out-{{i}}.bin").write_bytes(PAYLOAD)
"""


def run(repo: Path, catalog: str, n: int) -> tuple[float, list[int], int]:
    (repo / "experiment_bench.py").write_text(EXPERIMENT.format(n=n))
    subprocess.run(["git", "commit", "-qam", f"n={n}"], cwd=repo, check=False, capture_output=True)
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--deriva-run",
            f"--deriva-catalog={catalog}",
            "--deriva-verbose",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-q",
            "experiment_bench.py",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pytest failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    counts = []
    total = 0
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].isdigit() and parts[-1].isdigit() and "i=" in line:
            counts.append(int(parts[-1]))
        elif line.startswith("requests to ") and parts[-1].isdigit():
            total = int(parts[-1])  # the whole session: planning, parent and children
    return elapsed, counts, total


def measure(label: str, catalog_for: Callable[[], str], n1: int, n2: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = committed_repo(Path(tmp) / "repo", {"experiment_bench.py": EXPERIMENT.format(n=1)})
        t1, _, total1 = run(repo, catalog_for(), n1)
        t2, counts, total2 = run(repo, catalog_for(), n2)
    per_child = (t2 - t1) / (n2 - n1)
    print(
        f"{label:<16} requests/child while it runs: median {statistics.median(counts):4.1f} (max {max(counts)}),"
        f" with its share of planning {(total2 - total1) / (n2 - n1):4.1f}"
        f"   seconds/child {per_child:6.3f}   wall N={n1}: {t1:.2f} s, N={n2}: {t2:.2f} s"
    )


def main() -> None:
    n1, n2 = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (5, 25)
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-"))
    serial = iter(range(1000))
    measure("embedded store", lambda: str(tmp / f"catalog-{next(serial)}"), n1, n2)
    if not os.environ.get("DERIVA_TEST_URL"):
        print("server: skipped (source the deriva-server kit's env file to set DERIVA_TEST_URL)")
        return
    os.environ.setdefault("DERIVA_CREDENTIAL_FILE", os.environ["DERIVA_TEST_CREDENTIAL_FILE"])
    from pytest_deriva.catalog.server import ServerCatalog, create_catalog
    from pytest_deriva.catalog.setup import init_catalog

    made: list[str] = []

    def server_catalog() -> str:
        url = create_catalog(os.environ["DERIVA_TEST_URL"])
        init_catalog(ServerCatalog(url))
        made.append(url)
        return url

    try:
        measure("DERIVA server", server_catalog, n1, n2)
    finally:
        for url in made:
            ServerCatalog(url).delete_catalog()
    print("goal (server issue): at most 10 requests + 1 upload per output file, at most 0.2 s per child;")
    print("DerivaML 1.24 on the same kind of server: 63 requests and 1.7 s per child (server-notes.md)")


if __name__ == "__main__":
    main()
