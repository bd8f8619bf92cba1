"""``pytest-deriva push``: runs recorded offline (an embedded store) copied to a DERIVA server, once.

What goes: the executions named (by default every one not pushed yet) with their nested
executions, their workflows (a workflow the server already has, by ``Checksum``, is used, not
copied), the nesting links with ``Sequence``, every asset they read or wrote (rows, files, types
and roles; a file is uploaded once per MD5 and one already in Hatrac is not sent again), the
vocabulary terms these use, and the run index (parameters and metrics). Status, detail,
duration and description are kept; the server gives every new row its own RID.

Datasets a run read or made (``Dataset_Execution``) go with it: the row, its types, the datasets
nested in it (children first) and each version the server lacks, replayed in order - the server's
dataset is made to hold the members the version held here (``Dataset_<Table>`` rows added and
removed; member rows the server lacks copied as they were at the version, after the rows they
name), then the version is recorded with the server's snapshot, so reading it there at that
version gives what it gave here. Feature values a run recorded go with the rows, terms and files
they name.

Exactly once. The server has no transactions, so the push is a sequence of steps, each of which
can be repeated without making a second row:

- A row without a natural key (a workflow the server lacks, an execution) gets its RID before it
  is inserted: leased from ERMrest (``public:ERMrest_RID_Lease``, whose ``ID`` says
  ``pytest-deriva push <store> <local RID> <attempt>``), then reserved in ``pytest-deriva:Push_Origin`` on
  the server (unique per store and local RID: a second reservation is skipped and the first one
  read back). The row is then inserted with that RID, ``onconflict=skip``. A push stopped at any
  point finds the reservation again and inserts the row with the same RID, which the server skips
  if it is there; a lease that was never reserved is only an unused RID. ``Push_Origin`` is the
  server's record of where each row came from (``pushed_from``); a user who may write, not only
  an admin, can read it (ERMrest shows the lease table to admins only). No ``deriva-ml`` table
  gets a column.
- Rows with a key (terms by ``Name``, asset rows by ``URL``, links by their two columns, index
  rows by execution and name, dataset versions by dataset and version) are inserted with
  ``onconflict=skip`` and read back. Domain rows, feature values and datasets get reserved RIDs;
  a dataset is recorded pushed only when all its versions are on the server.
- After each server step, the embedded store records the RIDs in ``pytest-deriva:Pushed_Row``
  (outside ``deriva-ml``). An execution's row there is ``Complete`` only when its files, links and
  index rows are on the server; a later push skips complete ones without a request.

Refused before anything is written, each with the fix: a target without the ``deriva-ml`` schema
or ``Push_Origin`` (``pytest-deriva catalog init``), a login that may not insert, a workflow whose URL is a path on
this machine (``file://``), runs still running or with files not uploaded (unless
``include_running``), and runs with rows in other tables that refer to executions, which a push
does not copy (they are not dropped silently). Vocabulary terms the server lacks are added with the
description they have here, and the report says so: a term is a name and a description, so the
copy is the same term, and refusing would only make the user type it again.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva._faults import crash_point
from pytest_deriva._rid import rid_order
from pytest_deriva.catalog import schema as ddl
from pytest_deriva.catalog.model import SYSTEM_COLUMNS, Model, Table
from pytest_deriva.catalog.port import CatalogPort, select_in
from pytest_deriva.exceptions import (
    DerivaMLConfigurationError,
    DerivaMLException,
    DerivaMLNotFoundError,
    DerivaMLReadOnlyError,
    DerivaMLSchemaError,
)

if TYPE_CHECKING:
    from pytest_deriva.catalog.server import ServerCatalog

__all__ = ["PushRefused", "PushResult", "push", "pushed", "pushed_from"]

ML = ddl.ML_SCHEMA
MARK = "pytest-deriva push"
#: Statuses of a run that has ended.
_ENDED = frozenset({"Completed", "Failed", "Aborted"})
#: The columns of an Execution row that change as it runs.
_STATE = frozenset({"Status", "Status_Detail", "Duration", "Description"})
#: Executions per round of asset, link and index writes (bounded memory and request sizes).
_CHUNK = 200


class PushRefused(DerivaMLException):
    """What was asked cannot be pushed; nothing was written (the message says why and what to do)."""


@dataclass
class PushResult:
    """What a push did."""

    target: str
    #: Local RID -> server RID of each execution this push completed.
    executions: dict[str, str] = field(default_factory=dict)
    #: Executions pushed before and skipped.
    already: int = 0
    workflows_created: int = 0
    workflows_matched: int = 0
    files: int = 0
    bytes: int = 0
    files_reused: int = 0
    terms_added: list[str] = field(default_factory=list)
    requests: int = 0

    def web_url(self, rid: str) -> str:
        """The Chaise page of a pushed execution."""
        from pytest_deriva.catalog import parse_server_url

        loc = parse_server_url(self.target)
        return f"{loc.scheme}://{loc.host}/chaise/record/#{loc.catalog_id}/{ML}:Execution/RID={rid}"

    def lines(self, terms: bool = True) -> list[str]:
        """The report, a line each: the terms added (unless ``terms`` is False: a progress callback
        said them already), what was pushed, and each execution's RIDs here and there."""
        out = list(self.terms_added) if terms else []
        if not self.executions:
            out.append(f"nothing to push: {self.already} executions already on {self.target}")
            return out
        out.append(
            f"pushed {len(self.executions)} executions to {self.target} ({self.already} there before): "
            f"{self.workflows_created} workflows added, {self.workflows_matched} found there by checksum; "
            f"{self.files} files uploaded ({_size(self.bytes)}), {self.files_reused} already there; "
            f"{self.requests} requests"
        )
        for local, remote in self.executions.items():
            out.append(f"  {local} -> {remote}  {self.web_url(remote)}")
        return out


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def target_id(url: str) -> str:
    """How the embedded store names a server catalog in its push records: ``host/id``."""
    from pytest_deriva.catalog import parse_server_url

    loc = parse_server_url(url)
    return f"{loc.host}/{loc.catalog_id}"


