"""Finishing a recorded sweep (``--deriva-resume``) and not running again what is done
(``--deriva-skip-completed``).

:func:`plan_resume` finds the sweep, the children whose latest attempt did not complete, and
the collected runs that are those children: the same experiment (its workflow file and
description), the same ``Sequence``, the same parameters as recorded. Each becomes a
:class:`~pytest_deriva.sweep.Resumed` run, which the planner records as a new child of the same
parent with the same ``Sequence``, described ``[Job N] <description> (attempt K; earlier: RID)``;
the earlier attempt stays linked and on record, and the parent's status and summary count the
latest attempt of each ``Sequence`` (:func:`pytest_deriva.execution.sweep.close_sweep`).

A sweep whose experiment file changed since it ran is refused, with the diff, unless the caller
allows it.

:func:`find_completed` is the run cache of ``--deriva-skip-completed``: a run is done when this
catalog holds a ``Completed`` run of the same workflow (its file at the same checksum, so a code
change runs it again), with the same parameters and the same input datasets (RID and version)
and assets, that is not a sweep's parent. This module does not import pytest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_deriva._rid import rid_order
from pytest_deriva._secrets import REDACTED, redact_text_file
from pytest_deriva.catalog.port import select_in
from pytest_deriva.enums import Status
from pytest_deriva.exceptions import DerivaMLInputError
from pytest_deriva.execution._index import metadata_files, parameters_from_files, read_metrics, read_parameters
from pytest_deriva.execution.sweep import attempts, last_sweep
from pytest_deriva.execution.workflow import code_changes
from pytest_deriva.sweep import Resumed, RunSpec, hydra_files

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["REPRODUCES", "ResumePlan", "find_completed", "find_reproduced", "indexed_parameters", "plan_resume"]

REPRODUCES = "Reproduces {rid}: {description}"  # the description of a reproduction (pytest-deriva reproduce)
_REPRODUCES = re.compile(r"^Reproduces \S+: ")

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


def same_parameters(recorded: Mapping[str, Any], params: Mapping[str, Any], indexed: bool = False) -> bool:
    """Whether a run with ``params`` (``indexed``: as :func:`indexed_parameters` gives them) has
    the recorded run's parameters (a secret value is not compared)."""
    now = params if indexed else indexed_parameters(params)
    if set(now) != set(recorded):
        return False
    return all(now[k] == recorded[k] or REDACTED in (now[k], recorded[k]) for k in now)


class _ParameterIndex:
    """Recorded runs' parameters (RID -> flat mapping, as the run index records them), looked up by
    a run's parameters: the runs whose parameters are the same (:func:`same_parameters`), in the
    order given, each found without comparing the run with every recorded one (a sweep of N
    children against N recorded runs is N lookups, not N x N comparisons).

    Runs are grouped by their parameter names, and within a group indexed by the values of the
    names that no run of it hides (a hidden value, :data:`REDACTED`, is the same as any); what
    the index finds is then compared as :func:`same_parameters` does.
    """

    def __init__(self, params: Mapping[str, Mapping[str, Any]], order: Iterable[str]) -> None:
        self._params = params
        self._groups: dict[frozenset[str], list[str]] = {}
        for rid in order:
            self._groups.setdefault(frozenset(params[rid]), []).append(rid)
        self._hidden = {
            names: {k for rid in rids for k, v in params[rid].items() if _is_hidden(v)}
            for names, rids in self._groups.items()
        }
        self._indexes: dict[tuple[frozenset[str], frozenset[str]], dict[frozenset[Any], list[str]] | None] = {}

    def same(self, now: Mapping[str, Any]) -> list[str]:
        """The recorded runs with the parameters ``now`` (as :func:`indexed_parameters` gives them)."""
        names = frozenset(now)
        rids = self._groups.get(names)
        if not rids:
            return []
        keyed = names - self._hidden[names] - {k for k, v in now.items() if _is_hidden(v)}
        index = self._index(names, keyed)
        key = _values(now, keyed)
        candidates = rids if index is None or key is None else index.get(key, [])
        return [rid for rid in candidates if same_parameters(self._params[rid], now, indexed=True)]

    def _index(self, names: frozenset[str], keyed: frozenset[str]) -> dict[frozenset[Any], list[str]] | None:
        if (names, keyed) not in self._indexes:
            index: dict[frozenset[Any], list[str]] = {}
            keys = [(rid, _values(self._params[rid], keyed)) for rid in self._groups[names]]
            for rid, key in keys:
                if key is not None:
                    index.setdefault(key, []).append(rid)
            # A value that cannot be a key: the group is compared run by run.
            self._indexes[names, keyed] = index if all(key is not None for _, key in keys) else None
        return self._indexes[names, keyed]


