"""Run plans: the executions a session will record, made before the first one runs.

Every experiment call becomes a planned run. A parametrized experiment is a sweep: one parent
execution and one child per selected parameter set, nested with ``Sequence`` equal to the
child's index in the sweep's full parameter order. The whole plan is written to the catalog
(every child ``Pending``) before anything runs, so an interrupted sweep shows what never ran.

Planning is safe with several processes (pytest-xdist workers collect the same items): the
first process to plan does it under a file lock and writes ``plan.json`` to a folder all
processes share; the others read it. This module does not import pytest: notebooks, Hydra and
the CLI can use the same planner. What a sweep is in the catalog (its parent, links, closing)
is :mod:`pytest_deriva.execution.sweep`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva._locks import file_lock
from pytest_deriva._rid import DRY_RUN_RID
from pytest_deriva.config._overrides import override_value
from pytest_deriva.enums import Status
from pytest_deriva.execution._lease import own_lease
from pytest_deriva.execution.configuration import ExecutionConfiguration
from pytest_deriva.execution.execution import Execution
from pytest_deriva.execution.sweep import (
    SweepResult,
    abort_never_run,
    close_sweep,
    link_children,
    record_dir,
    start_parent,
)
from pytest_deriva.execution.workflow import Workflow

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = [
    "PlannedRun",
    "Resumed",
    "RunPlanner",
    "RunSpec",
    "SweepResult",
    "hydra_files",
    "new_plan_dir",
    "overrides_of",
]


@dataclass(slots=True)  # one per collected run: no __dict__ each
class RunSpec:
    """One experiment call to record (what the pytest plugin learns at collection)."""

    nodeid: str
    sweep_key: str
    index: int
    params: dict[str, Any]
    description: str
    workflow: Workflow
    configuration: ExecutionConfiguration
    parametrized: bool
    dry_run: bool = False


@dataclass(slots=True)  # one per planned run: no __dict__ each
class PlannedRun:
    """A run as planned: its execution and, in a sweep, its parent and sequence."""

    nodeid: str
    execution_rid: str
    description: str
    params: dict[str, Any]
    sweep_key: str
    parent_rid: str | None = None
    sequence: int | None = None
    reused: dict[str, Any] | None = None  # done before (--deriva-skip-completed): that run's metrics


@dataclass(frozen=True)
class Resumed:
    """A run that takes up a recorded sweep's child again (``--deriva-resume``): its new child
    goes under the same parent with the same ``Sequence``; the earlier attempt stays on record."""

    parent_rid: str
    sequence: int
    attempt: int  # this one's number: 2 for the first resume of a child
    earlier_rid: str  # the attempt before it
    started: str  # when the sweep started (ISO), for its Duration

    def describe(self, description: str) -> str:
        # catalog-model.md's "[Job N] <description>", the attempt after it, so tools that read
        # the job number still do.
        return f"[Job {self.sequence}] {description} (attempt {self.attempt}; earlier: {self.earlier_rid})"


def _yaml_value(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_yaml_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _yaml_value(v) for k, v in value.items()}
    return repr(value)


def overrides_of(params: Mapping[str, Any]) -> list[str]:
    """Hydra-style overrides (``key=value``) for a run's parameters."""
    return [f"{k}={override_value(v)}" for k, v in params.items()]


def hydra_files(run_dir: str, params: Mapping[str, Any]) -> dict[str, bytes]:
    """A run's ``config.yaml`` and ``overrides.yaml``, as Hydra writes them, named for the catalog
    (``hydra-<run dir>-config.yaml``).

    Written as YAML's JSON subset (one ``key: value`` line each, values in JSON form), which any
    YAML reader reads the same and which costs nothing to produce, unlike a YAML emitter.
    """
    config = "".join(f"{json.dumps(str(k))}: {json.dumps(_yaml_value(v))}\n" for k, v in params.items())
    overrides = "".join(f"- {json.dumps(o)}\n" for o in overrides_of(params))
    return {
        f"hydra-{run_dir}-config.yaml": (config or "{}\n").encode(),
        f"hydra-{run_dir}-overrides.yaml": (overrides or "[]\n").encode(),
    }


#: Runs recorded by one call of ``Execution.record_planned`` (a few requests each).
_PLAN_CHUNK = 200


