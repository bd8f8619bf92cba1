"""``pytest-deriva runs``, ``show`` and ``compare``: the recorded runs, read with the query API.

Every command prints an aligned plain-text table, or the same data with ``--json`` / ``--csv``.
The catalog is chosen as the pytest plugin chooses it: ``--catalog``, then ``DERIVA_CATALOG``,
then ``.deriva`` at the project root (the nearest folder with a ``pyproject.toml``, ``.git`` or
pytest ini file).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva.exceptions import DerivaMLException, DerivaMLNotFoundError
from pytest_deriva.report import human_duration

if TYPE_CHECKING:
    from pytest_deriva.execution.query import ExecutionList
    from pytest_deriva.execution.record import ExecutionRecord
    from pytest_deriva.ml import DerivaML

__all__ = [
    "catalog_location",
    "cell",
    "compare",
    "comparison",
    "describe",
    "list_runs",
    "open_catalog",
    "rank",
    "render",
    "runs",
    "show",
]

_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(==|!=|<=|>=|=|<|>)\s*(.*?)\s*$")


class UsageProblem(DerivaMLException):
    """A value on the command line that cannot be used (exit status 2)."""


def catalog_location(option: str | None, cwd: Path | None = None) -> tuple[str, str]:
    """The catalog and where the choice came from: ``--catalog``, ``DERIVA_CATALOG``, then
    ``.deriva`` at the project root, the order the pytest plugin uses."""
    from pytest_deriva.ml.deriva_ml import find_project_root

    if option is not None:
        if not option.strip():
            raise UsageProblem("--catalog is empty; name a catalog folder or https://<host>/ermrest/catalog/<id>.")
        return option, "--catalog"
    if os.environ.get("DERIVA_CATALOG"):
        return os.environ["DERIVA_CATALOG"], "DERIVA_CATALOG"
    return str(find_project_root(cwd) / ".deriva"), "default"


def open_catalog(option: str | None, credential: str | None = None) -> DerivaML:
    """A handle on the chosen catalog, read-only where it is a folder; a clear error when none is there."""
    from pytest_deriva.catalog.embedded import is_embedded_catalog
    from pytest_deriva.ml import DerivaML

    location, source = catalog_location(option)
    if "://" not in location:
        if not is_embedded_catalog(Path(location)):
            how = {
                "--catalog": "check the --catalog value",
                "DERIVA_CATALOG": "check DERIVA_CATALOG",
                "default": "run this in the project whose runs were recorded, or name the catalog with --catalog",
            }[source]
            raise DerivaMLNotFoundError(
                f"No catalog at {location} (from {source}): {how}. "
                "Runs are recorded there by: pytest --deriva-run experiments/"
            )
        work = Path(tempfile.mkdtemp(prefix="pytest-deriva-"))
        return DerivaML(location, read_only=True, working_dir=work / "work", cache_dir=work / "cache")
    return DerivaML(location, credential=credential, working_dir=Path(tempfile.mkdtemp(prefix="pytest-deriva-")))


# -- values on the command line -------------------------------------------------------------
def _scalar(text: str) -> Any:
    """A value typed on the command line: a number, true/false, null, or text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_conditions(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["lr=0.1", "acc>0.9", "C=1,10"]`` -> ``{"lr": 0.1, "acc": (">", 0.9), "C": [1, 10]}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        found = _CONDITION.match(item)
        if not found or not found.group(3):
            raise UsageProblem(
                f"--{what} {item!r}: write NAME=VALUE, NAME=V1,V2 (any of them) or NAME>VALUE "
                "(also >=, <, <=, !=), e.g. --param lr=0.1 --metric 'acc>=0.9'."
            )
        name, op, text = found.groups()
        if op in ("=", "=="):
            values = [_scalar(v) for v in text.split(",")]
            out[name] = values[0] if len(values) == 1 else values
        else:
            out[name] = (op, _scalar(text))
    return out


# -- output ---------------------------------------------------------------------------------
def cell(value: Any) -> str:
    """A value as the tables show it: numbers to 6 significant digits, times local, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned plain-text table (no borders), headed by the column names."""
    columns = list(columns or (rows[0] if rows else []))
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def render(rows: Sequence[Mapping[str, Any]], fmt: str, columns: Sequence[str] | None = None) -> str:
    """``rows`` as a terminal table (``fmt`` ``table``), JSON or CSV."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, default=_json_default)
    if fmt == "csv":
        out = io.StringIO()
        names = list(columns or (rows[0] if rows else []))
        writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv(r.get(k)) for k in names})
        return out.getvalue().rstrip("\n")
    return table(rows, columns)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _csv(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


# -- runs -----------------------------------------------------------------------------------
def list_runs(ml: DerivaML, limit: int | None = 20, **filters: Any) -> list[dict[str, Any]]:
    """Recent executions (oldest of them first) as ``to_records()`` rows, each with ``Children``
    (how many) and ``Kind``: a sweep (of how many), a child of one, or a single run."""
    records = ml.find_executions(limit=limit, **filters).to_records()
    children = _child_counts(ml, [r["RID"] for r in records])
    for r in records:
        n = r["Children"] = children.get(r["RID"], 0)
        r["Kind"] = f"sweep of {n}" if n else (f"child of {r['Parent']}" if r["Parent"] else "run")
    return records


def runs(ml: DerivaML, fmt: str = "table", limit: int | None = 20, **filters: Any) -> str:
    """``pytest-deriva runs``: :func:`list_runs` as a table, JSON or CSV."""
    records = list_runs(ml, limit, **filters)
    if fmt != "table":
        return render([{k: v for k, v in r.items() if k != "Children"} for r in records], fmt)
    rows = [
        {
            "RID": r["RID"],
            "started": r["Start"],
            "status": r["Status"],
            "duration": human_duration(r["Duration"]),
            "kind": r["Kind"],
            "description": r["Description"],
        }
        for r in records
    ]
    if not rows:
        return "no executions match" if filters else f"no executions recorded in {ml.catalog.uri}"
    return table(rows)


def _child_counts(ml: DerivaML, rids: list[str]) -> dict[str, int]:
    from pytest_deriva.catalog.port import select_in

    links = select_in(ml.catalog, ml.model.schemas[ml.ml_schema].tables["Execution_Execution"], "Execution", rids)
    counts: dict[str, int] = {}
    for link in links:
        counts[link["Execution"]] = counts.get(link["Execution"], 0) + 1
    return counts


# -- show -----------------------------------------------------------------------------------
def lookup(ml: DerivaML, rid: str) -> ExecutionRecord:
    """The execution ``rid``, or an error naming the RID and how to find one."""
    try:
        return ml.lookup_execution(rid)
    except DerivaMLException as e:
        raise DerivaMLNotFoundError(
            f"{e} List the recorded executions with: pytest-deriva runs (it shows each one's RID)."
        ) from e


def _file_text(ml: DerivaML, url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="pytest-deriva-") as tmp:
        return ml.catalog.objects.get(url, Path(tmp) / "file").read_text(encoding="utf-8", errors="replace")


def describe(ml: DerivaML, rid: str) -> dict[str, Any]:
    """Everything about one run, as data: what ``show`` prints."""
    from pytest_deriva.execution.query import ExecutionList

    record = lookup(ml, rid)
    ExecutionList([record], ml=ml).load()
    wf = record.workflow
    outputs = record.outputs
    traceback = next(
        (
            _file_text(ml, a.url)
            for a in outputs
            if a.filename == "traceback.txt" and a.asset_table == "Execution_Metadata"
        ),
        None,
    )
    inputs = [
        {"kind": "dataset", "RID": d.dataset_rid, "version": str(getattr(d, "current_version", "") or "")}
        for d in record.list_input_datasets()
    ] + [{"kind": a.asset_table, "RID": a.rid, "file": a.filename} for a in record.list_assets("Input")]
    children = ExecutionList(record.list_nested_executions(), ml=ml).to_records()
    elapsed = record.duration
    return {
        "RID": record.rid,
        "Description": record.description,
        "Status": record.status.value,
        "Status_Detail": record.status_detail,
        "Workflow": {
            "RID": record.workflow_rid,
            "Name": wf.name if wf else None,
            "URL": wf.url if wf else None,
            "Version": wf.version if wf else None,
            "Checksum": wf.checksum if wf else None,
        },
        "Parent": record.parent,
        "Start": record.start_time,
        "Stop": record.stop_time,
        "Duration": elapsed.total_seconds() if elapsed is not None else None,
        "Parameters": record.parameters,
        "Metrics": record.metrics,
        "Inputs": inputs,
        "Outputs": [
            {
                "table": a.asset_table,
                "RID": a.rid,
                "file": a.filename,
                "bytes": a.length,
                "types": a.asset_types,
                "URL": a.url,
                "MD5": a.md5,
            }
            for a in outputs
        ],
        "Children": [
            {k: c[k] for k in ("RID", "Status", "Duration", "Description")}
            | {k: v for k, v in c.items() if k.startswith(("params.", "metrics."))}
            for c in children
        ],
        "Traceback": traceback,
    }


def show(ml: DerivaML, rid: str, fmt: str = "table") -> str:
    """``pytest-deriva show RID``: one run, in sections."""
    info = describe(ml, rid)
    if fmt == "json":
        return json.dumps(info, indent=2, default=_json_default)
    if fmt == "csv":
        flat = {k: v for k, v in info.items() if not isinstance(v, dict | list)}
        flat.update({f"params.{k}": v for k, v in info["Parameters"].items()})
        flat.update({f"metrics.{k}": v for k, v in info["Metrics"].items()})
        return render([flat], "csv")
    wf = info["Workflow"]
    lines = [
        f"execution {info['RID']}  {info['Description'] or ''}".rstrip(),
        f"  status    {info['Status']}: {info['Status_Detail'] or ''}".rstrip(),
        f"  workflow  {wf['Name'] or '-'} ({wf['RID']})  {wf['URL'] or ''}".rstrip(),
    ]
    if wf["Checksum"] or wf["Version"]:
        lines.append(f"            version {wf['Version'] or '-'}  checksum {wf['Checksum'] or '-'}")
    lines += [
        f"  started   {cell(info['Start'])}",
        f"  ended     {cell(info['Stop'])}  ({human_duration(info['Duration']) or 'not ended'})",
    ]
    if info["Parent"]:
        lines.append(f"  sweep     {info['Parent']} (pytest-deriva compare {info['Parent']})")
    for title, mapping in (("parameters", info["Parameters"]), ("metrics", info["Metrics"])):
        lines.append(f"{title}:" if mapping else f"{title}: none")
        lines += [f"  {k} = {cell(v)}" for k, v in mapping.items()]
    outputs = [{k: v for k, v in o.items() if k not in ("URL", "MD5")} for o in info["Outputs"]]
    for title, rows in (("inputs", info["Inputs"]), ("outputs", outputs), ("children", info["Children"])):
        if rows:
            lines.append(f"{title}:")
            lines += ["  " + line for line in table(rows).splitlines()]
        else:
            lines.append(f"{title}: none")
    if info["Traceback"]:
        lines.append("traceback:")
        lines += ["  " + line for line in info["Traceback"].rstrip().splitlines()]
    return "\n".join(lines)


# -- compare --------------------------------------------------------------------------------
def compare_runs(ml: DerivaML, rids: Sequence[str]) -> ExecutionList:
    """A sweep's children (one RID), or the runs named."""
    from pytest_deriva.execution.query import ExecutionList

    if len(rids) == 1:
        record = lookup(ml, rids[0])
        children = record.list_nested_executions()
        if not children:
            raise UsageProblem(
                f"Execution {rids[0]} is not a sweep (it has no child executions). Compare runs by naming "
                f"two or more: pytest-deriva compare {rids[0]} OTHER_RID"
                + (f", or its sweep: pytest-deriva compare {record.parent}" if record.parent else "")
            )
        return ExecutionList(children, ml=ml).load()
    return ExecutionList([lookup(ml, rid) for rid in rids], ml=ml).load()


def comparison(ml: DerivaML, rids: Sequence[str], sort: str | None = None, descending: bool = True) -> dict[str, Any]:
    """What ``compare`` shows, as data: ``runs`` (``to_records()`` rows, sorted by the metric
    ``sort`` when given, each with ``best`` ``*`` or ``''``), ``params`` (every parameter column),
    ``varying`` (those whose value differs between runs), ``metrics`` (metric columns), ``best``
    (the best run's RID or None), ``sorted_by``, ``descending`` and, for two runs, ``diff`` (their
    configuration diff); see :func:`rank`."""
    listed = compare_runs(ml, rids)
    records = listed.to_records()
    params = [k for k in (records[0] if records else {}) if k.startswith("params.")]
    metrics = [k for k in (records[0] if records else {}) if k.startswith("metrics.")]
    varying = [p for p in params if len({json.dumps(r[p], sort_keys=True, default=str) for r in records}) > 1]
    result: dict[str, Any] = {"runs": records, "params": params, "varying": varying, "metrics": metrics}
    rank(result, sort, descending)
    result["diff"] = _config_diff(listed, rids) if len(rids) == 2 else None
    return result


def rank(found: dict[str, Any], sort: str | None, descending: bool = True) -> None:
    """Sort the runs of a :func:`comparison` by the metric ``sort`` (runs without a number for it
    last) and mark the best (``best`` ``*``); ``sort`` None: the runs' order, none marked."""
    records, metrics = found["runs"], found["metrics"]
    best: str | None = None
    if sort is not None:
        key = sort if sort.startswith("metrics.") else f"metrics.{sort}"
        if key not in metrics:
            have = ", ".join(m.removeprefix("metrics.") for m in metrics) or "none"
            raise UsageProblem(f"--sort {sort!r}: these runs have no metric {sort!r} (they have: {have}).")
        numbers = [r for r in records if isinstance(r[key], int | float) and math.isfinite(r[key])]
        others = [r for r in records if r not in numbers]
        numbers.sort(key=lambda r: r[key], reverse=descending)
        records = numbers + others
        best = numbers[0]["RID"] if numbers else None
    for r in records:
        r["best"] = "*" if r["RID"] == best else ""
    found.update(runs=records, sorted_by=sort, descending=descending, best=best)


def compare(
    ml: DerivaML, rids: Sequence[str], fmt: str = "table", sort: str | None = None, descending: bool = True
) -> str:
    """``pytest-deriva compare``: parameters x metrics x status x duration, one row per run,
    sorted by ``sort`` (a metric) with the best marked; with two runs, their configuration diff."""
    found = comparison(ml, rids, sort, descending)
    records, metrics, best, diff = found["runs"], found["metrics"], found["best"], found["diff"]
    shown = found["varying"] or found["params"]
    if fmt == "json":
        payload: dict[str, Any] = {"runs": records, "sorted_by": sort, "best": best}
        if diff is not None:
            payload["diff"] = diff
        return json.dumps(payload, indent=2, default=_json_default)
    columns = ["RID", *shown, *metrics, "Status", "Duration"]
    if fmt == "csv":
        return render(records, "csv", [*columns, "best"])
    rows = [
        {"": r["best"], "RID": r["RID"]}
        | {p.removeprefix("params."): r[p] for p in shown}
        | {m.removeprefix("metrics."): r[m] for m in metrics}
        | {"status": r["Status"], "duration": human_duration(r["Duration"])}
        for r in records
    ]
    out = [table(rows)] if rows else ["no runs"]
    if best is not None:
        out.append(f"* best by {sort} ({'highest' if descending else 'lowest'})")
    if diff is not None:
        out.append(f"configuration diff {rids[0]} -> {rids[1]}:")
        out += [f"  {line}" for line in diff] or ["  (same configuration)"]
    return "\n".join(out)


def _config_diff(found: ExecutionList, rids: Sequence[str]) -> list[str]:
    """The parameters of two runs as a unified diff of ``name: value`` lines."""
    by_rid = {r.rid: r for r in found}
    a, b = (by_rid[rid].parameters for rid in rids)

    def lines(params: Mapping[str, Any]) -> list[str]:
        return [f"{k}: {json.dumps(v, default=str)}" for k, v in sorted(params.items())]

    return [
        line
        for line in difflib.unified_diff(lines(a), lines(b), fromfile=rids[0], tofile=rids[1], lineterm="", n=0)
        if not line.startswith("@@")
    ]
