"""``ExecutionRecord``: an execution as the catalog holds it, with nesting and status operations."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pytest_deriva.enums import Status
from pytest_deriva.execution import _index

if TYPE_CHECKING:
    from pytest_deriva.execution.workflow import Workflow
    from pytest_deriva.ml import Asset, DerivaML

__all__ = ["ExecutionRecord"]


class ExecutionRecord:
    """One row of ``Execution`` and what hangs off it.

    Use :meth:`DerivaML.lookup_execution` to get one; :meth:`DerivaML.restore_execution` turns a
    RID into a full :class:`~pytest_deriva.execution.Execution` with lifecycle methods.
    """

    def __init__(
        self,
        execution_rid: str,
        workflow: Workflow | str | None = None,
        status: Status | str = Status.created,
        description: str | None = "",
        *,
        _ml_instance: DerivaML,
        _logger: logging.Logger | None = None,
        status_detail: str | None = None,
        duration: str | None = None,
        created: datetime | str | None = None,
        modified: datetime | str | None = None,
    ) -> None:
        self.execution_rid = execution_rid
        self._workflow = workflow
        self._status = Status(status)
        self.description = description
        self.status_detail = status_detail
        #: The catalog's ``Duration`` text (``0.0H 0.0min 3.1416sec``), as DerivaML records it;
        #: :attr:`duration` is the same as a ``timedelta``.
        self.duration_text = duration
        self.created = _timestamp(created)
        self.modified = _timestamp(modified)
        self._ml = _ml_instance
        self._logger = _logger or logging.getLogger("pytest_deriva")
        # Filled by find_executions for many runs at once, else read on first use.
        self._parameters: dict[str, Any] | None = None
        self._metrics: dict[str, float | str | None] | None = None
        self._parent: str | bool | None = False  # False: not read yet

    @classmethod
    def _from_row(cls, row: dict[str, Any], ml: DerivaML) -> ExecutionRecord:
        return cls(
            row["RID"],
            workflow=row.get("Workflow"),
            status=row.get("Status") or Status.created,
            description=row.get("Description"),
            status_detail=row.get("Status_Detail"),
            duration=row.get("Duration"),
            created=row.get("RCT"),
            modified=row.get("RMT"),
            _ml_instance=ml,
        )

    @property
    def rid(self) -> str:
        return self.execution_rid

    @property
    def status(self) -> Status:
        return self._status

    @property
    def workflow_rid(self) -> str | None:
        wf = self._workflow
        return wf if isinstance(wf, str) or wf is None else wf.rid

    @property
    def workflow(self) -> Workflow | None:
        """The workflow this execution ran (looked up on first use)."""
        if isinstance(self._workflow, str):
            self._workflow = self._ml.lookup_workflow(self._workflow)
        return self._workflow

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters, flat (``{"model.lr": 0.1}``): its recorded Hydra configuration,
        read from the run index (or, for a run recorded before it, from the files)."""
        if self._parameters is None:
            self._parameters = _index.read_parameters(self._ml, [self.execution_rid])[self.execution_rid]
        return self._parameters

    @property
    def metrics(self) -> dict[str, float | str | None]:
        """The metrics the run returned, flat (``{"acc": 0.93, "per_class.0": 0.9}``); a value
        that is not a finite number (NaN, a string) as its text."""
        if self._metrics is None:
            self._metrics = _index.read_metrics(self._ml, [self.execution_rid])[self.execution_rid]
        return self._metrics

    @property
    def duration(self) -> timedelta | None:
        """How long the run took, or None when it has not ended (the catalog's ``Duration``
        column, whose text :attr:`duration_text` keeps)."""
        return parse_duration(self.duration_text)

    @property
    def stop_time(self) -> datetime | None:
        """When the run ended: the last change of its row once it has a final status, else None."""
        return self.modified if self._status in _FINAL else None

    @property
    def start_time(self) -> datetime | None:
        """When the run started: its end less its Duration once both are known, else when its
        row was made (``RCT``; a planned sweep child's row is made before it starts)."""
        stop, took = self.stop_time, self.duration
        if stop is not None and took is not None:
            return stop - took
        return self.created

    @property
    def parent(self) -> str | None:
        """The RID of the sweep this run is a child of, or None."""
        if self._parent is False:
            rows = self._ml.catalog.select(
                self._ml.ml_schema, "Execution_Execution", {"Nested_Execution": self.execution_rid}, limit=1
            )
            self._parent = rows[0]["Execution"] if rows else None
        return self._parent if isinstance(self._parent, str) else None

    @property
    def outputs(self) -> list[Asset]:
        """The files this run wrote (its ``Output`` assets of every asset table)."""
        return self.list_assets("Output")

    def update_status(self, status: Status, msg: str, **extra: Any) -> None:
        """Set ``Status`` and ``Status_Detail`` (and any other Execution columns in ``extra``)."""
        self._status = Status(status)
        self.status_detail = msg
        self._ml.catalog.update(
            self._ml.ml_schema,
            "Execution",
            [{"RID": self.execution_rid, "Status": self._status.value, "Status_Detail": msg, **extra}],
            returning=False,
        )
        if "Duration" in extra:
            self.duration_text = extra["Duration"]

    def add_nested_execution(self, nested_execution: ExecutionRecord | str | Any, sequence: int | None = None) -> None:
        """Make ``nested_execution`` a child of this one; ``sequence`` orders it (None: parallel)."""
        self._ml._add_nested_execution(self.execution_rid, _rid_of(nested_execution), sequence)

    def list_nested_executions(self, recurse: bool = False, _visited: set[str] | None = None) -> list[ExecutionRecord]:
        """Children in ``Sequence`` order (unsequenced ones last); with ``recurse``, all descendants."""
        return self._ml._related_executions(self.execution_rid, children=True, recurse=recurse, visited=_visited)

    def list_parent_executions(self, recurse: bool = False, _visited: set[str] | None = None) -> list[ExecutionRecord]:
        """Parents; with ``recurse``, all ancestors. Cycles are visited once."""
        return self._ml._related_executions(self.execution_rid, children=False, recurse=recurse, visited=_visited)

    def is_nested(self) -> bool:
        return bool(
            self._ml.catalog.select(
                self._ml.ml_schema, "Execution_Execution", {"Nested_Execution": self.execution_rid}, limit=1
            )
        )

    def is_parent(self) -> bool:
        return bool(
            self._ml.catalog.select(
                self._ml.ml_schema, "Execution_Execution", {"Execution": self.execution_rid}, limit=1
            )
        )

    def list_assets(self, asset_role: str | None = None) -> list[Asset]:
        """Assets this execution read (``Input``) or wrote (``Output``), from every asset table."""
        return self._ml._execution_assets(self.execution_rid, asset_role)

    def list_input_datasets(self) -> list[Any]:
        """Datasets this execution read or made."""
        rows = self._ml.catalog.select(self._ml.ml_schema, "Dataset_Execution", {"Execution": self.execution_rid})
        return [self._ml.lookup_dataset(r["Dataset"], deleted=True) for r in rows]

    def __repr__(self) -> str:
        return (
            f"ExecutionRecord(rid={self.execution_rid!r}, status={self._status.value!r}, "
            f"description={self.description!r})"
        )


_FINAL = frozenset({Status.completed, Status.failed, Status.aborted})
_DURATION = re.compile(r"^\s*(-?[\d.]+)H\s+(-?[\d.]+)min\s+(-?[\d.]+)sec\s*$")


def parse_duration(text: str | None) -> timedelta | None:
    """The catalog's ``Duration`` text (``0.0H 1.0min 3.1416sec``) as a ``timedelta``; None if absent or unreadable."""
    found = _DURATION.match(text or "")
    if not found:
        return None
    hours, minutes, seconds = (float(g) for g in found.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _timestamp(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _rid_of(execution: Any) -> str:
    return str(getattr(execution, "execution_rid", execution))
