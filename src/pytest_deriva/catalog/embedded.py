"""The embedded catalog: ERMrest semantics on SQLite, with a file object store beside it.

Layout of a catalog folder (default ``.deriva/`` at the project root)::

    .deriva/
      .gitignore          "*": the folder keeps itself out of git, as .pytest_cache does
      catalog.sqlite      tables "<schema>:<table>", the model document, RIDs and history
      objects/            the object store (content addressed by MD5)

Several processes may write at once (pytest-xdist workers, Hydra launchers): the database runs
in WAL mode with a long busy timeout and every write is a ``BEGIN IMMEDIATE`` transaction.

A folder the store cannot use is refused with one line naming it and what to do, before anything
is written: a ``catalog.sqlite`` that is not a database, is truncated, is another program's, or
was made by a newer version (``PRAGMA user_version`` and the ``format`` row say which), and a
folder of other files. A store made by an older version is migrated when it is opened for
writing (:mod:`pytest_deriva.catalog._migrations`: under the catalog's lock, after a copy
``catalog.sqlite.bak-v<N>`` is made beside it, which is kept); opened read-only, it is read as it
is where this version can, else refused. A catalog that cannot be written (its folder or database
not writable, or without any write permission, which root would otherwise ignore), or opened with
``read_only=True``, is read through SQLite's read-only modes and refuses every write with
``DerivaMLReadOnlyError``.
RIDs come from one catalog-wide sequence, so a RID names one row in one table. Every write
appends the row as written to a history table under a snapshot number; reading "as of"
a snapshot replays that history, which is what dataset versions pin.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pytest_deriva._locks import file_lock
from pytest_deriva._rid import decode_rid, encode_rid, is_rid, split_snapshot
from pytest_deriva.catalog import _migrations
from pytest_deriva.catalog.model import SYSTEM_COLUMNS, Column, Model, Table, check_columns, find_table
from pytest_deriva.catalog.objectstore import FileObjectStore
from pytest_deriva.catalog.port import Where
from pytest_deriva.exceptions import (
    DerivaMLConfigurationError,
    DerivaMLDataError,
    DerivaMLNotFoundError,
    DerivaMLReadOnlyError,
    DerivaMLSchemaError,
    DerivaMLTableNotFound,
    DerivaMLValidationError,
)

__all__ = ["CATALOG_FILE", "EmbeddedCatalog", "is_embedded_catalog"]

CATALOG_FILE = "catalog.sqlite"
# The version of the layout of catalog.sqlite: in the "format" row and in PRAGMA user_version
# (which a later layout could keep even if it moved the row), so a newer catalog is recognized.
# Older ones are migrated; _migrations has their history.
_FORMAT_VERSION = _migrations.FORMAT_VERSION
_FORMAT = _migrations.format_name(_FORMAT_VERSION)
_logger = logging.getLogger("pytest_deriva")
_SQLITE_MAGIC = b"SQLite format 3\x00"
# RID numbers are reserved in blocks, one counter update per block instead of one per row.
_RID_BLOCK = 64
# RIDs start at 1-0000 so they have the familiar grouped form.
_FIRST_RID_NUMBER = 32**4
_GITIGNORE = "# Created by pytest-deriva automatically.\n*\n"

_SQL_TYPES = {
    "text": "TEXT",
    "int2": "INTEGER",
    "int4": "INTEGER",
    "int8": "INTEGER",
    "serial2": "INTEGER",
    "serial4": "INTEGER",
    "serial8": "INTEGER",
    "float4": "REAL",
    "float8": "REAL",
    "numeric": "REAL",
    "boolean": "INTEGER",
    "date": "TEXT",
    "timestamp": "TEXT",
    "timestamptz": "TEXT",
    "json": "TEXT",
    "jsonb": "TEXT",
    "array": "TEXT",
}
_JSON_TYPES = frozenset({"json", "jsonb", "array"})
# Types whose Python values go to SQLite unchanged.
_PLAIN_TYPES = frozenset({"text", "int2", "int4", "int8", "serial2", "serial4", "serial8", "float4", "float8"})
_K_RID, _K_TIME, _K_TEMPLATE, _K_VALUE = range(4)
_ON_DELETE = frozenset({"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"})


def _q(name: str) -> str:
    """Quote an identifier. Identifiers come from the model only; values are always parameters."""
    return '"' + name.replace('"', '""') + '"'


def _now() -> str:
    return datetime.now(UTC).isoformat()


_OWN_FILES = frozenset(
    {
        ".gitignore",
        ".lock",
        CATALOG_FILE,
        f"{CATALOG_FILE}-wal",
        f"{CATALOG_FILE}-shm",
        f"{CATALOG_FILE}-journal",
        "objects",
        "incoming",
        "servers",  # files of server catalogs' executions (see DerivaML's working folder)
    }
)
# The copy made before a migration: catalog.sqlite.bak-v<N> (see _migrations).
_BACKUP_PREFIX = f"{CATALOG_FILE}.bak-v"


def _catalog_lock(folder: Path) -> AbstractContextManager[None]:
    """The lock that serializes creating a catalog in ``folder``, switching it to WAL and migrating it."""
    return file_lock(folder / ".lock")


def _lit(text: str) -> str:
    """A SQL string literal (for trigger bodies, which cannot take parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _history_triggers(qualified: str, names: list[str], tdoc: Mapping[str, Any]) -> list[str]:
    """Triggers that append every inserted, updated or deleted row to ``_ermrest_history``.

    In the database itself, so no write can bypass the history, and at no extra round trip.
    """
    json_cols = {c["name"] for c in tdoc["column_definitions"] if Column(None, c).base_typename in _JSON_TYPES}  # type: ignore[arg-type]

    def row(ref: str) -> str:
        parts = [
            f"{_lit(n)}, {'json(' if n in json_cols else ''}{ref}.{_q(n)}{')' if n in json_cols else ''}" for n in names
        ]
        # json_object takes a bounded number of arguments; wide tables are merged from chunks.
        chunks = [f"json_object({', '.join(parts[i : i + 50])})" for i in range(0, len(parts), 50)]
        out = chunks[0]
        for chunk in chunks[1:]:
            out = f"json_patch({out}, {chunk})"
        return out

    base = _q(f"_history:{qualified}")
    table = _q(qualified)
    return [
        f'CREATE TRIGGER {base[:-1]}:i" AFTER INSERT ON {table} BEGIN '
        f'INSERT INTO _ermrest_history (tname, rid, row) VALUES ({_lit(qualified)}, NEW."RID", {row("NEW")}); END',
        f'CREATE TRIGGER {base[:-1]}:u" AFTER UPDATE ON {table} BEGIN '
        f'INSERT INTO _ermrest_history (tname, rid, row) VALUES ({_lit(qualified)}, NEW."RID", {row("NEW")}); END',
        f'CREATE TRIGGER {base[:-1]}:d" AFTER DELETE ON {table} BEGIN '
        f'INSERT INTO _ermrest_history (tname, rid, row) VALUES ({_lit(qualified)}, OLD."RID", NULL); END',
    ]


def is_embedded_catalog(path: Path) -> bool:
    """Whether ``path`` is a folder holding an embedded catalog."""
    return (Path(path) / CATALOG_FILE).is_file()


def _cannot_write(path: Path) -> bool:
    """Not writable by this process, or by nobody at all: a file or folder someone made read-only
    with ``chmod a-w`` is meant so, also for root (whom ``os.access`` lets write anyway)."""
    return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222


def _has_wal_content(db: Path) -> bool:
    wal = db.with_name(f"{db.name}-wal")
    return wal.is_file() and wal.stat().st_size > 0


class EmbeddedCatalog:
    """A catalog in a folder: SQLite for the tables, a file store for the objects.

    Args:
        path: The catalog folder. Created if it does not exist (unless ``create`` is False).
        create: Whether a missing catalog may be created.
        read_only: Open an existing catalog for reading only: every write raises
            ``DerivaMLReadOnlyError``. Also chosen when the folder or ``catalog.sqlite`` cannot be
            written (see :attr:`read_only_reason`).

    Raises:
        DerivaMLConfigurationError: the folder cannot be used (a file, another program's files, a
            corrupt, truncated or newer ``catalog.sqlite``); nothing has been written then.
    """

    hostname = "localhost"
    creates_on_demand = True
    atomic_transactions = True
    request_count = 0  # no network

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, read_only: bool = False) -> None:
        self.path = Path(path).expanduser().absolute()
        self.uri = str(self.path)
        self.catalog_id = str(self.path)
        self.local_path: Path | None = self.path
        db = self.path / CATALOG_FILE
        if self.path.exists() and not self.path.is_dir():
            raise DerivaMLConfigurationError(
                f"Catalog path {self.path} is a file, not a catalog folder; name a folder (default .deriva)."
            )
        if db.exists() and not db.is_file():
            raise DerivaMLConfigurationError(
                f"The catalog in {self.path} cannot be used: {CATALOG_FILE} is not a file. "
                "Name another folder for the catalog."
            )
        if not db.exists() and (read_only or not create):
            raise DerivaMLConfigurationError(
                f"{self.path} is not an embedded catalog (no {CATALOG_FILE} in it); name the folder that holds one"
                + (", as a read-only catalog is never created." if read_only else ", or let pytest-deriva create it.")
            )
        self._db_path = db
        #: Why the catalog is read-only (None: it is writable).
        self.read_only_reason: str | None = None
        if read_only:
            self.read_only_reason = "opened with read_only=True"
        elif db.exists() and _cannot_write(self.path):
            self.read_only_reason = "its folder is not writable"
        elif db.exists() and _cannot_write(db):
            self.read_only_reason = f"{CATALOG_FILE} is not writable"
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._depth = 0
        self._rids: list[int] = []  # reserved RID numbers, highest first
        self._plans: dict[tuple[int, bool], tuple[Table, str, list[tuple[str, str, int, Any, bool]]]] = {}
        self._rids_reserved_here = False  # reserved inside the open transaction
        self._model: Model | None = None
        self._model_version = -1
        #: The store's format: this version's, or (read-only only) an older one it reads as it is.
        self.format_version = _FORMAT_VERSION
        found: int | None = None
        if db.exists():
            self._check_file()
            found = self._inspect()
            self._init_db()
        else:
            self._create()
        self.objects = FileObjectStore(self.path, read_only=self.read_only)
        if found is not None and found != _FORMAT_VERSION:
            if self.read_only:
                self.format_version = found
            else:
                try:
                    self._migrate()
                except BaseException:
                    self.close()
                    raise

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (see :attr:`read_only_reason`)."""
        return self.read_only_reason is not None

    def _refuse_foreign_folder(self) -> None:
        if self._db_path.exists():
            return
        if (self.path / "objects").is_dir():  # made only after the database: this one was lost
            raise DerivaMLConfigurationError(
                f"The catalog in {self.path} has an object store (objects/) but no {CATALOG_FILE}: its database "
                f"is missing. Restore {CATALOG_FILE} from a backup, or move the folder away to start a new catalog."
            )
        strangers = [
            p.name for p in self.path.iterdir() if p.name not in _OWN_FILES and not p.name.startswith(_BACKUP_PREFIX)
        ]
        if strangers:
            raise DerivaMLConfigurationError(
                f"{self.path} is not an embedded catalog: it has files ({', '.join(sorted(strangers)[:5])}) "
                f"but no {CATALOG_FILE}. Name an empty or new folder for a new catalog."
            )

    def _create(self) -> None:
        """Make a new catalog, safely when several processes (xdist workers) start at once."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DerivaMLConfigurationError(f"Cannot create the catalog folder {self.path}: {e}") from e
        self._refuse_foreign_folder()  # before the lock file: a foreign folder is left untouched
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise DerivaMLConfigurationError(
                f"Cannot create a catalog in {self.path}: the folder is not writable. Name a folder you can write to."
            )
        with _catalog_lock(self.path):
            if not self._db_path.exists():
                self._refuse_foreign_folder()
                gi = self.path / ".gitignore"
                if not gi.exists():
                    gi.write_text(_GITIGNORE)
            self._init_db()

    # -- what the store cannot use -------------------------------------------------------------
    def _unusable(self, problem: str) -> DerivaMLConfigurationError:
        return DerivaMLConfigurationError(
            f"The catalog in {self.path} cannot be used: {CATALOG_FILE} {problem}. Restore it from a backup, "
            "or move the folder away (or name another) to start a new catalog; it was left as it is."
        )

    def _check_file(self) -> None:
        """Refuse a ``catalog.sqlite`` that is not a whole SQLite database, from its first bytes,
        before SQLite opens it (which would already write, for a writable catalog)."""
        db = self._db_path
        try:
            size = db.stat().st_size
            with db.open("rb") as f:
                header = f.read(100)
        except OSError as e:
            raise DerivaMLConfigurationError(
                f"Cannot read the catalog database {db}: {e.strerror}. Check its permissions."
            ) from e
        if size == 0:
            return  # made, but stopped before its first write: created below, or refused if read-only
        if not header.startswith(_SQLITE_MAGIC):
            raise self._unusable("is not an SQLite database (corrupt, or overwritten by another program)")
        if len(header) < 100:
            raise self._unusable(f"is truncated ({size} bytes)")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        # The header's page count is valid when the change counter and "version valid for" agree
        # (SQLite's file format, section 1.3.8); while the WAL holds changes, leave it to SQLite.
        if pages and header[24:28] == header[92:96] and not _has_wal_content(db) and size < pages * page_size:
            raise self._unusable(f"is truncated ({size} of its {pages * page_size} bytes)")

    def _database_error(self, e: sqlite3.Error, doing: str = "read") -> DerivaMLConfigurationError:
        """A one-line error for what SQLite said while opening or reading the catalog."""
        name = getattr(e, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return self._unusable(f"is corrupt ({e})")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return DerivaMLConfigurationError(
                f"The catalog in {self.path} is locked by another program ({e}); let it finish, then run again."
            )
        if self.read_only and _has_wal_content(self._db_path):
            return DerivaMLConfigurationError(
                f"The read-only catalog in {self.path} cannot be read: {CATALOG_FILE}-wal holds changes SQLite "
                f"cannot merge without writing ({e}). Open it once where it is writable, then read it here."
            )
        return DerivaMLConfigurationError(f"Cannot {doing} the catalog in {self.path}: {e} ({name or 'sqlite'}).")

    def _inspect(self) -> int | None:
        """Check the database's contents through a connection of its own, closed again before
        the catalog is used or refused, so that a refused catalog is left as it was: SQLite
        removes the -wal and -shm files it made for an ordinary connection when that closes, and
        where changes wait in the WAL (those files exist already) a read-only one does not merge
        them. Either takes SQLite's locks: a catalog another process is writing reads whole.
        Returns the store's format version (None for a database still empty)."""
        try:
            if _has_wal_content(self._db_path) and not self.read_only:
                conn = sqlite3.connect(f"{self._db_path.as_uri()}?mode=ro", uri=True, timeout=60.0)
            else:
                conn = self._open()
            try:
                return self._check_contents(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            raise self._database_error(e) from e

    def _check_contents(self, conn: sqlite3.Connection) -> int | None:
        """Refuse, reading only, a database that is not one of our catalogs or is of a format this
        version cannot use or migrate; its format version. An empty one (a catalog being made)
        passes (None), unless read-only."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = None
        if "_ermrest_meta" in tables:
            row = conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'format'").fetchone()
        found = _migrations.format_number(str(row[0])) if row else None
        number = found if found is not None else version
        if number > _FORMAT_VERSION or version > _FORMAT_VERSION:
            raise DerivaMLConfigurationError(
                f"The catalog in {self.path} was made by a newer pytest-deriva (catalog format "
                f"{max(number, version)}; this version reads format {_FORMAT_VERSION}). Upgrade pytest-deriva "
                "(pip install -U pytest-deriva), or name another folder; it was left as it is."
            )
        if row is None:
            if tables:
                names = ", ".join(sorted(tables)[:5])
                raise DerivaMLConfigurationError(
                    f"{self._db_path} is an SQLite database of another program (tables {names}), not a catalog; "
                    "name another folder for the catalog. It was left as it is."
                )
            if self.read_only:
                raise DerivaMLConfigurationError(
                    f"The catalog in {self.path} is empty ({CATALOG_FILE} has no tables) and read-only, so there "
                    "is nothing to read; name the folder of a catalog."
                )
            return None
        if found is None:
            raise DerivaMLConfigurationError(
                f"{self._db_path} is of an unknown format {row[0]!r}, not a catalog this version reads "
                f"({_FORMAT!r}); name another folder for the catalog. It was left as it is."
            )
        store = _migrations.store_version(number, version)
        if store == _FORMAT_VERSION:
            return store
        steps = _migrations.plan(store)
        if steps is None:
            raise DerivaMLConfigurationError(
                f"The catalog in {self.path} was made by an older pytest-deriva (catalog format {number}); this "
                f"version reads format {_FORMAT_VERSION} and cannot migrate it. Use the version that made it, "
                "or name another folder."
            )
        if self.read_only and not all(step.readable_before for step in steps):
            raise DerivaMLConfigurationError(
                f"The catalog in {self.path} was made by an older pytest-deriva ({_migrations.describe(store)}) "
                f"and is read-only here ({self.read_only_reason}), so it cannot be migrated to format "
                f"{_FORMAT_VERSION}. Open it once where it can be written (a copy is kept), or use the version "
                "that made it."
            )
        return store

    def _refuse_write(self, what: str) -> None:
        if self.read_only_reason is not None:
            raise DerivaMLReadOnlyError(
                f"Cannot {what}: the catalog in {self.path} is read-only ({self.read_only_reason}). "
                "Record in a writable catalog, or make this one writable."
            )

    # -- connection and transactions ---------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        db = self._db_path
        if self.read_only and (_cannot_write(self.path) or _cannot_write(db)):
            # SQLite's read-only mode. Where even the folder cannot be written and no changes wait
            # in the WAL, the file is immutable too: read without locks or the -shm index SQLite
            # could not make there (SQLITE_READONLY_DIRECTORY), so nothing is made in the folder.
            uri = f"{db.as_uri()}?mode=ro"
            if _cannot_write(self.path) and not _has_wal_content(db):
                uri += "&immutable=1"
            return sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn = sqlite3.connect(db, timeout=60.0, isolation_level=None, check_same_thread=False)
        if self.read_only:
            # read_only=True on a catalog that could be written: an ordinary connection (so it reads
            # what others commit meanwhile, and leaves no -wal or -shm behind), refusing writes too.
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross fork(): reopen in a child process (xdist, joblib).
        if self._conn is None or self._pid != os.getpid():
            try:
                conn = self._open()
                conn.execute("PRAGMA busy_timeout = 60000")
                conn.execute("PRAGMA foreign_keys = ON")
                if not self.read_only:
                    conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as e:
                raise self._database_error(e, "open") from e
            self._conn, self._pid, self._depth = conn, os.getpid(), 0
            self._rids, self._rids_reserved_here = [], False
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        self._refuse_write("write")
        with self._lock:
            conn = self._connection()
            outer = self._depth == 0
            if outer:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    if getattr(e, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                        raise DerivaMLReadOnlyError(
                            f"Cannot write: the catalog in {self.path} is read-only ({e}). "
                            "Record in a writable catalog, or make this one writable."
                        ) from e
                    raise
                self._rids_reserved_here = False
            self._depth += 1
            try:
                yield
                if outer:
                    # Foreign keys are checked here (they are deferred): a refusal must roll back.
                    try:
                        conn.execute("COMMIT")
                    except sqlite3.Error as e:
                        raise DerivaMLDataError(f"The catalog refused the change: {e}. Nothing was written.") from e
            except BaseException:
                self._depth -= 1
                if outer:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._model = None  # the model may have changed inside the failed transaction
                    if self._rids_reserved_here:
                        self._rids = []  # the reservation was rolled back: those numbers are not ours
                raise
            else:
                self._depth -= 1

    @contextmanager
    def _write_scope(self, single_statement: bool) -> Iterator[None]:
        """A transaction, unless this is one statement outside any (SQLite makes that atomic by
        itself) or this thread's transaction is open (the lock is held for all of it: joined as is)."""
        self._refuse_write("write")
        with self._lock:
            if self._pid == os.getpid() and (self._depth > 0 or single_statement):
                yield
                return
        with self.transaction():
            yield

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._connection().execute(sql, params)
        except sqlite3.IntegrityError as e:
            raise DerivaMLDataError(f"The catalog refused the change: {e}.") from e
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                self._model = None
            if getattr(e, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                raise DerivaMLReadOnlyError(
                    f"Cannot write: the catalog in {self.path} is read-only ({e}). "
                    "Record in a writable catalog, or make this one writable."
                ) from e
            raise DerivaMLDataError(f"Catalog database error: {e}.") from e
        except sqlite3.DatabaseError as e:  # corrupt pages found only now: say so, with the folder
            raise self._database_error(e) from e

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- set-up ------------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring an older store to this version's format, once: under the catalog's lock, where
        the version is read again (another process may have migrated it meanwhile)."""
        with _catalog_lock(self.path):
            conn = self._connection()
            try:
                version = self._check_contents(conn)
            except sqlite3.DatabaseError as e:
                raise self._database_error(e) from e
            if version is None or version == _FORMAT_VERSION:
                _logger.debug("The catalog in %s was migrated meanwhile by another process.", self.path)
                return
            backup, done = _migrations.migrate(self, conn, self._db_path, version)
        self._model = None
        # A warning, not info: the store changed for good and a file was added to the folder, and
        # DerivaML's handle sets the package's logger to WARNING by default.
        _logger.warning(
            "Migrated the catalog in %s from %s to format %d (%s); the catalog as it was is kept in %s.",
            self.path,
            _migrations.describe(version),
            _FORMAT_VERSION,
            "; ".join(done) or "only its version number changed",
            backup,
        )

    def _init_db(self) -> None:
        conn = self._connection()
        if self.read_only:
            try:
                found = conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'uuid'").fetchone()
            except sqlite3.DatabaseError as e:
                raise self._database_error(e) from e
            self.catalog_uuid = str(found[0]) if found else ""
            return
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # Switching to WAL needs the database to itself: do it under the creation lock, and
            # look again there (the process that made the catalog may have just done it).
            with _catalog_lock(self.path):
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    try:
                        conn.execute("PRAGMA journal_mode = WAL")
                    except sqlite3.OperationalError as e:
                        raise DerivaMLConfigurationError(
                            f"Cannot switch {self._db_path} to WAL mode ({e}); is another program holding it open?"
                        ) from e
        with self.transaction():
            conn.execute("CREATE TABLE IF NOT EXISTS _ermrest_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'format'").fetchone()
            if row is None:
                for stmt in (
                    # h numbers every change; a snapshot id is the h of the last change it includes.
                    "CREATE TABLE _ermrest_history "
                    "(h INTEGER PRIMARY KEY, tname TEXT NOT NULL, rid TEXT NOT NULL, row TEXT)",
                    "CREATE INDEX _ermrest_history_rid ON _ermrest_history (rid)",
                    "CREATE INDEX _ermrest_history_table ON _ermrest_history (tname, rid)",
                ):
                    conn.execute(stmt)
                conn.execute("INSERT INTO _ermrest_meta VALUES ('format', ?)", (_FORMAT,))
                conn.execute("INSERT INTO _ermrest_meta VALUES ('uuid', ?)", (uuid.uuid4().hex,))
                conn.execute("INSERT INTO _ermrest_meta VALUES ('next_rid', ?)", (str(_FIRST_RID_NUMBER),))
                conn.execute("INSERT INTO _ermrest_meta VALUES ('model', ?)", (json.dumps({"schemas": {}}),))
                conn.execute("INSERT INTO _ermrest_meta VALUES ('model_version', '0')")
                conn.execute(f"PRAGMA user_version = {_FORMAT_VERSION}")
            elif row[0] != _FORMAT:  # changed since _check_contents: checked again, the same way
                self._check_contents(conn)
            found = conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'uuid'").fetchone()
            # Identifies this catalog (not its path: a catalog made anew at a path is another one).
            self.catalog_uuid = str(found[0]) if found else ""

    # -- the model ---------------------------------------------------------------------------
    @property
    def model(self) -> Model:
        model = self._model  # read once: a reference read needs no lock (asked about 30 times a run)
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                return self.refresh_model()
            return self._model

    def refresh_model(self) -> Model:
        with self._lock:
            conn = self._connection()
            version = int(conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'model_version'").fetchone()[0])
            if self._model is None or version != self._model_version:
                doc = json.loads(conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'model'").fetchone()[0])
                self._model = Model(doc)
                self._model_version = version
            return self._model

    def _save_model(self, doc: dict[str, Any]) -> None:
        conn = self._connection()
        conn.execute("UPDATE _ermrest_meta SET value = ? WHERE key = 'model'", (json.dumps(doc),))
        conn.execute("UPDATE _ermrest_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'model_version'")
        self._model = None

    def create_schema(self, name: str, comment: str | None = None) -> None:
        self._refuse_write(f"create schema {name}")
        with self.transaction():
            doc = self.refresh_model().doc
            if name in doc["schemas"]:
                return
            doc["schemas"][name] = {"schema_name": name, "comment": comment, "annotations": {}, "tables": {}}
            self._save_model(doc)

    def create_table(self, schema: str, table_doc: Mapping[str, Any], exists_ok: bool = False) -> None:
        tdoc = json.loads(json.dumps(table_doc))  # a private deep copy
        tname = tdoc["table_name"]
        tdoc["schema_name"] = schema
        for fk in tdoc.get("foreign_keys", []):
            for c in fk["foreign_key_columns"]:
                c.setdefault("schema_name", schema)
                c.setdefault("table_name", tname)
            fk["names"] = [[schema if n[0] == "placeholder" else n[0], n[1]] for n in fk.get("names") or []] or [
                # The name ERMrest gives an unnamed constraint, so both adapters' models match.
                [schema, f"{tname}_{'_'.join(c['column_name'] for c in fk['foreign_key_columns'])}_fkey"]
            ]
        for k in tdoc.get("keys", []):
            k["names"] = [[schema if n[0] == "placeholder" else n[0], n[1]] for n in k.get("names") or []] or [
                [schema, f"{tname}_{'_'.join(k['unique_columns'])}_key"]
            ]
        self._refuse_write(f"create table {schema}:{tname}")
        with self.transaction():
            doc = self.refresh_model().doc
            if schema not in doc["schemas"]:
                raise DerivaMLSchemaError(f"Schema {schema!r} does not exist; create it first.")
            if tname in doc["schemas"][schema]["tables"]:
                if exists_ok:
                    return
                raise DerivaMLSchemaError(f"Table {schema}:{tname} already exists.")
            columns = []
            for c in tdoc["column_definitions"]:
                base = Column(None, c).base_typename  # type: ignore[arg-type]
                sql = f"{_q(c['name'])} {_SQL_TYPES.get(base, 'TEXT')}"
                if c["name"] == "RID":
                    sql += " PRIMARY KEY"
                elif not c.get("nullok", True) and c["name"] not in SYSTEM_COLUMNS:
                    sql += " NOT NULL"
                columns.append(sql)
            constraints = [
                f"UNIQUE ({', '.join(_q(x) for x in k['unique_columns'])})"
                for k in tdoc.get("keys", [])
                if k["unique_columns"] != ["RID"]
            ]
            for fk in tdoc.get("foreign_keys", []):
                ref = fk["referenced_columns"]
                target = f"{ref[0]['schema_name']}:{ref[0]['table_name']}"
                on_delete = str(fk.get("on_delete") or "NO ACTION").upper()
                if on_delete not in _ON_DELETE:
                    raise DerivaMLSchemaError(
                        f"Foreign key on_delete {on_delete!r} of {schema}:{tname} is not one of {sorted(_ON_DELETE)}."
                    )
                constraints.append(
                    f"FOREIGN KEY ({', '.join(_q(c['column_name']) for c in fk['foreign_key_columns'])}) "
                    f"REFERENCES {_q(target)} ({', '.join(_q(c['column_name']) for c in ref)}) ON DELETE {on_delete}"
                    " DEFERRABLE INITIALLY DEFERRED"
                )
            qualified = f"{schema}:{tname}"
            self._exec(f"CREATE TABLE {_q(qualified)} ({', '.join(columns + constraints)})")
            for stmt in _history_triggers(qualified, [c["name"] for c in tdoc["column_definitions"]], tdoc):
                self._exec(stmt)
            doc["schemas"][schema]["tables"][tname] = tdoc
            self._save_model(doc)

    def create_tables(self, schema: str, table_docs: Sequence[Mapping[str, Any]], exists_ok: bool = False) -> None:
        """Create several tables in one transaction (foreign keys are checked at commit, so cycles are fine)."""
        with self.transaction():
            if schema not in self.refresh_model().schemas:
                self.create_schema(schema)
            for doc in table_docs:
                self.create_table(schema, doc, exists_ok=exists_ok)

    def set_annotations(self, schema: str | None, table: str | None, annotations: Mapping[str, Any]) -> None:
        with self.transaction():
            doc = self.refresh_model().doc
            if schema is not None and schema not in doc["schemas"]:
                raise DerivaMLSchemaError(f"Schema {schema!r} does not exist.")
            if schema is None:
                target = doc
            else:
                target = doc["schemas"][schema] if table is None else doc["schemas"][schema]["tables"].get(table)
            if target is None:
                raise DerivaMLTableNotFound(f"{schema}:{table}")
            target.setdefault("annotations", {}).update(json.loads(json.dumps(dict(annotations))))
            self._save_model(doc)

    def web_url(self, table: str, rid: str) -> str | None:
        """No web page shows an embedded catalog (yet)."""
        return None

    def _table(self, schema: str, table: str) -> Table:
        return find_table(self.model, self.refresh_model, schema, table)

    # -- values ------------------------------------------------------------------------------
    @staticmethod
    def _to_sql(base: str, value: Any) -> Any:
        if value is None:
            return None
        if base in _JSON_TYPES:
            return json.dumps(value)
        if base == "boolean":
            return int(bool(value))
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    @staticmethod
    def _from_sql(base: str, value: Any) -> Any:
        if value is None:
            return None
        if base in _JSON_TYPES:
            return json.loads(value)
        if base == "boolean":
            return bool(value)
        return value

    def _decode_row(self, t: Table, row: sqlite3.Row | tuple[Any, ...], names: Sequence[str]) -> dict[str, Any]:
        return {n: self._from_sql(t.columns[n].base_typename, v) for n, v in zip(names, row, strict=True)}

    def _insert_plan(self, t: Table, skip: bool) -> tuple[str, list[tuple[str, str, int, Any, bool]]]:
        """The INSERT statement and per-column handling for a table, made once per model."""
        key = (id(t), skip)
        plan = self._plans.get(key)
        if plan is None or plan[0] is not t:
            specs = []
            for c in t.columns.values():
                if c.name == "RID":
                    kind = _K_RID
                elif c.name in ("RCT", "RMT"):
                    kind = _K_TIME
                elif isinstance(c.default, str) and c.typename in ("ermrest_curie", "ermrest_uri"):
                    kind = _K_TEMPLATE
                else:
                    kind = _K_VALUE
                specs.append((c.name, c.base_typename, kind, c.default, not c.nullok and c.name not in SYSTEM_COLUMNS))
            names = [c.name for c in t.columns.values()]
            sql = (
                f"INSERT INTO {_q(t.qualified_name)} ({', '.join(map(_q, names))}) "
                f"VALUES ({', '.join('?' * len(names))}){' ON CONFLICT DO NOTHING' if skip else ''}"
            )
            plan = self._plans[key] = (t, sql, specs)
        return plan[1], plan[2]

    @staticmethod
    def _check_columns(t: Table, names: Iterable[str]) -> None:
        check_columns(t, names)

    def _where(self, t: Table, where: Where | None) -> tuple[str, list[Any]]:
        if not where:
            return "", []
        self._check_columns(t, where)
        parts, params = [], []
        for name, value in where.items():
            base = t.columns[name].base_typename
            if value is None:
                parts.append(f"{_q(name)} IS NULL")
            elif isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                if not values:
                    parts.append("0")
                else:
                    parts.append(f"{_q(name)} IN ({', '.join('?' * len(values))})")
                    params += [self._to_sql(base, v) for v in values]
            else:
                parts.append(f"{_q(name)} = ?")
                params.append(self._to_sql(base, value))
        return " WHERE " + " AND ".join(parts), params

    def _next_rid(self) -> str:
        if not self._rids:
            cur = self._connection().execute(
                "UPDATE _ermrest_meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'next_rid' RETURNING value",
                (_RID_BLOCK,),
            )
            end = int(cur.fetchone()[0])
            self._rids = list(range(end - 1, end - _RID_BLOCK - 1, -1))
            self._rids_reserved_here = True
        return encode_rid(self._rids.pop())

    # -- entities ----------------------------------------------------------------------------
    def insert(
        self,
        schema: str,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        on_conflict_skip: bool = False,
    ) -> list[dict[str, Any]]:
        t = self._table(schema, table)
        rows = list(rows)
        if not rows:
            return []
        for row in rows:
            if not row.keys() <= t.columns.keys():
                self._check_columns(t, row)
        self._refuse_write(f"insert into {t.qualified_name}")
        sql, specs = self._insert_plan(t, on_conflict_skip)
        out: list[dict[str, Any]] = []
        with self._write_scope(len(rows) == 1):
            now = _now()
            for row in rows:
                rid = self._next_rid()
                full: dict[str, Any] = {}
                params: list[Any] = []
                for name, base, kind, default, required in specs:
                    if kind == _K_RID:
                        value: Any = rid
                    elif kind == _K_TIME:
                        value = now
                    elif name in row:
                        value = row[name]
                    elif kind == _K_TEMPLATE:
                        value = default.replace("{RID}", rid)
                    else:
                        value = default
                    if value is None and required:
                        raise DerivaMLValidationError(
                            f"Column {t.qualified_name}.{name} needs a value (it is not nullable and has no default)."
                        )
                    full[name] = value
                    params.append(value if base in _PLAIN_TYPES or value is None else self._to_sql(base, value))
                cur = self._exec(sql, params)
                if cur.rowcount == 0:  # skipped on conflict: the RID number stays unused
                    continue
                out.append(full)
        return out

    def update(
        self, schema: str, table: str, rows: Iterable[Mapping[str, Any]], *, returning: bool = True
    ) -> list[dict[str, Any]]:
        t = self._table(schema, table)
        rows = list(rows)
        for row in rows:
            if "RID" not in row:
                raise DerivaMLValidationError(f"Rows to update in {t.qualified_name} need their RID: {dict(row)!r}")
            self._check_columns(t, row)
        self._refuse_write(f"update {t.qualified_name}")
        names = list(t.columns)
        out = []
        with self._write_scope(len(rows) == 1):
            now = _now()
            for row in rows:
                changes = {k: v for k, v in row.items() if k not in SYSTEM_COLUMNS}
                changes["RMT"] = now
                sets = ", ".join(f"{_q(k)} = ?" for k in changes)
                params = [self._to_sql(t.columns[k].base_typename, v) for k, v in changes.items()]
                back = ", ".join(map(_q, names)) if returning else '"RID"'  # RID: was there such a row
                cur = self._exec(
                    f'UPDATE {_q(t.qualified_name)} SET {sets} WHERE "RID" = ? RETURNING {back}',
                    [*params, row["RID"]],
                )
                stored = cur.fetchone()
                if stored is None:
                    raise DerivaMLNotFoundError(f"No row with RID {row['RID']} in {t.qualified_name} to update.")
                if returning:
                    out.append(self._decode_row(t, stored, names))
        return out if returning else []

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
    ) -> list[dict[str, Any]]:
        t = self._table(schema, table)
        names = list(columns) if columns else list(t.columns)
        self._check_columns(t, names)
        if order_by:
            self._check_columns(t, order_by)
        if snapshot is not None:
            return self._select_snapshot(t, where, names, order_by, limit, snapshot)
        clause, params = self._where(t, where)
        sql = f"SELECT {', '.join(map(_q, names))} FROM {_q(t.qualified_name)}{clause}"
        if order_by:
            sql += " ORDER BY " + ", ".join(_q(c) for c in order_by)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._exec(sql, params).fetchall()
        return [self._decode_row(t, r, names) for r in rows]

    def _snapshot_int(self, snapshot: str) -> int:
        if not is_rid(snapshot):
            raise DerivaMLValidationError(f"{snapshot!r} is not a snapshot id of this catalog.")
        n = decode_rid(snapshot)
        with self._lock:
            latest = self._connection().execute("SELECT COALESCE(MAX(h), 0) FROM _ermrest_history").fetchone()[0]
        if n > latest:
            raise DerivaMLNotFoundError(f"Snapshot {snapshot} does not exist yet in catalog {self.uri}.")
        return n

    def _select_snapshot(
        self,
        t: Table,
        where: Where | None,
        names: Sequence[str],
        order_by: Sequence[str] | None,
        limit: int | None,
        snapshot: str,
    ) -> list[dict[str, Any]]:
        n = self._snapshot_int(snapshot)
        sql = (
            "SELECT x.row FROM _ermrest_history x WHERE x.tname = ? AND x.h = "
            "(SELECT MAX(y.h) FROM _ermrest_history y WHERE y.tname = x.tname AND y.rid = x.rid AND y.h <= ?)"
        )
        with self._lock:
            raw = [r[0] for r in self._connection().execute(sql, (t.qualified_name, n)).fetchall()]
        rows = [json.loads(r) for r in raw if r is not None]
        flags = [c.name for c in t.columns.values() if c.base_typename == "boolean"]
        for r in rows:
            for f in flags:
                if r.get(f) is not None:
                    r[f] = bool(r[f])
        if where:
            self._check_columns(t, where)
            # A list of values is looked up as a set: N rows by RID are N look-ups, not N x N.
            wanted: dict[str, Any] = {}
            for k, v in where.items():
                if isinstance(v, list | tuple):
                    with contextlib.suppress(TypeError):  # values that cannot be hashed stay a list
                        v = frozenset(v)
                wanted[k] = v

            def keep(row: dict[str, Any]) -> bool:
                for k, v in wanted.items():
                    if isinstance(v, list | tuple | set | frozenset):
                        if row.get(k) not in v:
                            return False
                    elif row.get(k) != v:
                        return False
                return True

            rows = [r for r in rows if keep(r)]
        if order_by:
            rows.sort(key=lambda r: tuple((r.get(c) is None, r.get(c)) for c in order_by))
        if limit is not None:
            rows = rows[:limit]
        return [{k: r.get(k) for k in names} for r in rows]

    def delete(self, schema: str, table: str, where: Where) -> int:
        t = self._table(schema, table)
        if not where:
            raise DerivaMLValidationError(f"Refusing to delete every row of {t.qualified_name}: give a filter.")
        clause, params = self._where(t, where)
        self._refuse_write(f"delete from {t.qualified_name}")
        with self.transaction():
            rids = [r[0] for r in self._exec(f'SELECT "RID" FROM {_q(t.qualified_name)}{clause}', params).fetchall()]
            if rids:
                self._exec(f"DELETE FROM {_q(t.qualified_name)}{clause}", params)
        return len(rids)

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        if not is_rid(rid):
            raise DerivaMLValidationError(
                f"{rid!r} is not a RID. RIDs are upper-case base-32 groups such as '1-ABCD'; copy it from a record."
            )
        base, snap = split_snapshot(rid)
        with self._lock:
            found = (
                self._connection()
                .execute("SELECT tname FROM _ermrest_history WHERE rid = ? ORDER BY h DESC LIMIT 1", (base,))
                .fetchone()
            )
        if found is not None:
            sname, _, tname = found[0].partition(":")
            t = self._table(sname, tname)
            if snap is not None:
                present = bool(self._select_snapshot(t, {"RID": base}, ["RID"], None, 1, snap))
            else:
                with self._lock:
                    present = (
                        self._exec(f'SELECT 1 FROM {_q(t.qualified_name)} WHERE "RID" = ?', [base]).fetchone()
                        is not None
                    )
            if present:
                return sname, tname
        raise DerivaMLNotFoundError(f"RID {rid} does not exist in catalog {self.uri}.")

    def snapshot(self) -> str:
        with self._lock:
            n = self._connection().execute("SELECT COALESCE(MAX(h), 0) FROM _ermrest_history").fetchone()[0]
        return encode_rid(int(n))

    def __repr__(self) -> str:
        return f"EmbeddedCatalog({str(self.path)!r})"
