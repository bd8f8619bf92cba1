"""Cost per job of ``deriva-run --multirun`` next to a bare hydra-zen multirun of the same function.

Both run the same trivial model function with Hydra's basic launcher in a fresh process: the
bare one as ``zen(model).hydra_main(...)``, the tracked one as ``deriva-run`` recording every job
as a child execution (with its Hydra files) under one parent, in a fresh embedded catalog. The
cost per job is the slope between a small and a large sweep, which cancels the start-up of
Python, Hydra and the catalog: ``(T(N) - T(n)) / (N - n)``.

    python benchmarks/bench_hydra.py                  # N = 100, n = 10, median of 3
    python benchmarks/bench_hydra.py --jobs 200 --repeat 5

Goal (issues 5 and 13): tracking adds at most 10% to Hydra's own cost per job on the same config
layout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import committed_repo
from _goals import report

MODEL = '''\
def work(x: int = 0, scale: float = 1.0, ml_instance=None, execution=None) -> float:
    """The model: as little work as possible, so that what is measured is the per-job cost."""
    return x * scale
'''

CONFIGS = {
    "configs/__init__.py": "",
    "configs/base.py": (
        "from hydra_zen import store\n"
        "from pytest_deriva.config import create_model_config\n"
        "store(create_model_config(description='bench'), name='deriva_model')\n"
    ),
    "configs/deriva.py": (
        "from hydra_zen import store\n"
        "from pytest_deriva.config import DerivaMLConfig\n"
        "store(group='deriva_ml')(DerivaMLConfig, name='default_deriva')\n"
    ),
    "configs/inputs.py": (
        "from hydra_zen import store\n"
        "store(group='datasets')([], name='default_dataset')\n"
        "store(group='assets')([], name='default_asset')\n"
    ),
    "configs/workflow.py": (
        "from hydra_zen import builds, store\n"
        "from pytest_deriva import Workflow\n"
        "store(group='workflow')(builds(Workflow, name='bench', workflow_type='Training', "
        "populate_full_signature=True), name='default_workflow')\n"
    ),
    "configs/model.py": (
        "from hydra_zen import builds, store\n"
        "from models.work import work\n"
        "store(group='model_config')(builds(work, populate_full_signature=True, zen_partial=True), "
        "name='default_model')\n"
    ),
    "models/__init__.py": "",
    "models/work.py": MODEL,
    # The bare baseline: the same function, the same hydra-zen config, no tracking.
    "bare.py": (
        "from hydra_zen import builds, store, zen\n"
        "from models.work import work\n"
        "store(builds(work, populate_full_signature=True), name='bare')\n"
        "if __name__ == '__main__':\n"
        "    store.add_to_hydra_store()\n"
        "    zen(work).hydra_main(config_name='bare', version_base='1.3', config_path=None)\n"
    ),
    # The same config package, groups and defaults as deriva-run's, run without tracking: Hydra's
    # own cost for this layout (composing five config groups per job costs more than a flat config).
    "untracked.py": (
        "from hydra_zen import store, zen\n"
        "from pytest_deriva.config import load_configs\n"
        "load_configs('configs')\n"
        "def untracked(model_config):\n"
        "    return model_config()\n"
        "if __name__ == '__main__':\n"
        "    store.add_to_hydra_store()\n"
        "    zen(untracked).hydra_main(config_name='deriva_model', version_base='1.3', config_path=None)\n"
    ),
    ".gitignore": ".deriva/\nmultirun/\noutputs/\n",
}


def deriva_run() -> list[str]:
    script = Path(sys.executable).with_name("deriva-run")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pytest_deriva.cli"]


def timed(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return elapsed


def sweep(kind: str, project: Path, jobs: int) -> float:
    """Seconds for one sweep of ``jobs`` jobs, in a fresh process (and, tracked, a fresh catalog)."""
    shutil.rmtree(project / ".deriva", ignore_errors=True)
    shutil.rmtree(project / "multirun", ignore_errors=True)
    sweep = f"x=range(0,{jobs})"
    if kind == "bare":
        return timed([sys.executable, "bare.py", "--multirun", sweep], project)
    if kind == "untracked":  # without pytest-deriva's callback: nothing of ours runs
        return timed(
            [sys.executable, "untracked.py", "--multirun", f"model_config.{sweep}", "hydra.callbacks={}"], project
        )
    return timed([*deriva_run(), "--config-dir", "configs", "--multirun", f"model_config.{sweep}"], project)


def check_record(project: Path, jobs: int) -> str:
    """What the tracked sweep recorded (one parent, ``jobs`` children), as a line to print."""
    from pytest_deriva import DerivaML

    ml = DerivaML(project / ".deriva")
    try:
        links = ml.catalog.select("deriva-ml", "Execution_Execution")
        parents = {link["Execution"] for link in links}
        assert len(parents) == 1, f"{len(parents)} parents"
        assert len(links) == jobs, f"{len(links)} children"
        parent = ml.lookup_execution(parents.pop())
        return f"recorded: 1 parent ({parent.status.value}, {parent.status_detail}), {len(links)} children"
    finally:
        ml.catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the large sweep (default 100)")
    parser.add_argument("--small", type=int, default=10, help="jobs in the small sweep (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats; the median is shown (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        files = dict(CONFIGS)
        for name in files:
            (project / name).parent.mkdir(parents=True, exist_ok=True)
        committed_repo(project, files)

        kinds = ("bare", "untracked", "tracked")
        per_job: dict[str, list[float]] = {k: [] for k in kinds}
        totals: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.repeat):
            for kind in kinds:  # interleaved, so that drift affects all alike
                small = sweep(kind, project, args.small)
                large = sweep(kind, project, args.jobs)
                per_job[kind].append((large - small) / (args.jobs - args.small))
                totals[kind].append(large)
        record = check_record(project, args.jobs)

    ms = {k: statistics.median(v) * 1000 for k, v in per_job.items()}
    labels = {
        "bare": "bare hydra-zen, flat config",
        "untracked": "hydra-zen, DerivaML config groups",
        "tracked": "deriva-run --multirun",
    }
    print(f"Hydra multirun, basic launcher: cost per job = slope between {args.small} and {args.jobs} jobs,")
    print(f"median of {args.repeat} runs, each sweep in a fresh process")
    print(f"{'':36}{'ms/job':>9}{f'total s, {args.jobs} jobs':>20}")
    for kind in kinds:
        print(f"{labels[kind]:36}{ms[kind]:>9.2f}{statistics.median(totals[kind]):>20.2f}")
    for base in ("untracked", "bare"):
        extra = ms["tracked"] - ms[base]
        print(f"deriva-run vs {labels[base]}: +{extra:.2f} ms/job = {100 * extra / ms[base]:+.1f}%")
    print(record)
    extra = 100 * (ms["tracked"] - ms["untracked"]) / ms["untracked"]
    report("hydra", "deriva-run --multirun per job, above untracked Hydra on the same configs", extra, 10.0, "%")


if __name__ == "__main__":
    main()
