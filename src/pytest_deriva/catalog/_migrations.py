"""Migrations of the embedded store: a store made by an older version is brought to this one's format.

A store's format is ``PRAGMA user_version`` of its ``catalog.sqlite`` (the ``format`` row of
``_ermrest_meta`` says the same in words). The formats so far:

- **1** (``pytest-deriva-embedded-1``, development builds of 2026-11-27, for half an hour):
  history written by Python, RIDs from a table. Not migrated: refused with the advice to use the
  version that made it.
- **0**: format 2 as written before the store carried its version in ``user_version`` (the row
  says ``pytest-deriva-embedded-2``; 2026-11-27 to 2026-12-01): history by triggers, RIDs reserved
  in blocks. One made before the catalog set-up became DerivaML 1.30's (commit 8ad0729) lacks
  what a new store has: the ``WWW`` schema, the catalog's Chaise annotations, asset tables'
  visible columns, and ``Dataset_Version.Version`` and ``.Dataset`` nullable (in the model and
  in SQLite, where they were ``NOT NULL``).
- **2**: the current format, ``user_version`` 2.

:data:`MIGRATIONS` are the steps, in order, each from one format to the next (0 to 2; then 2 to
3, when there is a 3). The embedded store (:mod:`pytest_deriva.catalog.embedded`) applies them
when it opens an older store it may write: under the catalog's lock, after a copy of the
database is made beside it (see :func:`migrate`), all steps and the new version in one
transaction, so a step that fails (or a process killed in the middle) leaves the store as it was.

A step is a function of the store's connection (inside that transaction, foreign keys off so a
table can be rebuilt) and of the catalog, for the model document and for what ``pytest-deriva
catalog init`` does: a step that only adds what a catalog we set up has runs that, which is safe
in any later step too because it adds and never replaces.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_deriva.catalog import schema as ddl
from pytest_deriva.catalog.model import ASSET_COLUMNS, SYSTEM_COLUMNS, Model
from pytest_deriva.catalog.port import CatalogPort
from pytest_deriva.catalog.setup import init_catalog
from pytest_deriva.exceptions import DerivaMLConfigurationError, DerivaMLDataError

__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "UNMARKED",
    "Migration",
    "describe",
    "format_name",
    "format_number",
    "migrate",
    "plan",
    "store_version",
]

#: The format this version writes.
FORMAT_VERSION = 2
#: The version of a format-2 store made before it carried ``user_version``.
UNMARKED = 0
_FORMAT_RE = re.compile(r"pytest-deriva-embedded-(\d+)")

Step = Callable[[sqlite3.Connection, CatalogPort], list[str]]


def format_name(version: int) -> str:
    """The ``format`` row of a store of ``version``."""
    return f"pytest-deriva-embedded-{version}"


def format_number(row: str) -> int | None:
    """The format a ``format`` row names, or None for a row of no format of ours."""
    found = _FORMAT_RE.fullmatch(row)
    return int(found[1]) if found else None


def store_version(row_number: int, user_version: int) -> int:
    """A store's version from its ``format`` row and ``PRAGMA user_version``, which agree, except
    in stores made before the latter was set (0), whose row says which format they are. Where they
    disagree otherwise, the older is taken (and no migration starts from a mix)."""
    if not user_version:
        return UNMARKED if row_number == 2 else row_number
    return min(row_number, user_version)


def describe(version: int) -> str:
    """A store's format as messages name it."""
    return "format 2 without its version number" if version == UNMARKED else f"format {version}"


@dataclass(frozen=True)
class Migration:
    """One step: a store of ``source`` becomes one of ``target``."""

    source: int
    target: int
    apply: Step
    #: Whether this version reads a store of ``source`` as it is (a read-only open, which cannot migrate).
    readable_before: bool


# -- format 0 -> 2 -----------------------------------------------------------------------------------
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load_doc(conn: sqlite3.Connection) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'model'").fetchone()[0])
    return doc


