"""Sweeps in the catalog: a parent execution with its children nested in ``Sequence`` order.

The one place every runner (the pytest plugin's run plans, ``run_model`` / ``deriva-run``
multiruns, a recovery) starts a sweep's parent, links its children and closes it:

- :func:`start_parent` records the parent and sets it ``Running``;
- :func:`link_children` nests children under it (``Execution_Execution``, skip on conflict);
- :func:`close_sweep` gives the parent its status and one-line summary from its children
  (``3 of 4 completed, 1 failed``) and its ``Duration``;
- :func:`abort_never_run` ends children that never started ``Aborted`` with the reason;
- :func:`attempts` and :func:`last_sweep`: what a resume reads.

A resumed sweep (``--deriva-resume``) gets a new child for each ``Sequence`` that did not
complete, linked to the same parent with the same ``Sequence``; the earlier attempt stays linked
and on record. A sweep's status and summary count the latest attempt of each ``Sequence``.

Run plans are recorded in :func:`record_dir` until their session closes them, for a recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva._rid import rid_order
from pytest_deriva.enums import Status
from pytest_deriva.execution._lease import release_parent
from pytest_deriva.execution.configuration import ExecutionConfiguration
from pytest_deriva.execution.execution import Execution, format_duration
from pytest_deriva.execution.record import parse_duration
from pytest_deriva.execution.workflow import Workflow

if TYPE_CHECKING:
    from pytest_deriva.execution.record import ExecutionRecord
    from pytest_deriva.ml import DerivaML

__all__ = [
    "SweepResult",
    "abort_never_run",
    "attempts",
    "close_sweep",
    "last_sweep",
    "link_children",
    "record_dir",
    "start_parent",
    "summarize_children",
]


@dataclass
class SweepResult:
    """The outcome of one sweep, as recorded on its parent."""

    parent_rid: str
    description: str
    status: Status
    detail: str
    children: list[dict[str, Any]] = field(default_factory=list)


def summarize_children(statuses: Iterable[Status]) -> tuple[Status, str]:
    """A parent's status and one-line summary (``3 of 4 completed, 1 failed``) from its children."""
    counts: dict[Status, int] = {}
    total = 0
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
        total += 1
    if not total:
        return Status.aborted, "no child was recorded"
    done = counts.get(Status.completed, 0)
    parts = [f"{done} of {total} completed"]
    for s in (Status.failed, Status.aborted, Status.pending, Status.running, Status.created, Status.initializing):
        if counts.get(s):
            parts.append(f"{counts[s]} {s.value.lower()}")
    # Completed when every child completed; Failed when one failed; Aborted when some never
    # finished (interrupted, never run) and none failed. The summary says which.
    if done == total:
        status = Status.completed
    elif counts.get(Status.failed):
        status = Status.failed
    else:
        status = Status.aborted
    return status, ", ".join(parts)


def start_parent(
    ml: DerivaML,
    workflow: Workflow,
    configuration: ExecutionConfiguration,
    hydra_files: Mapping[str, bytes] | None = None,
) -> Execution:
    """Record a sweep's parent execution and set it ``Running``."""
    parent = Execution(configuration, ml, workflow=workflow, hydra_files=hydra_files)
    parent.execution_start()
    return parent


def link_children(ml: DerivaML, parent_rid: str, children: Sequence[tuple[str, int | None]]) -> None:
    """Nest ``(child RID, Sequence)`` under the parent, in one insert; a link made before is kept."""
    rows = [{"Execution": parent_rid, "Nested_Execution": rid, "Sequence": seq} for rid, seq in children]
    if rows:
        ml.catalog.insert(ml.ml_schema, "Execution_Execution", rows, on_conflict_skip=True)


def _by_sequence(links: Iterable[Mapping[str, Any]], children: Mapping[str, Any]) -> dict[int | None, list[Any]]:
    """``children`` (by RID) grouped by the ``Sequence`` of their ``links``, each list oldest
    attempt first, sequences in order (those without one last)."""
    out: dict[int | None, list[Any]] = {}
    for link in sorted(links, key=lambda r: rid_order(r["Nested_Execution"])):
        child = children.get(link["Nested_Execution"])
        if child is not None:
            # A child without a Sequence (nested by hand, parallel) is an attempt of its own.
            key = link["Sequence"] if link["Sequence"] is not None else -1 - len(out)
            out.setdefault(key, []).append(child)
    return dict(sorted(out.items(), key=lambda kv: (kv[0] is None or kv[0] < 0, kv[0] or 0)))


