"""Dataset bags: a version of a dataset as a BDBag on disk, and :class:`DatasetBag` to read one.

A bag of dataset ``<RID>`` at version ``<v>`` is the folder ``Dataset_<RID>``, a BagIt bag in the form
bdbag makes (written by :mod:`pytest_deriva.dataset._bagwriter`, read and validated by bdbag)::

    Dataset_<RID>/
      bag-info.txt               Deriva-Dataset-RID, Deriva-Dataset-Version, Deriva-Catalog-Snapshot, ...
      manifest-md5.txt           checksums of every payload file, fetched ones included
      fetch.txt                  <URL> <length> data/asset/<Table>/<Filename>, one per asset file
      data/schema.json           the ERMrest model of the tables in the bag
      data/<schema>/<Table>.csv  one per table reached from the members
      data/asset/<Table>/<Filename>         the asset files, once materialized (read them through
                                            DatasetBag.asset_path)
      data/asset/<Table>/<RID>/<Filename>   ... those whose Filename another file of the table has too

A file is put in a folder of its RID only when its name would clash: when another asset file of the
same table in the bag has the same name (compared as a case-insensitive file system would), or its
name is the RID of one of them. A folder per file would double what a download creates on disk (a
folder costs more to make than a small file). Bags made before ``Deriva-Asset-Layout: 2`` in
``bag-info.txt`` put every file in a folder of its RID; they are read as they are.

Everything is read from the catalog as it was at the version's snapshot. The tables are: the
dataset and its nested datasets (``Dataset``, ``Dataset_Dataset``, ``Dataset_Dataset_Type``,
``Dataset_Version``), every ``Dataset_<Element>`` association and its element table (members of
the whole tree), the features whose target is an element table (values of members), and then,
transitively, the rows those rows reference through foreign keys (vocabulary terms, asset rows,
subjects of images, executions). Rows that merely reference members are not followed.

Bags are cached in ``<cache_dir>/bags/<RID>_<version>@<snapshot>/``: a version never changes, so a
second download of it is a cache hit that writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import os
import shutil
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pytest_deriva.catalog.model import SYSTEM_COLUMNS, Model, Table
from pytest_deriva.catalog.port import select_in
from pytest_deriva.dataset._bagwriter import MATERIALIZED_MARKER, BagWriter, fetch_failure, fetch_url
from pytest_deriva.dataset.version import DatasetVersion
from pytest_deriva.exceptions import (
    DerivaMLConfigurationError,
    DerivaMLDatasetNotFound,
    DerivaMLInvalidTerm,
    DerivaMLNotFoundError,
    DerivaMLTableTypeError,
)

if TYPE_CHECKING:
    from pytest_deriva.ml.deriva_ml import DerivaML
    from pytest_deriva.ml.records import VocabularyTerm

__all__ = ["MATERIALIZED_MARKER", "BagCatalog", "DatasetBag", "download_dataset_bag"]

_COMPLETE = ".complete"
#: In a cache entry: the bag's files are fetched and the bag validated.
#: In bag-info.txt: asset files in ``data/asset/<Table>/``, in a folder of their RID only when
#: their names clash (see the module's documentation). Bags without it have a folder per file.
_LAYOUT_KEY = "Deriva-Asset-Layout"
_LAYOUT = "2"


# -- writing ---------------------------------------------------------------------------------
def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


#: Column types whose values _csv_value writes otherwise than str() (booleans, JSON, arrays);
#: the csv module writes every other value (str, int, float, None as "") as _csv_value would.
_CONVERTED_TYPES = frozenset({"boolean", "json", "jsonb", "array"})


def _csv_text(t: Table, rows: list[dict[str, Any]]) -> str:
    """A table's rows as CSV, a header of its column names first."""
    names = list(t.columns)
    converted = [i for i, c in enumerate(t.columns.values()) if c.base_typename in _CONVERTED_TYPES]
    try:  # no Python call per value: most of the cost of a wide table
        table: list[Any] = list(map(itemgetter(*names), rows)) if len(names) > 1 else [(r[names[0]],) for r in rows]
    except KeyError:  # a row without some column
        table = [tuple(r.get(n) for n in names) for r in rows]
    if converted:
        table = [list(values) for values in table]
        for values in table:
            for i in converted:
                values[i] = _csv_value(values[i])
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(names)
    w.writerows(table)
    return text.getvalue()


