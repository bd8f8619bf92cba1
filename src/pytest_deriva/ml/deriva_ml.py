"""``DerivaML``: the catalog handle experiments use (vocabularies, assets, workflows, executions).

It speaks only to the catalog port, so the same handle works on the embedded store and, through
the server adapter, on a DERIVA server::

    ml = DerivaML()                 # the embedded catalog in .deriva/ at the project root
    ml = DerivaML("/data/catalog")  # an embedded catalog somewhere else
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pytest_deriva._rid import DRY_RUN_RID, rid_order, validate_rid
from pytest_deriva.catalog import CatalogPort, connect
from pytest_deriva.catalog import schema as ddl
from pytest_deriva.catalog.model import Model, Table, check_table_name
from pytest_deriva.catalog.setup import require_ml_schema
from pytest_deriva.dataset._handle import DatasetMixin
from pytest_deriva.enums import MLVocab, Status
from pytest_deriva.exceptions import (
    DerivaMLConfigurationError,
    DerivaMLException,
    DerivaMLInputError,
    DerivaMLInvalidTerm,
    DerivaMLNotFoundError,
    DerivaMLTableTypeError,
    DerivaMLValidationError,
)
from pytest_deriva.ml.records import Asset, ResolveRidResult, VocabularyTerm

if TYPE_CHECKING:
    from pytest_deriva.execution.configuration import ExecutionConfiguration
    from pytest_deriva.execution.execution import Execution
    from pytest_deriva.execution.query import ExecutionList
    from pytest_deriva.execution.record import ExecutionRecord
    from pytest_deriva.execution.workflow import Workflow

__all__ = ["DerivaML", "DerivaMLBase", "find_project_root"]

DEFAULT_DOMAIN_SCHEMA = "Domain"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` with a ``pyproject.toml``, ``.git`` or pytest ini; else ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any(
            (folder / marker).exists() for marker in ("pyproject.toml", ".git", "pytest.ini", "tox.ini", "setup.cfg")
        ):
            return folder
    return here


def _check_writable_dir(path: Path, what: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DerivaMLConfigurationError(
            f"Cannot create the {what} {path}: {e}. Name a folder you can write to."
        ) from e
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise DerivaMLConfigurationError(f"The {what} {path} is not a writable folder. Name a folder you can write to.")
    return path


def _check_type(value: object, name: str, types: type | tuple[type, ...], expected: str) -> None:
    """Refuse a value of the wrong type before anything is opened or made, naming it and what fits."""
    if value is not None and not isinstance(value, types):
        raise DerivaMLInputError(
            f"DerivaML({name}={DerivaMLInputError.shown(value)}): a {type(value).__name__} is not {expected}."
        )


def _check_arguments(arguments: Mapping[str, object]) -> None:
    """The types of ``DerivaML(...)``'s arguments, before anything is opened or made
    (``catalog=123`` used to make a folder and then fail with an ``AttributeError``)."""
    folder = (str, os.PathLike)
    expected: dict[str, tuple[type | tuple[type, ...], str]] = {
        "catalog": (
            (*folder, CatalogPort),
            "a catalog location; give a folder path (for example '.deriva'), "
            "https://<host>/ermrest/catalog/<id>, or a catalog object",
        ),
        "catalog_id": ((str, int), "a catalog id; give a number such as 1"),
        "hostname": (str, "a host name; give one such as 'deriva.example.org'"),
        "working_dir": (folder, "a folder; give a path as a str or Path"),
        "cache_dir": (folder, "a folder; give a path as a str or Path"),
        "hydra_runtime_output_dir": (folder, "a folder; give a path as a str or Path"),
        "domain_schema": (str, "a schema name; give a str"),
        "project_name": (str, "a name; give a str"),
        "ml_schema": (str, "a schema name; give a str such as 'deriva-ml'"),
        "clean_execution_dir": (bool, "True or False"),
        "read_only": (bool, "True or False"),
    }
    for name, (types, what) in expected.items():
        value = arguments[name]
        if value is not None and (not isinstance(value, types) or (name == "catalog_id" and isinstance(value, bool))):
            shown = DerivaMLInputError.shown(value)
            raise DerivaMLInputError(f"DerivaML({name}={shown}): a value of type {type(value).__name__} is not {what}.")


def _read_only_work_folder(catalog: CatalogPort) -> Path:
    """Where executions' files and downloads of a read-only catalog go, as not into it:
    ``$XDG_CACHE_HOME/pytest-deriva/<catalog id>`` (``~/.cache/...``), else the temporary folder."""
    key = catalog.catalog_uuid or hashlib.sha1(catalog.uri.encode(), usedforsecurity=False).hexdigest()[:16]
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser())
    uid = os.getuid() if hasattr(os, "getuid") else 0
    for folder in (cache_home / "pytest-deriva" / key, Path(tempfile.gettempdir()) / f"pytest-deriva-{uid}" / key):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    raise DerivaMLConfigurationError(
        f"The catalog {catalog.uri} is read-only and no folder was found for its working and cache directories; "
        "name folders you can write to with working_dir= and cache_dir=."
    )


def _server_work_folder(host: str, catalog_id: str) -> Path:
    """Where files of a server catalog's executions and downloads live by default:
    ``.deriva/servers/<host>/<id>`` at the project root, beside (and ignored like) the embedded store."""
    root = find_project_root() / ".deriva"
    folder = root / "servers" / host / str(catalog_id)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by pytest-deriva automatically.\n*\n")
    return folder


class DerivaMLBase:
    """A handle on one catalog, in the shape of DerivaML's: the core (see :class:`DerivaML`).

    Args:
        catalog: Where the catalog is: a folder for the embedded store (created on first use),
            or a ``CatalogPort``. Default: ``$DERIVA_CATALOG``, else ``.deriva`` at the project root.
        catalog_id: With ``hostname``, the id of a catalog on a DERIVA server.
        hostname: A DERIVA server's host name.
        domain_schema: The schema for the project's own tables (default: the one domain schema
            the catalog has, else ``Domain``, created when first needed).
        working_dir: Where executions keep their files (default ``<catalog>/work``; for a read-only
            catalog ``$XDG_CACHE_HOME/pytest-deriva/<catalog id>/work``).
        cache_dir: Where downloads are cached (default ``<catalog>/cache``; for a read-only catalog
            beside the working directory).
        hydra_runtime_output_dir: Hydra's output folder of the current run, recorded with executions.
        clean_execution_dir: Remove an execution's folder after a successful upload.
        read_only: Open an embedded catalog for reading only: queries, lookups and bag downloads
            work, every write raises ``DerivaMLReadOnlyError``. A catalog whose folder or
            ``catalog.sqlite`` is not writable (or has no write permission at all) is opened so
            without being asked.

    Raises:
        DerivaMLInputError: an argument of the wrong type (``catalog=123``); nothing is made.
        DerivaMLConfigurationError: a catalog that cannot be used (corrupt, truncated, from a
            newer version, a folder of other files), with the folder and what to do.
    """

    def __init__(
        self,
        catalog: str | os.PathLike[str] | CatalogPort | None = None,
        catalog_id: str | int | None = None,
        *,
        hostname: str | None = None,
        domain_schema: str | None = None,
        project_name: str | None = None,
        working_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        hydra_runtime_output_dir: str | os.PathLike[str] | None = None,
        ml_schema: str = ddl.ML_SCHEMA,
        logging_level: int = logging.WARNING,
        clean_execution_dir: bool = True,
        credential: Any = None,
        read_only: bool = False,
    ) -> None:
        _check_arguments(
            {
                "catalog": catalog,
                "catalog_id": catalog_id,
                "hostname": hostname,
                "working_dir": working_dir,
                "cache_dir": cache_dir,
                "hydra_runtime_output_dir": hydra_runtime_output_dir,
                "domain_schema": domain_schema,
                "project_name": project_name,
                "ml_schema": ml_schema,
                "clean_execution_dir": clean_execution_dir,
                "read_only": read_only,
            }
        )
        if hostname is not None or catalog_id is not None:
            host = hostname or os.fspath(catalog or "")  # type: ignore[arg-type]
            catalog = f"https://{host}/ermrest/catalog/{catalog_id}"
        if catalog is None:
            catalog = os.environ.get("DERIVA_CATALOG") or find_project_root() / ".deriva"
        self._logger = logging.getLogger("pytest_deriva")
        self._logger.setLevel(logging_level)
        # Folders named explicitly are checked before the catalog is opened (or made).
        if working_dir is not None:
            _check_writable_dir(Path(working_dir).expanduser().absolute(), "working directory")
        if cache_dir is not None:
            _check_writable_dir(Path(cache_dir).expanduser().absolute(), "cache directory")
        self.catalog: CatalogPort = connect(catalog, credential=credential, read_only=read_only)
        self.ml_schema = ml_schema
        self.project_name = project_name
        self.clean_execution_dir = clean_execution_dir
        self.credential = credential
        self.is_snapshot = False
        if self.read_only and (working_dir is None or cache_dir is None):
            base = _read_only_work_folder(self.catalog)
        else:
            base = self.catalog.local_path or _server_work_folder(self.catalog.hostname, self.catalog.catalog_id)
        self.working_dir = _check_writable_dir(
            Path(working_dir or base / "work").expanduser().absolute(), "working directory"
        )
        self.cache_dir = _check_writable_dir(
            Path(cache_dir or base / "cache").expanduser().absolute(), "cache directory"
        )
        self.hydra_runtime_output_dir = Path(hydra_runtime_output_dir) if hydra_runtime_output_dir else None
        self._terms: dict[str, dict[str, VocabularyTerm]] = {}
        self._terms_lock = threading.Lock()
        # Asset rows known to exist, by (schema, table, MD5, file name): the environment snapshot
        # every execution of a process records.
        self._asset_rows: dict[tuple[str, str, str, str], str] = {}
        # Asset rows another run had committed when one of ours uploaded the same bytes under the
        # same name (every run of a sweep writing the same file): found once, not looked up per run.
        # Their types are still recorded per run (a run may give the file other types).
        self._metadata_types_known = False  # the Asset_Type terms of an execution's metadata files exist
        self._committed_asset_rows: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()
        self._ensure_ml_schema()
        self._domain_schema = domain_schema

    # -- catalog set-up ----------------------------------------------------------------------
    def _ensure_ml_schema(self) -> None:
        require_ml_schema(self.catalog, self.ml_schema)

    @property
    def read_only(self) -> bool:
        """Whether the catalog was opened for reading only (its writes raise ``DerivaMLReadOnlyError``)."""
        return bool(getattr(self.catalog, "read_only", False))

    @property
    def _full(self) -> DerivaML:
        """This handle as the full ``DerivaML`` (the class every handle is)."""
        return cast("DerivaML", self)

    @property
    def model(self) -> Model:
        return self.catalog.model

    @property
    def host_name(self) -> str:
        return self.catalog.hostname

    @property
    def catalog_id(self) -> str:
        return self.catalog.catalog_id

    @property
    def domain_schemas(self) -> list[str]:
        return self.model.domain_schemas

    @property
    def default_schema(self) -> str:
        """The domain schema new tables go to (created on first use)."""
        if self._domain_schema is None:
            existing = self.model.domain_schemas
            self._domain_schema = existing[0] if len(existing) == 1 else DEFAULT_DOMAIN_SCHEMA
        if self._domain_schema not in self.model.schemas:
            self.catalog.create_schema(self._domain_schema, comment="The project's own tables.")
        return self._domain_schema

    domain_schema = default_schema

    def _table(self, table: str | Table) -> Table:
        try:
            return self.model.name_to_table(table)
        except DerivaMLException:
            return self.catalog.refresh_model().name_to_table(table)

    # -- RIDs --------------------------------------------------------------------------------
    def resolve_rid(self, rid: str) -> ResolveRidResult:
        """The table a RID belongs to. Raises if the RID is malformed or names no row."""
        validate_rid(rid)
        schema, table = self.catalog.resolve_rid(rid)
        return ResolveRidResult(rid=rid, table=self._table(f"{schema}:{table}"))

    def retrieve_rid(self, rid: str) -> dict[str, Any]:
        """The row a RID names, as a dict."""
        found = self.resolve_rid(rid)
        rows = self.catalog.select(found.schema, found.table.name, {"RID": rid.partition("@")[0]})
        if not rows:
            raise DerivaMLNotFoundError(f"RID {rid} does not exist in catalog {self.catalog.uri}.")
        return rows[0]

    def _expect_table(self, rid: str, table: str, what: str) -> ResolveRidResult:
        found = self.resolve_rid(rid)
        if found.table.name != table:
            raise DerivaMLTableTypeError(table, rid, f"RID {rid} is a row of {found.table.name}, not {what}.")
        return found

    # -- vocabularies ------------------------------------------------------------------------
    def create_vocabulary(self, vocab_name: str, comment: str = "", schema: str | None = None) -> Table:
        """Create a controlled vocabulary table in the domain schema (or ``schema``)."""
        check_table_name(vocab_name)
        schema = schema or self.default_schema
        self.catalog.create_table(schema, ddl.vocabulary_table(vocab_name, schema, comment or None))
        return self._table(f"{schema}:{vocab_name}")

    def is_vocabulary(self, table: str | Table) -> bool:
        return self.model.is_vocabulary(self._table(table))

    def _vocab(self, table: str | Table) -> Table:
        t = self._table(table)
        if not self.model.is_vocabulary(t):
            vocabs = ", ".join(sorted(v.name for v in self.model.vocabularies()))
            raise DerivaMLTableTypeError("vocabulary", t.name, f"Vocabularies are: {vocabs}.")
        return t

    def _load_terms(self, t: Table) -> dict[str, VocabularyTerm]:
        index: dict[str, VocabularyTerm] = {}
        for row in self.catalog.select(t.schema.name, t.name):
            term = VocabularyTerm._from_row(row)
            index[term.name.casefold()] = term
            for syn in term.synonyms:
                index.setdefault(syn.casefold(), term)
        with self._terms_lock:
            self._terms[t.qualified_name] = index
        return index

    def add_term(
        self,
        table: str | Table,
        term_name: str,
        description: str,
        synonyms: list[str] | None = None,
        exists_ok: bool = True,
    ) -> VocabularyTerm:
        """Add a term; an existing term of that name is returned (or refused without ``exists_ok``)."""
        t = self._vocab(table)
        if not term_name or not term_name.strip():
            raise DerivaMLValidationError(f"A term needs a name; got {term_name!r}.")
        rows = self.catalog.insert(
            t.schema.name,
            t.name,
            [{"Name": term_name, "Description": description, "Synonyms": synonyms or None}],
            on_conflict_skip=True,
        )
        if not rows:
            if not exists_ok:
                raise DerivaMLException(
                    f"Term {term_name!r} already exists in {t.name}; pass exists_ok=True to reuse it."
                )
            return self.lookup_term(t, term_name)
        self._load_terms(t)
        return VocabularyTerm._from_row(rows[0])

    def lookup_term(self, table: str | Table, term_name: str) -> VocabularyTerm:
        """A term by its name or any synonym (case-insensitive).

        Raises:
            DerivaMLInvalidTerm: naming the close matches and how to add the term.
        """
        t = self._vocab(table)
        key = str(term_name).casefold()
        with self._terms_lock:
            index = self._terms.get(t.qualified_name)
        if index is None or key not in index:
            index = self._load_terms(t)  # another process may have added it
        if key in index:
            return index[key]
        names = sorted({term.name for term in index.values()})
        close = difflib.get_close_matches(str(term_name), names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise DerivaMLInvalidTerm(
            t.name,
            str(term_name),
            f"no such term; {hint}known terms: {', '.join(names) or '(none)'}. "
            f"Add it with ml.add_term({t.name!r}, {str(term_name)!r}, description=...)",
        )

    def list_vocabulary_terms(self, table: str | Table) -> list[VocabularyTerm]:
        t = self._vocab(table)
        return [VocabularyTerm._from_row(r) for r in self.catalog.select(t.schema.name, t.name, order_by=["Name"])]

    # -- assets ------------------------------------------------------------------------------
    def create_asset(
        self,
        asset_name: str,
        column_defs: Iterable[Mapping[str, Any]] | None = None,
        fkey_defs: Iterable[tuple[Sequence[str], str, str, Sequence[str]]] | None = None,
        referenced_tables: Iterable[str | Table] | None = None,
        comment: str = "",
        schema: str | None = None,
    ) -> Table:
        """Create an asset table with metadata columns, its ``_Asset_Type`` and ``_Execution``
        association tables, and the ``Asset_Type`` term named like the table.

        ``column_defs`` are ERMrest column documents (``deriva.core.ermrest_model.Column.define``
        or :func:`pytest_deriva.catalog.schema.column`); ``referenced_tables`` adds a foreign key
        column named like each table.
        """
        check_table_name(asset_name)
        if self.model.has_table(asset_name):
            raise DerivaMLException(f"A table named {asset_name!r} already exists; choose another asset name.")
        schema = schema or self.default_schema
        cols = [dict(c) for c in column_defs or []]
        fkeys = list(fkey_defs or [])
        for ref in referenced_tables or []:
            rt = self._table(ref)
            cols.append(ddl.column(rt.name, "text"))
            fkeys.append(([rt.name], rt.schema.name, rt.name, ["RID"]))
        with self.catalog.transaction():
            self.catalog.create_table(schema, ddl.asset_table(schema, asset_name, cols, fkeys, comment or None))
            for t in ddl.asset_association_tables(schema, asset_name, self.ml_schema):
                self.catalog.create_table(schema, t)
            self.catalog.insert(
                self.ml_schema,
                MLVocab.asset_type,
                [{"Name": asset_name, "Description": f"A file in the {asset_name} asset table."}],
                on_conflict_skip=True,
            )
        with self._terms_lock:
            self._terms.pop(f"{self.ml_schema}:{MLVocab.asset_type}", None)
        return self._table(f"{schema}:{asset_name}")

    def _asset_table(self, table: str | Table) -> Table:
        try:
            t = self._table(table)
        except DerivaMLException:
            t = None
        if t is None or not self.model.is_asset(t):
            names = ", ".join(sorted(a.name for a in self.model.asset_tables()))
            raise DerivaMLTableTypeError(
                "asset",
                str(getattr(table, "name", table)),
                f"Asset tables are: {names}; create one with ml.create_asset().",
            )
        return t

    def _asset_types(self, t: Table, rids: Sequence[str]) -> dict[str, list[str]]:
        atype, col, _ = self.model.find_association(t, MLVocab.asset_type.value)
        out: dict[str, list[str]] = {r: [] for r in rids}
        for row in self.catalog.select(atype.schema.name, atype.name, {col: list(rids)}):
            out[row[col]].append(row["Asset_Type"])
        return out

    def _asset_from_row(self, t: Table, row: dict[str, Any], types: list[str]) -> Asset:
        meta = self.model.asset_metadata(t)
        return Asset(
            asset_rid=row["RID"],
            asset_table=t.name,
            filename=row.get("Filename"),
            url=row["URL"],
            length=row["Length"],
            md5=row["MD5"],
            description=row.get("Description"),
            asset_types=types,
            metadata={k: v for k, v in row.items() if k in meta},
            schema=t.schema.name,
        )

    def list_assets(self, asset_table: str | Table) -> list[Asset]:
        """Every asset in an asset table, with its types."""
        t = self._asset_table(asset_table)
        rows = self.catalog.select(t.schema.name, t.name, order_by=["RCT"])
        types = self._asset_types(t, [r["RID"] for r in rows])
        return [self._asset_from_row(t, r, types[r["RID"]]) for r in rows]

    def lookup_asset(self, asset_rid: str) -> Asset:
        """The asset a RID names. Raises if the RID is not in an asset table."""
        found = self.resolve_rid(asset_rid)
        t = found.table
        if not self.model.is_asset(t):
            raise DerivaMLTableTypeError(
                "asset", asset_rid, f"RID {asset_rid} is a row of {t.name}, not of an asset table."
            )
        row = self.catalog.select(t.schema.name, t.name, {"RID": asset_rid})[0]
        return self._asset_from_row(t, row, self._asset_types(t, [asset_rid])[asset_rid])

    def _execution_assets(self, execution_rid: str, asset_role: str | None) -> list[Asset]:
        out: list[Asset] = []
        for t in self.model.asset_tables():
            try:
                assoc, col, ecol = self.model.find_association(t, "Execution")
            except DerivaMLException:
                continue
            where: dict[str, Any] = {ecol: execution_rid}
            if asset_role:
                where["Asset_Role"] = asset_role
            links = self.catalog.select(assoc.schema.name, assoc.name, where)
            if not links:
                continue
            rids = [r[col] for r in links]
            rows = self.catalog.select(t.schema.name, t.name, {"RID": rids}, order_by=["RCT"])
            types = self._asset_types(t, rids)
            out += [self._asset_from_row(t, r, types[r["RID"]]) for r in rows]
        return out

    # -- workflows ---------------------------------------------------------------------------
    def create_workflow(
        self,
        name: str,
        workflow_type: str | list[str],
        description: str = "",
        *,
        source_path: str | os.PathLike[str] | None = None,
        allow_dirty: bool = False,
    ) -> Workflow:
        """A workflow for the calling script (or ``source_path``), its types checked against the catalog."""
        from pytest_deriva.execution.workflow import Workflow, workflow_type_names

        types = [self.lookup_term(MLVocab.workflow_type, t).name for t in workflow_type_names(workflow_type)]
        return Workflow(
            name=name,
            workflow_type=types,
            description=description,
            source_path=Path(source_path) if source_path else None,
            allow_dirty=allow_dirty,
        )

    def add_workflow(self, workflow: Workflow) -> str:
        """Record a workflow, or find the one already recorded with the same checksum or URL; its RID."""
        types = [self.lookup_term(MLVocab.workflow_type, t).name for t in workflow.workflow_type]
        key = (self.catalog.catalog_uuid or self.catalog.uri, tuple(types))
        if workflow.rid and workflow._registered == key:
            return workflow.rid  # recorded by this handle already, with these types
        found = self._find_workflow_row(workflow.checksum, workflow.url)  # the common case: no write lock
        if found is not None:
            # The same code run with another workflow type: the workflow gains that type.
            self.catalog.insert(
                self.ml_schema,
                "Workflow_Workflow_Type",
                [{"Workflow": found["RID"], "Workflow_Type": t} for t in types],
                on_conflict_skip=True,
            )
            workflow.rid = str(found["RID"])
            workflow._registered = key
            return workflow.rid
        with self.catalog.transaction():
            existing = self._find_workflow_row(workflow.checksum, workflow.url)  # again, under the lock
            if existing is not None:
                rid = str(existing["RID"])
                self.catalog.insert(
                    self.ml_schema,
                    "Workflow_Workflow_Type",
                    [{"Workflow": rid, "Workflow_Type": t} for t in types],
                    on_conflict_skip=True,
                )
            else:
                rid = self.catalog.insert(
                    self.ml_schema,
                    "Workflow",
                    [
                        {
                            "Name": workflow.name,
                            "Description": workflow.description,
                            "URL": workflow.url,
                            "Checksum": workflow.checksum,
                            "Version": workflow.version,
                        }
                    ],
                )[0]["RID"]
                self.catalog.insert(
                    self.ml_schema,
                    "Workflow_Workflow_Type",
                    [{"Workflow": rid, "Workflow_Type": t} for t in types],
                    on_conflict_skip=True,  # a process that found this row first may have linked them
                )
                rid = self._settle_workflow(rid, workflow, types)
        workflow.rid = rid
        workflow._registered = key
        return rid

    def _workflow_rows(self, checksum: str | None, url: str | None) -> list[dict[str, Any]]:
        """Rows recording this code, oldest RID first (RIDs come from one sequence)."""
        # By checksum when there is one: a dirty file has the clean file's URL but other code.
        column, value = ("Checksum", checksum) if checksum else ("URL", url)
        if not value:
            return []
        return sorted(
            self.catalog.select(self.ml_schema, "Workflow", {column: value}), key=lambda r: rid_order(r["RID"])
        )

    def _find_workflow_row(self, checksum: str | None, url: str | None) -> dict[str, Any] | None:
        rows = self._workflow_rows(checksum, url)
        return rows[0] if rows else None

    def _settle_workflow(self, rid: str, workflow: Workflow, types: list[str]) -> str:
        """After recording a workflow: where another process recorded the same code at the same time
        (a server has no lock and Workflow no unique key), every process keeps the oldest row and
        the others delete their own, so one workflow is recorded once."""
        rows = self._workflow_rows(workflow.checksum, workflow.url)
        winner = str(rows[0]["RID"]) if rows else rid
        if winner != rid:
            self.catalog.insert(
                self.ml_schema,
                "Workflow_Workflow_Type",
                [{"Workflow": winner, "Workflow_Type": t} for t in types],
                on_conflict_skip=True,
            )
            self.catalog.delete(self.ml_schema, "Workflow", {"RID": rid})  # its type links go with it
        return winner

    def _workflow_from_row(self, row: dict[str, Any]) -> Workflow:
        from pytest_deriva.execution.workflow import Workflow

        types = self.catalog.select(self.ml_schema, "Workflow_Workflow_Type", {"Workflow": row["RID"]})
        wf = Workflow.model_construct(
            name=row.get("Name") or "",
            workflow_type=[t["Workflow_Type"] for t in types],
            description=row.get("Description"),
            url=row.get("URL"),
            version=row.get("Version"),
            rid=row["RID"],
            checksum=row.get("Checksum"),
            is_notebook=str(row.get("URL") or "").endswith(".ipynb"),
            git_root=None,
            allow_dirty=False,
            source_path=None,
        )
        wf._ml_instance = self._full
        return wf

    def lookup_workflow(self, rid: str) -> Workflow:
        """The workflow a RID names, bound to this catalog (``description``/``workflow_type`` write through)."""
        self._expect_table(rid, "Workflow", "a workflow")
        return self._workflow_from_row(self.catalog.select(self.ml_schema, "Workflow", {"RID": rid})[0])

    def lookup_workflow_by_url(self, url_or_checksum: str) -> Workflow:
        """The workflow recorded with this URL or checksum."""
        row = self._find_workflow_row(url_or_checksum, None) or self._find_workflow_row(None, url_or_checksum)
        if row is None:
            raise DerivaMLNotFoundError(
                f"No workflow with URL or checksum {url_or_checksum!r} in catalog {self.catalog.uri}."
            )
        return self._workflow_from_row(row)

    def find_workflows(self) -> list[Workflow]:
        return [self._workflow_from_row(r) for r in self.catalog.select(self.ml_schema, "Workflow", order_by=["RCT"])]

    # -- executions --------------------------------------------------------------------------
    def create_execution(
        self, configuration: ExecutionConfiguration, workflow: Workflow | None = None, dry_run: bool = False
    ) -> Execution:
        """Create an execution (a row in ``Execution`` unless ``dry_run``) ready to run."""
        from pytest_deriva.execution.execution import Execution

        return Execution(configuration, self._full, workflow=workflow, dry_run=dry_run)

    def lookup_execution(self, execution_rid: str) -> ExecutionRecord:
        """The execution a RID names."""
        from pytest_deriva.execution.record import ExecutionRecord

        validate_rid(execution_rid)
        rows = self.catalog.select(self.ml_schema, "Execution", {"RID": execution_rid})  # one request, found or not
        if not rows:
            self._expect_table(execution_rid, "Execution", "an execution")  # says which table it is in, if any
            raise DerivaMLNotFoundError(f"RID {execution_rid} does not exist in catalog {self.catalog.uri}.")
        return ExecutionRecord._from_row(rows[0], self._full)

    def find_executions(
        self,
        workflow: Workflow | str | None = None,
        workflow_type: str | None = None,
        status: Status | str | Iterable[Status | str] | None = None,
        *,
        parent: str | None = None,
        since: datetime | str | timedelta | None = None,
        until: datetime | str | timedelta | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> ExecutionList:
        """Executions, oldest first (a sweep's children in ``Sequence`` order with ``parent``).

        Args:
            workflow, workflow_type, status: Of this workflow (RID or Workflow), workflow type,
                or status (one, or several).
            parent: The children of this sweep.
            since, until: Made at or after / at or before this time (a ``datetime``, an ISO
                text such as ``2026-12-01``, or a ``timedelta`` back from now).
            params, metrics: Name -> condition: a value (equal), a list of values (any of
                them), ``(operator, value)`` such as ``(">", 0.9)``, or a function of the value,
                e.g. ``params={"lr": 0.1}, metrics={"acc": (">=", 0.9)}``.
            limit: Only the last ``limit`` of them.

        The result is a list of :class:`ExecutionRecord` with ``to_records()`` (a list of dicts)
        and ``to_dataframe()`` (pandas). Parameters and metrics come from the run index, not
        from a file per run.
        """
        from pytest_deriva.execution.query import find_executions

        return find_executions(
            self._full,
            workflow,
            workflow_type,
            status,
            parent=parent,
            since=since,
            until=until,
            params=params,
            metrics=metrics,
            limit=limit,
        )

    def recover(self) -> list[str]:
        """Finish what processes that stopped (killed, crashed) left unfinished in this handle's
        working directory: their running executions get the files they wrote uploaded and end
        ``Aborted`` with the reason, never-started ones end ``Aborted``, sweep parents are
        recomputed. Runs of live processes are left alone. Returns what was done, a line each.
        ``pytest --deriva-run`` and ``deriva-run`` do this when they start."""
        from pytest_deriva.execution.recovery import recover

        return recover(self._full)

    def restore_execution(self, execution_rid: str | None = None) -> Execution:
        """An :class:`Execution` for one recorded earlier, with its files and manifest, e.g. to
        upload what a crash left pending. Without a RID, the one execution in the working directory."""
        from pytest_deriva.execution.configuration import ExecutionConfiguration
        from pytest_deriva.execution.execution import Execution

        root = self.working_dir / "execution"
        if execution_rid is None:
            found = (
                sorted(
                    p.name
                    for p in root.glob("*")
                    if p.is_dir() and p.name != DRY_RUN_RID and not p.name.startswith(".")  # a process's spare
                )
                if root.exists()
                else []
            )
            if len(found) != 1:
                raise DerivaMLException(
                    f"restore_execution() needs a RID: the working directory {root} holds "
                    f"{len(found)} executions ({', '.join(found) or 'none'})."
                )
            execution_rid = found[0]
        record = self.lookup_execution(execution_rid)
        configuration = ExecutionConfiguration(description=record.description or "")
        for asset in record.list_assets(asset_role="Output"):
            if asset.asset_table == "Execution_Metadata" and asset.filename == "configuration.json":
                target = self.cache_dir / "restore" / execution_rid / "configuration.json"
                configuration = ExecutionConfiguration.load_configuration(self.catalog.objects.get(asset.url, target))
                break
        workflow = self.lookup_workflow(record.workflow_rid) if record.workflow_rid else None
        return Execution(configuration, self._full, workflow=workflow, reload=execution_rid)

    def _add_nested_execution(self, parent: str, child: str, sequence: int | None, checked: bool = False) -> None:
        if not checked:  # callers that made both executions themselves know what they are
            self._expect_table(parent, "Execution", "an execution")
            self._expect_table(child, "Execution", "an execution")
        if parent == child:
            raise DerivaMLValidationError(f"Execution {parent} cannot be nested in itself.")
        row: dict[str, Any] = {"Execution": parent, "Nested_Execution": child}
        if sequence is not None:
            if not isinstance(sequence, int) or sequence < 0:
                raise DerivaMLValidationError(f"sequence must be a non-negative int or None, not {sequence!r}.")
            row["Sequence"] = sequence
        self.catalog.insert(self.ml_schema, "Execution_Execution", [row], on_conflict_skip=True)

    def _related_executions(
        self, rid: str, *, children: bool, recurse: bool, visited: set[str] | None
    ) -> list[ExecutionRecord]:
        from pytest_deriva.execution.record import ExecutionRecord

        visited = set() if visited is None else visited
        if rid in visited:
            return []
        visited.add(rid)
        here, there = ("Execution", "Nested_Execution") if children else ("Nested_Execution", "Execution")
        links = self.catalog.select(self.ml_schema, "Execution_Execution", {here: rid})
        links.sort(key=lambda r: (r["Sequence"] is None, r["Sequence"] or 0, r["RCT"]))
        rows = {
            r["RID"]: r for r in self.catalog.select(self.ml_schema, "Execution", {"RID": [x[there] for x in links]})
        }
        out: list[ExecutionRecord] = []
        for link in links:
            other = link[there]
            if other in visited and recurse:
                continue
            out.append(ExecutionRecord._from_row(rows[other], self._full))
            if recurse:
                out += self._related_executions(other, children=children, recurse=True, visited=visited)
        return out

    def __repr__(self) -> str:
        return f"DerivaML(catalog={self.catalog.uri!r})"


class DerivaML(DatasetMixin, DerivaMLBase):
    """A handle on one catalog, in the shape of DerivaML's: vocabularies, assets, workflows,
    executions, datasets and features. See :class:`DerivaMLBase` for the arguments."""
