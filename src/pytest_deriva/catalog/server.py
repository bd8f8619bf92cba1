"""The server adapter: an ERMrest catalog and its Hatrac object store, through the ``deriva`` client.

Every request goes through ``deriva.core.ErmrestCatalog`` (and ``HatracStore`` for objects), with
ERMrest's own URL grammar:

- inserts are one ``POST /entity/<schema>:<table>`` per batch, with ``defaults=`` naming the
  columns a row leaves out (ERMrest would store NULL for them otherwise) and ``onconflict=skip``
  for idempotent writes;
- updates are one ``PUT /attributegroup/<table>/RID;<columns>`` per batch;
- selects are one ``GET /entity/...`` per chunk of a long value list (URLs have a length limit);
- the model is read once and kept; it is re-read only when a name is missing from it, and then
  with ``If-None-Match``, so an unchanged model costs a 304 and no document;
- snapshots are ERMrest's ``snaptime``, read through ``/ermrest/catalog/<id>@<snaptime>``.

A group of writes on a server is not atomic: :meth:`ServerCatalog.transaction` only groups them.
What keeps a crash or a concurrent run from leaving duplicates is that callers write in order
(rows before the links that point at them) and idempotently (unique keys and ``onconflict=skip``),
which is the contract :class:`~pytest_deriva.catalog.port.CatalogPort` states.

Errors from the server become the project's exceptions with the fix in the message: an
unreachable host, a certificate that is not trusted, a missing catalog, a missing login (401),
a refused permission (403).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pytest_deriva._rid import is_rid, split_snapshot
from pytest_deriva.catalog._credentials import ServerLocation, load_credential, parse_server_url
from pytest_deriva.catalog.model import SYSTEM_COLUMNS, Model, Table, check_columns, check_required, find_table
from pytest_deriva.catalog.port import Where
from pytest_deriva.exceptions import (
    DerivaMLConfigurationError,
    DerivaMLDataError,
    DerivaMLException,
    DerivaMLNotFoundError,
    DerivaMLReadOnlyError,
    DerivaMLSchemaError,
    DerivaMLValidationError,
)

__all__ = ["RequestCounter", "ServerCatalog", "ServerError", "server_session_config"]

T = TypeVar("T")

# ERMrest answers a URL of up to about 8 KB; a value list is split well below that.
_MAX_URL_VALUES_CHARS = 4000
# Rows per insert or update request, and the bytes they may take (deriva's datapath uses the same).
_BATCH_ROWS = 1000
_BATCH_BYTES = 250 * 1024
# Status codes after which a request that is safe to repeat is repeated.
_RETRY_CODES = frozenset({408, 429, 500, 502, 503, 504})
_RETRIES = 3
# A transaction aborted by a concurrent writer is repeated more often: the collision passes.
_ABORTED_RETRIES = 8


def server_session_config() -> dict[str, Any]:
    """The ``deriva`` client's session settings, tuned to fail fast on a host that is not there.

    deriva's defaults retry a failed connection with a backoff that adds up to minutes (for a
    certificate that is not trusted too); a user should hear at once what is wrong.
    """
    from deriva.core import DEFAULT_SESSION_CONFIG

    config = dict(DEFAULT_SESSION_CONFIG)
    config.update(retry_connect=1, retry_read=2, retry_backoff_factor=0.3, timeout=(10, 300))
    return config


def tune_session(session: Any) -> None:
    """Bound the retries of a ``deriva`` client session.

    deriva's sessions leave urllib3's ``total`` at 10 and count an untrusted certificate as an
    "other" error, so a wrong CA bundle retried with backoff for minutes; here it fails at once.
    """
    from urllib3.util.retry import Retry

    retry = Retry(
        total=3,
        connect=1,
        read=2,
        other=0,
        backoff_factor=0.3,
        status_forcelist=sorted(_RETRY_CODES - {408, 429}),
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        raise_on_status=True,
    )
    for prefix in ("http://", "https://"):
        session.get_adapter(prefix).max_retries = retry


class RequestCounter:
    """Counts HTTP requests at the transport (a ``requests`` response hook), by method."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_method: dict[str, int] = {}

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        method = str(getattr(response.request, "method", "?"))
        with self._lock:
            self.by_method[method] = self.by_method.get(method, 0) + 1
            # Redirects and retries are requests too; requests keeps them on .history.
        return response

    def attach(self, session: Any) -> None:
        session.hooks.setdefault("response", []).append(self.hook)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_method.values())