def _save_doc(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Store the model document; bumping its version makes every reader of the catalog re-read it."""
    conn.execute("UPDATE _ermrest_meta SET value = ? WHERE key = 'model'", (json.dumps(doc),))
    conn.execute("UPDATE _ermrest_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'model_version'")


def _rebuild_table(conn: sqlite3.Connection, qualified: str, edit: Callable[[str], str]) -> None:
    """Re-create a table with ``edit`` applied to its ``CREATE TABLE``, keeping its rows, triggers
    and indexes: SQLite's procedure for a change ``ALTER TABLE`` cannot make
    (https://www.sqlite.org/lang_altertable.html#otheralter). Needs foreign keys off."""
    found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (qualified,)).fetchone()
    if found is None:
        raise DerivaMLDataError(f"table {qualified} is in the model but not in the database")
    others = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            (qualified,),
        )
    ]
    create = edit(found[0])
    temporary = f"{qualified}:migrating"
    head = f"CREATE TABLE {_q(qualified)} ("
    if not create.startswith(head):
        raise DerivaMLDataError(f"table {qualified} is not defined as this version made it: {found[0][:80]}")
    conn.execute(f"CREATE TABLE {_q(temporary)} ({create[len(head) :]}")
    # The history triggers are re-created only afterwards, so copying rows records no change.
    conn.execute(f"INSERT INTO {_q(temporary)} SELECT * FROM {_q(qualified)}")
    conn.execute(f"DROP TABLE {_q(qualified)}")
    conn.execute(f"ALTER TABLE {_q(temporary)} RENAME TO {_q(qualified)}")
    for sql in others:
        conn.execute(sql)
    broken = conn.execute(f"PRAGMA foreign_key_check({_q(qualified)})").fetchone()
    if broken is not None:
        raise DerivaMLDataError(f"a row of {qualified} refers to a missing row of {broken[2]} after rebuilding it")


def _ml_schemas(doc: dict[str, Any]) -> list[str]:
    """The schemas holding DerivaML's tables (``deriva-ml`` unless a project named its own)."""
    wanted = {"Workflow", "Execution", "Dataset", "Dataset_Version"}
    return sorted(name for name, s in doc["schemas"].items() if wanted <= s["tables"].keys())


def _nullable_dataset_version(conn: sqlite3.Connection, schema: str) -> list[str]:
    """``Dataset_Version.Version`` and ``.Dataset`` nullable, as DerivaML 1.30 makes them."""
    doc = _load_doc(conn)
    columns = doc["schemas"][schema]["tables"]["Dataset_Version"]["column_definitions"]
    changed = [c for c in columns if c["name"] in ("Version", "Dataset") and not c.get("nullok", True)]
    if not changed:
        return []
    qualified = f"{schema}:Dataset_Version"

    def edit(create: str) -> str:
        for c in changed:
            declared = f"{_q(c['name'])} TEXT NOT NULL"
            if create.count(declared) != 1:
                raise DerivaMLDataError(f"column {qualified}.{c['name']} is not declared as {declared}")
            create = create.replace(declared, f"{_q(c['name'])} TEXT")
        return create

    _rebuild_table(conn, qualified, edit)
    for c in changed:
        c["nullok"] = True
    _save_doc(conn, doc)
    return [f"made {qualified} {' and '.join(c['name'] for c in changed)} nullable"]


def _domain_asset_annotations(catalog: CatalogPort, ml_schemas: list[str]) -> list[str]:
    """Asset tables of the project's own schemas get the Chaise annotations a new one gets (those
    they lack; none is replaced), as ``catalog init`` does for the ``deriva-ml`` ones."""
    done: list[str] = []
    model: Model = catalog.refresh_model()
    for t in model.asset_tables():
        if t.schema.name in (*ml_schemas, "public", "WWW"):
            continue
        metadata = [c for c in t.doc["column_definitions"] if c["name"] not in SYSTEM_COLUMNS | ASSET_COLUMNS]
        present = t.doc.get("annotations") or {}
        wanted = ddl.asset_table(t.schema.name, t.name, metadata)["annotations"]
        add = {k: v for k, v in wanted.items() if k not in present}
        if add:
            catalog.set_annotations(t.schema.name, t.name, add)
            done.append(f"annotated {t.qualified_name} ({len(add)} annotations)")
    return done


