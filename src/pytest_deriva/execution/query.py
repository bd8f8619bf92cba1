"""Finding and tabulating runs: what ``ml.find_executions(...)`` and ``pytest-deriva runs`` use.

    runs = ml.find_executions(parent=sweep_rid, metrics={"acc": (">", 0.9)}, params={"C": [1, 10]})
    runs.to_records()      # a list of dicts: RID, Status, ..., params.C, metrics.acc
    runs.to_dataframe()    # the same as a pandas DataFrame (pandas installed)

A condition on a parameter or metric is a value (equal), a list or set of values (any of them),
an ``(operator, value)`` tuple (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``), or a function of
the value returning a bool. A run without the name never matches.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pytest_deriva.catalog.port import select_in
from pytest_deriva.enums import MLVocab, Status
from pytest_deriva.exceptions import DerivaMLException
from pytest_deriva.execution import _index
from pytest_deriva.execution.record import ExecutionRecord

if TYPE_CHECKING:
    from pytest_deriva.execution.workflow import Workflow
    from pytest_deriva.ml import DerivaML

__all__ = ["ExecutionList", "find_executions", "matches"]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

TimeBound = datetime | str | timedelta


class ExecutionList(list[ExecutionRecord]):
    """Executions, as ``find_executions`` returns them: a list that converts to a table.

    Parameters, metrics and parents of all of them are read at once (one select per table)."""

    def __init__(self, records: Iterable[ExecutionRecord] = (), *, ml: DerivaML | None = None) -> None:
        super().__init__(records)
        self._ml = ml

    def load(self) -> ExecutionList:
        """Read the parameters, metrics and parents of every run not read yet, in a few requests."""
        if self._ml is None or not self:
            return self
        ml = self._ml
        todo = [r for r in self if r._parameters is None]
        if todo:
            params = _index.read_parameters(ml, [r.rid for r in todo])
            for r in todo:
                r._parameters = params[r.rid]
        todo = [r for r in self if r._metrics is None]
        if todo:
            metrics = _index.read_metrics(ml, [r.rid for r in todo])
            for r in todo:
                r._metrics = metrics[r.rid]
        todo = [r for r in self if r._parent is False]
        if todo:
            table = ml.model.schemas[ml.ml_schema].tables["Execution_Execution"]
            parents = {
                link["Nested_Execution"]: link["Execution"]
                for link in select_in(ml.catalog, table, "Nested_Execution", [r.rid for r in todo])
            }
            for r in todo:
                r._parent = parents.get(r.rid)
        return self

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per run: ``RID``, ``Description``, ``Workflow``, ``Status``, ``Status_Detail``,
        ``Parent``, ``Start``, ``Stop``, ``Duration`` (seconds), then ``params.<name>`` and
        ``metrics.<name>`` for every name any of the runs has (None where a run has not)."""
        self.load()
        param_names = _names(r.parameters for r in self)
        metric_names = _names(r.metrics for r in self)
        out = []
        for r in self:
            elapsed = r.duration
            row: dict[str, Any] = {
                "RID": r.rid,
                "Description": r.description,
                "Workflow": r.workflow_rid,
                "Status": r.status.value,
                "Status_Detail": r.status_detail,
                "Parent": r.parent,
                "Start": r.start_time,
                "Stop": r.stop_time,
                "Duration": elapsed.total_seconds() if elapsed is not None else None,
            }
            row.update({f"params.{n}": r.parameters.get(n) for n in param_names})
            row.update({f"metrics.{n}": r.metrics.get(n) for n in metric_names})
            out.append(row)
        return out

    def to_dataframe(self) -> Any:
        """The table of :meth:`to_records` as a pandas ``DataFrame`` (index: RID)."""
        try:
            pd = importlib.import_module("pandas")  # optional, imported on use (no stubs)
        except ImportError as e:
            raise ImportError(
                "ExecutionList.to_dataframe() needs pandas: pip install pandas "
                "(or use to_records(), a list of dicts, without it)."
            ) from e
        records = self.to_records()
        frame = pd.DataFrame.from_records(records, columns=list(records[0]) if records else ["RID"])
        return frame.set_index("RID")


def _names(mappings: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for m in mappings for name in m))


