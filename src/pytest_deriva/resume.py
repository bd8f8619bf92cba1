"""Finishing a recorded sweep: ``pytest --deriva-run --deriva-resume [PARENT_RID | last]``.

:func:`plan_resume` finds the sweep, the children whose latest attempt did not complete, and
the collected runs that are those children: the same experiment (its workflow file and
description), the same ``Sequence``, the same parameters as recorded. Each becomes a
:class:`~pytest_deriva.sweep.Resumed` run, which the planner records as a new child of the same
parent with the same ``Sequence``, described ``[Job N] <description> (attempt K; earlier: RID)``;
the earlier attempt stays linked and on record, and the parent's status and summary count the
latest attempt of each ``Sequence`` (:func:`pytest_deriva.execution.sweep.close_sweep`).

A sweep whose experiment file changed since it ran is refused, with the diff, unless the caller
allows it. This module does not import pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_deriva._secrets import REDACTED, redact_text_file
from pytest_deriva.enums import Status
from pytest_deriva.exceptions import DerivaMLInputError
from pytest_deriva.execution._index import parameters_from_files, read_parameters
from pytest_deriva.execution.sweep import attempts, last_sweep
from pytest_deriva.execution.workflow import code_changes
from pytest_deriva.sweep import Resumed, RunSpec, hydra_files

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["ResumePlan", "indexed_parameters", "plan_resume"]

LAST = "last"


@dataclass
class ResumePlan:
    """What a resume runs: the sweep, and its runs by node id (empty when nothing is left)."""

    parent_rid: str
    runs: dict[str, Resumed] = field(default_factory=dict)
    message: str = ""


def indexed_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """A run's parameters as the run index records them (from its Hydra files, secrets hidden)."""
    files = hydra_files("0", params)
    return parameters_from_files({name: redact_text_file(name, data) for name, data in files.items()})


def same_parameters(recorded: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether a run with ``params`` is the recorded run's parameters (a secret value is not compared)."""
    now = indexed_parameters(params)
    if set(now) != set(recorded):
        return False
    return all(now[k] == recorded[k] or REDACTED in (now[k], recorded[k]) for k in now)


def _shown(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "(none)"


def plan_resume(ml: DerivaML, target: str, specs: Iterable[RunSpec], allow_changed: bool = False) -> ResumePlan:
    """The runs that finish sweep ``target`` (a parent RID, or ``last``) among the collected ``specs``.

    Raises:
        DerivaMLInputError: ``target`` is not a sweep, it is not among the collected experiments,
            it is still running, its code changed (and not ``allow_changed``), or a child's
            recorded parameters are not those of the collected run at its ``Sequence``.
    """
    what = f"--deriva-resume {target}"
    parent_rid = last_sweep(ml) if target == LAST else target
    if parent_rid is None:
        raise DerivaMLInputError(f"{what}: this catalog ({ml.catalog.uri}) has no sweep to resume.")
    parent = ml.lookup_execution(parent_rid)
    by_sequence = {seq: tries for seq, tries in attempts(ml, parent_rid).items() if seq is not None and seq >= 0}
    if not by_sequence:
        raise DerivaMLInputError(
            f"{what}: execution {parent_rid} ({parent.description!r}) is not a sweep: it has no children in "
            "Sequence order; give the RID of a sweep's parent, or 'last'."
        )
    if parent.status in (Status.running, Status.pending, Status.created, Status.initializing):
        raise DerivaMLInputError(
            f"{what}: sweep {parent_rid} is {parent.status.value} (another session is running it); "
            "resume it when that session has ended."
        )
    recorded = parent.workflow
    candidates: dict[str, dict[int, RunSpec]] = {}
    for spec in specs:
        # The same experiment: its file (the workflow's name) and its description, in a sweep.
        same = recorded is not None and spec.workflow.name == recorded.name
        if same and spec.parametrized and spec.description == (parent.description or ""):
            candidates.setdefault(spec.sweep_key, {})[spec.index] = spec
    if not candidates:
        where = recorded.url if recorded is not None else "an unknown workflow"
        raise DerivaMLInputError(
            f"{what}: sweep {parent_rid} ({parent.description!r}, {where}) is not among the collected "
            "experiments; name the file that holds it (pytest --deriva-run --deriva-resume "
            f"{parent_rid} path/to/experiment_file.py)."
        )
    todo = {seq: tries for seq, tries in by_sequence.items() if tries[-1].status != Status.completed}
    if not todo:
        return ResumePlan(parent_rid, message=f"sweep {parent_rid}: all {len(by_sequence)} children completed")
    assert recorded is not None
    first = next(iter(next(iter(candidates.values())).values()))
    changes = code_changes(recorded, first.workflow)
    if changes is not None and not allow_changed:
        raise DerivaMLInputError(
            f"{what}: the code of sweep {parent_rid} changed since it ran (it ran {recorded.url}); "
            "resume it anyway with --deriva-allow-changed, or start a new sweep without --deriva-resume. "
            f"The change:\n{changes}"
        )
    params = read_parameters(ml, [tries[-1].execution_rid for tries in todo.values()])
    started = parent.start_time.isoformat() if parent.start_time else ""
    mismatch = ""
    for group in candidates.values():
        runs: dict[str, Resumed] = {}
        for seq, tries in todo.items():
            earlier = tries[-1].execution_rid
            match = group.get(seq)
            if match is None or not same_parameters(params[earlier], match.params):
                now = _shown(indexed_parameters(match.params)) if match is not None else "no such run"
                mismatch = mismatch or (
                    f"child {seq} ({earlier}) ran with {_shown(params[earlier])}, the collected run at "
                    f"Sequence {seq} has {now}"
                )
                break
            runs[match.nodeid] = Resumed(parent_rid, seq, len(tries) + 1, earlier, started)
        else:
            done = len(by_sequence) - len(todo)
            return ResumePlan(parent_rid, runs, f"sweep {parent_rid}: {len(runs)} children run again, {done} completed")
    raise DerivaMLInputError(
        f"{what}: the sweep's parameters are not the collected experiment's: {mismatch}. Run the same selection "
        "(the same parametrize marks, --deriva-sweep and -k) as the sweep did."
    )