def attempts(
    ml: DerivaML, parent_rid: str, parent: ExecutionRecord | None = None
) -> dict[int | None, list[ExecutionRecord]]:
    """A sweep's children by ``Sequence``, each list oldest attempt first (a resume adds attempts)."""
    parent = parent or ml.lookup_execution(parent_rid)
    children = {c.execution_rid: c for c in parent.list_nested_executions()}
    links = ml.catalog.select(ml.ml_schema, "Execution_Execution", {"Execution": parent_rid})
    return _by_sequence(links, children)


def last_sweep(ml: DerivaML) -> str | None:
    """The RID of the sweep parent made last in this catalog, or None."""
    parents = {r["Execution"] for r in ml.catalog.select(ml.ml_schema, "Execution_Execution", columns=["Execution"])}
    return max(parents, key=rid_order) if parents else None


def close_sweep(
    ml: DerivaML, parent_rid: str, started: datetime | None, also: Iterable[Status] = (), final: bool = True
) -> SweepResult:
    """Set a sweep parent's status and summary from its children, and its Duration when known.

    Each ``Sequence`` counts once, by its latest attempt. ``also`` counts runs that have no child
    execution (a job that failed before it recorded one, one that never ran). ``final``: the sweep
    is over, so its parent needs no recovery."""
    record = ml.lookup_execution(parent_rid)
    latest = _latest_children(ml, parent_rid)
    status, detail = summarize_children([*(Status(c["Status"] or Status.created) for _, c, _ in latest), *also])
    extra = {"Duration": format_duration((datetime.now(UTC) - started).total_seconds())} if started else {}
    record.update_status(status, detail, **extra)
    if final:
        release_parent(ml.working_dir, parent_rid)
    same: dict[str, str] = {}  # texts that repeat across the children (their status details) kept once
    return SweepResult(
        parent_rid,
        record.description or "",
        status,
        detail,
        [
            {
                "rid": c["RID"],
                "sequence": seq if seq is None or seq >= 0 else None,
                "attempt": tries,
                "status": Status(c["Status"] or Status.created).value,
                "detail": same.setdefault(c["Status_Detail"], c["Status_Detail"]) if c["Status_Detail"] else None,
                "duration": parse_duration(c["Duration"]),
                "description": c["Description"],
            }
            for seq, c, tries in latest
        ],
    )


def _latest_children(ml: DerivaML, parent_rid: str) -> list[tuple[int | None, dict[str, Any], int]]:
    """``(Sequence, row, attempts)`` of the latest attempt of each ``Sequence`` of a sweep: the rows
    hold only what closing the sweep reads (no record object per child, whatever the sweep's size)."""
    links = ml.catalog.select(
        ml.ml_schema, "Execution_Execution", {"Execution": parent_rid}, columns=["Nested_Execution", "Sequence"]
    )
    rows = ml.catalog.select(
        ml.ml_schema,
        "Execution",
        {"RID": [link["Nested_Execution"] for link in links]},
        columns=["RID", "Status", "Status_Detail", "Duration", "Description"],
    )
    by_sequence = _by_sequence(links, {r["RID"]: r for r in rows})
    return [(seq, tries[-1], len(tries)) for seq, tries in by_sequence.items()]


def abort_never_run(ml: DerivaML, rids: list[str], reason: str) -> list[str]:
    """Set ``Aborted`` on those of ``rids`` that never started (``Created`` or ``Pending``); which."""
    never: list[str] = []
    for chunk in range(0, len(rids), 500):
        rows = ml.catalog.select(
            ml.ml_schema, "Execution", {"RID": rids[chunk : chunk + 500]}, columns=["RID", "Status"]
        )
        never += [r["RID"] for r in rows if r["Status"] in (Status.created.value, Status.pending.value)]
    if never:
        ml.catalog.update(
            ml.ml_schema,
            "Execution",
            [{"RID": rid, "Status": Status.aborted.value, "Status_Detail": reason} for rid in never],
            returning=False,
        )
    return never


def record_dir(working_dir: Path) -> Path:
    """Where run plans are recorded until their session closes them (read by a recovery)."""
    return Path(working_dir) / "plans"
