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

__all__ = ["format_nodeid", "format_params", "summary_lines"]


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


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def summary_lines(
    rows: Iterable[dict[str, Any]],
    sweeps: Iterable[SweepResult],
    catalog: str,
    dry_run: bool,
    link: Callable[[str], str | None] | None = None,
    verbose: bool = False,
) -> list[str]:
    """Lines for the terminal: per sweep its parent and children (by Sequence), then singles.

    ``link`` gives an execution's web page (Chaise on a server), listed under each sweep and
    single; ``verbose`` adds each execution's count of network requests.
    """
    rows = list(rows)
    parents = {s.parent_rid: s for s in sweeps}
    out = [f"catalog: {catalog}" + (" (dry run: nothing recorded)" if dry_run else "")]
    by_parent: dict[str, list[dict[str, Any]]] = {}
    singles = []
    for r in rows:
        if r.get("parent"):
            by_parent.setdefault(r["parent"], []).append(r)
        else:
            singles.append(r)
    for sweep in parents.values():
        # Every child of the sweep, also those this session did not run (interrupted, -x, never
        # started): with the status and reason the catalog holds.
        ran = {r.get("rid") for r in by_parent.get(sweep.parent_rid, [])}
        for child in sweep.children:
            if child.get("rid") not in ran:
                by_parent.setdefault(sweep.parent_rid, []).append(
                    {
                        "rid": child["rid"],
                        "sequence": child.get("sequence"),
                        "status": f"{child['status']}: {child['detail']}" if child.get("detail") else child["status"],
                        "description": sweep.description,
                        "duration": None,
                        "params": {},
                        "outputs": 0,
                    }
                )
    for parent, children in by_parent.items():
        children.sort(key=lambda r: (r.get("sequence") is None, r.get("sequence") or 0))
        result = parents.get(parent)
        status = f"{result.status.value}: {result.detail}" if result else ""
        out.append(f"sweep {parent}  {children[0].get('description', '')}  {status}".rstrip())
        header = ("seq", "execution", "parameters", "status", "duration", "metrics", "outputs")
        table: list[tuple[str, ...]] = [(*header, "requests") if verbose else header]
        for r in children:
            params = format_params(r.get("params") or {})
            table.append(
                (
                    str(r.get("sequence", "")),
                    str(r.get("rid") or "-"),
                    params or "-",
                    str(r.get("status", "")),
                    str(r.get("duration") or "-"),
                    _fmt_metrics(r.get("metrics") or {}),
                    str(r.get("outputs", 0)),
                    *((str(r.get("requests", 0)),) if verbose else ()),
                )
            )
        out += _table(table)
        out += _links(link, [parent, *(r["rid"] for r in children if r.get("rid"))])
    for r in singles:
        nodeid = format_nodeid(str(r.get("nodeid", "")), r.get("params") or {})
        out.append(
            f"{r.get('rid') or '-'}  {r.get('status', '')}  {r.get('duration') or '-'}  "
            f"{nodeid}  {_fmt_metrics(r.get('metrics') or {})}  outputs: {r.get('outputs', 0)}"
            + (f"  requests: {r.get('requests', 0)}" if verbose else "")
        )
        out += _links(link, [r["rid"]] if r.get("rid") else [])
    return out


def _links(link: Callable[[str], str | None] | None, rids: Sequence[str]) -> list[str]:
    """``    <rid>  <url>`` for each execution that has a web page."""
    if link is None:
        return []
    pages = [(rid, link(rid)) for rid in rids]
    return [f"    {rid}  {url}" for rid, url in pages if url]
