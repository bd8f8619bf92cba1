"""The catalog port: the ERMrest-shaped interface the ML layer talks to.

Two adapters implement it: the embedded store (:mod:`pytest_deriva.catalog.embedded`, SQLite
plus a content-addressed file store) and, for a DERIVA server, the ``deriva`` client. The ML
layer sees only this protocol, so a run means the same thing in either place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_deriva.catalog.model import Model, Table

__all__ = ["CatalogPort", "ObjectStore", "StoredObject", "Where", "select_in"]

#: Row filter: column -> value (equality), list/tuple of values (IN) or None (IS NULL).
Where = Mapping[str, Any]


@dataclass(frozen=True)
class StoredObject:
    """A file in the object store: its URL (what asset rows record), MD5 (hex) and length."""

    url: str
    md5: str
    length: int


@runtime_checkable
class ObjectStore(Protocol):
    """Files by URL, verified by MD5 (Hatrac on a server)."""

    def put(
        self, source: Path, namespace: str, filename: str, md5: str | None = None, *, take: bool = False
    ) -> StoredObject:
        """Store ``source`` under ``/hatrac/<namespace>/<md5>.<filename>`` and return where. With
        ``take`` the caller removes ``source`` right after, so a local store may keep the file itself."""
        ...

    def put_bytes(self, data: bytes, namespace: str, filename: str) -> StoredObject:
        """Store bytes from memory under ``/hatrac/<namespace>/<md5>.<filename>``."""
        ...

    def get(self, url: str, dest: Path) -> Path:
        """Write the object at ``url`` to ``dest``, verifying its checksum."""
        ...

    def exists(self, url: str) -> bool: ...

    def fetch_url(self, url: str) -> str:
        """The absolute URL a bag's ``fetch.txt`` lists for an object URL this store gave."""
        ...


@runtime_checkable
class CatalogPort(Protocol):
    """Entity and model operations on one catalog.

    Writes and transactions: on the embedded store, :meth:`transaction` makes a group of writes
    atomic. On a server it cannot (ERMrest has no multi-request transactions), so the contract
    every caller keeps is the weaker one both adapters honour: writes are made in order (a row
    before the rows that refer to it) and are idempotent where a repeat is possible (unique keys
    with ``on_conflict_skip``), so a crash or a concurrent run never leaves a duplicate workflow,
    asset row or link, only work still to do. Adapters split long value lists (URL length on a
    server, parameter limits in SQLite) and repeat requests after passing faults themselves.
    """

    #: Whether a missing ``deriva-ml`` schema is made on first use (a new folder) rather than
    #: refused with advice to run ``pytest-deriva catalog init`` (a server).
    creates_on_demand: bool

    #: The folder the catalog lives in when it is on this machine, else None.
    local_path: Path | None

    #: Whether :meth:`transaction` makes a group of writes atomic (the embedded store), so that a
    #: caller may write a row in its final state together with what it refers to.
    atomic_transactions: bool

    @property
    def uri(self) -> str:
        """Where this catalog is: a folder path for the embedded store, an ERMrest URL for a server."""
        ...

    @property
    def hostname(self) -> str:
        """Host name for records that name the catalog (``localhost`` for the embedded store)."""
        ...

    @property
    def catalog_id(self) -> str:
        """The catalog number on a server, the folder for the embedded store."""
        ...

    @property
    def catalog_uuid(self) -> str:
        """An identifier of this catalog that changes when a catalog is made anew at the same place."""
        ...

    @property
    def objects(self) -> ObjectStore:
        """The object store beside the catalog."""
        ...

    @property
    def model(self) -> Model: ...

    @property
    def request_count(self) -> int:
        """Network requests made so far (0 for a catalog on this machine)."""
        ...

    def web_url(self, table: str, rid: str) -> str | None:
        """A web page showing row ``rid`` of ``table`` (``schema:table``), where there is one."""
        ...

    def refresh_model(self) -> Model:
        """Re-read the model (another process may have added tables)."""
        ...

    def create_schema(self, name: str, comment: str | None = None) -> None: ...

    def create_table(self, schema: str, table_doc: Mapping[str, Any], exists_ok: bool = False) -> None: ...

    def create_tables(self, schema: str, table_docs: Sequence[Mapping[str, Any]], exists_ok: bool = False) -> None:
        """Create several tables (in a new or existing schema) whose foreign keys may form cycles."""
        ...

    def set_annotations(self, schema: str | None, table: str | None, annotations: Mapping[str, Any]) -> None:
        """Set annotations (key by key) on the catalog (``schema`` None), a schema, or a table."""
        ...

    def insert(
        self,
        schema: str,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        on_conflict_skip: bool = False,
    ) -> list[dict[str, Any]]:
        """Insert rows, filling defaults and system columns; return the rows as stored.

        With ``on_conflict_skip``, rows that collide with an existing key are skipped and not returned.
        """
        ...

    def update(
        self, schema: str, table: str, rows: Iterable[Mapping[str, Any]], *, returning: bool = True
    ) -> list[dict[str, Any]]:
        """Update rows identified by their ``RID``; only the columns given change.

        Returns the rows as stored, or nothing with ``returning=False`` (a server then saves a request).
        """
        ...

    def select(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        columns: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def delete(self, schema: str, table: str, where: Where) -> int: ...

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        """The ``(schema, table)`` holding ``rid``; raises if there is none."""
        ...

    def snapshot(self) -> str:
        """The id of the catalog's current state; ``select(..., snapshot=id)`` reads it later."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: atomic where the adapter can make them so (see the class docstring)."""
        ...

    def close(self) -> None: ...


def select_in(
    catalog: CatalogPort, table: Table, column: str, values: Iterable[Any], snapshot: str | None = None
) -> list[dict[str, Any]]:
    """Rows of ``table`` whose ``column`` is one of ``values`` (each asked once), live or at a
    snapshot; the adapter splits a long list as its transport needs."""
    wanted = list(dict.fromkeys(values))
    if not wanted:
        return []
    return catalog.select(table.schema.name, table.name, {column: wanted}, snapshot=snapshot)