class ServerError:
    """Turns the ``deriva`` client's and ``requests``' errors into the project's, with the fix."""

    def __init__(self, location: ServerLocation, anonymous: bool) -> None:
        self.location = location
        self.anonymous = anonymous

    def translate(self, e: BaseException, doing: str) -> DerivaMLException:
        import requests

        host = self.location.host
        if isinstance(e, requests.exceptions.SSLError):
            return DerivaMLConfigurationError(
                f"Cannot verify the TLS certificate of {host} while {doing}. Set REQUESTS_CA_BUNDLE to a CA "
                "bundle that trusts the server's certificate (the local test server's env file sets one)."
            )
        if isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return DerivaMLConfigurationError(
                f"Cannot reach the DERIVA server {host} while {doing} ({type(e).__name__}). "
                f"Check the URL {self.location.url} and that the server is up."
            )
        response = getattr(e, "response", None)
        code = getattr(response, "status_code", None)
        detail = _detail(response)
        if code == 401:
            how = (
                "no credential was found"
                if self.anonymous
                else "the credential was not accepted (the login may have expired)"
            )
            return DerivaMLConfigurationError(
                f"{host} requires a login for {doing}: {how}. Log in with "
                f"'deriva-globus-auth-utils login --host {host}' or deriva-auth, or name a credential file "
                "with --deriva-credential / DERIVA_CREDENTIAL_FILE."
            )
        if code == 403:
            return DerivaMLReadOnlyError(
                f"Permission denied on {self.location.url} while {doing} ({detail}). Ask the catalog's owner "
                "for the access this needs, or use a catalog you own."
            )
        if code == 404:
            return DerivaMLNotFoundError(f"Not found on {self.location.url} while {doing}: {detail}.")
        if code == 409:
            return DerivaMLDataError(f"The catalog refused the change while {doing}: {detail}.")
        if code is not None:
            return DerivaMLDataError(f"The server {host} answered {code} while {doing}: {detail}.")
        return DerivaMLDataError(f"Request to {host} failed while {doing}: {type(e).__name__}: {e}")


def _detail(response: Any) -> str:
    if response is None:
        return ""
    try:
        text = response.text
    except Exception:
        return str(response.status_code)
    return " ".join(text.split())[:300]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _runs(rows: Sequence[Mapping[str, Any]]) -> Iterator[tuple[tuple[str, ...], list[Mapping[str, Any]]]]:
    """Consecutive rows with the same columns, in batches of bounded size (order is kept)."""
    batch: list[Mapping[str, Any]] = []
    cols: tuple[str, ...] = ()
    size = 0
    for row in rows:
        keys = tuple(row)
        est = len(json.dumps(row, default=str))
        if batch and (keys != cols or len(batch) >= _BATCH_ROWS or size + est > _BATCH_BYTES):
            yield cols, batch
            batch, size = [], 0
        if not batch:
            cols = keys
        batch.append(row)
        size += est
    if batch:
        yield cols, batch


def _q(name: str) -> str:
    return quote(name, safe="")


