"""``ExecutionRecord``: an execution as the catalog holds it, with nesting and status operations."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pytest_deriva.enums import Status

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
    ) -> None:
        self.execution_rid = execution_rid
        self._workflow = workflow
        self._status = Status(status)
        self.description = description
        self.status_detail = status_detail
        self.duration = duration
        self._ml = _ml_instance
        self._logger = _logger or logging.getLogger("pytest_deriva")

    @classmethod
    def _from_row(cls, row: dict[str, Any], ml: DerivaML) -> ExecutionRecord:
        return cls(
            row["RID"],
            workflow=row.get("Workflow"),
            status=row.get("Status") or Status.created,
            description=row.get("Description"),
            status_detail=row.get("Status_Detail"),
            duration=row.get("Duration"),
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
            self.duration = extra["Duration"]

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


def _rid_of(execution: Any) -> str:
    return str(getattr(execution, "execution_rid", execution))
