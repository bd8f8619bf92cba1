"""``pytest-deriva reproduce RID``: run a recorded experiment again, from its recorded code.

The recorded workflow's commit is checked out into a temporary git worktree of the repository
the command runs in, and the run is made again there, into the same catalog, as a new execution
described ``Reproduces RID: ...``:

- a run pytest recorded: pytest runs the experiment (``--deriva-reproduce RID``: the collected
  run with the recorded description and parameters, its inputs as its marker declares them at
  that commit);
- a run ``deriva-run`` recorded (Hydra): ``deriva-run`` runs again with the recorded
  ``--config-dir`` and ``--config-name`` (from the run's command line in ``configuration.json``)
  and the job's own overrides (``hydra.overrides.task`` of its ``hydra-*-hydra.yaml``: for a child
  of a multirun, its values only), from the folder it was started in.

Then the metrics of the two runs and their environment snapshots are compared.
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
from pytest_deriva.execution._index import flatten, metadata_files, read_metrics, read_yaml
from pytest_deriva.execution.workflow import recorded_commit
from pytest_deriva.resume import REPRODUCES
from pytest_deriva.tools.runs import UsageProblem, catalog_location

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["environment_differences", "metric_differences", "reproduce"]

_SNAPSHOT = re.compile(r"^environment_snapshot_.*\.txt$")
_CONFIGURATION = re.compile(r"^configuration\.json$")
_HYDRA = re.compile(r"^hydra-.*-hydra\.yaml$")


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


def _argv(ml: DerivaML, rid: str) -> list[str]:
    """The command line of the process that recorded the run (secret values shown as ``***``)."""
    for data in metadata_files(ml, [rid], _CONFIGURATION).get(rid, {}).values():
        try:
            return [str(a) for a in json.loads(data).get("argv") or []]
        except (ValueError, AttributeError, TypeError):
            continue
    return []


def _was_pytest(argv: list[str]) -> bool:
    """Whether pytest recorded the run (its command line), not run_model / deriva-run."""
    if not argv or "--deriva-run" in argv:
        return True
    first = Path(argv[0])
    return first.name in ("pytest", "py.test") or first.parent.name == "pytest"


def _hydra_command(ml: DerivaML, rid: str, argv: list[str], location: str) -> tuple[list[str], Path | None]:
    """The ``deriva-run`` command that makes run ``rid`` again, and the folder it was started in."""
    from pytest_deriva.cli import _parser
    from pytest_deriva.config._overrides import quote
    from pytest_deriva.resume import REPRODUCES

    files = metadata_files(ml, [rid], _HYDRA).get(rid, {})
    if not files:
        raise UsageProblem(
            f"execution {rid} has no hydra-*-hydra.yaml: it was not recorded by deriva-run / run_model under Hydra, "
            "so its configuration cannot be replayed."
        )
    document = read_yaml(next(iter(files.values())))
    hydra = (document.get("hydra") if isinstance(document, dict) else None) or {}
    task = [str(t) for t in (hydra.get("overrides") or {}).get("task") or []]
    task = [t for t in task if t.lstrip("+").split("=", 1)[0] not in ("deriva_ml.catalog", "description")]
    hidden = [t for t in task if "***" in t]
    if hidden:
        raise UsageProblem(
            f"execution {rid} was run with secret values, which were never recorded ({', '.join(hidden)}); "
            "run deriva-run again yourself with those values."
        )
    options, _ = _parser().parse_known_args(argv[1:])
    record = ml.lookup_execution(rid)
    description = REPRODUCES.format(rid=rid, description=record.description or "")
    command = [sys.executable, "-m", "pytest_deriva.cli"]
    if options.config_dir is not None:
        command += ["--config-dir", str(options.config_dir)]
    command += ["--config-name", str(options.config_name), "--catalog", location, *task]
    command.append(f"++description={quote(description)}")
    started = (hydra.get("runtime") or {}).get("cwd")
    return command, Path(started) if started else None


def reproduce(
    ml: DerivaML,
    rid: str,
    location: str,
    cwd: Path,
    credential: str | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run execution ``rid`` again from its recorded commit; print how the new run differs.
    Returns the exit status of the pytest or deriva-run that ran it."""
    record = ml.lookup_execution(rid)
    workflow = record.workflow
    found = recorded_commit(workflow.url if workflow else None)
    if workflow is None or found is None:
        raise UsageProblem(
            f"execution {rid} names no code at a git commit (workflow URL {workflow and workflow.url!r})."
        )
    argv = _argv(ml, rid)
    hydra_command = None if _was_pytest(argv) else _hydra_command(ml, rid, argv, location)
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
    how = "deriva-run" if hydra_command is not None else "pytest"
    echo(f"reproducing {rid} ({record.description}): {relpath} at commit {commit[:12]}, with {how}, in {tree}")
    env = {**os.environ}
    if credential:
        env["DERIVA_CREDENTIAL_FILE"] = credential
    command = [
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
    ]
    where = tree
    if hydra_command is not None:
        command, started = hydra_command
        # The folder deriva-run was started in, at the same place in the worktree (else its top).
        if started is not None and started.is_relative_to(repo) and (tree / started.relative_to(repo)).is_dir():
            where = tree / started.relative_to(repo)
    try:
        done = subprocess.run(command, cwd=where, env=env, check=False)
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
    prefix = REPRODUCES.format(rid=rid, description="")
    rows = ml.catalog.select(ml.ml_schema, "Execution", columns=["RID", "Description"])
    new = sorted((r["RID"] for r in rows if str(r["Description"] or "").startswith(prefix)), key=rid_order)
    if not new:
        echo(f"no reproduction of {rid} was recorded ({how} exit status {done.returncode})")
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