def matches(value: Any, condition: Any) -> bool:
    """Whether a parameter or metric value meets a condition (see the module's docstring)."""
    if callable(condition):
        return bool(condition(value))
    if isinstance(condition, tuple):
        if len(condition) != 2 or condition[0] not in _OPERATORS:
            raise DerivaMLException(
                f"Condition {condition!r}: use (operator, value) with one of {', '.join(_OPERATORS)}, "
                "e.g. ('>', 0.9); a list of values means any of them."
            )
        op, wanted = condition
        if value is None:
            return op == "!=" and wanted is not None
        try:
            return _OPERATORS[op](_comparable(value, wanted), wanted)
        except TypeError:
            return False
    if isinstance(condition, list | set | frozenset):
        return any(matches(value, c) for c in condition)
    return _same(value, condition)


def _comparable(value: Any, wanted: Any) -> Any:
    """``value`` as the type of ``wanted`` where text holds a number (a parameter given as text)."""
    if isinstance(wanted, int | float) and not isinstance(wanted, bool) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _same(value: Any, wanted: Any) -> bool:
    if value == wanted:
        return True
    if isinstance(wanted, bool) or isinstance(value, bool):
        return False
    if isinstance(wanted, int | float) and isinstance(value, int | float | str):
        try:
            return float(value) == float(wanted)
        except ValueError:
            return False
    return str(value) == str(wanted)


def _when(value: TimeBound, name: str) -> datetime:
    if isinstance(value, timedelta):
        return datetime.now(UTC) - value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as e:
            raise DerivaMLException(
                f"{name}={value!r} is not a date or time; give one like 2026-12-01 or 2026-12-01T10:30."
            ) from e
    return value if value.tzinfo is not None else value.astimezone()


def find_executions(
    ml: DerivaML,
    workflow: Workflow | str | None = None,
    workflow_type: str | None = None,
    status: Status | str | Iterable[Status | str] | None = None,
    *,
    parent: str | None = None,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> ExecutionList:
    """See :meth:`DerivaML.find_executions`."""
    where: dict[str, Any] = {}
    if workflow is not None:
        where["Workflow"] = workflow if isinstance(workflow, str) else workflow.rid
    if status is not None:
        statuses = [status] if isinstance(status, str | Status) else list(status)
        where["Status"] = [Status(s).value for s in statuses]
    if workflow_type is not None:
        name = ml.lookup_term(MLVocab.workflow_type, workflow_type).name
        wfs = ml.catalog.select(ml.ml_schema, "Workflow_Workflow_Type", {"Workflow_Type": name})
        where["Workflow"] = [
            w["Workflow"] for w in wfs if "Workflow" not in where or w["Workflow"] == where["Workflow"]
        ]
    order: list[str] | None = None
    if parent is not None:
        children = ml.lookup_execution(parent).list_nested_executions()
        if not children:
            raise DerivaMLException(
                f"Execution {parent} is not a sweep: it has no child executions. "
                "Leave out parent= (or --parent) to find it, or name the parent of a sweep."
            )
        order = [c.rid for c in children]
        where["RID"] = order
    rows = ml.catalog.select(ml.ml_schema, "Execution", where, order_by=["RCT"])
    if order is not None:
        position = {rid: n for n, rid in enumerate(order)}
        rows.sort(key=lambda r: position[r["RID"]])
    found = ExecutionList((ExecutionRecord._from_row(r, ml) for r in rows), ml=ml)
    if since is not None or until is not None:
        low = _when(since, "since") if since is not None else None
        high = _when(until, "until") if until is not None else None
        found = ExecutionList(
            (
                r
                for r in found
                if r.created is not None and (low is None or r.created >= low) and (high is None or r.created <= high)
            ),
            ml=ml,
        )
    if params or metrics:
        found.load()
        found = ExecutionList(
            (
                r
                for r in found
                if all(n in r.parameters and matches(r.parameters[n], c) for n, c in (params or {}).items())
                and all(n in r.metrics and matches(r.metrics[n], c) for n, c in (metrics or {}).items())
            ),
            ml=ml,
        )
    if limit is not None:
        found = ExecutionList(found[-limit:] if limit > 0 else [], ml=ml)
    return found