def _to_2(conn: sqlite3.Connection, catalog: CatalogPort) -> list[str]:
    """What a store set up before DerivaML 1.30's catalog lacks: the set-up ``catalog init`` makes
    today (``WWW``, the catalog's and the asset tables' annotations) and nullable Dataset_Version
    columns, which ``catalog init`` never changes. A store without DerivaML's tables gets none of it
    (they are made whole when first used)."""
    schemas = _ml_schemas(_load_doc(conn))
    done: list[str] = []
    for schema in schemas:
        done += _nullable_dataset_version(conn, schema)
    for schema in schemas:
        done += init_catalog(catalog, schema)
    if schemas:
        done += _domain_asset_annotations(catalog, schemas)
    return done


#: Every step, in order.
MIGRATIONS: tuple[Migration, ...] = (Migration(UNMARKED, 2, _to_2, readable_before=True),)


def plan(version: int) -> list[Migration] | None:
    """The steps from ``version`` to :data:`FORMAT_VERSION`, or None where there is no way."""
    steps: list[Migration] = []
    while version != FORMAT_VERSION:
        step = next((m for m in MIGRATIONS if m.source == version), None)
        if step is None:
            return None
        steps.append(step)
        version = step.target
    return steps


# -- applying them ----------------------------------------------------------------------------------
def _backup_path(db: Path, version: int) -> Path:
    """``catalog.sqlite.bak-v<version>`` beside the database, or ``...-copy<n>`` if that exists
    (left by an earlier attempt, or by a store restored from it): a copy is never overwritten."""
    path = db.with_name(f"{db.name}.bak-v{version}")
    n = 2
    while path.exists():
        path = db.with_name(f"{db.name}.bak-v{version}-copy{n}")
        n += 1
    return path


def _back_up(db: Path, version: int) -> Path:
    """Copy the database as last committed (SQLite's online backup, so a store in WAL mode is
    copied whole) into one self-contained file beside it, written under a temporary name and
    synced before it gets its own."""
    target = _backup_path(db, version)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    source = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one file, without -wal or -shm
        finally:
            copy.close()
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return target


def _set_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("UPDATE _ermrest_meta SET value = ? WHERE key = 'format'", (format_name(version),))
    conn.execute(f"PRAGMA user_version = {int(version)}")


@contextmanager
def _foreign_keys_off(conn: sqlite3.Connection) -> Iterator[None]:
    # Rebuilding a table drops it, which with foreign keys on would delete (and check) what refers
    # to it. The pragma can only change outside a transaction.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def migrate(catalog: CatalogPort, conn: sqlite3.Connection, db: Path, version: int) -> tuple[Path, list[str]]:
    """Bring the store at ``db`` from ``version`` to :data:`FORMAT_VERSION`; where its copy is, and
    what was done.

    The caller holds the catalog's lock (so one process migrates) and has seen ``version`` under
    it; ``conn`` is the catalog's own connection, outside any transaction. The copy is made once
    the write transaction has begun: nothing can be committed between the copy and the migration.

    Raises:
        DerivaMLConfigurationError: no way from ``version``, the copy could not be made (nothing
            was changed), or a step failed (the store was left as it was; the copy is kept).
    """
    steps = plan(version)
    folder = db.parent
    if steps is None:
        raise DerivaMLConfigurationError(
            f"The catalog in {folder} was made by an older pytest-deriva ({describe(version)}), which this version "
            f"cannot migrate to format {FORMAT_VERSION}. Use the version that made it, or name another folder."
        )
    backup: Path | None = None
    done: list[str] = []
    try:
        with _foreign_keys_off(conn), catalog.transaction():
            backup = _back_up(db, version)
            for step in steps:
                done += step.apply(conn, catalog)
                _set_version(conn, step.target)
    except Exception as e:
        if backup is None:
            raise DerivaMLConfigurationError(
                f"Could not copy the catalog in {folder} before migrating it from {describe(version)} to format "
                f"{FORMAT_VERSION}: {_one_line(e)}. Nothing was changed; make room or fix the folder's "
                "permissions, then open it again."
            ) from e
        raise DerivaMLConfigurationError(
            f"Could not migrate the catalog in {folder} from {describe(version)} to format {FORMAT_VERSION}: "
            f"{_one_line(e)}. It was left as it was (a copy made before is {backup}); use the version that made "
            "it, or report this."
        ) from e
    return backup, done
