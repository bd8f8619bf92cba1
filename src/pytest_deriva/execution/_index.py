"""The run index: parameters and metrics of executions, one row per name, in the
``pytest-deriva`` schema (``Execution_Parameter``, ``Execution_Metric``).

Written in the writes that record a run (one insert per table per batch: the parameters of a
planned sweep with its rows, a run's metrics when it ends), read in one select per table for any
number of runs. Runs recorded before the index existed, or on a catalog whose ``catalog init``
predates it, are read from their files (``hydra-*-config.yaml``, ``metrics.json``), which stay
as DerivaML reads them.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_deriva._rid import rid_order
from pytest_deriva.catalog import schema as ddl
from pytest_deriva.catalog.port import select_in
from pytest_deriva.catalog.setup import ensure_index

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = [
    "flatten",
    "json_safe",
    "metadata_files",
    "metric_rows",
    "parameters_from_files",
    "read_metrics",
    "read_parameters",
    "write_metrics",
    "write_parameters",
]

PARAMETER, METRIC = ddl.INDEX_TABLE_NAMES
_CONFIG = re.compile(r"^hydra-.*-config\.yaml$")
_OVERRIDES = re.compile(r"^hydra-.*-overrides\.yaml$")


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted names (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``);
    lists and other values are kept as they are."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, f"{name}."))
        else:
            out[name] = item
    return out


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, so it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def metric_rows(metrics: Mapping[str, Any]) -> dict[str, tuple[float | None, str | None]]:
    """Name -> (number, text) for each flattened metric: a finite number is a number; anything
    else (NaN, inf, a string, a list) is kept as text, so nothing is dropped silently."""
    rows: dict[str, tuple[float | None, str | None]] = {}
    for name, value in flatten(metrics).items():
        if value is None:
            rows[name] = (None, None)
        elif isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
            rows[name] = (float(value), None)
        elif isinstance(value, int | float):
            rows[name] = (None, repr(float(value)))  # 'nan', 'inf', '-inf'
        else:
            rows[name] = (None, value if isinstance(value, str) else json.dumps(json_safe(value), default=str))
    return rows


def read_yaml(data: bytes) -> Any:
    """A YAML file's document, or None when it is not YAML."""
    yaml = importlib.import_module("yaml")  # a dependency of hydra; imported on use (no stubs)
    try:
        # libyaml's loader where PyYAML has it: the same documents, parsed ten times faster.
        return yaml.load(data.decode("utf-8", "replace"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def parameters_from_files(files: Mapping[str, bytes]) -> dict[str, Any]:
    """A run's parameters from its Hydra files (name -> bytes): its ``config.yaml`` flattened,
    or, without one, its ``overrides.yaml`` (``key=value`` lines)."""
    params: dict[str, Any] = {}
    for name, data in files.items():
        if _CONFIG.match(name):
            config = read_yaml(data)
            if isinstance(config, Mapping):
                params.update(flatten(config))
    if params:
        return params
    for name, data in files.items():
        if _OVERRIDES.match(name):
            overrides = read_yaml(data)
            for item in overrides if isinstance(overrides, list) else []:
                key, sep, text = str(item).partition("=")
                if sep:
                    parsed = read_yaml(text.encode())
                    params[key.lstrip("+~")] = parsed if parsed is not None or text == "null" else text
    return params


def _ready(ml: DerivaML) -> bool:
    """Whether the index tables exist (made now on a catalog that makes its schema on first use)."""
    catalog = ml.catalog
    try:
        ensure_index(catalog, ml.ml_schema, create=catalog.creates_on_demand and not ml.read_only)
    except Exception:  # a store opened read-only, a catalog we may not change: read the files
        return False
    return ddl.INDEX_SCHEMA in catalog.model.schemas and {PARAMETER, METRIC} <= set(
        catalog.model.schemas[ddl.INDEX_SCHEMA].tables
    )


def write_parameters(ml: DerivaML, parameters: Mapping[str, Mapping[str, Any]]) -> None:
    """Index the parameters of executions (RID -> flat mapping), in one insert."""
    rows = [
        {"Execution": rid, "Name": name, "Value": json_safe(value)}
        for rid, params in parameters.items()
        for name, value in params.items()
    ]
    if rows and _ready(ml):
        ml.catalog.insert(ddl.INDEX_SCHEMA, PARAMETER, rows, on_conflict_skip=True)


def write_metrics(ml: DerivaML, execution_rid: str, metrics: Mapping[str, Any]) -> None:
    """Index the metrics of one execution, in one insert."""
    rows = [
        {"Execution": execution_rid, "Name": name, "Value": number, "Text": text}
        for name, (number, text) in metric_rows(metrics).items()
    ]
    if rows and _ready(ml):
        ml.catalog.insert(ddl.INDEX_SCHEMA, METRIC, rows, on_conflict_skip=True)


def _indexed(ml: DerivaML, table: str, rids: list[str]) -> list[dict[str, Any]] | None:
    model = ml.catalog.model
    if ddl.INDEX_SCHEMA not in model.schemas or table not in model.schemas[ddl.INDEX_SCHEMA].tables:
        return None
    rows = select_in(ml.catalog, model.schemas[ddl.INDEX_SCHEMA].tables[table], "Execution", rids)
    # In the order they were written (the run's own order of names), which a server does not keep.
    return sorted(rows, key=lambda r: rid_order(r["RID"]))


def metadata_files(ml: DerivaML, rids: list[str], wanted: re.Pattern[str]) -> dict[str, dict[str, bytes]]:
    """The Execution_Metadata files named like ``wanted`` that runs ``rids`` wrote: RID -> name -> bytes."""
    import tempfile
    from pathlib import Path

    table = ml.model.schemas[ml.ml_schema].tables["Execution_Metadata"]
    assoc, col, ecol = ml.model.find_association(table, "Execution")
    links = select_in(ml.catalog, assoc, ecol, rids)
    links = [r for r in links if r.get("Asset_Role", "Output") == "Output"]
    assets = {r["RID"]: r for r in select_in(ml.catalog, table, "RID", [r[col] for r in links])}
    out: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="deriva-index-") as tmp:
        for n, link in enumerate(links):
            asset = assets.get(link[col])
            if asset is None or not wanted.match(asset["Filename"] or ""):
                continue
            dest = Path(tmp) / f"{n}"
            try:
                ml.catalog.objects.get(asset["URL"], dest)
            except Exception as e:  # a file we cannot read says nothing; the run is shown without it
                logging.getLogger("pytest_deriva").warning(
                    "%s of execution %s not read: %s", asset["Filename"], link[ecol], e
                )
                continue
            out.setdefault(link[ecol], {})[asset["Filename"]] = dest.read_bytes()
    return out


def read_parameters(ml: DerivaML, rids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """RID -> parameters, from the index, else (runs recorded before it) from the Hydra files."""
    wanted = list(dict.fromkeys(rids))
    out: dict[str, dict[str, Any]] = {rid: {} for rid in wanted}
    rows = _indexed(ml, PARAMETER, wanted)
    for r in rows or []:
        out[r["Execution"]][r["Name"]] = r["Value"]
    missing = [rid for rid in wanted if not out[rid]]
    if missing:
        files = metadata_files(ml, missing, re.compile(f"{_CONFIG.pattern}|{_OVERRIDES.pattern}"))
        for rid, by_name in files.items():
            out[rid] = parameters_from_files(by_name)
    return out


def read_metrics(ml: DerivaML, rids: Iterable[str]) -> dict[str, dict[str, float | str | None]]:
    """RID -> flattened metrics (a number, or the text of one that is not), from the index, else
    (runs recorded before it) from ``metrics.json``."""
    wanted = list(dict.fromkeys(rids))
    out: dict[str, dict[str, float | str | None]] = {rid: {} for rid in wanted}
    for r in _indexed(ml, METRIC, wanted) or []:
        out[r["Execution"]][r["Name"]] = r["Value"] if r["Value"] is not None else r["Text"]
    missing = [rid for rid in wanted if not out[rid]]
    if missing:
        for rid, by_name in metadata_files(ml, missing, re.compile(r"^metrics\.json$")).items():
            try:
                metrics = json.loads(next(iter(by_name.values())))
            except ValueError:
                continue
            if isinstance(metrics, Mapping):
                out[rid] = {k: (n if n is not None else t) for k, (n, t) in metric_rows(metrics).items()}
    return out