class _Contents:
    """Rows of the bag by table, read at one snapshot."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}

    def add(self, t: Table, rows: Iterable[dict[str, Any]]) -> int:
        self.tables.setdefault(t.qualified_name, t)
        have = self.rows.setdefault(t.qualified_name, {})
        before = len(have)
        for r in rows:
            have.setdefault(r["RID"], r)
        return len(have) - before


def _collect(ml: DerivaML, dataset_rid: str, snapshot: str) -> _Contents:
    model = ml.model
    s = ml.ml_schema
    dataset_t = model.schemas[s].tables["Dataset"]
    version_t = model.schemas[s].tables["Dataset_Version"]
    nested_t = model.schemas[s].tables["Dataset_Dataset"]
    out = _Contents()

    datasets = [dataset_rid]
    frontier = [dataset_rid]
    while frontier:
        links = select_in(ml.catalog, nested_t, "Dataset", frontier, snapshot=snapshot)
        out.add(nested_t, links)
        frontier = [r["Nested_Dataset"] for r in links if r["Nested_Dataset"] not in datasets]
        datasets += list(dict.fromkeys(frontier))
    out.add(dataset_t, select_in(ml.catalog, dataset_t, "RID", datasets, snapshot=snapshot))
    types_t = model.find_association(dataset_t, "Dataset_Type")[0]
    out.add(types_t, select_in(ml.catalog, types_t, "Dataset", datasets, snapshot=snapshot))
    # Version rows as they are now (their Snapshot column is set just after the snapshot it names).
    pinned = {r["RID"] for r in select_in(ml.catalog, version_t, "Dataset", datasets, snapshot=snapshot)}
    out.add(version_t, [r for r in select_in(ml.catalog, version_t, "Dataset", datasets) if r["RID"] in pinned])

    members: dict[str, set[str]] = {}
    for element in ml._dataset_elements().values():
        if element.table is dataset_t:
            continue
        links = select_in(ml.catalog, element.association, element.dataset_column, datasets, snapshot=snapshot)
        out.add(element.association, links)
        rids = {r[element.element_column] for r in links}
        out.add(element.table, select_in(ml.catalog, element.table, "RID", rids, snapshot=snapshot))
        members[element.table.qualified_name] = rids
    for feature in ml.find_features():
        targets = members.get(feature.target_table.qualified_name)
        if targets is not None:
            rows = select_in(ml.catalog, feature.feature_table, feature.target_table.name, targets, snapshot=snapshot)
            out.add(feature.feature_table, rows)

    # Follow foreign keys outwards until no new rows turn up.
    queue = list(out.tables.values())
    while queue:
        t = queue.pop()
        for fk in t.foreign_keys:
            cols = fk.foreign_key_columns
            pk = fk.pk_table
            if len(cols) != 1 or cols[0].name in SYSTEM_COLUMNS or pk is dataset_t or pk is version_t:
                continue
            ref = fk.referenced_columns[0].name
            wanted = {r[cols[0].name] for r in out.rows[t.qualified_name].values() if r[cols[0].name] is not None}
            have = {r[ref] for r in out.rows.get(pk.qualified_name, {}).values()}
            missing = wanted - have
            if missing and out.add(pk, select_in(ml.catalog, pk, ref, missing, snapshot=snapshot)):
                queue.append(pk)
    return out


def _write_bag(
    ml: DerivaML, dataset_rid: str, version_row: dict[str, Any], bag_dir: Path, shown_dir: Path, materialize: bool
) -> list[str]:
    """Make the bag in the new folder ``bag_dir`` (to be renamed to ``shown_dir``); with
    ``materialize`` its files fetched too, each checked against its MD5 as it is written.
    One message per file that could not be fetched."""
    snapshot = version_row["Snapshot"]
    contents = _collect(ml, dataset_rid, snapshot)
    bag = BagWriter(bag_dir)
    doc: dict[str, Any] = {"schemas": {}}
    objects = ml.catalog.objects
    for qname, t in sorted(contents.tables.items()):
        schema_doc = doc["schemas"].setdefault(
            t.schema.name, {"schema_name": t.schema.name, "comment": None, "annotations": {}, "tables": {}}
        )
        schema_doc["tables"][t.name] = t.doc
        rows = sorted(contents.rows[qname].values(), key=lambda r: str(r["RID"]))
        bag.add_file(f"{t.schema.name}/{t.name}.csv", _csv_text(t, rows).encode("utf-8"))
        if ml.model.is_asset(t):
            files = _asset_files(t.name, rows)
            for r in rows:
                path = files.get(str(r["RID"]))
                if path is not None:
                    bag.add_remote(fetch_url(r["URL"], objects), r["Length"], path, r["MD5"])
    # Without indentation: json's C encoder, not its pure-Python one (several times slower).
    bag.add_file("schema.json", json.dumps(doc).encode("utf-8"))
    errors = bag.fetch(objects, shown_dir) if materialize else []
    bag.finish(
        {
            "External-Description": f"Dataset {dataset_rid} version {version_row['Version']} "
            f"of catalog {ml.catalog.uri} (snapshot {snapshot}).",
            "Deriva-Dataset-RID": dataset_rid,
            "Deriva-Dataset-Version": str(version_row["Version"]),
            "Deriva-Dataset-Version-RID": str(version_row["RID"]),
            "Deriva-Catalog-Snapshot": str(snapshot),
            "Deriva-Catalog": ml.catalog.uri,
            "Deriva-ML-Schema": ml.ml_schema,
            _LAYOUT_KEY: _LAYOUT,
        }
    )
    return errors


def cache_entry(ml: DerivaML, dataset_rid: str, version_row: dict[str, Any]) -> Path:
    """The cache folder of a dataset version's bag (the bag is its ``Dataset_<RID>``)."""
    # The catalog's identity is part of the key: RIDs and snapshots repeat across embedded catalogs
    # that share a cache folder.
    catalog = hashlib.sha1((ml.catalog.catalog_uuid or "").encode(), usedforsecurity=False).hexdigest()[:12]
    return ml.cache_dir / "bags" / f"{catalog}_{dataset_rid}_{version_row['Version']}@{version_row['Snapshot']}"


