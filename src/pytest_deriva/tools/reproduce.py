"""``pytest-deriva reproduce RID``: run a recorded experiment again, from its recorded code.

The recorded workflow's commit is checked out into a temporary git worktree of the repository
the command runs in; pytest runs the experiment there (``--deriva-reproduce RID``: the collected
run with the recorded description and parameters, its inputs as its marker declares them at
that commit), into the same catalog, as a new execution described ``Reproduces RID: ...``. Then
the metrics of the two runs and their environment snapshots are compared.

Runs recorded by ``run_model`` / ``deriva-run`` (Hydra) are not reproduced yet: the command
says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva._rid import rid_order
from pytest_deriva.exceptions import DerivaMLException
from pytest_deriva.execution._index import flatten, metadata_files, read_metrics
from pytest_deriva.execution.workflow import recorded_commit
from pytest_deriva.resume import REPRODUCES
from pytest_deriva.tools.runs import UsageProblem, catalog_location

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["environment_differences", "metric_differences", "reproduce"]

_SNAPSHOT = re.compile(r"^environment_snapshot_.*\.txt$")
_CONFIGURATION = re.compile(r"^configuration\.json$")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


def _snapshot(ml: DerivaML, rid: str) -> dict[str, Any]:
    files = metadata_files(ml, [rid], _SNAPSHOT).get(rid, {})
    for data in files.values():
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        if isinstance(doc, Mapping):
            # The command line differs by construction (the worktree, --deriva-reproduce).
            return flatten({k: v for k, v in doc.items() if k != "argv"})
    return {}


def environment_differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``packages.numpy: 1.26.4 -> 2.0.0`` for every value of the snapshots that differs."""
    lines = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, "(absent)"), after.get(key, "(absent)")
        if old != new:
            lines.append(f"{key}: {old} -> {new}")
    return lines


def metric_differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(name, recorded, now, difference)`` for every metric of either run."""
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if isinstance(old, int | float) and isinstance(new, int | float):
            diff = f"{new - old:+.4g}"
        else:
            diff = "same" if old == new else "differs"
        rows.append((name, "-" if old is None else f"{old}", "-" if new is None else f"{new}", diff))
    return rows


def _was_pytest(ml: DerivaML, rid: str) -> bool:
    """Whether pytest recorded the run (its command line), not run_model / deriva-run."""
    argv: list[str] = []
    for data in metadata_files(ml, [rid], _CONFIGURATION).get(rid, {}).values():
        try:
            argv = list(json.loads(data).get("argv") or [])
        except (ValueError, AttributeError, TypeError):
            continue
    if not argv or "--deriva-run" in argv:
        return True
    first = Path(argv[0])
    return first.name in ("pytest", "py.test") or first.parent.name == "pytest"


def reproduce(
    ml: DerivaML,
    rid: str,
    location: str,
    cwd: Path,
    credential: str | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run execution ``rid`` again from its recorded commit; print how the new run differs.
    Returns pytest's exit status."""
    record = ml.lookup_execution(rid)
    workflow = record.workflow
    found = recorded_commit(workflow.url if workflow else None)
    if workflow is None or found is None:
        raise UsageProblem(
            f"execution {rid} names no code at a git commit (workflow URL {workflow and workflow.url!r})."
        )
    if not _was_pytest(ml, rid):
        raise UsageProblem(
            f"execution {rid} was recorded by run_model / deriva-run; reproducing those is not supported yet. "
            "Run deriva-run again with the overrides in its hydra config files."
        )
    commit, relpath = found
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageProblem(
            f"{cwd} is not in a git repository; run this in a clone of the repository of {workflow.url}."
        )
    repo = Path(top.stdout.strip())
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise UsageProblem(
            f"the repository at {repo} does not have commit {commit} (of {workflow.url}); fetch it, or run this in "
            "the clone the run was recorded from."
        )
    parent = Path(tempfile.mkdtemp(prefix="pytest-deriva-reproduce-"))
    tree = parent / "code"
    added = _git(repo, "worktree", "add", "--detach", str(tree), commit)
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise DerivaMLException(f"cannot check out commit {commit} into a worktree: {added.stderr.strip()}")
    echo(f"reproducing {rid} ({record.description}): {relpath} at commit {commit[:12]}, in {tree}")
    env = {**os.environ}
    if credential:
        env["DERIVA_CREDENTIAL_FILE"] = credential
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--deriva-run",
                relpath,
                f"--deriva-catalog={location}",
                f"--deriva-reproduce={rid}",
                "-p",
                "no:cacheprovider",
                "-q",
            ],
            cwd=tree,
            env=env,
            check=False,
        )
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
    prefix = REPRODUCES.format(rid=rid, description="")
    rows = ml.catalog.select(ml.ml_schema, "Execution", columns=["RID", "Description"])
    new = sorted((r["RID"] for r in rows if str(r["Description"] or "").startswith(prefix)), key=rid_order)
    if not new:
        echo(f"no reproduction of {rid} was recorded (pytest exit status {done.returncode})")
        return done.returncode or 1
    again = ml.lookup_execution(new[-1])
    echo(f"recorded {again.rid}: {again.status.value} ({again.status_detail})")
    metrics = read_metrics(ml, [rid, again.rid])
    table = [("metric", rid, again.rid, "difference"), *metric_differences(metrics[rid], metrics[again.rid])]
    if len(table) > 1:
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        for r in table:
            echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    else:
        echo("no metrics recorded by either run")
    changes = environment_differences(_snapshot(ml, rid), _snapshot(ml, again.rid))
    echo("environment: " + ("the same" if not changes else f"{len(changes)} differences"))
    for line in changes:
        echo(f"  {line}")
    return done.returncode


def run(rid: str, catalog: str | None, credential: str | None, cwd: Path | None = None) -> int:
    """``pytest-deriva reproduce``: the catalog chosen as the plugin chooses it."""
    from pytest_deriva.ml import DerivaML

    where = Path(cwd or Path.cwd())
    location, _ = catalog_location(catalog, where)
    if "://" not in location:
        location = str(Path(location).resolve())
    ml = DerivaML(location, credential=credential) if credential else DerivaML(location)
    try:
        return reproduce(ml, rid, location, where, credential)
    finally:
        ml.catalog.close()