def _marker(source: CatalogPort, rid: str, attempt: str) -> str:
    """A lease's ``ID``: what it is for, and the attempt (ERMrest keeps one lease per user and ID,
    so a push that stopped after leasing and was not reserved must be able to lease again)."""
    return f"{MARK} {source.catalog_uuid} {rid} {attempt}"


def _map_table(source: CatalogPort) -> Table | None:
    schema = source.model.schemas.get(ddl.INDEX_SCHEMA)
    return schema.tables.get(ddl.PUSH_TABLE) if schema is not None else None


def pushed(source: CatalogPort, url: str) -> dict[str, str]:
    """Local RID -> server RID of every row the store pushed to catalog ``url``."""
    if _map_table(source) is None:
        source.refresh_model()  # made since this handle read the model, perhaps by another process
        if _map_table(source) is None:
            return {}
    rows = source.select(ddl.INDEX_SCHEMA, ddl.PUSH_TABLE, {"Target": target_id(url)})
    return {r["Local_RID"]: r["Target_RID"] for r in rows}


def pushed_from(target: ServerCatalog, rid: str) -> str | None:
    """Where a server row came from when a push made it: ``"<store> <local RID>"``, else None."""
    rows = target.select(ddl.INDEX_SCHEMA, ddl.PUSH_ORIGIN_TABLE, {"Target_RID": rid}, columns=["Source", "Source_RID"])
    return f"{rows[0]['Source']} {rows[0]['Source_RID']}" if rows else None


def check_locations(source: str | Path, url: str, verb: str) -> Path:
    """The embedded store's folder, after checking it is one and ``url`` names a server catalog."""
    from pytest_deriva.catalog import is_embedded_catalog, is_server_location

    if not is_server_location(url):
        raise PushRefused(f"{url!r} is not a server catalog; {verb} https://<host>/ermrest/catalog/<id>.")
    folder = Path(source)
    if not is_embedded_catalog(folder):
        raise PushRefused(
            f"No embedded catalog at {folder}: name the folder runs were recorded in with --catalog "
            "(default .deriva at the project root)."
        )
    return folder


def push(
    source: str | Path,
    url: str,
    rids: Sequence[str] = (),
    *,
    include_running: bool = False,
    credential: Any = None,
    progress: Callable[[str], None] | None = None,
) -> PushResult:
    """Push the executions ``rids`` (default: all not pushed yet) of the embedded store at
    ``source`` to the server catalog ``url``; see the module docstring."""
    from pytest_deriva._locks import file_lock
    from pytest_deriva.catalog import connect

    folder = check_locations(source, url, "push to")
    src = connect(folder, create=False)
    try:
        (folder / "work").mkdir(exist_ok=True)
        with file_lock(folder / "work" / ".push.lock"):  # one push from a store at a time
            return _Push(src, url, credential, progress or (lambda _: None)).run(list(rids), include_running)
    finally:
        src.close()