def download_dataset_bag(ml: DerivaML, dataset_rid: str, version_row: dict[str, Any], materialize: bool) -> DatasetBag:
    """The bag of a dataset version from the cache, made (and materialized) when missing.

    A bag made here is materialized while it is made: each file is copied once, its MD5 checked
    against the catalog's as it is written, and every other payload file hashed from the bytes
    written, so the bag is valid as made without bdbag reading it back. A bag in the cache without
    its files (made with ``materialize=False``, or a fetch failed) is materialized with bdbag and
    then fully validated.
    """
    entry = cache_entry(ml, dataset_rid, version_row)
    root = entry.parent
    bag_dir = entry / f"Dataset_{dataset_rid}"
    hit = (entry / _COMPLETE).exists()
    errors: list[str] = []
    if not hit:
        # Made aside and renamed into place: a crash or a concurrent download never leaves half a bag.
        tmp = root / f".tmp-{uuid.uuid4().hex}"
        try:
            errors = _write_bag(ml, dataset_rid, version_row, tmp / bag_dir.name, bag_dir, materialize)
            (tmp / _COMPLETE).write_text(f"{version_row['Version']}\n")
            if materialize and not errors:
                (tmp / MATERIALIZED_MARKER).write_text("validated\n")
            try:
                os.rename(tmp, entry)
            except OSError:
                if not (entry / _COMPLETE).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if materialize and not (entry / MATERIALIZED_MARKER).exists():
        if errors:  # the bag is in the cache without those files; the next download fetches them
            raise fetch_failure(bag_dir, errors)
        from pytest_deriva.dataset import _bdbag

        hit = False
        _bdbag.materialize_bag(bag_dir, ml.cache_dir, ml.catalog.objects)
        (entry / MATERIALIZED_MARKER).write_text("validated\n")
    bag = DatasetBag(bag_dir)
    bag.from_cache = hit
    return bag


