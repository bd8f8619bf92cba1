"""``pytest-deriva pin``: a dataset version of a server catalog, kept for runs recorded offline.

``pin(store, url, rid, version)`` downloads the version's bag from the server (materialized: its
files too) and puts it in the embedded store's cache as the bag of a local dataset that stands for
the server's: a ``Dataset`` row with the server dataset's description and types and a
``Dataset_Version`` row with its version number. The store records, in ``pytest-deriva:Pushed_Row``,
that this dataset and version are the server's (their server RIDs), as it records a pushed row. So:

- an offline run names the local RID (``DatasetSpec(rid=<local>, version=<version>)``) and reads
  the server's bag, unchanged, from the cache (``bag.rid`` is the server's RID), with no network;
- ``pytest-deriva push`` links that run to the server's dataset (``Dataset_Execution``), not to a
  copy: the dataset and its version are already on the server, so nothing of them is sent.

Pinning again is a no-op (the same local dataset; the bag is not fetched again); pinning another
version of the same dataset adds that version to the local dataset.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_deriva.catalog import schema as ddl
from pytest_deriva.dataset.spec import DatasetSpec
from pytest_deriva.dataset.version import DatasetVersion
from pytest_deriva.execution.push import target_id
from pytest_deriva.ml.deriva_ml import DerivaML

__all__ = ["Pinned", "pin"]

ML = ddl.ML_SCHEMA


@dataclass
class Pinned:
    """What a pin made: the local dataset standing for the server's, and the version."""

    local_rid: str
    server_rid: str
    version: str
    members: dict[str, int]
    fetched: bool

    def lines(self) -> list[str]:
        what = ", ".join(f"{n} {t}" for t, n in self.members.items() if n) or "no members"
        how = "bag downloaded" if self.fetched else "bag already cached"
        return [
            f"pinned dataset {self.server_rid} version {self.version} ({what}; {how}) as {self.local_rid}",
            f"use it offline with DatasetSpec(rid={self.local_rid!r}, version={self.version!r}); "
            f"pytest-deriva push links the runs to {self.server_rid}",
        ]


def pin(source: str | Path, url: str, rid: str, version: str | None = None, *, credential: Any = None) -> Pinned:
    """Pin dataset ``rid`` at ``version`` (default: its current one) of server catalog ``url`` in
    the embedded store at ``source``; see the module docstring."""
    from pytest_deriva.execution.push import check_locations, pushed

    folder = check_locations(source, url, "pin from")
    local = DerivaML(folder)
    try:
        with tempfile.TemporaryDirectory(dir=local.cache_dir, prefix=".pin-") as tmp:
            server = DerivaML(url, credential=credential, working_dir=Path(tmp) / "work", cache_dir=Path(tmp) / "cache")
            try:
                spec = DatasetSpec(rid=rid, version=version)
                server.validate_dataset_spec(spec)  # before anything is written here
                srv_rid = server._check_dataset(spec)
                srv_version = server._version_row(srv_rid, spec.version)
                number = str(srv_version["Version"])
                mine = {v: k for k, v in pushed(local.catalog, url).items()}
                local_rid = mine.get(srv_rid) or _new_dataset(local, server, srv_rid)
                rows = local.catalog.select(ML, "Dataset_Version", {"Dataset": local_rid, "Version": number})
                if not rows:
                    description = str(srv_version.get("Description") or "")
                    local._insert_versions({local_rid: DatasetVersion.parse(number)}, description, None)
                    rows = local.catalog.select(ML, "Dataset_Version", {"Dataset": local_rid, "Version": number})
                _record(local, url, {local_rid: srv_rid}, "Dataset")
                _record(local, url, {rows[0]["RID"]: srv_version["RID"]}, "Dataset_Version")
                fetched = _cache_bag(local, server, spec, local_rid, rows[0])
            finally:
                server.catalog.close()
        bag = local.download_dataset_bag(DatasetSpec(rid=local_rid, version=number))
        members = {t: len(rows) for t, rows in bag.list_dataset_members().items()}
        return Pinned(local_rid, srv_rid, number, members, fetched)
    finally:
        local.catalog.close()


def _new_dataset(local: DerivaML, server: DerivaML, rid: str) -> str:
    """The local dataset standing for server dataset ``rid``: its description and types."""
    row = server._dataset_row(rid)
    types = server._dataset_types_of(rid)
    have = {t.name for t in local.list_vocabulary_terms("Dataset_Type")}
    for name in types:
        if name not in have:
            term = server.lookup_term("Dataset_Type", name)
            local.add_term("Dataset_Type", name, term.description)
    with local.catalog.transaction():
        made = local.catalog.insert(ML, "Dataset", [{"Description": row.get("Description") or "", "Deleted": False}])[
            0
        ]["RID"]
        local.catalog.insert(ML, "Dataset_Dataset_Type", [{"Dataset": made, "Dataset_Type": t} for t in types])
    return str(made)


def _record(local: DerivaML, url: str, mapping: dict[str, str], table: str) -> None:
    """The store's record that these local rows are server rows (as a push records what it copied)."""
    cat = local.catalog
    cat.create_tables(ddl.INDEX_SCHEMA, [ddl.push_table()], exists_ok=True)
    cat.insert(
        ddl.INDEX_SCHEMA,
        ddl.PUSH_TABLE,
        [
            {"Target": target_id(url), "Local_RID": a, "Target_RID": b, "Table": f"{ML}:{table}", "Complete": None}
            for a, b in mapping.items()
        ],
        on_conflict_skip=True,
    )


def _cache_bag(local: DerivaML, server: DerivaML, spec: DatasetSpec, local_rid: str, version: dict[str, Any]) -> bool:
    """The server's bag of the version, materialized, in the local cache entry of the local
    dataset's version (where ``download_dataset_bag`` finds it). False if it was there already."""
    from pytest_deriva.dataset._bdbag import MATERIALIZED_MARKER
    from pytest_deriva.dataset.bag import cache_entry

    entry = cache_entry(local, local_rid, version)
    if (entry / MATERIALIZED_MARKER).exists():
        return False
    bag = server.download_dataset_bag(DatasetSpec(rid=spec.rid, version=spec.version, materialize=True))
    tmp = entry.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(bag.path.parent, tmp)  # files, not links into the server handle's cache
        (tmp / bag.path.name).rename(tmp / f"Dataset_{local_rid}")
        shutil.rmtree(entry, ignore_errors=True)  # a bag made here before the pin: the local dataset has no members
        tmp.rename(entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
