"""``pytest-deriva push``: runs recorded offline (an embedded store) copied to a DERIVA server, once.

What goes: the executions named (by default every one not pushed yet) with their nested
executions, their workflows (a workflow the server already has, by ``Checksum``, is used, not
copied), the nesting links with ``Sequence``, every asset they read or wrote (rows, files, types
and roles; a file is uploaded once per MD5 and one already in Hatrac is not sent again), the
vocabulary terms these use, and the run index (parameters and metrics). Status, detail,
duration and description are kept; the server gives every new row its own RID.

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
  rows by execution and name) are inserted with ``onconflict=skip`` and read back.
- After each server step, the embedded store records the RIDs in ``pytest-deriva:Pushed_Row``
  (outside ``deriva-ml``). An execution's row there is ``Complete`` only when its files, links and
  index rows are on the server; a later push skips complete ones without a request.

Refused before anything is written, each with the fix: a target without the ``deriva-ml`` schema
or ``Push_Origin`` (``pytest-deriva catalog init``), a login that may not insert, a workflow whose URL is a path on
this machine (``file://``), runs still running or with files not uploaded (unless
``include_running``), and runs that used or made datasets or features, which a push does not
copy yet (they are not dropped silently). Vocabulary terms the server lacks are added with the
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
    from pytest_deriva.catalog import connect, is_embedded_catalog, is_server_location

    if not is_server_location(url):
        raise PushRefused(f"{url!r} is not a server catalog; push to https://<host>/ermrest/catalog/<id>.")
    folder = Path(source)
    if not is_embedded_catalog(folder):
        raise PushRefused(
            f"No embedded catalog at {folder}: name the folder runs were recorded in with --catalog "
            "(default .deriva at the project root)."
        )
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

    def _refuse_unsupported(self, rids: list[str], assets: list[Table]) -> None:
        """Runs that used or made datasets or features (or anything else that refers to an
        execution and is not copied), or files whose rows name rows of other tables (a domain
        asset's metadata): refused, never dropped."""
        handled = {(ML, "Execution_Execution")}
        found = []
        for asset in assets:
            fkeys = {c.name for fk in asset.foreign_keys for c in fk.foreign_key_columns}
            assoc, acol, ecol = self.src.model.find_association(asset, "Execution")
            if fkeys:
                files = [r[acol] for r in select_in(self.src, assoc, ecol, rids)]
                named = [
                    r["RID"] for r in select_in(self.src, asset, "RID", files) if any(r[c] is not None for c in fkeys)
                ]
                if named:
                    found.append(
                        f"{asset.qualified_name} files {', '.join(named[:5])} name rows in {', '.join(sorted(fkeys))}"
                    )
            handled.add(_qualified(assoc))
        execution = self._table("Execution")
        for fk in execution.referenced_by:
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
                "Not pushed: these runs used or made datasets, features or domain rows, which push does not copy "
                f"yet (and never drops): {'; '.join(found)}. Push the other runs by naming their RIDs."
            )

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
        self._check_target(
            dict.fromkeys([*needed, (ddl.INDEX_SCHEMA, ddl.PUSH_ORIGIN_TABLE), ("public", "ERMrest_RID_Lease")])
        )
        self._refuse_unfinished(list(rows.values()), include_running)
        self._refuse_unsupported(todo, assets)
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
            if not names:
                continue
            have = {r["Name"] for r in self.tgt.select(ML, vocab, {"Name": sorted(names)}, columns=["Name"])}
            missing = sorted(names - have)
            if not missing:
                continue
            rows = self._select(vocab, "Name", missing)
            values: list[dict[str, Any]] = [
                {k: r[k] for k in ("Name", "Description", "Synonyms") if k in r} for r in rows
            ]
            added = self.tgt.insert(ML, vocab, values, on_conflict_skip=True)
            if added:
                line = f"added {vocab} terms the server lacked: {', '.join(r['Name'] for r in added)}"
                self.result.terms_added.append(line)
                self.say(line)

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
        from pytest_deriva.catalog.objectstore import parse_object_url

        model = self.src.model
        assoc, acol, ecol = model.find_association(table, "Execution")
        links = select_in(self.src, assoc, ecol, chunk)
        if not links:
            return
        schema, name = table.schema.name, table.name
        rows = {r["RID"]: r for r in select_in(self.src, table, "RID", [r[acol] for r in links])}
        need = {rid: r for rid, r in rows.items() if rid not in self.done}
        if need:
            # The server's own row for the same file (MD5 and Filename), as DerivaML reuses one.
            there = self.tgt.select(schema, name, {"MD5": sorted({r["MD5"] for r in need.values()})})
            by_file = {
                (r["MD5"], r["Filename"]): r["RID"] for r in sorted(there, key=lambda r: rid_order(r["RID"]))[::-1]
            }
            found = {
                rid: by_file[(r["MD5"], r["Filename"])]
                for rid, r in need.items()
                if (r["MD5"], r["Filename"]) in by_file
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
            self.tgt.insert(schema, name, [self._copy(table, r, {}) for r in send.values()], on_conflict_skip=True)
            got = self.tgt.select(schema, name, {"URL": [r["URL"] for r in send.values()]}, columns=["RID", "URL"])
            by_url = {r["URL"]: r["RID"] for r in got}
            made = {**found, **{rid: by_url[r["URL"]] for rid, r in send.items()}}
            types, tcol, vcol = model.find_association(table, "Asset_Type")
            type_rows = select_in(self.src, types, tcol, made)
            self.tgt.insert(
                types.schema.name,
                types.name,
                [{tcol: made[t[tcol]], vcol: t[vcol]} for t in type_rows],
                on_conflict_skip=True,
            )
            self._record(table, made)
        ids = {acol: self.done, ecol: self.done}
        self.tgt.insert(
            assoc.schema.name, assoc.name, [self._copy(assoc, r, ids) for r in links], on_conflict_skip=True
        )

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