# -- reading ---------------------------------------------------------------------------------
def _read_bag_info(path: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    key = None
    for line in (path / "bag-info.txt").read_text(encoding="utf-8").splitlines():
        if line[:1].isspace() and key is not None:
            info[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            info[key] = value.strip()
    return info


def _from_csv(base: str, text: str) -> Any:
    if text == "":
        return None
    if base in ("int2", "int4", "int8", "serial2", "serial4", "serial8"):
        return int(text)
    if base in ("float4", "float8", "numeric"):
        return float(text)
    if base == "boolean":
        return text.lower() in ("true", "t", "1", "yes")
    if base in ("json", "jsonb", "array"):
        return json.loads(text)
    return text


class DatasetBag:
    """A downloaded dataset version, read from its bag folder (no catalog needed).

    Attributes:
        path: The bag folder (``Dataset_<RID>``).
        dataset_rid: The dataset this view is of (the bag's own, or a nested one's).
        from_cache: Whether the download that returned it found it in the cache.

    >>> bag = ml.download_dataset_bag(DatasetSpec(rid=rid, version="1.0.0"))  # doctest: +SKIP
    >>> bag.list_dataset_members()["Image"][0]["RID"]  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], dataset_rid: str | None = None) -> None:
        self.path = Path(path)
        if not (self.path / "bag-info.txt").is_file() or not (self.path / "data" / "schema.json").is_file():
            raise DerivaMLNotFoundError(f"{self.path} is not a dataset bag (no bag-info.txt and data/schema.json).")
        self.info = _read_bag_info(self.path)
        self.bag_dataset_rid = self.info.get("Deriva-Dataset-RID", "")
        self.dataset_rid = dataset_rid or self.bag_dataset_rid
        self.snapshot = self.info.get("Deriva-Catalog-Snapshot")
        self.model = Model(
            json.loads((self.path / "data" / "schema.json").read_text(encoding="utf-8")),
            ml_schema=self.info.get("Deriva-ML-Schema", "deriva-ml"),
        )
        self.from_cache = False
        self._cache: dict[str, list[dict[str, Any]]] = {}
        self._assets: dict[str, tuple[str, dict[str, Any], str | None]] | None = None  # by RID: table, row, path
        if dataset_rid is not None and not self._dataset_row(dataset_rid):
            raise DerivaMLDatasetNotFound(dataset_rid, f"Not a dataset in the bag {self.path}")

    # -- identity ----------------------------------------------------------------------------
    @property
    def rid(self) -> str:
        return self.dataset_rid

    def _dataset_row(self, rid: str) -> dict[str, Any] | None:
        for row in self.get_table_as_dict(f"{self.model.ml_schema}:Dataset"):
            if row["RID"] == rid:
                return row
        return None

    @property
    def description(self) -> str:
        row = self._dataset_row(self.dataset_rid)
        return str(row.get("Description") or "") if row else ""

    @property
    def dataset_types(self) -> list[str]:
        return [
            r["Dataset_Type"]
            for r in self.get_table_as_dict(f"{self.model.ml_schema}:Dataset_Dataset_Type")
            if r["Dataset"] == self.dataset_rid
        ]

    @property
    def version(self) -> DatasetVersion:
        """The dataset's version in this bag (for the bag's own dataset, the version downloaded)."""
        if self.dataset_rid == self.bag_dataset_rid and "Deriva-Dataset-Version" in self.info:
            return DatasetVersion.parse(self.info["Deriva-Dataset-Version"])
        row = self._dataset_row(self.dataset_rid)
        for v in self.get_table_as_dict(f"{self.model.ml_schema}:Dataset_Version"):
            if row is not None and v["RID"] == row.get("Version"):
                return DatasetVersion.parse(v["Version"])
        raise DerivaMLNotFoundError(f"The bag {self.path} records no version of dataset {self.dataset_rid}.")

    current_version = version

    @property
    def is_materialized(self) -> bool:
        """Whether every file listed in ``fetch.txt`` is present."""
        fetch = self.path / "fetch.txt"
        if not fetch.is_file():
            return True
        for line in fetch.read_text(encoding="utf-8").splitlines():
            if line.strip() and not (self.path / unquote(line.strip().split(None, 2)[2])).exists():
                return False
        return True

    # -- tables ------------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        """The tables in the bag, as ``schema:Table``."""
        return sorted(t.qualified_name for t in self.model.tables())

    def _table(self, table: str | Table) -> Table:
        return self.model.name_to_table(table if isinstance(table, str) else table.qualified_name)

    def get_table_as_dict(self, table: str | Table) -> list[dict[str, Any]]:
        """The rows of a table (``Name`` or ``schema:Name``) as dicts, values typed by column."""
        return [dict(r) for r in self._rows(self._table(table))]

    def _rows(self, t: Table) -> list[dict[str, Any]]:
        """The rows of a table as read once (not to be changed: get_table_as_dict hands out copies)."""
        rows = self._cache.get(t.qualified_name)
        if rows is None:
            types = {c.name: c.base_typename for c in t.columns.values()}
            with (self.path / "data" / t.schema.name / f"{t.name}.csv").open(newline="", encoding="utf-8") as f:
                rows = [{k: _from_csv(types.get(k, "text"), v) for k, v in r.items()} for r in csv.DictReader(f)]
            self._cache[t.qualified_name] = rows
        return rows

    def get_table_as_dataframe(self, table: str | Table) -> Any:
        """The rows of a table as a pandas DataFrame (pandas must be installed)."""
        try:
            pd = importlib.import_module("pandas")  # optional: pandas is not a dependency
        except ImportError:
            raise DerivaMLConfigurationError(
                "get_table_as_dataframe needs pandas, which is not installed; install it (pip install pandas) "
                "or use get_table_as_dict()."
            ) from None
        t = self._table(table)
        return pd.DataFrame(self.get_table_as_dict(t), columns=list(t.columns))

    # -- members -----------------------------------------------------------------------------
    def _elements(self) -> list[tuple[Table, Table, str, str]]:
        """(element table, association, dataset column, element column) for each element type in the bag."""
        s = self.model.ml_schema
        out = []
        for t in self.model.tables():
            if t.name == "Dataset_Dataset" and t.schema.name == s:
                out.append((self.model.schemas[s].tables["Dataset"], t, "Dataset", "Nested_Dataset"))
                continue
            if not t.name.startswith("Dataset_"):
                continue
            fks = [fk for fk in t.foreign_keys if fk.foreign_key_columns[0].name not in SYSTEM_COLUMNS]
            refs = {fk.foreign_key_columns[0].name: fk.doc["referenced_columns"][0] for fk in fks}
            element = t.name[len("Dataset_") :]
            if (
                len(fks) == 2
                and refs.get("Dataset", {}).get("table_name") == "Dataset"
                and refs.get(element, {}).get("table_name") == element
                and self.model.has_table(element)
                and not self.model.is_vocabulary(element)
                and element != "Execution"
            ):
                out.append((self.model.name_to_table(element), t, "Dataset", element))
        return out

    def list_dataset_members(self, recurse: bool = False, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Member rows by table name, as of the bag's version (with ``recurse``, nested datasets' too)."""
        out: dict[str, list[dict[str, Any]]] = {}
        seen: dict[str, set[str]] = {}
        todo, visited = [self.dataset_rid], set()
        while todo:
            rid = todo.pop(0)
            if rid in visited:
                continue
            visited.add(rid)
            for element, assoc, dcol, ecol in self._elements():
                wanted = {r[ecol] for r in self.get_table_as_dict(assoc) if r[dcol] == rid}
                rows = [r for r in self.get_table_as_dict(element) if r["RID"] in wanted]
                bucket = out.setdefault(element.name, [])
                done = seen.setdefault(element.name, set())
                for r in rows:
                    if r["RID"] not in done and (limit is None or len(bucket) < limit):
                        bucket.append(r)
                        done.add(r["RID"])
                if recurse and element.name == "Dataset":
                    todo += [r["RID"] for r in rows]
        return out

    def list_dataset_children(self, recurse: bool = False) -> list[DatasetBag]:
        """Nested datasets as bag views (with ``recurse``, all descendants)."""
        links = self.get_table_as_dict(f"{self.model.ml_schema}:Dataset_Dataset")
        out: list[str] = []
        todo = [self.dataset_rid]
        while todo:
            rid = todo.pop(0)
            children = [r["Nested_Dataset"] for r in links if r["Dataset"] == rid and r["Nested_Dataset"] not in out]
            out += children
            if recurse:
                todo += children
        return [DatasetBag(self.path, rid) for rid in out]

    def asset_path(self, asset: str | dict[str, Any]) -> Path:
        """The local file of an asset row (a row dict or its RID); present once materialized.

        Its name is the row's ``Filename``; its folder is ``data/asset/<Table>`` (or a folder of the
        RID in there, when another file of the table in the bag has the same name).
        """
        rid = asset if isinstance(asset, str) else str(asset["RID"])
        if self._assets is None:  # once per bag: a user asks for each file in turn
            flat = self.info.get(_LAYOUT_KEY) == _LAYOUT
            self._assets = {}
            for t in self.model.asset_tables():
                rows = self._rows(t)
                placed = _asset_files(t.name, rows) if flat else {}
                self._assets.update({str(r["RID"]): (t.name, r, placed.get(str(r["RID"]))) for r in rows})
        found = self._assets.get(rid)
        if found is None:
            raise DerivaMLNotFoundError(f"No asset {rid} in the bag {self.path}.")
        table, row, path = found
        # Not placed: a row without a file, or a bag made before (each file in a folder of its RID).
        return self.path / "data" / (path or f"asset/{table}/{rid}/{_asset_name(row)}")

    def list_feature_values(self, table: str | Table, feature_name: str) -> list[dict[str, Any]]:
        """The values of a feature of a member table, as of the bag's version."""
        t = self._table(table)
        name = f"Execution_{t.name}_{feature_name}"
        if not self.model.has_table(name):
            raise DerivaMLNotFoundError(
                f"The bag {self.path} has no feature {feature_name!r} of {t.name} (no table {name})."
            )
        return self.get_table_as_dict(name)

    def validate(self) -> None:
        """Check every file against the manifests with bdbag (raises naming the files that fail)."""
        from pytest_deriva.dataset import _bdbag

        _bdbag.validate_bag(self.path, None, fast=False)

    @property
    def database_catalog(self) -> BagCatalog:
        """A read-only, catalog-like view of the bag (``lookup_dataset``, ``lookup_term``, ...)."""
        return BagCatalog(self)

    def __repr__(self) -> str:
        return f"DatasetBag(rid={self.dataset_rid!r}, path={str(self.path)!r})"


class BagCatalog:
    """The part of the ``DerivaML`` interface a bag can answer, read-only.

    Offers ``model``, ``lookup_dataset``, ``find_datasets``, ``lookup_term``,
    ``list_vocabulary_terms``, ``get_table_as_dict``, ``list_feature_values`` and ``asset_path``,
    so code written against a live catalog can read a downloaded dataset instead.
    """

    def __init__(self, bag: DatasetBag) -> None:
        self.bag = bag
        self.model = bag.model
        self.ml_schema = bag.model.ml_schema

    def lookup_dataset(self, dataset_rid: str) -> DatasetBag:
        return DatasetBag(self.bag.path, dataset_rid)

    def find_datasets(self) -> list[DatasetBag]:
        return [DatasetBag(self.bag.path, r["RID"]) for r in self.bag.get_table_as_dict(f"{self.ml_schema}:Dataset")]

    def _vocab(self, table: str | Table) -> Table:
        t = self.bag._table(table)
        if not self.model.is_vocabulary(t):
            raise DerivaMLTableTypeError("vocabulary", t.name)
        return t

    def list_vocabulary_terms(self, table: str | Table) -> list[VocabularyTerm]:
        from pytest_deriva.ml.records import VocabularyTerm

        return [VocabularyTerm._from_row(r) for r in self.bag.get_table_as_dict(self._vocab(table))]

    def lookup_term(self, table: str | Table, term_name: str) -> VocabularyTerm:
        """A term the bag holds, by name or synonym (the bag holds the terms its rows use)."""
        terms = self.list_vocabulary_terms(table)
        key = term_name.casefold()
        for term in terms:
            if term.name.casefold() == key or key in (s.casefold() for s in term.synonyms):
                return term
        raise DerivaMLInvalidTerm(
            self._vocab(table).name,
            term_name,
            f"not in this bag (it holds {', '.join(t.name for t in terms) or 'no terms'})",
        )

    def get_table_as_dict(self, table: str | Table) -> list[dict[str, Any]]:
        return self.bag.get_table_as_dict(table)

    def list_feature_values(self, table: str | Table, feature_name: str) -> list[dict[str, Any]]:
        return self.bag.list_feature_values(table, feature_name)

    def asset_path(self, asset: str | dict[str, Any]) -> Path:
        return self.bag.asset_path(asset)


def _folded(name: str) -> str:
    """A name as a case-insensitive, normalization-insensitive file system (macOS, Windows) compares it."""
    return unicodedata.normalize("NFC", name).casefold()


def _asset_files(table: str, rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Where each row with a file (a URL) puts it in a bag, under ``data/``, by RID:
    ``asset/<Table>/<Filename>``, or ``asset/<Table>/<RID>/<Filename>`` when the name would clash
    with another file of those rows (the same name, or the name of a RID folder)."""
    named = [(str(r["RID"]), _asset_name(r)) for r in rows if r.get("URL")]
    counts = Counter(_folded(name) for _, name in named)
    rids = {_folded(rid) for rid, _ in named}
    return {
        rid: f"asset/{table}/{name}"
        if counts[key := _folded(name)] == 1 and key not in rids
        else f"asset/{table}/{rid}/{name}"
        for rid, name in named
    }


def _asset_name(row: dict[str, Any]) -> str:
    """The file name an asset row's file gets in a bag: its Filename, checked to stay in its folder."""
    from pytest_deriva._filenames import checked_file_name

    name = row.get("Filename") or str(row["URL"]).rstrip("/").rsplit("/", 1)[-1]
    return checked_file_name(str(name), f"Filename of asset {row.get('RID')}")