class _Push:
    def __init__(self, source: CatalogPort, url: str, credential: Any, progress: Callable[[str], None]) -> None:
        self.src = source
        self.url = url
        self.target = target_id(url)
        self.credential = credential
        self.say = progress
        self.result = PushResult(url)
        self._tgt: ServerCatalog | None = None
        self.done: dict[str, str] = {}  # local RID -> server RID, from the store's push records
        self.complete: set[str] = set()
        self._datasets_done: set[str] = set()  # datasets this push has brought up to date
        self._terms_there: dict[str, set[str]] = {}  # vocabulary -> terms the server has

    # -- reading what there is to push ---------------------------------------------------------
    def _records(self) -> None:
        if _map_table(self.src) is None:
            return
        for r in self.src.select(ddl.INDEX_SCHEMA, ddl.PUSH_TABLE, {"Target": self.target}):
            self.done[r["Local_RID"]] = r["Target_RID"]
            if r["Complete"]:
                self.complete.add(r["Local_RID"])

    def _table(self, name: str, schema: str = ML) -> Table:
        return self.src.model.schemas[schema].tables[name]

    def _select(self, name: str, column: str, values: Iterable[Any], schema: str = ML) -> list[dict[str, Any]]:
        return select_in(self.src, self._table(name, schema), column, values)

    def _executions(self, rids: list[str]) -> list[str]:
        rows = self.src.select(ML, "Execution", columns=["RID"])
        known = {r["RID"] for r in rows}
        if not rids:
            return sorted(known - self.complete, key=rid_order)
        unknown = [r for r in rids if r not in known]
        if unknown:
            raise DerivaMLNotFoundError(
                f"No execution {', '.join(unknown)} in {self.src.uri}; list them with: pytest-deriva runs"
            )
        # A sweep goes with its children (and theirs).
        wanted, frontier = set(rids), set(rids)
        while frontier:
            links = self._select("Execution_Execution", "Execution", frontier)
            frontier = {r["Nested_Execution"] for r in links} - wanted
            wanted |= frontier
        return sorted(wanted - self.complete, key=rid_order)

    def _refuse_unfinished(self, rows: list[dict[str, Any]], include_running: bool) -> None:
        from pytest_deriva.execution.manifest import AssetManifest

        if include_running:
            return
        problems = []
        for r in rows:
            if r["Status"] not in _ENDED:
                problems.append(f"{r['RID']} is {r['Status']}")
                continue
            path = (self.src.local_path or Path()) / "work" / "execution" / r["RID"] / "asset-manifest.jsonl"
            pending = AssetManifest(path, r["RID"]).pending_assets() if path.is_file() else {}
            if pending:
                problems.append(f"{r['RID']} has {len(pending)} files not uploaded ({', '.join(sorted(pending)[:3])})")
        if problems:
            raise PushRefused(
                "Not pushed, these runs have not finished: "
                + "; ".join(problems[:10])
                + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
                + ". Let them finish (a stopped run is finished and its files uploaded by the next "
                "'pytest --deriva-run' or DerivaML(...).recover()), name only finished runs, "
                "or push them as they are with --include-running."
            )

    def _refuse_unsupported(self, rids: list[str]) -> None:
        """Runs with rows of a table that refers to executions and that a push does not copy:
        refused, never dropped."""
        from pytest_deriva.dataset.feature import find_features

        model = self.src.model
        handled = {(ML, t) for t in ("Execution_Execution", "Dataset_Execution", "Dataset_Version")}
        handled |= {_qualified(model.find_association(a, "Execution")[0]) for a in _execution_assets(model)}
        handled |= {_qualified(t) for t, _target, _name in find_features(model, ML)}
        found = []
        for fk in self._table("Execution").referenced_by:
            t = fk.table
            if _qualified(t) in handled or t.schema.name == ddl.INDEX_SCHEMA:
                continue
            col = fk.foreign_key_columns[0].name
            rows = select_in(self.src, t, col, rids)
            if rows:
                runs = sorted({r[col] for r in rows}, key=rid_order)
                found.append(f"{t.qualified_name} ({len(rows)} rows; runs {', '.join(runs[:5])})")
        if found:
            raise PushRefused(
                "Not pushed: these runs have rows in tables that refer to executions and that push does not copy "
                f"(and never drops): {'; '.join(found)}. Push the other runs by naming their RIDs."
            )

    def _extra_tables(self, rids: list[str]) -> list[tuple[str, str]]:
        """The tables the datasets and features of these runs need on the server (with the tables
        their rows refer to)."""
        from pytest_deriva.dataset.feature import find_features

        tables: list[Table] = []
        datasets = self._datasets_of(rids)
        if datasets:
            tables += [
                self._table(t) for t in ("Dataset", "Dataset_Version", "Dataset_Dataset_Type", "Dataset_Execution")
            ]
            for assoc, dcol, _ecol, element in self._elements():
                snapshots = [None, *(v["Snapshot"] for d in datasets for v in self._versions(d) if v.get("Snapshot"))]
                if any(select_in(self.src, assoc, dcol, datasets, snapshot=s) for s in snapshots):
                    tables += [assoc, element]
        for table, _target, _name in find_features(self.src.model, ML):
            if select_in(self.src, table, "Execution", rids):
                tables.append(table)
        out: dict[tuple[str, str], None] = {}
        while tables:
            t = tables.pop()
            if _qualified(t) in out:
                continue
            out[_qualified(t)] = None
            tables += [fk.pk_table for fk in t.foreign_keys if fk.foreign_key_columns[0].name not in SYSTEM_COLUMNS]
        return list(out)

    # -- the server side ---------------------------------------------------------------------
    @property
    def tgt(self) -> ServerCatalog:
        if self._tgt is None:
            from pytest_deriva.catalog.server import ServerCatalog

            self._tgt = ServerCatalog(self.url, credential=self.credential)
        return self._tgt

    def _check_target(self, tables: Iterable[tuple[str, str]]) -> None:
        from pytest_deriva.catalog.setup import require_ml_schema

        require_ml_schema(self.tgt)
        model = self.tgt.refresh_model()
        missing = [f"{s}:{t}" for s, t in tables if s not in model.schemas or t not in model.schemas[s].tables]
        if f"{ddl.INDEX_SCHEMA}:{ddl.PUSH_ORIGIN_TABLE}" in missing:
            raise PushRefused(
                f"{self.url} has no {ddl.INDEX_SCHEMA}:{ddl.PUSH_ORIGIN_TABLE}, where a push records where rows came "
                f"from (it was set up before push existed). Add it with: pytest-deriva catalog init {self.url}"
            )
        if missing:
            raise PushRefused(
                f"{self.url} has no table {', '.join(missing)}. Create the domain tables there as they are here "
                f"(the same DerivaML calls: create_asset, create_table), or run: pytest-deriva catalog init {self.url}"
            )
        refused = [
            f"{s}:{t}" for s, t in tables if (model.schemas[s].tables[t].doc.get("rights") or {}).get("insert") is False
        ]
        if refused:
            how = (
                f"log in first ('deriva-globus-auth-utils login --host {self.tgt.hostname}', or --credential FILE)"
                if not self.tgt._credential
                else "ask the catalog's owner for write access, or push to a catalog you own"
            )
            raise DerivaMLReadOnlyError(f"This login may not insert into {', '.join(refused)} on {self.url}: {how}.")

    def _origins(self, rids: Iterable[str]) -> dict[str, str]:
        """Local RID -> server RID reserved for it by an earlier push (one that stopped, or finished
        before the store recorded it)."""
        wanted = list(rids)
        if not wanted:
            return {}
        found = self.tgt.select(
            ddl.INDEX_SCHEMA,
            ddl.PUSH_ORIGIN_TABLE,
            {"Source": self.src.catalog_uuid, "Source_RID": wanted},
            columns=["Source_RID", "Target_RID"],
        )
        return {r["Source_RID"]: r["Target_RID"] for r in found}

    def _create(self, table: Table, rows: Mapping[str, dict[str, Any]], known: Mapping[str, str]) -> dict[str, str]:
        """Insert rows (local RID -> values) on the server, each with the RID reserved for it (``known``,
        else leased now); local RID -> server RID."""
        rids = dict(known)
        new = [r for r in rows if r not in rids]
        if new:
            attempt = uuid.uuid4().hex[:12]
            leased = self.tgt.lease_rids([_marker(self.src, r, attempt) for r in new])
            crash_point(f"push:leased:{table.name}")
            origin = [
                {"Source": self.src.catalog_uuid, "Source_RID": r, "Target_RID": rid, "Table": table.qualified_name}
                for r, rid in zip(new, leased, strict=True)
            ]
            self.tgt.insert(ddl.INDEX_SCHEMA, ddl.PUSH_ORIGIN_TABLE, origin, on_conflict_skip=True)
            # What the server kept: ours, or (two pushes at once) the other one's, which both then use.
            rids.update(self._origins(new))
            crash_point(f"push:reserved:{table.name}")
        self.tgt.insert(
            table.schema.name,
            table.name,
            [{"RID": rids[r], **values} for r, values in rows.items()],
            on_conflict_skip=True,
            with_rid=True,
        )
        crash_point(f"push:inserted:{table.name}")
        return {r: rids[r] for r in rows}

    def _record(self, table: Table, mapping: Mapping[str, str], complete: bool | None = None) -> None:
        """Write what was pushed into the store's records (after the server has it)."""
        rows = [
            {
                "Target": self.target,
                "Local_RID": local,
                "Target_RID": remote,
                "Table": table.qualified_name,
                "Complete": complete,
            }
            for local, remote in mapping.items()
            if local not in self.done
        ]
        if rows:
            self.src.insert(ddl.INDEX_SCHEMA, ddl.PUSH_TABLE, rows, on_conflict_skip=True)
        self.done.update(mapping)

    def _copy(self, table: Table, row: Mapping[str, Any], refs: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        """The values of a local row to write on the server: its columns the server table has, with
        the columns in ``refs`` (column -> local RID -> server RID) mapped."""
        there = self.tgt.model.schemas[table.schema.name].tables[table.name].columns
        out = {}
        for name, value in row.items():
            if name in SYSTEM_COLUMNS or name not in there:
                continue
            out[name] = refs[name][value] if name in refs and value is not None else value
        return out

    # -- the steps ---------------------------------------------------------------------------
    def run(self, rids: list[str], include_running: bool) -> PushResult:
        self._records()
        todo = self._executions(rids)
        self.result.already = len(self.complete)
        if not todo:
            return self.result  # not a request to the server
        rows = {r["RID"]: r for r in self._select("Execution", "RID", todo)}
        assets = _execution_assets(self.src.model)
        needed = [(ML, "Execution"), (ML, "Workflow"), (ML, "Execution_Execution"), (ML, "Workflow_Workflow_Type")]
        for a in assets:
            needed += [
                _qualified(self.src.model.find_association(a, "Execution")[0]),
                _qualified(self.src.model.find_association(a, "Asset_Type")[0]),
                _qualified(a),
            ]
        # Everything that could refuse, before anything is written: the target, then the runs.
        needed += self._extra_tables(todo)
        self._check_target(
            dict.fromkeys([*needed, (ddl.INDEX_SCHEMA, ddl.PUSH_ORIGIN_TABLE), ("public", "ERMrest_RID_Lease")])
        )
        self._refuse_unfinished(list(rows.values()), include_running)
        self._refuse_unsupported(todo)
        workflows = {
            r["RID"]: r for r in self._select("Workflow", "RID", {r["Workflow"] for r in rows.values()} - {None})
        }
        private = [w for w in workflows.values() if not str(w.get("URL") or "").startswith(("https://", "http://"))]
        if private:
            w = private[0]
            raise PushRefused(
                f"Workflow {w['RID']} ({w['Name']}) has the URL {w['URL']!r}, a place on this machine that no one "
                "reading the server can open. Push its repository to a remote (git remote add origin URL; git push), "
                "record the runs again from that commit, and push those."
            )
        self.say(f"pushing {len(todo)} executions to {self.url}")
        requests_before = self.tgt.request_count
        self._ensure_records()
        assets = _execution_assets(self.src.model)  # of the model as it is now (a new table made it anew)
        self._terms(workflows, assets, todo)
        wf = self._workflows(workflows)
        self._executions_rows(rows, wf)
        self._nesting(todo)
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start : start + _CHUNK]
            for a in assets:
                self._assets(a, chunk)
            self._dataset_links(chunk)
            self._features(chunk)
            self._index(chunk)
            crash_point("push:linked")
            self._complete(chunk, rows)
            self.say(f"  {min(start + _CHUNK, len(todo))} of {len(todo)} executions complete on the server")
        self.result.executions = {r: self.done[r] for r in todo}
        self.result.requests = self.tgt.request_count - requests_before
        return self.result

    def _ensure_records(self) -> None:
        if _map_table(self.src) is None:
            self.src.create_tables(ddl.INDEX_SCHEMA, [ddl.push_table()], exists_ok=True)

    def _terms(self, workflows: Mapping[str, Any], assets: list[Table], todo: list[str]) -> None:
        """Terms the rows use that the server lacks: added, with the description they have here."""
        used: dict[str, set[str]] = {"Workflow_Type": set(), "Asset_Type": set(), "Asset_Role": set()}
        for r in self._select("Workflow_Workflow_Type", "Workflow", workflows):
            used["Workflow_Type"].add(r["Workflow_Type"])
        for a in assets:
            assoc, acol, ecol = self.src.model.find_association(a, "Execution")
            links = select_in(self.src, assoc, ecol, todo)
            used["Asset_Role"] |= {r["Asset_Role"] for r in links if r.get("Asset_Role")}
            types, tcol, vcol = self.src.model.find_association(a, "Asset_Type")
            used["Asset_Type"] |= {r[vcol] for r in select_in(self.src, types, tcol, [r[acol] for r in links])}
        for vocab, names in used.items():
            self._add_terms(self._table(vocab), names)

    def _add_terms(self, vocab: Table, names: Iterable[str]) -> None:
        """Terms of ``vocab`` the server lacks: added, with the description they have here."""
        names = set(names) - self._terms_there.setdefault(vocab.qualified_name, set())
        if not names:
            return
        schema, name = vocab.schema.name, vocab.name
        have = {r["Name"] for r in self.tgt.select(schema, name, {"Name": sorted(names)}, columns=["Name"])}
        missing = sorted(names - have)
        if missing:
            rows = select_in(self.src, vocab, "Name", missing)
            values: list[dict[str, Any]] = [
                {k: r[k] for k in ("Name", "Description", "Synonyms") if k in r} for r in rows
            ]
            added = self.tgt.insert(schema, name, values, on_conflict_skip=True)
            if added:
                line = f"added {name} terms the server lacked: {', '.join(r['Name'] for r in added)}"
                self.result.terms_added.append(line)
                self.say(line)
        self._terms_there[vocab.qualified_name] |= names

    def _workflows(self, workflows: Mapping[str, dict[str, Any]]) -> dict[str, str]:
        table = self._table("Workflow")
        need = {rid: w for rid, w in workflows.items() if rid not in self.done}
        if need:
            leased = self._origins(need)  # ours, from a push that stopped: finish those
            rest = [w for rid, w in need.items() if rid not in leased]
            by_checksum: dict[str, str] = {}
            sums = [w["Checksum"] for w in rest if w.get("Checksum")]
            for row in sorted(
                self.tgt.select(ML, "Workflow", {"Checksum": sums}, columns=["RID", "Checksum"]) if sums else [],
                key=lambda r: rid_order(r["RID"]),
            ):
                by_checksum.setdefault(row["Checksum"], row["RID"])
            matched = {w["RID"]: by_checksum[w["Checksum"]] for w in rest if w.get("Checksum") in by_checksum}
            made = self._create(
                table, {rid: self._copy(table, w, {}) for rid, w in need.items() if rid not in matched}, leased
            )
            types = self._select("Workflow_Workflow_Type", "Workflow", made)
            self.tgt.insert(
                ML,
                "Workflow_Workflow_Type",
                [{"Workflow": made[t["Workflow"]], "Workflow_Type": t["Workflow_Type"]} for t in types],
                on_conflict_skip=True,
            )
            self._record(table, {**matched, **made})
            self.result.workflows_created += len(made)
            self.result.workflows_matched += len(matched)
        return {rid: self.done[rid] for rid in workflows}

    def _executions_rows(self, rows: Mapping[str, dict[str, Any]], workflows: Mapping[str, str]) -> None:
        table = self._table("Execution")
        need = {rid: r for rid, r in rows.items() if rid not in self.done}
        for start in range(0, len(need), _CHUNK * 5):
            part = dict(list(need.items())[start : start + _CHUNK * 5])
            made = self._create(
                table,
                {rid: self._copy(table, r, {"Workflow": workflows}) for rid, r in part.items()},
                self._origins(part),
            )
            self._record(table, made, complete=False)
        # Rows pushed before they ended (--include-running): their state now.
        again = [
            {"RID": self.done[rid], **{k: v for k, v in self._copy(table, r, {}).items() if k in _STATE}}
            for rid, r in rows.items()
            if rid not in need
        ]
        if again:
            self.tgt.update(ML, "Execution", again, returning=False)

    def _nesting(self, todo: list[str]) -> None:
        links = {
            r["RID"]: r
            for column in ("Execution", "Nested_Execution")
            for r in self._select("Execution_Execution", column, todo)
        }
        both = [r for r in links.values() if r["Execution"] in self.done and r["Nested_Execution"] in self.done]
        ids = {rid: self.done for rid in ("Execution", "Nested_Execution")}
        table = self._table("Execution_Execution")
        self.tgt.insert(ML, "Execution_Execution", [self._copy(table, r, ids) for r in both], on_conflict_skip=True)

    def _assets(self, table: Table, chunk: list[str]) -> None:
        """An asset table's files of these executions: stored, rows, types, links to them."""
        assoc, acol, ecol = self.src.model.find_association(table, "Execution")
        links = select_in(self.src, assoc, ecol, chunk)
        if not links:
            return
        self._rows(table, [r[acol] for r in links])
        ids = {acol: self.done, ecol: self.done}
        self.tgt.insert(
            assoc.schema.name, assoc.name, [self._copy(assoc, r, ids) for r in links], on_conflict_skip=True
        )

    def _asset_rows(self, table: Table, need: Mapping[str, dict[str, Any]], snapshot: str | None) -> None:
        """Asset rows not on the server yet: their files stored (once per MD5), rows, types."""
        from pytest_deriva.catalog.objectstore import parse_object_url

        schema, name = table.schema.name, table.name
        # The server's own row for the same file (MD5 and Filename), as DerivaML reuses one.
        there = self.tgt.select(schema, name, {"MD5": sorted({r["MD5"] for r in need.values()})})
        by_file = {(r["MD5"], r["Filename"]): r["RID"] for r in sorted(there, key=lambda r: rid_order(r["RID"]))[::-1]}
        found = {
            rid: by_file[(r["MD5"], r["Filename"])] for rid, r in need.items() if (r["MD5"], r["Filename"]) in by_file
        }
        send = {rid: r for rid, r in need.items() if rid not in found}
        self.result.files_reused += len(found)
        with tempfile.TemporaryDirectory(prefix="deriva-push-") as tmp:
            for n, r in enumerate(send.values(), start=1):
                namespace, md5, filename = parse_object_url(r["URL"])
                local = self.src.objects.get(r["URL"], Path(tmp) / md5)
                stored = self.tgt.objects.put(local, namespace, filename, md5=md5)
                local.unlink()
                if stored.url != r["URL"]:  # the same form on both, so this holds; say so if not
                    raise DerivaMLConfigurationError(f"{r['URL']} was stored at {stored.url} on {self.url}.")
                self.result.files += 1
                self.result.bytes += stored.length
                if len(send) > 20 and (n % 20 == 0 or n == len(send)):
                    self.say(f"  {name}: {n} of {len(send)} files uploaded")
        crash_point("push:stored")
        refs = self._refs(table, send.values(), snapshot)  # a domain asset's metadata: the rows it names
        self.tgt.insert(schema, name, [self._copy(table, r, refs) for r in send.values()], on_conflict_skip=True)
        got = self.tgt.select(schema, name, {"URL": [r["URL"] for r in send.values()]}, columns=["RID", "URL"])
        by_url = {r["URL"]: r["RID"] for r in got}
        made = {**found, **{rid: by_url[r["URL"]] for rid, r in send.items()}}
        types, tcol, vcol = self.src.model.find_association(table, "Asset_Type")
        type_rows = select_in(self.src, types, tcol, made)
        self._add_terms(self._table("Asset_Type"), {t[vcol] for t in type_rows})
        self.tgt.insert(
            types.schema.name,
            types.name,
            [{tcol: made[t[tcol]], vcol: t[vcol]} for t in type_rows],
            on_conflict_skip=True,
        )
        self._record(table, made)

    def _rows(self, table: Table, rids: Iterable[str], snapshot: str | None = None) -> dict[str, str]:
        """Rows of a table on the server (local RID -> server RID): those not there yet copied, as
        they were at ``snapshot`` (default: now), after the rows they refer to."""
        want = [r for r in dict.fromkeys(rids) if r is not None]
        need = [r for r in want if r not in self.done]
        if need:
            rows = {r["RID"]: r for r in select_in(self.src, table, "RID", need, snapshot=snapshot)}
            if self.src.model.is_asset(table):
                self._asset_rows(table, rows, snapshot)
            else:
                self._insert_rows(table, rows, snapshot)
        return {r: self.done[r] for r in want}

    def _insert_rows(self, table: Table, rows: Mapping[str, dict[str, Any]], snapshot: str | None) -> None:
        """Rows without a natural key (a domain row, a feature value) made on the server with a
        reserved RID, after the rows and terms they refer to."""
        refs = self._refs(table, rows.values(), snapshot)
        made = self._create(table, {rid: self._copy(table, r, refs) for rid, r in rows.items()}, self._origins(rows))
        kept = {
            r["RID"]
            for r in self.tgt.select(table.schema.name, table.name, {"RID": list(made.values())}, columns=["RID"])
        }
        lost = [local for local, remote in made.items() if remote not in kept]
        if lost:  # skipped: the server has a row with the same key (a unique column) already
            raise PushRefused(
                f"{table.qualified_name} rows {', '.join(lost[:5])} were not added on {self.url}: it has rows with the "
                "same unique values already. Make the values differ (or remove the server's rows) and push again."
            )
        crash_point("push:rows")
        self._record(table, made)

    def _refs(self, table: Table, rows: Iterable[Mapping[str, Any]], snapshot: str | None) -> dict[str, dict[str, str]]:
        """Column -> local RID -> server RID for the columns of ``table`` that name rows of other
        tables, those rows pushed first; the terms the rows name added to the server if it lacks them."""
        rows = list(rows)
        refs: dict[str, dict[str, str]] = {}
        for fk in table.foreign_keys:
            cols = fk.foreign_key_columns
            if len(cols) != 1 or cols[0].name in SYSTEM_COLUMNS:
                continue
            col, pk = cols[0].name, fk.pk_table
            values = {r[col] for r in rows if r.get(col) is not None}
            if not values:
                continue
            if self.src.model.is_vocabulary(pk):
                if fk.referenced_columns[0].name == "Name":
                    self._add_terms(pk, values)
            elif _qualified(pk) == (ML, "Execution"):
                refs[col] = self.done  # every execution of the push is on the server before these rows
            else:
                refs[col] = self._rows(pk, values, snapshot)
        return refs

    # -- datasets and features ---------------------------------------------------------------
    def _elements(self) -> list[tuple[Table, str, str, Table]]:
        """What datasets hold: (association, its dataset column, its member column, member table)."""
        dataset = self._table("Dataset")
        out = [(self._table("Dataset_Dataset"), "Dataset", "Nested_Dataset", dataset)]
        for fk in dataset.referenced_by:
            t = fk.table
            if t.name in ("Dataset_Dataset", "Dataset_Execution") or not t.name.startswith("Dataset_"):
                continue
            others = [o for o in t.foreign_keys if o is not fk and o.foreign_key_columns[0].name not in SYSTEM_COLUMNS]
            if len(others) == 1 and t.name == f"Dataset_{others[0].pk_table.name}":
                element = others[0].pk_table
                if not self.src.model.is_vocabulary(element):
                    out.append((t, fk.foreign_key_columns[0].name, others[0].foreign_key_columns[0].name, element))
        return out

    def _versions(self, rid: str) -> list[dict[str, Any]]:
        from pytest_deriva.dataset.version import DatasetVersion

        rows = self._select("Dataset_Version", "Dataset", [rid])
        return sorted(rows, key=lambda r: DatasetVersion.parse(r["Version"]))

    def _datasets_of(self, rids: Iterable[str]) -> list[str]:
        """The datasets these executions read or made and those nested in them (live or at any of
        their versions), each after its children."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(rid: str) -> None:
            if rid in seen:
                return
            seen.add(rid)
            nested = self._table("Dataset_Dataset")
            children: set[str] = set()
            for snapshot in [None, *(v["Snapshot"] for v in self._versions(rid) if v.get("Snapshot"))]:
                children |= {
                    r["Nested_Dataset"] for r in select_in(self.src, nested, "Dataset", [rid], snapshot=snapshot)
                }
            for child in sorted(children, key=rid_order):
                visit(child)
            order.append(rid)

        for link in sorted(self._select("Dataset_Execution", "Execution", rids), key=lambda r: rid_order(r["RID"])):
            visit(link["Dataset"])
        return order

    def _dataset(self, rid: str) -> None:
        """A dataset on the server with every version it has here: the row and types once; each
        version the server lacks replayed - its members made what they were at that version here,
        then the version recorded with the server's snapshot of them."""
        table = self._table("Dataset")
        server = self.done.get(rid)
        if server is None:
            [row] = self._select("Dataset", "RID", [rid])
            values = {k: v for k, v in self._copy(table, row, {}).items() if k != "Version"}  # set at the end
            server = self._create(table, {rid: values}, self._origins([rid]))[rid]
            types = self._select("Dataset_Dataset_Type", "Dataset", [rid])
            self._add_terms(self._table("Dataset_Type"), {t["Dataset_Type"] for t in types})
            self.tgt.insert(
                ML,
                "Dataset_Dataset_Type",
                [{"Dataset": server, "Dataset_Type": t["Dataset_Type"]} for t in types],
                on_conflict_skip=True,
            )
        there = {r["Version"] for r in self.tgt.select(ML, "Dataset_Version", {"Dataset": server}, columns=["Version"])}
        versions = self._versions(rid)
        todo = [v for v in versions if v["Version"] not in there and v.get("Snapshot")]
        for v in todo:
            self._members(rid, server, v["Snapshot"])
            crash_point("push:members")
            row = {
                "Dataset": server,
                "Version": v["Version"],
                "Description": v.get("Description"),
                "Execution": self.done.get(v["Execution"]) if v.get("Execution") else None,
                "Snapshot": self.tgt.snapshot(),  # the members as the server now has them
            }
            self.tgt.insert(ML, "Dataset_Version", [row], on_conflict_skip=True)
        if todo or rid not in self.done:
            current = self._select("Dataset", "RID", [rid])[0].get("Version")
            [local] = [v["Version"] for v in versions if v["RID"] == current] or [None]
            if local is not None:
                got = self.tgt.select(ML, "Dataset_Version", {"Dataset": server, "Version": local}, columns=["RID"])
                self.tgt.update(ML, "Dataset", [{"RID": server, "Version": got[0]["RID"]}], returning=False)
        self._record(table, {rid: server})

    def _members(self, rid: str, server: str, snapshot: str) -> None:
        """The server dataset ``server`` made to hold what dataset ``rid`` held here at ``snapshot``."""
        for assoc, dcol, ecol, element in self._elements():
            local = [r[ecol] for r in select_in(self.src, assoc, dcol, [rid], snapshot=snapshot)]
            if element is self._table("Dataset"):
                wanted = {self.done[m] for m in local}  # nested datasets are pushed before their parents
            else:
                wanted = set(self._rows(element, local, snapshot).values())
            have = {
                r[ecol]: r["RID"]
                for r in self.tgt.select(assoc.schema.name, assoc.name, {dcol: server}, columns=["RID", ecol])
            }
            add = sorted(wanted - have.keys())
            if add:
                self.tgt.insert(
                    assoc.schema.name, assoc.name, [{dcol: server, ecol: m} for m in add], on_conflict_skip=True
                )
            drop = [have[m] for m in have.keys() - wanted]
            if drop:
                self.tgt.delete(assoc.schema.name, assoc.name, {"RID": drop})

    def _dataset_links(self, chunk: list[str]) -> None:
        """The datasets these executions read or made, on the server, and the links to them."""
        for rid in self._datasets_of(chunk):
            if rid not in self._datasets_done:
                self._dataset(rid)
                self._datasets_done.add(rid)
        links = self._select("Dataset_Execution", "Execution", chunk)
        ids = {"Dataset": self.done, "Execution": self.done}
        table = self._table("Dataset_Execution")
        self.tgt.insert(ML, "Dataset_Execution", [self._copy(table, r, ids) for r in links], on_conflict_skip=True)

    def _features(self, chunk: list[str]) -> None:
        """The feature values these executions recorded, with the rows, terms and files they name."""
        from pytest_deriva.dataset.feature import find_features

        for table, _target, _name in find_features(self.src.model, ML):
            rows = {r["RID"]: r for r in select_in(self.src, table, "Execution", chunk) if r["RID"] not in self.done}
            if rows:
                self._insert_rows(table, rows, None)

    def _index(self, chunk: list[str]) -> None:
        have = self.tgt.model.schemas.get(ddl.INDEX_SCHEMA)
        mine = self.src.model.schemas.get(ddl.INDEX_SCHEMA)
        if have is None or mine is None:
            return  # a catalog set up before the index: its runs are read from their files
        for name in ("Execution_Parameter", "Execution_Metric"):
            if name not in have.tables or name not in mine.tables:
                continue
            table = mine.tables[name]
            rows = select_in(self.src, table, "Execution", chunk)
            values = [self._copy(table, r, {"Execution": self.done}) for r in rows]
            self.tgt.insert(ddl.INDEX_SCHEMA, name, values, on_conflict_skip=True)

    def _complete(self, chunk: list[str], rows: Mapping[str, dict[str, Any]]) -> None:
        """Mark the ended runs of ``chunk`` pushed for good; one pushed before it ended
        (``include_running``) is pushed again next time, with its state and files then."""
        ended = [rid for rid in chunk if rows[rid]["Status"] in _ENDED]
        records = self.src.select(ddl.INDEX_SCHEMA, ddl.PUSH_TABLE, {"Target": self.target, "Local_RID": ended})
        self.src.update(ddl.INDEX_SCHEMA, ddl.PUSH_TABLE, [{"RID": r["RID"], "Complete": True} for r in records])
        self.complete.update(ended)


def _execution_assets(model: Model) -> list[Table]:
    """The asset tables executions read and write (``WWW:File``, a page's files, is not one)."""
    out = []
    for table in model.asset_tables():
        try:
            model.find_association(table, "Execution")
        except DerivaMLSchemaError:
            continue
        out.append(table)
    return out


def _qualified(table: Table) -> tuple[str, str]:
    return table.schema.name, table.name