class ServerCatalog:
    """A catalog on a DERIVA server (ERMrest + Hatrac), by its URL.

    Args:
        url: ``https://<host>/ermrest/catalog/<id>``.
        credential: A credential mapping or credential file path; default as the ``deriva``
            package finds one (see :mod:`pytest_deriva.catalog._credentials`).
    """

    #: A server catalog is set up by ``pytest-deriva catalog init``, never as a side effect.
    creates_on_demand = False
    local_path: Path | None = None
    atomic_transactions = False  # ERMrest has no multi-request transactions

    def __init__(self, url: str, *, credential: Any = None) -> None:
        from deriva.core import ErmrestCatalog

        self._location = parse_server_url(url)
        loc = self._location
        self.uri = loc.url
        self.hostname = loc.host
        self.catalog_id = loc.catalog_id
        self.catalog_uuid = f"{loc.host}/{loc.catalog_id}"
        cred = load_credential(loc.host, credential)
        self._errors = ServerError(loc, anonymous=not cred)
        self._session_config = server_session_config()
        self.requests = RequestCounter()
        self._ermrest = ErmrestCatalog(
            loc.scheme, loc.host, loc.catalog_id, credentials=cred, caching=False, session_config=self._session_config
        )
        self.requests.attach(self._ermrest._session)
        tune_session(self._ermrest._session)
        self._credential = cred
        self._snapshots: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._model: Model | None = None
        self._model_etag: str | None = None
        try:
            info = self._call("opening the catalog", lambda: self._ermrest.get("/").json())
        except DerivaMLNotFoundError:
            raise DerivaMLConfigurationError(
                f"Catalog {loc.catalog_id} does not exist on {loc.host}. Create one with "
                f"'pytest-deriva catalog create {loc.scheme}://{loc.host}', or name an existing catalog."
            ) from None
        self.rights: dict[str, Any] = dict(info.get("rights") or {})
        from pytest_deriva.catalog.hatrac import HatracObjectStore

        self.objects = HatracObjectStore(
            loc,
            cred,
            counter=self.requests,
            errors=self._errors,
            session_config=self._session_config,
            tune=tune_session,
        )

    # -- requests ----------------------------------------------------------------------------
    def _call(self, doing: str, fn: Callable[[], T], *, retry: bool = False) -> T:
        """Run one client call, translating its errors; repeat it on a passing fault when ``retry``."""
        import requests

        attempt = 0
        while True:
            try:
                return fn()
            except (requests.exceptions.RequestException, OSError) as e:
                code = getattr(getattr(e, "response", None), "status_code", None)
                passing = code in _RETRY_CODES or (
                    code is None
                    and isinstance(e, requests.exceptions.ConnectionError)
                    and not isinstance(e, requests.exceptions.SSLError)
                )
                # A 503 "Transaction aborted" (a concurrent writer won) wrote nothing: always safe to repeat.
                aborted = code == 503 and "aborted" in _detail(getattr(e, "response", None)).lower()
                if ((retry and passing) and attempt < _RETRIES) or (aborted and attempt < _ABORTED_RETRIES):
                    attempt += 1
                    # Jittered: two writers that collided must not collide again at the same instant.
                    time.sleep(0.25 * 2 ** min(attempt, 4) * (0.5 + random.random()))  # noqa: S311 - timing, not secrets
                    continue
                raise self._errors.translate(e, doing) from None

    @property
    def request_count(self) -> int:
        """HTTP requests this catalog (and its object store) have made so far."""
        return self.requests.total

    def web_url(self, table: Table | str, rid: str) -> str | None:
        """The Chaise record page of a row."""
        qualified = table.qualified_name if isinstance(table, Table) else table
        return f"{self._location.scheme}://{self.hostname}/chaise/record/#{self.catalog_id}/{qualified}/RID={rid}"

    # -- the model ---------------------------------------------------------------------------
    @property
    def model(self) -> Model:
        with self._lock:
            if self._model is None:
                return self.refresh_model()
            return self._model

    def refresh_model(self) -> Model:
        """Re-read the model, at the cost of a 304 when it has not changed since it was read."""
        from deriva.core.deriva_binding import NotModified

        with self._lock:
            headers = {"If-None-Match": self._model_etag} if self._model is not None and self._model_etag else {}
            try:
                r = self._call(
                    "reading the catalog model",
                    lambda: self._ermrest.get("/schema", headers=headers, raise_not_modified=True),
                    retry=True,
                )
            except NotModified:
                assert self._model is not None
                return self._model
            self._model = Model(r.json())
            self._model_etag = r.headers.get("etag")
            return self._model

    def _forget_model(self) -> None:
        with self._lock:
            self._model, self._model_etag = None, None

    def create_schema(self, name: str, comment: str | None = None) -> None:
        if name in self.refresh_model().schemas:
            return
        doc = {"schema_name": name, "comment": comment}
        self._call(f"creating schema {name}", lambda: self._ermrest.post(f"/schema/{_q(name)}", json=doc))
        self._forget_model()

    def create_table(self, schema: str, table_doc: Mapping[str, Any], exists_ok: bool = False) -> None:
        self.create_tables(schema, [table_doc], exists_ok=exists_ok)

    def create_tables(self, schema: str, table_docs: Sequence[Mapping[str, Any]], exists_ok: bool = False) -> None:
        """Create tables whose foreign keys may point at each other (even in a cycle).

        A new schema with its tables is one request. Into an existing schema, each table is
        created with the foreign keys whose targets exist, and the others are added after.
        """
        docs = [json.loads(json.dumps(d)) for d in table_docs]
        model = self.refresh_model()
        existing = model.schemas.get(schema)
        if existing is None:
            body = {"schemas": {schema: {"schema_name": schema, "tables": {d["table_name"]: d for d in docs}}}}
            self._call(f"creating schema {schema}", lambda: self._ermrest.post("/schema", json=body))
            self._forget_model()
            return
        clashes = [d["table_name"] for d in docs if d["table_name"] in existing.tables]
        if clashes and not exists_ok:
            raise DerivaMLSchemaError(f"Table {schema}:{clashes[0]} already exists.")
        docs = [d for d in docs if d["table_name"] not in existing.tables]
        present = {(s.name, t) for s in model.schemas.values() for t in s.tables}
        new = {(schema, d["table_name"]) for d in docs}
        later: list[tuple[str, dict[str, Any]]] = []
        for d in docs:
            now: list[dict[str, Any]] = []
            after: list[dict[str, Any]] = []
            for fk in d.get("foreign_keys", []):
                ref = fk["referenced_columns"][0]
                target = (ref.get("schema_name", schema), ref["table_name"])
                if target not in present | new:
                    raise DerivaMLSchemaError(
                        f"Table {schema}:{d['table_name']} refers to {target[0]}:{target[1]}, which does not exist."
                    )
                (now if target in present or target == (schema, d["table_name"]) else after).append(fk)
            d["foreign_keys"] = now
            self._call(
                f"creating table {schema}:{d['table_name']}",
                lambda d=d: self._ermrest.post(f"/schema/{_q(schema)}/table", json=d),  # type: ignore[misc]
            )
            present.add((schema, d["table_name"]))
            later += [(d["table_name"], fk) for fk in after]
        for tname, fk in later:
            self._call(
                f"adding a foreign key to {schema}:{tname}",
                lambda t=tname, f=fk: self._ermrest.post(  # type: ignore[misc]
                    f"/schema/{_q(schema)}/table/{_q(t)}/foreignkey", json=f
                ),
            )
        self._forget_model()

    def set_annotations(self, schema: str | None, table: str | None, annotations: Mapping[str, Any]) -> None:
        """Set annotations on the catalog (``schema`` None), a schema or a table, key by key."""
        base = "" if schema is None else f"/schema/{_q(schema)}" + (f"/table/{_q(table)}" if table else "")
        for key, value in annotations.items():
            self._call(
                f"annotating {schema or 'the catalog'}:{table or ''}",
                lambda k=key, v=value: self._ermrest.put(f"{base}/annotation/{_q(k)}", json=v),  # type: ignore[misc]
            )
        self._forget_model()

    def _table(self, schema: str, table: str) -> Table:
        return find_table(self.model, self.refresh_model, schema, table)

    # -- entities ----------------------------------------------------------------------------
    def insert(
        self,
        schema: str,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        on_conflict_skip: bool = False,
        with_rid: bool = False,
    ) -> list[dict[str, Any]]:
        """Insert rows (see the port). With ``with_rid`` each row brings its ``RID``, one leased
        with :meth:`lease_rids` (ERMrest's ``nondefaults=RID``)."""
        t = self._table(schema, table)
        kept = SYSTEM_COLUMNS - {"RID"} if with_rid else SYSTEM_COLUMNS
        rows = [{k: _json_value(v) for k, v in r.items() if k not in kept} for r in rows]
        if not rows:
            return []
        for row in rows:
            check_columns(t, row)
            check_required(t, row)
        out: list[dict[str, Any]] = []
        path = f"/entity/{_q(schema)}:{_q(table)}"
        for cols, batch in _runs(rows):
            if not cols:
                # ERMrest wants one column that does not default: send one with its default value.
                c = next((c for c in t.columns.values() if c.name not in SYSTEM_COLUMNS), None)
                if c is None:
                    raise DerivaMLValidationError(
                        f"{t.qualified_name} has only system columns; ERMrest cannot insert a row without a value. "
                        "Give the table a column."
                    )
                cols, batch = (c.name,), [{c.name: c.default} for _ in batch]
            defaults = [c for c in t.columns if c not in cols]
            query = [f"defaults={','.join(_q(c) for c in defaults)}"] if defaults else []
            if with_rid:
                query.append("nondefaults=RID")
            if on_conflict_skip:
                query.append("onconflict=skip")
            url = f"{path}?{'&'.join(query)}" if query else path
            # Repeating a skip-on-conflict insert cannot duplicate a row: it is retried.
            result = self._call(
                f"inserting into {t.qualified_name}",
                lambda u=url, b=batch: self._ermrest.post(u, json=b).json(),  # type: ignore[misc]
                retry=on_conflict_skip,
            )
            out += result
        return out

    def lease_rids(self, ids: Sequence[str]) -> list[str]:
        """Reserve one RID per id in ERMrest's ``public:ERMrest_RID_Lease`` (one request), in order.

        A row inserted later with a leased RID (``insert(..., with_rid=True)``) has the RID its
        lease row has, and the lease row's ``ID`` keeps what the caller wrote there; a repeated
        insert with the same RID is refused as a duplicate key, so a caller that finds its lease
        again inserts a row at most once."""
        if not ids:
            return []
        body = [{"ID": i} for i in ids]
        rows = self._call(
            "reserving RIDs",
            lambda: self._ermrest.post("/entity/public:ERMrest_RID_Lease", json=body).json(),
        )
        by_id = {str(r["ID"]): str(r["RID"]) for r in rows}
        return [by_id[i] for i in ids]

    def update(
        self,
        schema: str,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        returning: bool = True,
    ) -> list[dict[str, Any]]:
        t = self._table(schema, table)
        rows = [{k: _json_value(v) for k, v in r.items() if k not in SYSTEM_COLUMNS or k == "RID"} for r in rows]
        for row in rows:
            if "RID" not in row:
                raise DerivaMLValidationError(f"Rows to update in {t.qualified_name} need their RID: {dict(row)!r}")
            check_columns(t, row)
        for cols, batch in _runs([{"RID": r["RID"], **r} for r in rows]):
            targets = [c for c in cols if c != "RID"]
            if not targets:
                continue
            url = f"/attributegroup/{_q(schema)}:{_q(table)}/RID;{','.join(_q(c) for c in targets)}"
            changed = self._call(
                f"updating {t.qualified_name}",
                lambda u=url, b=batch: self._ermrest.put(u, json=b).json(),  # type: ignore[misc]
                retry=True,  # setting the same values again is harmless
            )
            if len(changed) < len(batch):
                missing = sorted({r["RID"] for r in batch} - {c["RID"] for c in changed})
                raise DerivaMLNotFoundError(f"No row with RID {missing[0]} in {t.qualified_name} to update.")
        if not returning:
            return []
        by_rid = {r["RID"]: r for r in self.select(schema, table, {"RID": [r["RID"] for r in rows]})}
        return [by_rid[r["RID"]] for r in rows if r["RID"] in by_rid]

    def _filters(self, t: Table, where: Where | None) -> list[list[str]]:
        """URL filter paths for ``where``; a long value list is split over several paths."""
        if not where:
            return [[]]
        check_columns(t, where)
        fixed: list[str] = []
        split: tuple[str, list[Any]] | None = None
        for name, value in where.items():
            if value is None:
                fixed.append(f"{_q(name)}::null::")
            elif isinstance(value, list | tuple | set | frozenset):
                values = list(dict.fromkeys(value))
                if not values:
                    return []
                if split is None or len(values) > len(split[1]):
                    if split is not None:
                        fixed.append(_any_of(*split))
                    split = (name, values)
                else:
                    fixed.append(_any_of(name, values))
            else:
                fixed.append(f"{_q(name)}={_q(_text(value))}")
        if split is None:
            return [fixed]
        name, values = split
        chunks: list[list[str]] = []
        chunk: list[Any] = []
        size = 0
        for v in values:
            n = len(_q(_text(v))) + len(name) + 2
            if chunk and size + n > _MAX_URL_VALUES_CHARS:
                chunks.append([*fixed, _any_of(name, chunk)])
                chunk, size = [], 0
            chunk.append(v)
            size += n
        chunks.append([*fixed, _any_of(name, chunk)])
        return chunks

    def _binding(self, snapshot: str | None) -> Any:
        if snapshot is None:
            return self._ermrest
        if not is_rid(snapshot):
            raise DerivaMLValidationError(f"{snapshot!r} is not a snapshot id of this catalog.")
        with self._lock:
            found = self._snapshots.get(snapshot)
            if found is None:
                from deriva.core import ErmrestSnapshot

                loc = self._location
                found = ErmrestSnapshot(
                    loc.scheme,
                    loc.host,
                    loc.catalog_id,
                    snapshot,
                    credentials=self._credential,
                    caching=False,
                    session_config=self._session_config,
                )
                self.requests.attach(found._session)
                tune_session(found._session)
                self._snapshots[snapshot] = found
            return found

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
        check_columns(t, names)
        if order_by:
            check_columns(t, order_by)
        binding = self._binding(snapshot)
        paths = self._filters(t, where)
        rows: list[dict[str, Any]] = []
        for filters in paths:
            path = f"/{'attribute' if columns else 'entity'}/{_q(schema)}:{_q(table)}"
            if filters:
                path += "/" + "/".join(filters)
            if columns:
                # ERMrest sorts only by columns it returns.
                shown = [*names, *(c for c in order_by or () if c not in names)]
                path += "/" + ",".join(_q(c) for c in shown)
            if order_by and len(paths) == 1:
                path += f"@sort({','.join(_q(c) for c in order_by)})"
            if limit is not None and len(paths) == 1:
                path += f"?limit={int(limit)}"
            elif limit is None:
                path += "?limit=none"
            rows += self._call(
                f"reading {t.qualified_name}" + (f" at snapshot {snapshot}" if snapshot else ""),
                lambda p=path: binding.get(p).json(),  # type: ignore[misc]
                retry=True,
            )
        if len(paths) > 1:
            if order_by:
                rows.sort(key=lambda r: tuple((r.get(c) is None, r.get(c)) for c in order_by))
            if limit is not None:
                rows = rows[:limit]
        return [{k: r.get(k) for k in names} for r in rows]

    def delete(self, schema: str, table: str, where: Where) -> int:
        t = self._table(schema, table)
        if not where:
            raise DerivaMLValidationError(f"Refusing to delete every row of {t.qualified_name}: give a filter.")
        count = 0
        for filters in self._filters(t, where):
            path = f"/entity/{_q(schema)}:{_q(table)}/" + "/".join(filters)
            found = self._call(
                f"reading {t.qualified_name}",
                lambda p=path: self._ermrest.get(p.replace("/entity/", "/attribute/", 1) + "/RID").json(),  # type: ignore[misc]
                retry=True,
            )
            if found:
                self._call(f"deleting from {t.qualified_name}", lambda p=path: self._ermrest.delete(p), retry=True)  # type: ignore[misc]
                count += len(found)
        return count

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        if not is_rid(rid):
            raise DerivaMLValidationError(
                f"{rid!r} is not a RID. RIDs are upper-case base-32 groups such as '1-ABCD'; copy it from a record."
            )
        base, snap = split_snapshot(rid)
        binding = self._binding(snap)
        try:
            info = self._call(f"resolving RID {rid}", lambda: binding.get(f"/entity_rid/{_q(base)}").json())
        except DerivaMLNotFoundError:
            raise DerivaMLNotFoundError(f"RID {rid} does not exist in catalog {self.uri}.") from None
        sname, tname = str(info["schema_name"]), str(info["table_name"])
        # ERMrest resolves the RIDs of deleted rows too (with where they were): check the row is there.
        if info.get("deleted_at") or not self.select(sname, tname, {"RID": base}, columns=["RID"], snapshot=snap):
            raise DerivaMLNotFoundError(f"RID {rid} does not exist in catalog {self.uri}.")
        return sname, tname

    def snapshot(self) -> str:
        info = self._call("reading the catalog's snapshot", lambda: self._ermrest.get("/").json(), retry=True)
        return str(info["snaptime"])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Groups writes; on a server they are not atomic (see the module docstring)."""
        yield

    def delete_catalog(self) -> None:
        """Delete this catalog on the server (what a test session does with its own catalog)."""
        self._call(f"deleting catalog {self.catalog_id}", lambda: self._ermrest.delete_ermrest_catalog(really=True))

    def close(self) -> None:
        for binding in (self._ermrest, *self._snapshots.values()):
            binding._close_session()
        self.objects.close()

    def __repr__(self) -> str:
        return f"ServerCatalog({self.uri!r})"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(_json_value(value))


def _any_of(name: str, values: Sequence[Any]) -> str:
    """A disjunction ``(c=a;c=b)``: ERMrest's form of ``IN``."""
    if len(values) == 1:
        return f"{_q(name)}={_q(_text(values[0]))}"
    return "(" + ";".join(f"{_q(name)}={_q(_text(v))}" for v in values) + ")"


def create_catalog(host_url: str, *, credential: Any = None) -> str:
    """Create an empty catalog on a DERIVA server; its URL."""
    import requests
    from deriva.core import DerivaServer

    scheme, _, host = host_url.rstrip("/").partition("://")
    if scheme not in ("http", "https") or not host or "/" in host:
        raise DerivaMLConfigurationError(
            f"{host_url!r} is not a server address; give it as https://<host> (for example https://localhost)."
        )
    cred = load_credential(host, credential)
    loc = ServerLocation(scheme, host, "new")
    try:
        server = DerivaServer(scheme, host, credentials=cred, session_config=server_session_config())
        tune_session(server._session)
        catalog = server.create_ermrest_catalog()
    except requests.exceptions.RequestException as e:
        raise ServerError(loc, anonymous=not cred).translate(e, "creating a catalog") from None
    return ServerLocation(scheme, host, str(catalog.catalog_id)).url