def _is_hidden(value: Any) -> bool:
    return isinstance(value, str) and value == REDACTED


def _values(params: Mapping[str, Any], names: frozenset[str]) -> frozenset[Any] | None:
    """``params``' values of ``names`` as a key (equal values give equal keys), or None."""
    try:
        return frozenset((k, _hashable(params[k])) for k in names)
    except TypeError:
        return None


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return frozenset((k, _hashable(v)) for k, v in value.items())
    hash(value)  # TypeError for what cannot be a key
    return value


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
    by_sequence = {
        seq: tries for seq, tries in attempts(ml, parent_rid, parent).items() if seq is not None and seq >= 0
    }
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


def _inputs(datasets: Iterable[Any], assets: Iterable[Any]) -> tuple[list[tuple[str, str | None]], list[str]]:
    def get(item: Any, name: str) -> Any:
        return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)

    return sorted((str(get(d, "rid")), get(d, "version")) for d in datasets), sorted(str(get(a, "rid")) for a in assets)


def find_completed(ml: DerivaML, specs: Iterable[RunSpec]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Runs (by node id) this catalog already completed: node id -> (the latest such run's RID,
    its metrics). A few selects per workflow, and one ``configuration.json`` read per match."""
    by_workflow: dict[str, list[RunSpec]] = {}  # by the code's checksum: the workflow rows that record it
    for spec in specs:
        if spec.workflow.checksum:
            by_workflow.setdefault(str(spec.workflow.checksum), []).append(spec)
    matches: dict[str, list[str]] = {}
    for checksum, group in by_workflow.items():
        workflows = ml.catalog.select(ml.ml_schema, "Workflow", {"Checksum": checksum}, columns=["RID"])
        if not workflows:
            continue
        rows = ml.catalog.select(
            ml.ml_schema,
            "Execution",
            {"Workflow": [w["RID"] for w in workflows], "Status": Status.completed.value},
            columns=["RID"],
        )
        table = ml.model.schemas[ml.ml_schema].tables["Execution_Execution"]
        parents = {r["Execution"] for r in select_in(ml.catalog, table, "Execution", [r["RID"] for r in rows])}
        rids = sorted((r["RID"] for r in rows if r["RID"] not in parents), key=rid_order, reverse=True)
        recorded = _ParameterIndex(read_parameters(ml, rids) if rids else {}, rids)
        for spec in group:
            same = recorded.same(indexed_parameters(spec.params))
            if same:
                matches[spec.nodeid] = same
    if not matches:
        return {}
    configs = metadata_files(
        ml, sorted({rid for same in matches.values() for rid in same}), re.compile(r"^configuration\.json$")
    )
    found: dict[str, str] = {}
    specs_by_id = {s.nodeid: s for group in by_workflow.values() for s in group}
    for nodeid, same in matches.items():
        wanted = _inputs(specs_by_id[nodeid].configuration.datasets, specs_by_id[nodeid].configuration.assets)
        for rid in same:  # latest first
            try:
                recorded = json.loads(next(iter(configs.get(rid, {}).values()), b"null"))
            except ValueError:
                continue
            if (
                isinstance(recorded, Mapping)
                and _inputs(recorded.get("datasets") or [], recorded.get("assets") or []) == wanted
            ):
                found[nodeid] = rid
                break
    metrics = read_metrics(ml, found.values())
    return {nodeid: (rid, dict(metrics[rid])) for nodeid, rid in found.items()}


def find_reproduced(ml: DerivaML, rid: str, specs: Iterable[RunSpec]) -> RunSpec:
    """The collected run that is the experiment execution ``rid`` ran: the same workflow file,
    description (its sweep's, for a sweep child) and parameters.

    Raises:
        DerivaMLInputError: none of ``specs`` is.
    """
    record = ml.lookup_execution(rid)
    recorded = record.workflow
    parent = record.parent
    description = (ml.lookup_execution(parent).description if parent else record.description) or ""
    description = _REPRODUCES.sub("", description)
    params = read_parameters(ml, [rid])[rid]
    now = None
    for spec in specs:
        if recorded is not None and spec.workflow.name == recorded.name and spec.description == description:
            now = spec.params
            if same_parameters(params, spec.params):
                return spec
    raise DerivaMLInputError(
        f"--deriva-reproduce {rid}: no collected experiment is the one it ran ({description!r} with "
        f"{_shown(params)}"
        + (f"; the experiment with that description takes {_shown(now)}" if now is not None else "")
        + ")."
    )
