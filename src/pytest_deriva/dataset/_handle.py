"""Dataset, version, bag and feature operations of the ``DerivaML`` handle (mixed into it).

Domain tables, dataset element types, datasets and their members, versions (each pinning a
catalog snapshot), bags, features and registered files. Everything goes through the catalog
port, so it means the same on the embedded store and on a server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_deriva._rid import decode_rid, is_rid, split_snapshot, validate_rid
from pytest_deriva.catalog.model import SYSTEM_COLUMNS, Table, check_table_name
from pytest_deriva.catalog.port import select_in
from pytest_deriva.dataset.dataset import Dataset
from pytest_deriva.dataset.spec import DatasetSpec
from pytest_deriva.dataset.version import DatasetHistory, DatasetVersion, VersionPart
from pytest_deriva.enums import MLVocab
from pytest_deriva.exceptions import (
    DerivaMLCycleError,
    DerivaMLDataError,
    DerivaMLDatasetNotFound,
    DerivaMLException,
    DerivaMLNotFoundError,
    DerivaMLSchemaError,
    DerivaMLTableNotFound,
    DerivaMLValidationError,
)

if TYPE_CHECKING:
    from pytest_deriva.dataset.bag import DatasetBag
    from pytest_deriva.dataset.feature import Feature, FeatureRecord
    from pytest_deriva.dataset.files import FileSpec
    from pytest_deriva.ml.deriva_ml import DerivaMLBase as _Base
else:
    _Base = object

__all__ = ["DatasetElement", "DatasetMixin"]

# Rows per query when selecting by a list of values (SQLite allows 32766 parameters).

DatasetLike = str | Dataset | DatasetSpec
Members = Iterable[str] | Mapping[str, Iterable[str]]


class DatasetElement(NamedTuple):
    """A table whose rows can be dataset members, and its ``Dataset_<Table>`` association."""

    table: Table
    association: Table
    dataset_column: str
    element_column: str


def _rid_key(row: Mapping[str, Any]) -> int:
    rid = row.get("RID")
    return decode_rid(rid) if isinstance(rid, str) and is_rid(rid) else -1


class DatasetMixin(_Base):
    """Datasets and features on the catalog handle. ``DerivaML`` inherits these methods."""

    _element_cache: tuple[int, dict[str, DatasetElement]] | None = None

    # ======================================================================================
    # Domain tables
    # ======================================================================================
    def create_table(
        self,
        table: str | Mapping[str, Any],
        columns: Iterable[Mapping[str, Any]] = (),
        *,
        references: Iterable[str | Table] = (),
        keys: Iterable[Sequence[str]] = (),
        fkeys: Iterable[tuple[Sequence[str], str, str, Sequence[str]]] = (),
        comment: str = "",
        schema: str | None = None,
    ) -> Table:
        """Create a plain table in the domain schema (or ``schema``).

        Either pass a whole ERMrest table document (``deriva.core.ermrest_model.Table.define(...)``
        or :func:`pytest_deriva.catalog.schema.plain_table`), or a name with column documents
        (``Column.define`` or :func:`pytest_deriva.catalog.schema.column`), unique ``keys``, foreign
        keys ``(columns, schema, table, referenced columns)``, and ``references``: tables to point at,
        each adding a column named like the table that holds a RID of it::

            ml.create_table("Subject", [column("Name", "text", nullok=False)], keys=[["Name"]])
            ml.create_table("Image", [column("Width", "int4")], references=["Subject"])

        Raises:
            DerivaMLValidationError: a name that cannot name a table, or columns that clash.
            DerivaMLException: a table of that name already exists.
            DerivaMLTableNotFound: a foreign key names a table that does not exist.
        """
        from pytest_deriva.catalog import schema as ddl

        schema = schema or self.default_schema
        if isinstance(table, str):
            cols = [dict(c) for c in columns]
            fks = [(list(c), s, t, list(r)) for c, s, t, r in fkeys]
            for ref in references:
                rt = self._table(ref)
                cols.append(ddl.column(rt.name, "text"))
                fks.append(([rt.name], rt.schema.name, rt.name, ["RID"]))
            doc = ddl.plain_table(table, cols, keys=keys, fkeys=fks, comment=comment or None)
        else:
            if any((columns, references, keys, fkeys)):
                raise DerivaMLValidationError(
                    "create_table takes either a table document or a name with columns, not both."
                )
            doc = dict(table)
        name = str(doc.get("table_name", ""))
        check_table_name(name)
        if self.catalog.refresh_model().has_table(name):
            raise DerivaMLException(f"A table named {name!r} already exists; choose another name.")
        column_names = [c["name"] for c in doc.get("column_definitions", [])]
        dupes = sorted({n for n in column_names if column_names.count(n) > 1})
        if dupes:
            raise DerivaMLValidationError(f"Table {name!r} would have two columns named {dupes}; rename one.")
        for fk in doc.get("foreign_keys", []):
            ref = fk["referenced_columns"][0]
            target_schema = ref.get("schema_name") or schema
            if ref["table_name"] == name and target_schema in (schema, "placeholder"):
                continue
            try:
                target = self._table(f"{target_schema}:{ref['table_name']}")
            except DerivaMLException:
                raise DerivaMLTableNotFound(
                    f"{target_schema}:{ref['table_name']}",
                    f"A foreign key of {name!r} references a table that does not exist; create it first",
                ) from None
            missing = [c["column_name"] for c in fk["referenced_columns"] if c["column_name"] not in target.columns]
            if missing:
                raise DerivaMLValidationError(
                    f"A foreign key of {name!r} references columns {missing} that {target.name} does not have."
                )
        self.catalog.create_table(schema, doc)
        return self._table(f"{schema}:{name}")

    def _domain_table(self, table: str | Table) -> Table:
        t = self._table(table)
        if t.schema.name not in self.domain_schemas:
            raise DerivaMLValidationError(
                f"{t.name} is a table of the {t.schema.name!r} schema, which DerivaML maintains; write to it "
                "through its own operations (create_dataset, add_term, executions), not insert_records."
            )
        return t

    def insert_records(self, table: str | Table, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert rows into a domain table in one transaction; the rows as stored, with their RIDs."""
        t = self._domain_table(table)
        return self.catalog.insert(t.schema.name, t.name, rows)

    def update_records(self, table: str | Table, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Change rows of a domain table, each identified by its ``RID``; only the columns given change.

        Dataset versions made before keep the old values; the next version has the new ones.
        """
        t = self._domain_table(table)
        return self.catalog.update(t.schema.name, t.name, rows)

    def get_table_as_dict(self, table: str | Table) -> list[dict[str, Any]]:
        """Every row of a table, oldest first."""
        t = self._table(table)
        return self.catalog.select(t.schema.name, t.name, order_by=["RCT", "RID"])

    # ======================================================================================
    # Dataset element types
    # ======================================================================================
    def _dataset_elements(self) -> dict[str, DatasetElement]:
        """Element types by qualified table name, ``Dataset`` (nested datasets) included."""
        model = self.model
        cached = self._element_cache
        if cached is not None and cached[0] == id(model):
            return cached[1]
        s = self.ml_schema
        dataset_t = model.schemas[s].tables["Dataset"]
        out: dict[str, DatasetElement] = {
            dataset_t.qualified_name: DatasetElement(
                dataset_t, model.schemas[s].tables["Dataset_Dataset"], "Dataset", "Nested_Dataset"
            )
        }
        for t in model.tables():
            if not t.name.startswith("Dataset_") or t.name == "Dataset_Dataset":
                continue
            fks = [fk for fk in t.foreign_keys if fk.foreign_key_columns[0].name not in SYSTEM_COLUMNS]
            if len(fks) != 2 or any(len(fk.foreign_key_columns) != 1 for fk in fks):
                continue
            to_dataset = [fk for fk in fks if fk.pk_table is dataset_t]
            others = [fk for fk in fks if fk.pk_table is not dataset_t]
            if len(to_dataset) != 1 or len(others) != 1:
                continue
            element = others[0].pk_table
            if (
                t.name != f"Dataset_{element.name}"
                or model.is_vocabulary(element)
                or (element.schema.name == s and element.name == "Execution")
            ):
                continue
            out[element.qualified_name] = DatasetElement(
                element, t, to_dataset[0].foreign_key_columns[0].name, others[0].foreign_key_columns[0].name
            )
        self._element_cache = (id(model), out)
        return out

    def add_dataset_element_type(self, element: str | Table) -> Table:
        """Let rows of ``element`` be dataset members: creates ``Dataset_<Element>`` (columns
        ``Dataset``, ``<Element>``) in the ML schema; returns the association table. Idempotent."""
        t = self._table(element)
        found = self._dataset_elements().get(t.qualified_name)
        if found is not None:
            return found.association
        if self.model.is_vocabulary(t) or (t.schema.name == self.ml_schema and t.name in ("Execution", "Dataset")):
            raise DerivaMLValidationError(
                f"{t.name} cannot hold dataset members (vocabularies and executions are not members)."
            )
        from pytest_deriva.catalog import schema as ddl

        name = f"Dataset_{t.name}"
        if self.model.has_table(name):
            raise DerivaMLSchemaError(f"A table {name!r} exists but is not an association of Dataset and {t.name}.")
        s = self.ml_schema
        self.catalog.create_table(
            s, ddl.association_table(name, ("Dataset", s, "Dataset", "RID"), (t.name, t.schema.name, t.name, "RID"))
        )
        return self._table(f"{s}:{name}")

    def list_dataset_element_types(self) -> list[Table]:
        """The tables whose rows can be dataset members (``Dataset`` itself for nested datasets)."""
        self.catalog.refresh_model()
        return [e.table for e in self._dataset_elements().values()]

    # ======================================================================================
    # Datasets
    # ======================================================================================
    def _check_dataset(self, dataset: DatasetLike) -> str:
        """The RID of a dataset (a RID, ``Dataset`` or ``DatasetSpec``), checked to name one."""
        if isinstance(dataset, Dataset):
            return dataset.dataset_rid
        rid = dataset.rid if isinstance(dataset, DatasetSpec) else dataset
        validate_rid(rid)
        rid = split_snapshot(rid)[0]
        try:
            found = self.resolve_rid(rid)
        except DerivaMLNotFoundError:
            raise DerivaMLDatasetNotFound(
                rid, "No such row in the catalog; ml.find_datasets() lists the datasets. Dataset not found"
            ) from None
        if found.table.name != "Dataset" or found.table.schema.name != self.ml_schema:
            raise DerivaMLDatasetNotFound(
                rid,
                f"RID {rid} is a row of {found.table.name}, not a dataset; ml.find_datasets() lists the datasets. "
                "Not a dataset",
            )
        return rid

    def _dataset_row(self, rid: str) -> dict[str, Any]:
        return self.catalog.select(self.ml_schema, "Dataset", {"RID": rid})[0]

    def _canonical_dataset_types(self, dataset_types: str | Iterable[str] | None) -> list[str]:
        if dataset_types is None:
            return []
        types = [dataset_types] if isinstance(dataset_types, str) else list(dataset_types)
        return list(dict.fromkeys(self.lookup_term(MLVocab.dataset_type, t).name for t in types))

    def create_dataset(
        self,
        dataset_types: str | Iterable[str] | None = None,
        description: str = "",
        execution_rid: str | None = None,
        version: DatasetVersion | str | None = None,
    ) -> Dataset:
        """Create a dataset with ``Dataset_Type`` terms and a first version (default ``0.1.0``).

        With ``execution_rid`` (``execution.create_dataset`` passes its own) the dataset is linked
        to that execution in ``Dataset_Execution`` and its version records it.

        Raises:
            DerivaMLInvalidTerm: a type that is not a ``Dataset_Type`` term (nothing is written).
        """
        types = self._canonical_dataset_types(dataset_types)
        first = DatasetVersion(0, 1, 0) if version is None else DatasetVersion.parse(version)
        if execution_rid is not None:
            self._expect_table(execution_rid, "Execution", "an execution")
        return self._new_dataset(types, description, execution_rid, first)

    def _new_dataset(
        self,
        types: list[str],
        description: str,
        execution_rid: str | None,
        first: DatasetVersion,
        fill: Callable[[str], None] | None = None,
    ) -> Dataset:
        """Insert a dataset (checked arguments), let ``fill`` add members, then pin the first version."""
        s = self.ml_schema
        cat = self.catalog
        with cat.transaction():
            rid = cat.insert(s, "Dataset", [{"Description": description, "Deleted": False}])[0]["RID"]
            cat.insert(s, "Dataset_Dataset_Type", [{"Dataset": rid, "Dataset_Type": t} for t in types])
            if execution_rid is not None:
                cat.insert(s, "Dataset_Execution", [{"Dataset": rid, "Execution": execution_rid}])
            if fill is not None:
                fill(rid)
            self._insert_versions({rid: first}, "Initial dataset creation.", execution_rid)
        return Dataset(self._full, rid, description, execution_rid)

    def lookup_dataset(self, dataset: DatasetLike, deleted: bool = False) -> Dataset:
        """The dataset a RID (or ``DatasetSpec``) names.

        Raises:
            DerivaMLDatasetNotFound: the RID names no dataset, or a deleted one (unless ``deleted``).
        """
        rid = self._check_dataset(dataset)
        row = self._dataset_row(rid)
        if row.get("Deleted") and not deleted:
            raise DerivaMLDatasetNotFound(rid, "The dataset is deleted; pass deleted=True to see it anyway")
        return Dataset(self._full, rid, row.get("Description") or "")

    def find_datasets(self, deleted: bool = False) -> list[Dataset]:
        """Every dataset, oldest first (deleted ones only with ``deleted``)."""
        rows = self.catalog.select(self.ml_schema, "Dataset", order_by=["RCT", "RID"])
        return [Dataset(self._full, r["RID"], r.get("Description") or "") for r in rows if deleted or not r["Deleted"]]

    def delete_dataset(self, dataset: DatasetLike, recurse: bool = False) -> None:
        """Mark a dataset deleted (its rows and versions stay, so recorded runs still resolve it);
        with ``recurse``, its nested datasets too."""
        rid = self._check_dataset(dataset)
        rids = [rid] + (self._related(rid, children=True, recurse=True) if recurse else [])
        self.catalog.update(self.ml_schema, "Dataset", [{"RID": r, "Deleted": True} for r in rids])

    def _dataset_types_of(self, rid: str) -> list[str]:
        rows = self.catalog.select(self.ml_schema, "Dataset_Dataset_Type", {"Dataset": rid})
        return [r["Dataset_Type"] for r in sorted(rows, key=_rid_key)]

    def _add_dataset_types(self, dataset: DatasetLike, dataset_types: str | Iterable[str]) -> None:
        rid = self._check_dataset(dataset)
        types = self._canonical_dataset_types(dataset_types)
        self.catalog.insert(
            self.ml_schema,
            "Dataset_Dataset_Type",
            [{"Dataset": rid, "Dataset_Type": t} for t in types],
            on_conflict_skip=True,
        )

    def _remove_dataset_type(self, dataset: DatasetLike, dataset_type: str) -> None:
        rid = self._check_dataset(dataset)
        name = self.lookup_term(MLVocab.dataset_type, dataset_type).name
        self.catalog.delete(self.ml_schema, "Dataset_Dataset_Type", {"Dataset": rid, "Dataset_Type": name})

    # ======================================================================================
    # Versions
    # ======================================================================================
    def _insert_versions(
        self, versions: Mapping[str, DatasetVersion], description: str | Mapping[str, str], execution_rid: str | None
    ) -> list[dict[str, Any]]:
        """New ``Dataset_Version`` rows, made current, pinned to the snapshot that includes them.

        Call inside a transaction with the changes the versions are to include.
        """
        s = self.ml_schema
        cat = self.catalog
        with cat.transaction():
            rows = cat.insert(
                s,
                "Dataset_Version",
                [
                    {
                        "Dataset": rid,
                        "Version": str(v),
                        "Description": description if isinstance(description, str) else description[rid],
                        "Execution": execution_rid,
                    }
                    for rid, v in versions.items()
                ],
            )
            cat.update(s, "Dataset", [{"RID": r["Dataset"], "Version": r["RID"]} for r in rows])
            # The snapshot after these writes: reading at it gives the members and values as they
            # are now, whatever changes later.
            snapshot = cat.snapshot()
            cat.update(s, "Dataset_Version", [{"RID": r["RID"], "Snapshot": snapshot} for r in rows])
        for r in rows:
            r["Snapshot"] = snapshot
        return rows

    def _current_version_row(self, rid: str) -> dict[str, Any] | None:
        pointer = self._dataset_row(rid).get("Version")
        if pointer:
            rows = self.catalog.select(self.ml_schema, "Dataset_Version", {"RID": pointer})
            if rows:
                return rows[0]
        rows = self.catalog.select(self.ml_schema, "Dataset_Version", {"Dataset": rid})
        return max(rows, key=lambda r: DatasetVersion.parse(r["Version"]), default=None)

    def dataset_version(self, dataset: DatasetLike) -> DatasetVersion:
        """A dataset's current (latest) version."""
        rid = self._check_dataset(dataset)
        row = self._current_version_row(rid)
        return DatasetVersion(0, 0, 0) if row is None else DatasetVersion.parse(row["Version"])

    def dataset_history(self, dataset: DatasetLike) -> list[DatasetHistory]:
        """Every version of a dataset, oldest first, with description, execution and snapshot."""
        rid = self._check_dataset(dataset)
        rows = self.catalog.select(self.ml_schema, "Dataset_Version", {"Dataset": rid})
        return sorted((DatasetHistory._from_row(r) for r in rows), key=lambda h: h.dataset_version)

    def _version_row(self, rid: str, version: DatasetVersion | str | None) -> dict[str, Any]:
        """The version row of ``rid`` at ``version`` (``None``: current), with its snapshot."""
        if version is None:
            row = self._current_version_row(rid)
        else:
            wanted = str(DatasetVersion.parse(version))
            found = self.catalog.select(self.ml_schema, "Dataset_Version", {"Dataset": rid, "Version": wanted})
            row = found[0] if found else None
            if row is None:
                known = ", ".join(str(h.dataset_version) for h in self.dataset_history(rid)) or "none"
                raise DerivaMLNotFoundError(
                    f"Dataset {rid} has no version {wanted}; its versions are: {known}. "
                    "Name one of them (or no version, for the current one)."
                )
        if row is None or not row.get("Snapshot"):
            raise DerivaMLDataError(
                f"Dataset {rid} has no version pinned to a catalog snapshot; make one with "
                f"ml.increment_dataset_version({rid!r}, 'minor')."
            )
        return row

    def _snapshot_of(self, rid: str, version: DatasetVersion | str | None) -> str | None:
        """The snapshot to read a dataset at: ``None`` (the live catalog) without a version."""
        return None if version is None else str(self._version_row(rid, version)["Snapshot"])

    def increment_dataset_version(
        self,
        dataset: DatasetLike,
        component: VersionPart | str,
        description: str = "",
        execution_rid: str | None = None,
    ) -> DatasetVersion:
        """Make a new version of a dataset, pinning its members and their values as they are now.

        The datasets it is nested in get a new version too (their content changed with it), by
        the same component. Returns the dataset's new version.
        """
        rid = self._check_dataset(dataset)
        try:
            part = VersionPart(component)
        except ValueError:
            raise DerivaMLValidationError(
                f"{component!r} is not a version part; use 'major', 'minor' or 'patch'."
            ) from None
        if execution_rid is not None:
            self._expect_table(execution_rid, "Execution", "an execution")
        with self.catalog.transaction():
            return self._bump(rid, part, description, execution_rid)

    def _bump(self, rid: str, part: VersionPart, description: str, execution_rid: str | None) -> DatasetVersion:
        targets = [rid, *self._related(rid, children=False, recurse=True)]
        versions = {r: self.dataset_version(r).increment_version(part) for r in targets}
        descriptions = {
            r: description if r == rid else f"Nested dataset {rid} is now {versions[rid]}. {description}".strip()
            for r in targets
        }
        self._insert_versions(versions, descriptions, execution_rid)
        return versions[rid]

    # ======================================================================================
    # Members
    # ======================================================================================

    def _related(self, rid: str, *, children: bool, recurse: bool, snapshot: str | None = None) -> list[str]:
        """Nested datasets (``children``) or the datasets ``rid`` is nested in, breadth first."""
        here, there = ("Dataset", "Nested_Dataset") if children else ("Nested_Dataset", "Dataset")
        table = self._table(f"{self.ml_schema}:Dataset_Dataset")
        out: list[str] = []
        frontier = [rid]
        while frontier:
            links = select_in(self.catalog, table, here, frontier, snapshot=snapshot)
            frontier = [x for x in dict.fromkeys(r[there] for r in links) if x not in out and x != rid]
            out += frontier
            if not recurse:
                break
        return out

    def _group_members(self, members: Members, validate: bool) -> dict[str, tuple[DatasetElement, list[str]]]:
        """Members by element table, each checked to be a row of an element type."""
        elements = self._dataset_elements()
        grouped: dict[str, tuple[DatasetElement, list[str]]] = {}

        def element_of(t: Table, rid: str | None) -> DatasetElement:
            e = elements.get(t.qualified_name)
            if e is None:
                names = ", ".join(sorted(x.table.name for x in elements.values()))
                what = f"RID {rid} is a row of {t.name}" if rid else f"Table {t.name} is"
                raise DerivaMLValidationError(
                    f"{what}, which is not a dataset element type (element types: {names}). Make it one with "
                    f"ml.add_dataset_element_type({t.name!r}), or leave it out."
                )
            return e

        if isinstance(members, str):
            raise DerivaMLValidationError(f"members must be a list of RIDs or a dict, not the string {members!r}.")
        if isinstance(members, Mapping):
            for name, rids in members.items():
                t = self._table(name)
                e = element_of(t, None)
                wanted = [validate_rid(r) for r in ([rids] if isinstance(rids, str) else rids)]
                if validate:
                    found = {r["RID"] for r in select_in(self.catalog, t, "RID", wanted)}
                    missing = [r for r in wanted if r not in found]
                    if missing:
                        raise DerivaMLValidationError(
                            f"{', '.join(missing)} {'is not a row' if len(missing) == 1 else 'are not rows'} "
                            f"of {t.name}; give RIDs of {t.name} rows."
                        )
                grouped.setdefault(t.qualified_name, (e, []))[1].extend(wanted)
        else:
            for rid in members:
                rid = validate_rid(rid)
                t = self.resolve_rid(rid).table
                grouped.setdefault(t.qualified_name, (element_of(t, rid), []))[1].append(rid)
        return {k: (e, list(dict.fromkeys(rids))) for k, (e, rids) in grouped.items()}

    def add_dataset_members(
        self,
        dataset: DatasetLike,
        members: Members,
        validate: bool = True,
        description: str = "",
        execution_rid: str | None = None,
    ) -> None:
        """Add members: a list of RIDs (their tables are looked up) or ``{table: [RIDs]}``.

        A member that is a dataset is nested (``Dataset_Dataset``). If anything was added, the
        dataset's minor version goes up, and so do the versions of the datasets it is nested in.

        Raises:
            DerivaMLValidationError: a RID of a table that is not an element type, or (with
                ``validate``) not a row of the table named; nothing is written.
            DerivaMLCycleError: a dataset that would contain itself.
        """
        rid = self._check_dataset(dataset)
        if self._dataset_row(rid).get("Deleted"):
            raise DerivaMLDatasetNotFound(rid, "The dataset is deleted; add members to another one")
        grouped = self._group_members(members, validate)
        nested = grouped.get(f"{self.ml_schema}:Dataset")
        for child in nested[1] if nested else []:
            if child == rid:
                raise DerivaMLCycleError([rid, rid], "A dataset cannot be a member of itself")
            below = self._related(child, children=True, recurse=True)
            if rid in below:
                raise DerivaMLCycleError(
                    [rid, child, rid], f"Dataset {rid} is nested in {child} already; nesting {child} in it"
                )
        if execution_rid is not None:
            self._expect_table(execution_rid, "Execution", "an execution")
        cat = self.catalog
        with cat.transaction():
            added = 0
            for e, rids in grouped.values():
                a = e.association
                added += len(
                    cat.insert(
                        a.schema.name,
                        a.name,
                        [{e.dataset_column: rid, e.element_column: m} for m in rids],
                        on_conflict_skip=True,
                    )
                )
            if added:
                self._bump(rid, VersionPart.minor, description or f"Added {added} member(s).", execution_rid)

    def delete_dataset_members(
        self,
        dataset: DatasetLike,
        members: Members,
        description: str = "",
        execution_rid: str | None = None,
    ) -> None:
        """Remove members (RIDs, or ``{table: [RIDs]}``); the minor version goes up as for additions.

        Raises:
            DerivaMLValidationError: a RID that is not a member (nothing is removed).
        """
        rid = self._check_dataset(dataset)
        grouped = self._group_members(members, validate=False)
        for e, rids in grouped.values():
            a = e.association
            present = {
                r[e.element_column]
                for r in select_in(self.catalog, a, e.element_column, rids)
                if r[e.dataset_column] == rid
            }
            missing = [m for m in rids if m not in present]
            if missing:
                raise DerivaMLValidationError(
                    f"{', '.join(missing)} {'is not a member' if len(missing) == 1 else 'are not members'} "
                    f"of dataset {rid}; ml.list_dataset_members({rid!r}) lists its members."
                )
        if execution_rid is not None:
            self._expect_table(execution_rid, "Execution", "an execution")
        cat = self.catalog
        with cat.transaction():
            removed = 0
            for e, rids in grouped.values():
                a = e.association
                removed += cat.delete(a.schema.name, a.name, {e.dataset_column: rid, e.element_column: rids})
            if removed:
                self._bump(rid, VersionPart.minor, description or f"Removed {removed} member(s).", execution_rid)

    def list_dataset_members(
        self,
        dataset: DatasetLike,
        recurse: bool = False,
        limit: int | None = None,
        version: DatasetVersion | str | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Member rows by table name (every element type is a key; ``Dataset`` holds nested datasets).

        Without ``version`` the catalog is read as it is now; with one, as it was when that
        version was made: its members, with their values of then. With ``recurse``, the members of
        nested datasets are included too (each row once). ``limit`` caps the rows per table.

        Raises:
            DerivaMLNotFoundError: the version does not exist (the message lists those that do).
        """
        rid = self._check_dataset(dataset)
        snapshot = self._snapshot_of(rid, version)
        elements = self._dataset_elements()
        out: dict[str, list[dict[str, Any]]] = {e.table.name: [] for e in elements.values()}
        seen: dict[str, set[str]] = {name: set() for name in out}
        todo, visited = [rid], set()
        while todo:
            current = todo.pop(0)
            if current in visited:
                continue
            visited.add(current)
            for e in elements.values():
                links = select_in(self.catalog, e.association, e.dataset_column, [current], snapshot=snapshot)
                rows = select_in(self.catalog, e.table, "RID", [r[e.element_column] for r in links], snapshot=snapshot)
                rows.sort(key=_rid_key)
                bucket, done = out[e.table.name], seen[e.table.name]
                for r in rows:
                    if r["RID"] not in done and (limit is None or len(bucket) < limit):
                        bucket.append(r)
                        done.add(r["RID"])
                if recurse and e.table.name == "Dataset" and e.table.schema.name == self.ml_schema:
                    todo += [r["RID"] for r in rows]
        return out

    def list_dataset_children(
        self, dataset: DatasetLike, recurse: bool = False, version: DatasetVersion | str | None = None
    ) -> list[Dataset]:
        """Datasets nested in this one (with ``recurse``, all descendants), at ``version`` if given."""
        rid = self._check_dataset(dataset)
        rids = self._related(rid, children=True, recurse=recurse, snapshot=self._snapshot_of(rid, version))
        return self._datasets(rids)

    def list_dataset_parents(
        self, dataset: DatasetLike, recurse: bool = False, version: DatasetVersion | str | None = None
    ) -> list[Dataset]:
        """Datasets this one is nested in (with ``recurse``, all ancestors), at ``version`` if given."""
        rid = self._check_dataset(dataset)
        rids = self._related(rid, children=False, recurse=recurse, snapshot=self._snapshot_of(rid, version))
        return self._datasets(rids)

    def _datasets(self, rids: list[str]) -> list[Dataset]:
        rows = {r["RID"]: r for r in select_in(self.catalog, self._table(f"{self.ml_schema}:Dataset"), "RID", rids)}
        return [Dataset(self._full, r, rows[r].get("Description") or "") for r in rids if r in rows]

    # ======================================================================================
    # Bags
    # ======================================================================================
    def download_dataset_bag(self, dataset: DatasetSpec | str | Dataset, materialize: bool | None = None) -> DatasetBag:
        """A version of a dataset as a validated BDBag in the cache (see :mod:`pytest_deriva.dataset.bag`).

        ``dataset`` is a :class:`DatasetSpec` (RID, version, materialize) or a RID (current version).
        A version already downloaded is a cache hit: only the dataset and version are looked up;
        nothing is fetched or written.
        With ``materialize`` (the spec's by default) the asset files are fetched from the object
        store and every file is checked against the bag's checksums.

        Raises:
            DerivaMLDatasetNotFound: the RID names no dataset.
            DerivaMLNotFoundError: the version does not exist (the message lists those that do).
            DerivaMLDataError: a file could not be fetched or fails its checksum (named).
        """
        from pytest_deriva.dataset.bag import download_dataset_bag

        if isinstance(dataset, Dataset):
            spec = DatasetSpec(rid=dataset.dataset_rid)
        elif isinstance(dataset, str):
            spec = DatasetSpec(rid=dataset)
        else:
            spec = dataset
        rid = self._check_dataset(spec)
        row = self._version_row(rid, spec.version)
        return download_dataset_bag(self._full, rid, row, spec.materialize if materialize is None else materialize)

    def validate_dataset_spec(self, spec: DatasetSpec) -> None:
        """Check, without writing anything, that a spec names a dataset and an existing version."""
        rid = self._check_dataset(spec)
        self._version_row(rid, spec.version)

    # ======================================================================================
    # Features
    # ======================================================================================
    def create_feature(
        self,
        target_table: str | Table,
        feature_name: str,
        terms: Iterable[str | Table] | None = None,
        assets: Iterable[str | Table] | None = None,
        metadata: Iterable[str | Table | Mapping[str, Any]] | None = None,
        optional: Iterable[str] | None = None,
        comment: str = "",
    ) -> Feature:
        """Define a feature: the table ``Execution_<Target>_<Feature>`` and the ``Feature_Name`` term.

        Args:
            target_table: The table whose rows the values describe.
            feature_name: The feature's name (letters, digits, ``_``).
            terms: Vocabularies; each adds a column named like it holding a term name.
            assets: Asset tables; each adds a column named like it holding an asset RID.
            metadata: Column documents (``column("Score", "float4")``), or tables (a RID column).
            optional: Value columns that may be left empty.
            comment: The feature's description.

        Returns:
            The :class:`Feature` (its ``feature_table`` is the new table).
        """
        from pytest_deriva.dataset.feature import feature_table_definition

        check_table_name(feature_name)
        target = self._table(target_table)
        term_tables = [self._vocab(t) for t in terms or []]
        asset_tables = [self._asset_table(a) for a in assets or []]
        meta: list[Mapping[str, Any] | Table] = [
            m if isinstance(m, Mapping) else self._table(m) for m in metadata or []
        ]
        name = f"Execution_{target.name}_{feature_name}"
        if self.catalog.refresh_model().has_table(name):
            raise DerivaMLException(
                f"Feature {feature_name!r} of {target.name} exists already (table {name}); "
                f"use ml.lookup_feature({target.name!r}, {feature_name!r})."
            )
        doc = feature_table_definition(
            target, feature_name, self.ml_schema, term_tables, asset_tables, meta, optional or [], comment
        )
        schema = target.schema.name if target.schema.name in self.domain_schemas else self.default_schema
        with self.catalog.transaction():
            self.catalog.create_table(schema, doc)
            self.catalog.insert(
                self.ml_schema,
                MLVocab.feature_name,
                [{"Name": feature_name, "Description": comment or f"Feature {feature_name} of {target.name}."}],
                on_conflict_skip=True,
            )
        with self._terms_lock:
            self._terms.pop(f"{self.ml_schema}:{MLVocab.feature_name}", None)
        return self.lookup_feature(target, feature_name)

    def find_features(self, table: str | Table | None = None) -> list[Feature]:
        """Every feature (of ``table``, if given)."""
        from pytest_deriva.dataset.feature import Feature, find_features

        target = None if table is None else self._table(table)
        return [
            Feature(self._full, ft, t, name)
            for ft, t, name in find_features(self.model, self.ml_schema)
            if target is None or t is target
        ]

    def lookup_feature(self, table: str | Table, feature_name: str) -> Feature:
        """A feature of a table by name.

        Raises:
            DerivaMLNotFoundError: naming the table's features and how to create one.
        """
        t = self._table(table)
        for attempt in (0, 1):
            if attempt:
                self.catalog.refresh_model()
                t = self._table(t.qualified_name)
            for f in self.find_features(t):
                if f.feature_name == feature_name:
                    return f
        known = ", ".join(f.feature_name for f in self.find_features(t)) or "none"
        raise DerivaMLNotFoundError(
            f"Table {t.name} has no feature {feature_name!r} (its features: {known}); "
            f"create it with ml.create_feature({t.name!r}, {feature_name!r}, ...)."
        )

    def feature_record_class(self, table: str | Table, feature_name: str) -> type[FeatureRecord]:
        """The pydantic :class:`FeatureRecord` class of a feature (see :meth:`Feature.feature_record_class`)."""
        return self.lookup_feature(table, feature_name).feature_record_class()

    def list_feature_values(self, table: str | Table, feature_name: str) -> list[FeatureRecord]:
        """Every recorded value of a feature, oldest first, as records (asset columns hold asset RIDs)."""
        feature = self.lookup_feature(table, feature_name)
        cls = feature.feature_record_class()
        ft = feature.feature_table
        rows = self.catalog.select(ft.schema.name, ft.name, order_by=["RCT", "RID"])
        return [cls.model_construct(**{k: r[k] for k in cls.model_fields if k in r}) for r in rows]

    # ======================================================================================
    # Files
    # ======================================================================================
    def add_files(
        self,
        files: Iterable[FileSpec | Mapping[str, Any]],
        dataset_types: str | Iterable[str] | None = None,
        description: str = "",
        execution_rid: str | None = None,
    ) -> Dataset:
        """Register files in the ``File`` asset table (by URL, MD5 and length; nothing is copied) and
        make a dataset of them, typed ``File`` plus ``dataset_types``.

        A file already registered under the same URL and MD5 is reused. Each file's ``file_types``
        are ``Asset_Type`` terms recorded besides ``File``.

        Raises:
            DerivaMLInvalidTerm: an unknown dataset or file type (nothing is written).
            DerivaMLValidationError: no files, or a URL registered before with another MD5.
        """
        from pytest_deriva.dataset.files import FileSpec

        specs = [f if isinstance(f, FileSpec) else FileSpec.model_validate(dict(f)) for f in files]
        if not specs:
            raise DerivaMLValidationError("add_files needs at least one FileSpec.")
        types = self._canonical_dataset_types(["File", *self._canonical_dataset_types(dataset_types)])
        file_types = {
            s.url: list(dict.fromkeys(["File", *(self.lookup_term(MLVocab.asset_type, t).name for t in s.file_types)]))
            for s in specs
        }
        file_t = self._table(f"{self.ml_schema}:File")
        existing = {r["URL"]: r for r in select_in(self.catalog, file_t, "URL", [s.url for s in specs])}
        for s in specs:
            old = existing.get(s.url)
            if old is not None and old["MD5"] != s.md5:
                raise DerivaMLValidationError(
                    f"{s.url} is registered already (File {old['RID']}) with MD5 {old['MD5']}, not {s.md5}; "
                    "a changed file needs a new URL."
                )
        if execution_rid is not None:
            self._expect_table(execution_rid, "Execution", "an execution")
        from pytest_deriva._filenames import checked_file_name

        for s in specs:  # a file name must not lead out of the folder it is downloaded into
            checked_file_name(s.filename, f"File name of {s.url}")
        cat = self.catalog
        s_ml = self.ml_schema
        with cat.transaction():
            new = cat.insert(
                s_ml,
                "File",
                [
                    {
                        "URL": s.url,
                        "Filename": s.filename,
                        "Length": s.length,
                        "MD5": s.md5,
                        "Description": s.description,
                    }
                    for s in {spec.url: spec for spec in specs}.values()
                    if s.url not in existing
                ],
            )
            rids = {r["URL"]: r["RID"] for r in [*existing.values(), *new]}
            assoc, col, _ = self.model.find_association(file_t, MLVocab.asset_type.value)
            cat.insert(
                assoc.schema.name,
                assoc.name,
                [{col: rids[url], "Asset_Type": t} for url, ts in file_types.items() for t in ts],
                on_conflict_skip=True,
            )
            files_rids = list(dict.fromkeys(rids.values()))

            def fill(dataset_rid: str) -> None:
                cat.insert(s_ml, "Dataset_File", [{"Dataset": dataset_rid, "File": r} for r in files_rids])

            dataset = self._new_dataset(types, description, execution_rid, DatasetVersion(0, 1, 0), fill)
        return dataset
