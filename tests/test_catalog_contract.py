"""The catalog port's contract: what every adapter must do, run against each one.

The same tests run on the embedded store always, and on the real ERMrest + Hatrac of the local
DERIVA server when its env file is sourced (``catalog_location`` is parametrized). Every test
works in tables of its own, so the server's session catalog can be shared.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_deriva.catalog import CatalogPort, connect
from pytest_deriva.catalog.schema import column, plain_table, vocabulary_table
from pytest_deriva.catalog.setup import require_ml_schema
from pytest_deriva.exceptions import (
    DerivaMLDataError,
    DerivaMLNotFoundError,
    DerivaMLSchemaError,
    DerivaMLValidationError,
)

SCHEMA = "Contract"


@pytest.fixture
def port(catalog_location: str) -> Iterator[CatalogPort]:
    cat = connect(catalog_location)
    require_ml_schema(cat)  # a new folder is set up on first use; the server's catalog was set up by init
    yield cat
    cat.close()


@pytest.fixture
def table(port: CatalogPort) -> str:
    """A fresh table ``Contract:T_<hex>``: Name (unique, required), N int4 default 7, Tags text[], Flag boolean."""
    name = f"T_{uuid.uuid4().hex[:10]}"
    port.create_tables(
        SCHEMA,
        [
            plain_table(
                name,
                [
                    column("Name", "text", nullok=False),
                    column("N", "int4", default=7),
                    column("Tags", "text[]"),
                    column("Flag", "boolean"),
                    column("Doc", "jsonb"),
                ],
                keys=[("Name",)],
            )
        ],
    )
    return name


def test_insert_fills_defaults_and_system_columns(port: CatalogPort, table: str) -> None:
    rows = port.insert(SCHEMA, table, [{"Name": "a"}, {"Name": "b", "N": 3, "Tags": ["x", "y"], "Flag": True}])
    assert [r["Name"] for r in rows] == ["a", "b"]
    assert rows[0]["N"] == 7  # the column default, not NULL, for a column the row leaves out
    assert (rows[1]["N"], rows[1]["Tags"], rows[1]["Flag"]) == (3, ["x", "y"], True)
    assert all(r["RID"] and r["RCT"] and r["RMT"] for r in rows)
    assert len({r["RID"] for r in rows}) == 2
    back = {r["Name"]: r for r in port.select(SCHEMA, table)}
    assert (back["a"]["N"], back["b"]["Tags"], back["b"]["Flag"]) == (7, ["x", "y"], True)


def test_json_values_round_trip(port: CatalogPort, table: str) -> None:
    doc = {"lr": 0.1, "layers": [64, 32], "name": "ü"}
    port.insert(SCHEMA, table, [{"Name": "j", "Doc": doc}])
    assert port.select(SCHEMA, table, {"Name": "j"})[0]["Doc"] == doc


def test_conflict_skip_returns_only_new_rows(port: CatalogPort, table: str) -> None:
    port.insert(SCHEMA, table, [{"Name": "a"}])
    again = port.insert(SCHEMA, table, [{"Name": "a"}, {"Name": "c"}], on_conflict_skip=True)
    assert [r["Name"] for r in again] == ["c"]
    assert sorted(r["Name"] for r in port.select(SCHEMA, table)) == ["a", "c"]


def test_duplicate_key_without_skip_is_refused(port: CatalogPort, table: str) -> None:
    port.insert(SCHEMA, table, [{"Name": "a"}])
    with pytest.raises(DerivaMLDataError):
        port.insert(SCHEMA, table, [{"Name": "a"}])
    assert len(port.select(SCHEMA, table)) == 1


def test_bad_rows_refused_before_writing(port: CatalogPort, table: str) -> None:
    with pytest.raises(DerivaMLValidationError, match="no column 'Nmae'"):
        port.insert(SCHEMA, table, [{"Name": "ok"}, {"Nmae": "typo"}])
    with pytest.raises(DerivaMLValidationError, match="Name needs a value"):
        port.insert(SCHEMA, table, [{"N": 1}])
    assert port.select(SCHEMA, table) == []


def test_update_changes_only_given_columns(port: CatalogPort, table: str) -> None:
    a, b = port.insert(SCHEMA, table, [{"Name": "a", "N": 1}, {"Name": "b", "N": 2}])
    out = port.update(SCHEMA, table, [{"RID": a["RID"], "N": 10}, {"RID": b["RID"], "Tags": ["t"]}])
    assert [(r["Name"], r["N"], r["Tags"]) for r in out] == [("a", 10, None), ("b", 2, ["t"])]
    assert port.update(SCHEMA, table, [{"RID": a["RID"], "N": 11}], returning=False) == []
    assert port.select(SCHEMA, table, {"RID": a["RID"]})[0]["N"] == 11


def test_update_of_a_missing_row_is_an_error(port: CatalogPort, table: str) -> None:
    (a,) = port.insert(SCHEMA, table, [{"Name": "a"}])
    port.delete(SCHEMA, table, {"RID": a["RID"]})
    with pytest.raises(DerivaMLNotFoundError):
        port.update(SCHEMA, table, [{"RID": a["RID"], "N": 1}])


def test_select_filters_order_limit_columns(port: CatalogPort, table: str) -> None:
    port.insert(SCHEMA, table, [{"Name": f"r{i}", "N": i % 3, "Flag": i % 2 == 0} for i in range(9)])
    assert [r["Name"] for r in port.select(SCHEMA, table, {"N": 1}, order_by=["Name"])] == ["r1", "r4", "r7"]
    assert [r["Name"] for r in port.select(SCHEMA, table, {"N": [0, 2]}, order_by=["Name"], limit=3)] == [
        "r0",
        "r2",
        "r3",
    ]
    assert port.select(SCHEMA, table, {"Name": "r3"}, columns=["N"]) == [{"N": 0}]
    assert len(port.select(SCHEMA, table, {"Flag": True})) == 5
    assert port.select(SCHEMA, table, {"Name": []}) == []
    port.insert(SCHEMA, table, [{"Name": "nul", "N": None}])
    assert [r["Name"] for r in port.select(SCHEMA, table, {"N": None})] == ["nul"]
    with pytest.raises(DerivaMLValidationError, match="no column"):
        port.select(SCHEMA, table, {"Nope": 1})


def test_long_value_lists_are_split_by_the_adapter(port: CatalogPort, table: str) -> None:
    rows = port.insert(SCHEMA, table, [{"Name": f"name-{i:04d}-{'x' * 20}"} for i in range(700)])
    rids = [r["RID"] for r in rows]
    found = port.select(SCHEMA, table, {"RID": rids}, columns=["RID"], order_by=["RID"])
    assert sorted(r["RID"] for r in found) == sorted(rids)
    assert len(port.select(SCHEMA, table, {"RID": rids}, limit=5, order_by=["Name"])) == 5
    assert port.delete(SCHEMA, table, {"RID": rids[:650]}) == 650
    assert len(port.select(SCHEMA, table)) == 50


def test_delete_needs_a_filter(port: CatalogPort, table: str) -> None:
    port.insert(SCHEMA, table, [{"Name": "a"}])
    with pytest.raises(DerivaMLValidationError):
        port.delete(SCHEMA, table, {})
    assert port.delete(SCHEMA, table, {"Name": "zzz"}) == 0


def test_rids_resolve_catalog_wide(port: CatalogPort, table: str) -> None:
    (a,) = port.insert(SCHEMA, table, [{"Name": "a"}])
    assert port.resolve_rid(a["RID"]) == (SCHEMA, table)
    port.delete(SCHEMA, table, {"RID": a["RID"]})
    with pytest.raises(DerivaMLNotFoundError):
        port.resolve_rid(a["RID"])
    with pytest.raises(DerivaMLValidationError, match="not a RID"):
        port.resolve_rid("not a rid")


def test_snapshot_reads_the_catalog_as_it_was(port: CatalogPort, table: str) -> None:
    (a,) = port.insert(SCHEMA, table, [{"Name": "a", "N": 1}])
    snap = port.snapshot()
    port.update(SCHEMA, table, [{"RID": a["RID"], "N": 2}], returning=False)
    port.insert(SCHEMA, table, [{"Name": "b"}])
    then = port.select(SCHEMA, table, snapshot=snap)
    assert [(r["Name"], r["N"]) for r in then] == [("a", 1)]
    assert port.resolve_rid(f"{a['RID']}@{snap}") == (SCHEMA, table)
    assert sorted(r["Name"] for r in port.select(SCHEMA, table)) == ["a", "b"]


def test_tables_with_cyclic_foreign_keys(port: CatalogPort) -> None:
    a, b = f"A_{uuid.uuid4().hex[:8]}", f"B_{uuid.uuid4().hex[:8]}"
    port.create_tables(
        SCHEMA,
        [
            plain_table(a, [column("B", "text")], fkeys=[(["B"], SCHEMA, b, ["RID"])]),
            plain_table(b, [column("A", "text")], fkeys=[(["A"], SCHEMA, a, ["RID"])]),
        ],
    )
    model = port.refresh_model()
    assert b in {fk.pk_table.name for fk in model.schemas[SCHEMA].tables[a].foreign_keys}
    assert a in {fk.pk_table.name for fk in model.schemas[SCHEMA].tables[b].foreign_keys}
    (row_a,) = port.insert(SCHEMA, a, [{}])
    (row_b,) = port.insert(SCHEMA, b, [{"A": row_a["RID"]}])
    with pytest.raises(DerivaMLDataError):
        port.insert(SCHEMA, b, [{"A": "1-ZZZZ"}])  # a reference to nothing
    assert row_b["A"] == row_a["RID"]
    with pytest.raises(DerivaMLSchemaError):
        port.create_tables(SCHEMA, [plain_table(a, [])])
    port.create_tables(SCHEMA, [plain_table(a, [])], exists_ok=True)


def test_model_changes_made_elsewhere_are_seen(port: CatalogPort, catalog_location: str) -> None:
    name = f"V_{uuid.uuid4().hex[:8]}"
    assert port.model is port.model  # kept, not re-read
    other = connect(catalog_location)
    other.create_tables(SCHEMA, [vocabulary_table(name, SCHEMA)])
    other.close()
    rows = port.insert(SCHEMA, name, [{"Name": "t", "Description": "a term"}])  # a miss re-reads the model
    assert rows[0]["URI"] == f"/id/{rows[0]['RID']}"
    assert rows[0]["ID"].endswith(rows[0]["RID"])
    assert port.model.is_vocabulary(f"{SCHEMA}:{name}")


def test_annotations_are_kept_in_the_model(port: CatalogPort, table: str) -> None:
    port.set_annotations(SCHEMA, table, {"tag:misc,2024:test": {"a": 1}})
    assert port.refresh_model().schemas[SCHEMA].tables[table].doc["annotations"]["tag:misc,2024:test"] == {"a": 1}


# -- the object store --------------------------------------------------------------------------


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_objects_round_trip_verified(port: CatalogPort, tmp_path: Path) -> None:
    data = uuid.uuid4().bytes * 1000
    src = tmp_path / "model weights.v2.bin"
    src.write_bytes(data)
    obj = port.objects.put(src, "Execution_Asset", src.name)
    assert (obj.md5, obj.length) == (_md5(data), len(data))
    assert obj.url == f"/hatrac/Execution_Asset/{obj.md5}.model%20weights.v2.bin"
    assert port.objects.exists(obj.url)
    out = port.objects.get(obj.url, tmp_path / "back" / "copy.bin")
    assert out.read_bytes() == data
    assert port.objects.fetch_url(obj.url).endswith(obj.url)
    mem = port.objects.put_bytes(b"config", "Execution_Metadata", "configuration.json")
    assert port.objects.get(mem.url, tmp_path / "c.json").read_bytes() == b"config"


def test_object_stored_again_is_not_sent_again(port: CatalogPort, tmp_path: Path) -> None:
    src = tmp_path / "same.txt"
    src.write_bytes(uuid.uuid4().bytes)
    first = port.objects.put(src, "Execution_Asset", "same.txt")
    before = port.request_count
    assert port.objects.put(src, "Execution_Asset", "same.txt") == first
    assert port.request_count - before <= 1  # at most a HEAD; no upload


def test_an_object_another_client_stored_is_found_in_one_request(
    port: CatalogPort, catalog_location: str, tmp_path: Path
) -> None:
    data = uuid.uuid4().bytes
    first = port.objects.put_bytes(data, "Execution_Asset", "again.bin")
    other = connect(catalog_location)  # knows nothing of what the first client stored
    try:
        before = other.request_count
        assert other.objects.put_bytes(data, "Execution_Asset", "again.bin") == first
        assert other.request_count - before <= 1  # one conditional PUT on a server, refused as present
        assert other.objects.get(first.url, tmp_path / "again.bin").read_bytes() == data
    finally:
        other.close()


def test_objects_bad_input(port: CatalogPort, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_bytes(b"abc")
    with pytest.raises(DerivaMLDataError, match="changed while it was stored"):
        port.objects.put(src, "Execution_Asset", "f.txt", md5="0" * 32)
    with pytest.raises(DerivaMLNotFoundError):
        port.objects.put(tmp_path / "missing.txt", "Execution_Asset", "missing.txt")
    with pytest.raises(DerivaMLValidationError):
        port.objects.put(src, "Execution_Asset", "../escape.txt")
    absent = f"/hatrac/Execution_Asset/{_md5(uuid.uuid4().bytes)}.absent.txt"
    assert not port.objects.exists(absent)
    with pytest.raises(DerivaMLNotFoundError):
        port.objects.get(absent, tmp_path / "absent.txt")
    assert not (tmp_path / "absent.txt").exists()
