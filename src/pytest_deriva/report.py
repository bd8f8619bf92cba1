"""The end-of-run summary: a table per sweep and a line per single experiment.

Values of secret parameters (see :mod:`pytest_deriva._secrets`) are shown as ``***``, in the
parameters column and in the test ids.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_deriva._secrets import REDACTED, is_secret, redact_nodeid, redact_text

if TYPE_CHECKING:
    from pytest_deriva.execution.sweep import SweepResult
    from pytest_deriva.ml import DerivaML

__all__ = ["format_nodeid", "format_params", "human_duration", "summary_lines"]


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()) or "-"


def _literal(text: Any) -> Any:
    """A parameter shown as its ``repr`` (as the plugin passes them) back as its value."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def format_params(params: Mapping[str, Any]) -> str:
    """``a=1, token=***``: a run's parameters (shown as their ``repr``), secret ones hidden."""
    return ", ".join(
        f"{k}={REDACTED}" if is_secret(str(k)) else f"{k}={redact_text(str(v))}" for k, v in params.items()
    )


def format_nodeid(nodeid: str, params: Mapping[str, Any]) -> str:
    """A run's test id with the values of its secret parameters hidden (``experiment_x[0.1-***]``)."""
    return redact_nodeid(nodeid, {k: _literal(v) for k, v in params.items()})


def human_duration(seconds: float | None) -> str | None:
    """Seconds as people read them: ``<0.01 s``, ``0.04 s``, ``1.2 s``, ``3 min 4 s``, ``1 h 2 min``."""
    if seconds is None:
        return None
    if seconds < 0.01:
        return "<0.01 s"
    if seconds < 10:
        return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs} s" if minutes else f"{secs} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60} min"


_REASON_WIDTH = 60  # a failure reason longer than this is cut (the record and `pytest-deriva show` keep it all)


def _status(row: Mapping[str, Any]) -> str:
    """``Completed``, or ``Failed: ValueError: diverged`` (the reason of a run that did not complete)."""
    status, detail = str(row.get("status", "")), row.get("detail")
    if not detail or status == "Completed" or ":" in status:
        return status
    detail = " ".join(str(detail).split())
    if len(detail) > _REASON_WIDTH:
        detail = detail[: _REASON_WIDTH - 3] + "..."
    return f"{status}: {detail}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _never_run(sweep: SweepResult, ran: set[Any]) -> list[dict[str, Any]]:
    """Rows for the children of ``sweep`` this session did not run (interrupted, -x, never
    started), with the status and reason the catalog holds."""
    return [
        {
            "rid": child["rid"],
            "sequence": child.get("sequence"),
            "status": child["status"],
            "detail": child.get("detail"),
            "description": sweep.description,
            "duration": None,
            "params": {},
            "outputs": 0,
        }
        for child in sweep.children
        if child.get("rid") not in ran
    ]