class RunPlanner:
    """Plans, hands out and finishes the executions of one session.

    Args:
        ml: The catalog handle.
        plan_dir: A folder shared by every process of the session (made if missing).
        dry_run: Record nothing: executions get the RID ``0000``.
        lease: The session owner's liveness record (default: this process's).
    """

    def __init__(self, ml: DerivaML, plan_dir: Path, dry_run: bool = False, lease: str | None = None) -> None:
        self.ml = ml
        self.plan_dir = Path(plan_dir)
        self.plan_dir.mkdir(parents=True, exist_ok=True)
        self.dry_run = dry_run
        # The liveness record of the process that owns the session (pytest's controller under
        # xdist): while it lives, nobody else closes this plan's runs.
        self.lease = lease
        self._record_name: str | None = None  # the plan's record file, once written
        self._noted: list[str] = []
        self.runs: dict[str, PlannedRun] = {}
        self.sweeps: dict[str, dict[str, Any]] = {}
        self._specs: dict[str, RunSpec] = {}
        self._resume: Mapping[str, Resumed] = {}

    @property
    def plan_file(self) -> Path:
        return self.plan_dir / "plan.json"

    # -- planning ----------------------------------------------------------------------------
    def plan(
        self,
        specs: Iterable[RunSpec],
        resume: Mapping[str, Resumed] | None = None,
        completed: Callable[[list[RunSpec]], Mapping[str, tuple[str, dict[str, Any]]]] | None = None,
    ) -> dict[str, PlannedRun]:
        """Record the plan for ``specs`` (or read the one another process recorded).

        ``resume``: runs (by node id) that take up a recorded sweep's children again.
        ``completed``: finds the runs done before (node id -> (RID, metrics)); those are not run
        again, and in a sweep the earlier run is nested under the new parent at its ``Sequence``.
        """
        specs = list(specs)
        self._resume = resume or {}
        self._specs = {s.nodeid: s for s in specs}
        dry = [s for s in specs if self.dry_run or s.dry_run]
        real = [s for s in specs if not (self.dry_run or s.dry_run)]
        if real:
            with file_lock(self.plan_dir / "plan.lock"):
                if self.plan_file.exists():
                    self._load()
                else:
                    self._record(real, dict(completed(real)) if completed is not None else {})
                    self._save()
                    self._save_record()
        for s in dry:
            run = PlannedRun(s.nodeid, DRY_RUN_RID, self._child_description(s), s.params, s.sweep_key)
            run.sequence = s.index if s.parametrized else None  # grouped as a sweep in the summary
            self.runs[s.nodeid] = run
        return self.runs

    def _child_description(self, spec: RunSpec) -> str:
        if not spec.parametrized:
            return spec.description
        if spec.nodeid in self._resume:
            return self._resume[spec.nodeid].describe(spec.description)
        # Exactly "[Job N] <description>" (catalog-model.md): the parameters are in config.yaml.
        return f"[Job {spec.index}] {spec.description}"

    def _record(self, specs: list[RunSpec], reused: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        try:
            self._record_all(specs, reused)
        except BaseException:
            # Leave no plan half made: what was already recorded says it never ran.
            rids = self._new_rids() + [s["parent_rid"] for s in self.sweeps.values()]
            for rid in rids:
                # Best effort: the error being raised is the one to report.
                with contextlib.suppress(Exception):
                    self.ml.lookup_execution(rid).update_status(Status.aborted, "The run plan could not be recorded.")
            self.runs, self.sweeps = {}, {}
            raise

    def _new_rids(self) -> list[str]:
        """The runs this plan records (not those done before, which it only refers to)."""
        return [r.execution_rid for r in self.runs.values() if r.reused is None]

    def _record_all(self, specs: list[RunSpec], reused: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        by_sweep: dict[str, list[RunSpec]] = {}
        for s in specs:
            by_sweep.setdefault(s.sweep_key, []).append(s)
        stamp = datetime.now().strftime("%H-%M-%S")
        # Runs of one workflow are recorded together (a few requests for all of them, not a
        # dozen each); as soon as their rows exist they are noted for a recovery and linked to
        # their sweep's parent.
        batches: dict[int, list[tuple[RunSpec, str | None]]] = {}
        for key, members in by_sweep.items():
            first = members[0]
            parent_rid: str | None = None
            resumed = self._resume.get(first.nodeid)
            if resumed is not None:
                parent_rid = resumed.parent_rid
                self.ml.lookup_execution(parent_rid).update_status(
                    Status.running, f"Resumed: {len(members)} children run again."
                )
                self.sweeps[key] = {
                    "parent_rid": parent_rid,
                    "description": first.description,
                    "started": resumed.started,
                }
            elif first.parametrized:
                config = first.configuration.model_copy(update={"description": first.description})
                parent_rid = start_parent(self.ml, first.workflow, config).execution_rid
                self.sweeps[key] = {
                    "parent_rid": parent_rid,
                    "description": first.description,
                    "started": datetime.now(UTC).isoformat(),
                }
            earlier: list[tuple[str, int | None]] = []
            for s in sorted(members, key=lambda m: m.index):
                if s.nodeid in reused:
                    rid, metrics = reused[s.nodeid]
                    run = PlannedRun(s.nodeid, rid, self._child_description(s), s.params, s.sweep_key, reused=metrics)
                    if parent_rid is not None:
                        run.parent_rid, run.sequence = parent_rid, s.index
                        earlier.append((rid, s.index))
                    self.runs[s.nodeid] = run
                else:
                    batches.setdefault(id(s.workflow), []).append((s, parent_rid))
            if parent_rid is not None:
                link_children(self.ml, parent_rid, earlier)
        # In chunks: what recording a run holds until its chunk is written (its rows, files and
        # their bytes) is held for one chunk at a time, so a sweep's size does not set the peak memory.
        chunks = [b[i : i + _PLAN_CHUNK] for b in batches.values() for i in range(0, len(b), _PLAN_CHUNK)]
        for batch in chunks:
            runs = []
            for s, _ in batch:
                run_dir = str(s.index) if s.parametrized else stamp
                config = s.configuration.model_copy(update={"description": self._child_description(s)})
                runs.append((config, hydra_files(run_dir, s.params)))

            def recorded(rids: list[str], batch: list[tuple[RunSpec, str | None]] = batch) -> None:
                self._note(rids)
                by_parent: dict[str, list[tuple[str, int | None]]] = {}
                for (s, parent), rid in zip(batch, rids, strict=True):
                    if parent is not None:
                        by_parent.setdefault(parent, []).append((rid, s.index))
                for parent, children in by_parent.items():
                    link_children(self.ml, parent, children)

            rids = Execution.record_planned(self.ml, batch[0][0].workflow, runs, recorded=recorded)
            for (s, parent_rid), rid in zip(batch, rids, strict=True):
                # Only the RID is kept: the execution is picked up again when it runs, so a plan
                # of many children holds no Execution objects (memory flat in the sweep's size).
                run = PlannedRun(s.nodeid, rid, self._child_description(s), s.params, s.sweep_key)
                if parent_rid is not None:
                    run.parent_rid, run.sequence = parent_rid, s.index
                self.runs[s.nodeid] = run

    def _save(self) -> None:
        doc = {"sweeps": self.sweeps, "runs": {k: asdict(v) for k, v in self.runs.items()}}
        tmp = self.plan_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, default=repr))
        os.replace(tmp, self.plan_file)

    def _note(self, rids: list[str]) -> None:
        """Record (for a recovery) the runs planned so far, as soon as their rows exist."""
        self._noted += rids
        self._save_record(self._noted)

    @property
    def _record_file(self) -> Path | None:
        """The plan's record in the working directory, for a recovery after a crash."""
        if self._record_name is None:
            first = next(iter(self._new_rids()), None)
            if first is None or first == DRY_RUN_RID:
                return None
            self._record_name = first
        return record_dir(self.ml.working_dir) / f"{self._record_name}.json"

    def _save_record(self, rids: list[str] | None = None) -> None:
        rids = rids if rids is not None else self._new_rids()
        if not rids or rids[0] == DRY_RUN_RID:
            return
        target = record_dir(self.ml.working_dir) / f"{self._record_name or rids[0]}.json"
        self._record_name = target.stem
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "lease": self.lease or own_lease(self.ml.working_dir),
            "runs": rids,
            "sweeps": {info["parent_rid"]: {"started": info["started"]} for info in self.sweeps.values()},
        }
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, target)

    def _load(self) -> None:
        doc = json.loads(self.plan_file.read_text())
        self.sweeps = doc["sweeps"]
        self.runs = {k: PlannedRun(**v) for k, v in doc["runs"].items()}

    # -- running -----------------------------------------------------------------------------
    def execution_for(self, nodeid: str) -> Execution:
        """The execution planned for a run, picked up by its RID."""
        spec = self._specs[nodeid]
        run = self.runs[nodeid]
        config = spec.configuration.model_copy(update={"description": run.description})
        if run.execution_rid == DRY_RUN_RID:
            return self.ml.create_execution(config, workflow=spec.workflow, dry_run=True)
        return Execution(config, self.ml, workflow=spec.workflow, reload=run.execution_rid, planned=True)

    # -- finishing ---------------------------------------------------------------------------
    def finish(self) -> list[SweepResult]:
        """Close every sweep's parent: status from its children, summary, Duration spanning the sweep."""
        if not self.sweeps and self.plan_file.exists():
            self._load()
        self._close_never_run()
        results = []
        for info in self.sweeps.values():
            result = close_sweep(self.ml, info["parent_rid"], datetime.fromisoformat(info["started"]))
            result.description = info["description"]
            results.append(result)
        return results

    def _close_never_run(self) -> None:
        """Planned runs still Pending when the session ends never ran (Ctrl-C, -x, --maxfail)."""
        rids = [rid for rid in self._new_rids() if rid != DRY_RUN_RID]
        abort_never_run(self.ml, rids, "Not run: the session ended before it ran (interrupted or stopped early).")
        if (target := self._record_file) is not None:
            target.unlink(missing_ok=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.plan_dir, ignore_errors=True)


def new_plan_dir() -> Path:
    """A fresh folder for one session's plan."""
    return Path(tempfile.mkdtemp(prefix="pytest-deriva-plan-"))
