"""A read-only view of an ERMrest catalog model document.

Both adapters hold their model as the JSON document ERMrest serves at ``/schema``; this module
gives that document the small object interface the ML layer needs (schemas, tables, columns,
keys, foreign keys, and the DerivaML notions of vocabulary, asset and association tables)
without importing the ``deriva`` client, which costs a quarter of a second at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pytest_deriva.exceptions import DerivaMLSchemaError, DerivaMLTableNotFound, DerivaMLValidationError

__all__ = [
    "ASSET_COLUMNS",
    "SYSTEM_COLUMNS",
    "VOCABULARY_COLUMNS",
    "Column",
    "ForeignKey",
    "Key",
    "Model",
    "Schema",
    "Table",
    "check_columns",
    "check_required",
    "find_table",
]

SYSTEM_COLUMNS = frozenset({"RID", "RCT", "RMT", "RCB", "RMB"})
VOCABULARY_COLUMNS = frozenset({"ID", "URI", "Name", "Description", "Synonyms"})
ASSET_COLUMNS = frozenset({"URL", "Filename", "Description", "Length", "MD5"})
# Schemas that belong to the system or to DerivaML itself, never a user's domain schema.
SYSTEM_SCHEMAS = frozenset({"public", "_ermrest", "_acl_admin", "WWW", "www"})


@dataclass(eq=False)
class Column:
    """One column of a table."""

    table: Table
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def typename(self) -> str:
        return str(self.doc["type"]["typename"])

    @property
    def base_typename(self) -> str:
        """The storage type: ``text`` for ``markdown`` or ``ermrest_rid``, and so on."""
        t = self.doc["type"]
        if t.get("is_array"):
            return "array"
        while "base_type" in t:
            t = t["base_type"]
        return str(t["typename"])

    @property
    def is_array(self) -> bool:
        return bool(self.doc["type"].get("is_array"))

    @property
    def nullok(self) -> bool:
        return bool(self.doc.get("nullok", True))

    @property
    def default(self) -> Any:
        return self.doc.get("default")

    @property
    def comment(self) -> str | None:
        return self.doc.get("comment")

    def __repr__(self) -> str:
        return f"<Column {self.table.name}.{self.name} {self.typename}>"


@dataclass(eq=False)
class Key:
    """A uniqueness constraint."""

    table: Table
    doc: dict[str, Any]

    @property
    def unique_columns(self) -> list[Column]:
        return [self.table.columns[c] for c in self.doc["unique_columns"]]


@dataclass(eq=False)
class ForeignKey:
    """A reference from columns of ``table`` to a key of ``pk_table``."""

    table: Table
    doc: dict[str, Any]

    @property
    def foreign_key_columns(self) -> list[Column]:
        return [self.table.columns[c["column_name"]] for c in self.doc["foreign_key_columns"]]

    @cached_property
    def pk_table(self) -> Table:
        ref = self.doc["referenced_columns"][0]
        return self.table.schema.model.schemas[ref["schema_name"]].tables[ref["table_name"]]

    @property
    def referenced_columns(self) -> list[Column]:
        pk = self.pk_table
        return [pk.columns[c["column_name"]] for c in self.doc["referenced_columns"]]

    @property
    def name(self) -> tuple[str, str]:
        names = self.doc.get("names") or [[self.table.schema.name, f"{self.table.name}_fkey"]]
        return (names[0][0], names[0][1])


@dataclass(eq=False)
class Table:
    """A table, with its columns, keys and foreign keys."""

    schema: Schema
    doc: dict[str, Any]
    columns: dict[str, Column] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = {c["name"]: Column(self, c) for c in self.doc.get("column_definitions", [])}

    @property
    def name(self) -> str:
        return str(self.doc["table_name"])

    @property
    def comment(self) -> str | None:
        return self.doc.get("comment")

    @cached_property
    def keys(self) -> list[Key]:
        return [Key(self, k) for k in self.doc.get("keys", [])]

    @cached_property
    def foreign_keys(self) -> list[ForeignKey]:
        return [ForeignKey(self, fk) for fk in self.doc.get("foreign_keys", [])]

    @property
    def referenced_by(self) -> list[ForeignKey]:
        """Foreign keys elsewhere in the model that point at this table."""
        return [fk for t in self.schema.model.tables() for fk in t.foreign_keys if fk.pk_table is self]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema.name}:{self.name}"

    def __repr__(self) -> str:
        return f"<Table {self.qualified_name}>"


@dataclass(eq=False)
class Schema:
    """A schema: a named set of tables."""

    model: Model
    name: str
    doc: dict[str, Any]
    tables: dict[str, Table] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tables = {name: Table(self, t) for name, t in self.doc.get("tables", {}).items()}


class Model:
    """The catalog model, built from an ERMrest ``/schema`` document."""

    def __init__(self, doc: Mapping[str, Any], ml_schema: str = "deriva-ml") -> None:
        self.doc = dict(doc)
        self.ml_schema = ml_schema
        self.schemas: dict[str, Schema] = {
            name: Schema(self, name, s) for name, s in self.doc.get("schemas", {}).items()
        }
        # The model is immutable (a change makes a new Model), so answers can be kept.
        self._names: dict[str, Table] = {}
        self._associations: dict[tuple[int, int], tuple[Table, str, str]] = {}

    # -- navigation -------------------------------------------------------------------------
    def tables(self) -> Iterator[Table]:
        for s in self.schemas.values():
            yield from s.tables.values()

    @property
    def domain_schemas(self) -> list[str]:
        """Every schema that is neither a system schema, the ML schema nor pytest-deriva's own
        (its run index and push records; on a server ``catalog init`` makes it before any domain table)."""
        return sorted(s for s in self.schemas if s not in SYSTEM_SCHEMAS and s not in (self.ml_schema, "pytest-deriva"))

    def name_to_table(self, table: str | Table) -> Table:
        """Find a table by name: ``Name``, or ``schema:Name`` to be explicit.

        Domain schemas are searched before the ML schema; a name in two domain schemas is an error.
        """
        if isinstance(table, Table):
            return table
        found = self._names.get(table)
        if found is not None:
            return found
        found = self._lookup(table)
        self._names[table] = found
        return found

    def _lookup(self, table: str) -> Table:
        if ":" in table:
            sname, _, tname = table.partition(":")
            try:
                return self.schemas[sname].tables[tname]
            except KeyError:
                raise DerivaMLTableNotFound(table) from None
        hits = [s.tables[table] for s in self.schemas.values() if table in s.tables]
        if not hits:
            raise DerivaMLTableNotFound(
                table,
                f"No table named {table!r} in the catalog (tables: {', '.join(sorted(t.name for t in self.tables()))})",
            )
        if len(hits) > 1:
            domain = [t for t in hits if t.schema.name != self.ml_schema]
            if len(domain) == 1:
                return domain[0]
            raise DerivaMLSchemaError(
                f"Table name {table!r} is ambiguous: {[t.qualified_name for t in hits]}; name it as 'schema:table'."
            )
        return hits[0]

    def has_table(self, table: str) -> bool:
        try:
            self.name_to_table(table)
        except DerivaMLTableNotFound:
            return False
        return True

    # -- DerivaML notions -------------------------------------------------------------------
    def is_vocabulary(self, table: str | Table) -> bool:
        t = self.name_to_table(table)
        return t.columns.keys() >= VOCABULARY_COLUMNS

    def is_asset(self, table: str | Table) -> bool:
        try:
            t = self.name_to_table(table)
        except DerivaMLTableNotFound:
            return False
        return t.columns.keys() >= ASSET_COLUMNS

    def asset_metadata(self, table: str | Table) -> set[str]:
        """The metadata columns of an asset table: all but the system and asset columns."""
        t = self.name_to_table(table)
        return set(t.columns) - SYSTEM_COLUMNS - ASSET_COLUMNS

    def is_association(self, table: str | Table) -> bool:
        """A table whose own columns all belong to foreign keys, with at least two of them."""
        t = self.name_to_table(table)
        fkcols = {c.name for fk in t.foreign_keys for c in fk.foreign_key_columns}
        own = set(t.columns) - SYSTEM_COLUMNS
        return len(t.foreign_keys) >= 2 and own <= fkcols | {"Sequence"}

    def find_association(self, table: str | Table, other: str | Table) -> tuple[Table, str, str]:
        """The association table linking ``table`` and ``other``.

        Returns the table, the name of its column referencing ``table`` and the name of its column
        referencing ``other``. The table named ``<table>_<other>`` is preferred when several link them.
        """
        t = self.name_to_table(table)
        o = self.name_to_table(other)
        cached = self._associations.get((id(t), id(o)))
        if cached is not None:
            return cached
        result = self._find_association(t, o)
        self._associations[(id(t), id(o))] = result
        return result

    def _find_association(self, t: Table, o: Table) -> tuple[Table, str, str]:
        found: list[tuple[Table, str, str]] = []
        for candidate in self.tables():
            to_t = [fk for fk in candidate.foreign_keys if fk.pk_table is t]
            to_o = [fk for fk in candidate.foreign_keys if fk.pk_table is o]
            if not to_t or not to_o or candidate is t or candidate is o:
                continue
            if t is o:
                continue
            found.append((candidate, to_t[0].foreign_key_columns[0].name, to_o[0].foreign_key_columns[0].name))
        if not found:
            raise DerivaMLSchemaError(f"No association table links {t.name} and {o.name}.")
        for f in found:
            if f[0].name in (f"{t.name}_{o.name}", f"{o.name}_{t.name}"):
                return f
        return found[0]

    def vocabularies(self) -> list[Table]:
        return [t for t in self.tables() if self.is_vocabulary(t)]

    def asset_tables(self) -> list[Table]:
        return [t for t in self.tables() if self.is_asset(t)]


def check_columns(t: Table, names: Iterable[str]) -> None:
    """Refuse column names ``t`` does not have, naming the ones it has."""
    unknown = [n for n in names if n not in t.columns]
    if unknown:
        raise DerivaMLValidationError(
            f"Table {t.qualified_name} has no column {', '.join(map(repr, unknown))}; "
            f"its columns are {', '.join(t.columns)}."
        )


def check_required(t: Table, row: Mapping[str, Any]) -> None:
    """Refuse a row that leaves a not-null column without a value or a default (before any write)."""
    for c in t.columns.values():
        if c.name in SYSTEM_COLUMNS or c.nullok:
            continue
        if row.get(c.name) is None and (c.name in row or c.default is None):
            raise DerivaMLValidationError(
                f"Column {t.qualified_name}.{c.name} needs a value (it is not nullable and has no default)."
            )


def find_table(model: Model, refresh: Callable[[], Model], schema: str, table: str) -> Table:
    """``schema:table`` in the kept model, else in the model read again (another process may have
    added it); the adapters' one way to find a table."""
    for current in (model, None):
        m = current if current is not None else refresh()
        s = m.schemas.get(schema)
        if s is not None and table in s.tables:
            return s.tables[table]
    raise DerivaMLTableNotFound(f"{schema}:{table}")


_TABLE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_table_name(name: str) -> None:
    """Refuse a name that cannot name a table (as DerivaML names tables)."""
    if not _TABLE_NAME_RE.fullmatch(name or ""):
        raise DerivaMLValidationError(
            f"{name!r} cannot name a table; start with a letter and use letters, digits and '_' (e.g. 'Model_Weights')."
        )