def summary_lines(
    rows: Iterable[dict[str, Any]],
    sweeps: Iterable[SweepResult],
    catalog: str,
    dry_run: bool,
    link: Callable[[str], str | None] | None = None,
    verbose: bool = False,
) -> list[str]:
    """Lines for the terminal: per sweep its parent and children (by Sequence), then single runs.

    A row is what the plugin records per experiment: ``rid``, ``status`` and ``detail`` (the
    reason, shown on a run that did not complete), ``duration`` in seconds, ``params``,
    ``metrics``, ``outputs``, ``description``, and for a sweep's child ``parent`` and ``sequence``
    (in a dry run, where nothing has a RID, ``sweep``: the sweep's key). ``link`` gives an
    execution's web page (Chaise on a server), listed under each sweep and run; ``verbose`` adds
    each execution's count of network requests.
    """
    rows = list(rows)
    parents = {s.parent_rid: s for s in sweeps}
    out = [f"catalog: {catalog}" + (" (dry run: nothing recorded)" if dry_run else "")]
    groups: dict[str, list[dict[str, Any]]] = {}
    singles = []
    for r in rows:
        key = r.get("parent") or r.get("sweep")
        if key:
            groups.setdefault(key, []).append(r)
        else:
            singles.append(r)
    for sweep in parents.values():
        ran = {r.get("rid") for r in groups.get(sweep.parent_rid, [])}
        groups.setdefault(sweep.parent_rid, []).extend(_never_run(sweep, ran))
    for key, children in groups.items():
        children.sort(key=lambda r: (r.get("sequence") is None, r.get("sequence") or 0))
        result = parents.get(key)
        status = f"{result.status.value}: {result.detail}" if result else ""
        name = f"sweep {key}" if key in parents or not dry_run else f"sweep {key} (dry run)"
        description = result.description if result else children[0].get("description")
        out.append(f"{name}  {description or ''}  {status}".rstrip())
        header = ("seq", "execution", "parameters", "status", "duration", "metrics", "outputs")
        table: list[tuple[str, ...]] = [(*header, "requests") if verbose else header]
        for r in children:
            table.append(
                (
                    str(r.get("sequence", "")),
                    str(r.get("rid") or "-"),
                    format_params(r.get("params") or {}) or "-",
                    _status(r),
                    human_duration(r.get("duration")) or "-",
                    _fmt_metrics(r.get("metrics") or {}),
                    str(r.get("outputs", 0)),
                    *((str(r.get("requests", 0)),) if verbose else ()),
                )
            )
        out += _table(table)
        out += _links(link, [key, *(r["rid"] for r in children if r.get("rid"))] if key in parents else [])
    if singles:
        out.append("runs")
        header = ("execution", "experiment", "description", "status", "duration", "metrics", "outputs")
        table = [(*header, "requests") if verbose else header]
        for r in singles:
            table.append(
                (
                    str(r.get("rid") or "-"),
                    format_nodeid(str(r.get("nodeid", "")), r.get("params") or {}),
                    str(r.get("description") or "-"),
                    _status(r),
                    human_duration(r.get("duration")) or "-",
                    _fmt_metrics(r.get("metrics") or {}),
                    str(r.get("outputs", 0)),
                    *((str(r.get("requests", 0)),) if verbose else ()),
                )
            )
        out += _table(table)
        out += _links(link, [r["rid"] for r in singles if r.get("rid")])
    return out


def recorded_rows(ml: DerivaML, rids: Sequence[str]) -> tuple[list[dict[str, Any]], list[SweepResult]]:
    """What the catalog holds of the executions ``rids`` (and their sweeps) as rows for
    :func:`summary_lines`: how ``deriva-run`` reports the runs a Hydra run or multirun made."""
    from pytest_deriva.execution.query import ExecutionList
    from pytest_deriva.execution.sweep import SweepResult

    found = ExecutionList([ml.lookup_execution(rid) for rid in dict.fromkeys(rids)], ml=ml).load()
    parents = list(dict.fromkeys(r.parent for r in found if r.parent))
    sequence: dict[str, int | None] = {}
    sweeps = []
    for parent in parents:
        record = ml.lookup_execution(parent)
        children = record.list_nested_executions()
        links = ml.catalog.select(ml.ml_schema, "Execution_Execution", {"Execution": parent})
        sequence.update({link["Nested_Execution"]: link["Sequence"] for link in links})
        sweeps.append(
            SweepResult(
                parent,
                record.description or "",
                record.status,
                record.status_detail or "",
                [
                    {"rid": c.rid, "sequence": sequence.get(c.rid), "status": c.status.value, "detail": c.status_detail}
                    for c in children
                ],
            )
        )
    # A sweep's parameters column shows what differs between its children.
    varying: dict[str | None, set[str]] = {}
    for parent in parents:
        members = [r for r in found if r.parent == parent]
        names = {n for r in members for n in r.parameters}
        varying[parent] = {n for n in names if len({repr(r.parameters.get(n)) for r in members}) > 1}
    rows = []
    for r in found:
        took = r.duration
        wf = r.workflow
        rows.append(
            {
                "rid": r.rid,
                "nodeid": wf.name if wf is not None else "",
                "status": r.status.value,
                "detail": r.status_detail,
                "parent": r.parent,
                "sequence": sequence.get(r.rid),
                "params": {k: v for k, v in r.parameters.items() if k in varying.get(r.parent, set())},
                "description": r.description,
                "duration": took.total_seconds() if took is not None else None,
                "metrics": r.metrics,
                "outputs": sum(a.asset_table != "Execution_Metadata" for a in r.outputs),
            }
        )
    return rows, sweeps


def _links(link: Callable[[str], str | None] | None, rids: Sequence[str]) -> list[str]:
    """``    <rid>  <url>`` for each execution that has a web page."""
    if link is None:
        return []
    pages = [(rid, link(rid)) for rid in rids]
    return [f"    {rid}  {url}" for rid, url in pages if url]
