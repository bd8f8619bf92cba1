"""Dataset bags: real BDBags per version, checked with bdbag's own validation; cache, reader, failures."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from bdbag import bdbag_api
from bdbag.bdbagit import BagValidationError

from conftest import subject_image_schema
from pytest_deriva import DatasetSpec, DerivaML, DerivaMLDataError, DerivaMLException, DerivaMLInvalidTerm
from pytest_deriva.dataset import DatasetBag


def build(ml: DerivaML) -> dict[str, list[str]]:
    """A dataset over Subject and Image rows with a nested dataset, versioned 0.1.0 -> 0.2.0 -> 1.0.0
    with value changes and member removals and additions in between (and after)."""
    subject_image_schema(ml)
    subjects = [
        r["RID"]
        for r in ml.insert_records(
            "Subject",
            [{"Name": n, "Age": a, "Diagnosis": d} for n, a, d in (("ann", 30, "Healthy"), ("bob", 40, "Sick"))],
        )
    ]
    images = []
    for i in range(3):
        obj = ml.catalog.objects.put_bytes(f"pixels {i}".encode(), "Image", f"img {i}.png")
        images.append(
            ml.insert_records(
                "Image",
                [
                    {
                        "URL": obj.url,
                        "Filename": f"img {i}.png",
                        "Length": obj.length,
                        "MD5": obj.md5,
                        "Subject": subjects[0],
                    }
                ],
            )[0]["RID"]
        )
    nested = ml.create_dataset("Testing", description="nested")
    nested.add_dataset_members({"Image": [images[2]]})
    ds = ml.create_dataset("Training", description="top")  # 0.1.0: empty
    ds.add_dataset_members({"Subject": subjects[:1], "Image": images[:1], "Dataset": [nested.rid]})  # 0.2.0
    ml.update_records("Subject", [{"RID": subjects[0], "Name": "Ann", "Diagnosis": "Sick"}])
    ds.delete_dataset_members([images[0]], description="drop an image")  # 0.3.0
    ds.add_dataset_members([images[1], subjects[1]], description="more")  # 0.4.0
    ds.increment_dataset_version("major", "release")  # 1.0.0
    ml.update_records("Subject", [{"RID": subjects[1], "Name": "after the release"}])
    return {"dataset": [ds.rid], "nested": [nested.rid], "Subject": subjects, "Image": images}


def read_csv(bag: DatasetBag, schema: str, table: str) -> list[dict[str, str]]:
    with (bag.path / "data" / schema / f"{table}.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def built(ml):
    return build(ml)


def test_each_version_downloads_as_a_valid_bag_with_its_members_and_values(ml, built):
    rid = built["dataset"][0]
    subjects, images = built["Subject"], built["Image"]
    expected = {
        "0.1.0": {"Subject": {}, "Image": set(), "Dataset": set()},
        "0.2.0": {"Subject": {subjects[0]: "ann"}, "Image": {images[0]}, "Dataset": set(built["nested"])},
        "1.0.0": {
            "Subject": {subjects[0]: "Ann", subjects[1]: "bob"},
            "Image": {images[1]},
            "Dataset": set(built["nested"]),
        },
    }
    for version, want in expected.items():
        bag = ml.download_dataset_bag(DatasetSpec(rid=rid, version=version))
        bdbag_api.validate_bag(str(bag.path), fast=False)  # bdbag's own full validation; raises if invalid
        assert bag.dataset_rid == rid
        assert str(bag.version) == version
        assert bag.info["Deriva-Dataset-Version"] == version
        members = bag.list_dataset_members()
        assert {r["RID"]: r["Name"] for r in members["Subject"]} == want["Subject"]
        assert {r["RID"] for r in members["Image"]} == want["Image"]
        assert {r["RID"] for r in members["Dataset"]} == want["Dataset"]
        for r in members["Subject"]:
            assert isinstance(r["Age"], int)
        # Files: every asset row reached is listed in fetch.txt and fetched, checksums as stored.
        schema = json.loads((bag.path / "data" / "schema.json").read_text())
        assert "Subject" in schema["schemas"][ml.default_schema]["tables"]
        fetch = (bag.path / "fetch.txt").read_text().splitlines() if (bag.path / "fetch.txt").exists() else []
        image_rows = {bag.asset_path(r): r for r in bag.get_table_as_dict("Image")}
        assert len(fetch) == len(image_rows)
        for line in fetch:
            url, length, name = line.split("\t")
            assert url.startswith("deriva-embedded://localhost/hatrac/Image/")
            path = bag.path / name
            assert path.parent == bag.path / "data" / "asset" / "Image"  # no folder per file: the names differ
            assert hashlib.md5(path.read_bytes()).hexdigest() == image_rows[path]["MD5"]
            assert int(length) == path.stat().st_size
        assert (bag.path / "manifest-md5.txt").exists()

    # 1.0.0 in detail: the nested dataset's members, the vocabulary terms used, values of that version.
    bag = ml.download_dataset_bag(DatasetSpec(rid=rid, version="1.0.0"))
    deep = bag.list_dataset_members(recurse=True)
    assert {r["RID"] for r in deep["Image"]} == {images[1], images[2]}
    assert [c.dataset_rid for c in bag.list_dataset_children()] == built["nested"]
    assert {r["Name"] for r in read_csv(bag, ml.default_schema, "Diagnosis")} == {"Sick"}
    assert {r["RID"]: r["Diagnosis"] for r in read_csv(bag, ml.default_schema, "Subject")} == {
        subjects[0]: "Sick",
        subjects[1]: "Sick",
    }
    assert bag.asset_path(images[2]).read_bytes() == b"pixels 2"
    assert sorted(bag.dataset_types) == ["Training"]
    # 0.2.0 still has the values of then.
    old = ml.download_dataset_bag(DatasetSpec(rid=rid, version="0.2.0"))
    assert {r["Name"]: r["Diagnosis"] for r in old.get_table_as_dict("Subject")} == {"ann": "Healthy"}


def test_second_download_is_a_cache_hit(ml, built):
    spec = DatasetSpec(rid=built["dataset"][0], version="1.0.0")
    first = ml.download_dataset_bag(spec)
    assert first.from_cache is False
    stamps = {p: p.stat().st_mtime_ns for p in first.path.parent.rglob("*")}
    second = ml.download_dataset_bag(spec)
    assert second.from_cache is True
    assert second.path == first.path
    assert {p: p.stat().st_mtime_ns for p in first.path.parent.rglob("*")} == stamps  # nothing rewritten
    # Without a version: the current one, from the same cache entry.
    assert ml.download_dataset_bag(built["dataset"][0]).path == first.path


def test_unmaterialized_bag_lists_files_and_materializes_later(ml, built):
    spec = DatasetSpec(rid=built["dataset"][0], version="1.0.0", materialize=False)
    bag = ml.download_dataset_bag(spec)
    assert not bag.is_materialized
    assert not (bag.path / "data" / "asset").exists()
    with pytest.raises(BagValidationError, match="No such file"):  # the files in fetch.txt are not here yet
        bdbag_api.validate_bag(str(bag.path), fast=False)
    again = ml.download_dataset_bag(spec.model_copy(update={"materialize": True}))
    assert again.path == bag.path
    assert again.is_materialized
    bdbag_api.validate_bag(str(again.path), fast=False)


def test_corrupt_object_fails_materialization_naming_the_file(ml, built):
    image = ml.lookup_asset(built["Image"][1])
    stored = Path(ml.catalog.path) / "objects" / image.md5[:2] / image.md5
    stored.write_bytes(b"bit rot")
    spec = DatasetSpec(rid=built["dataset"][0], version="1.0.0")
    with pytest.raises(DerivaMLDataError, match=r"img 1\.png.*fails its checksum"):
        ml.download_dataset_bag(spec)
    # The bag is in the cache without that file; once the object is good again, the next download
    # fetches what is missing and validates the whole bag.
    stored.write_bytes(b"pixels 1")
    again = ml.download_dataset_bag(spec)
    assert again.from_cache is False
    assert again.asset_path(built["Image"][1]).read_bytes() == b"pixels 1"
    bdbag_api.validate_bag(str(again.path), fast=False)


def test_a_fresh_bag_reads_each_file_once_and_bdbag_accepts_it(ml, built, monkeypatch):
    """A cold download with materialize copies each object once, checking its MD5 on the way; bdbag
    neither fetches nor validates it again, and the bag passes bdbag's full and fast validation."""
    from pytest_deriva.catalog import objectstore
    from pytest_deriva.dataset import _bdbag

    copied: list[str] = []
    copy = objectstore.copy_new_hashing

    def counting(src, dest, size_hint=None):
        copied.append(Path(dest).name)
        return copy(src, dest, size_hint)

    def second_pass(*args, **kwargs):
        raise AssertionError("bdbag read the files of a bag made just now")

    monkeypatch.setattr(objectstore, "copy_new_hashing", counting)
    monkeypatch.setattr(_bdbag, "materialize_bag", second_pass)
    monkeypatch.setattr(_bdbag, "validate_bag", second_pass)
    bag = ml.download_dataset_bag(DatasetSpec(rid=built["dataset"][0], version="1.0.0"))
    monkeypatch.undo()
    listed = [line.split("\t")[2] for line in (bag.path / "fetch.txt").read_text().splitlines()]
    assert sorted(copied) == sorted(name.rsplit("/", 1)[1] for name in listed) == ["img 1.png", "img 2.png"]
    assert bag.is_materialized
    bdbag_api.validate_bag(str(bag.path), fast=False)  # every checksum
    bdbag_api.validate_bag(str(bag.path), fast=True)  # Payload-Oxum, which the full validation skips


def test_a_file_unlike_its_catalog_md5_fails_materialization(ml, built):
    """Files are checked against the MD5 the catalog records (the bag's manifest), not only the URL's."""
    rid = built["dataset"][0]
    image = built["Image"][1]
    ml.update_records("Image", [{"RID": image, "MD5": "0" * 32}])
    version = ml.increment_dataset_version(rid, "patch", "a wrong checksum")
    with pytest.raises(DerivaMLDataError, match=r"img 1\.png.*not the 0{32} it is recorded with"):
        ml.download_dataset_bag(DatasetSpec(rid=rid, version=str(version)))


def test_corrupt_file_in_a_bag_fails_validation_naming_the_file(ml, built):
    bag = ml.download_dataset_bag(DatasetSpec(rid=built["dataset"][0], version="1.0.0"))
    path = bag.asset_path(built["Image"][2])
    path.write_bytes(b"edited")
    with pytest.raises(DerivaMLDataError, match=r"img 2\.png md5 validation failed"):
        bag.validate()
    assert not path.exists()  # removed, so that the next download fetches it again
    again = ml.download_dataset_bag(DatasetSpec(rid=built["dataset"][0], version="1.0.0"))
    assert again.from_cache is False
    assert path.read_bytes() == b"pixels 2"
    bdbag_api.validate_bag(str(again.path), fast=False)


def test_bag_reader_and_database_catalog(ml, built):
    bag = ml.download_dataset_bag(DatasetSpec(rid=built["dataset"][0], version="1.0.0", materialize=False))
    assert f"{ml.default_schema}:Subject" in bag.list_tables()
    assert bag.get_table_as_dict(f"{ml.default_schema}:Subject") == bag.get_table_as_dict("Subject")
    db = bag.database_catalog
    assert db.lookup_dataset(built["nested"][0]).description == "nested"
    assert db.lookup_term("Diagnosis", "sick").name == "Sick"
    with pytest.raises(DerivaMLInvalidTerm, match="Healthy"):
        db.lookup_term("Diagnosis", "Healthy")  # not used by any row of this version
    assert {d.dataset_rid for d in db.find_datasets()} == {built["dataset"][0], built["nested"][0]}
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(DerivaMLException, match="pip install pandas"):
            bag.get_table_as_dataframe("Subject")
    else:
        assert list(bag.get_table_as_dataframe("Subject")["RID"]) == [
            r["RID"] for r in bag.get_table_as_dict("Subject")
        ]


def test_values_of_every_column_type_are_written_and_read_back(ml):
    """The CSVs of a bag: booleans as true/false, JSON and arrays as JSON, numbers as themselves,
    empty for null; the reader types them back by column."""
    from pytest_deriva.catalog.schema import column

    ml.create_table(
        "Sample",
        [
            column("Name", "text"),
            column("Flag", "boolean"),
            column("Count", "int4"),
            column("Weight", "float8"),
            column("Meta", "jsonb"),
            column("Tags", "text[]"),
        ],
    )
    ml.add_dataset_element_type("Sample")
    values = [
        {"Name": 'a, "quoted"\nline', "Flag": True, "Count": 3, "Weight": 0.1, "Meta": {"k": [1, 2]}, "Tags": ["x"]},
        {"Name": "b", "Flag": False, "Count": -1, "Weight": 1e-20, "Meta": [1, "two"], "Tags": []},
        {"Name": None, "Flag": None, "Count": None, "Weight": None, "Meta": None, "Tags": None},
    ]
    rids = [r["RID"] for r in ml.insert_records("Sample", values)]
    ds = ml.create_dataset("Complete", description="typed values")
    ds.add_dataset_members({"Sample": rids})
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.rid, version=str(ds.version)))
    text = {r["RID"]: r for r in read_csv(bag, ml.default_schema, "Sample")}
    assert [text[rid]["Flag"] for rid in rids] == ["true", "false", ""]
    assert json.loads(text[rids[0]]["Meta"]) == {"k": [1, 2]}
    read = {r["RID"]: r for r in bag.get_table_as_dict("Sample")}
    for rid, want in zip(rids, values, strict=True):
        assert {k: read[rid][k] for k in want} == want
    bdbag_api.validate_bag(str(bag.path), fast=False)


def test_files_whose_names_clash_get_a_folder_of_their_rid(ml):
    """Asset files sit in data/asset/<Table>/ under their Filename; a file whose name another file of
    the table has too (as a case-insensitive file system compares names), or whose name is the RID
    of another, goes in a folder of its RID. Every file is found through asset_path with its bytes."""
    ml.create_asset("Image")
    ml.add_dataset_element_type("Image")

    def image(name: str, data: bytes) -> str:
        obj = ml.catalog.objects.put_bytes(data, "Image", name)
        row = {"URL": obj.url, "Filename": name, "Length": obj.length, "MD5": obj.md5}
        return ml.insert_records("Image", [row])[0]["RID"]

    unique = image("unique.png", b"u")
    upper, lower = image("SCAN.png", b"S"), image("scan.png", b"s")
    named_like_a_rid = image(unique, b"r")  # a file named like the RID of another asset
    ds = ml.create_dataset("Complete", description="clashing names")
    ds.add_dataset_members({"Image": [unique, upper, lower, named_like_a_rid]})
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.rid, version=str(ds.version)))
    folder = bag.path / "data" / "asset" / "Image"
    assert {rid: bag.asset_path(rid) for rid in (unique, upper, lower, named_like_a_rid)} == {
        unique: folder / "unique.png",
        upper: folder / upper / "SCAN.png",
        lower: folder / lower / "scan.png",
        named_like_a_rid: folder / named_like_a_rid / unique,
    }
    assert [bag.asset_path(rid).read_bytes() for rid in (unique, upper, lower, named_like_a_rid)] == [
        b"u",
        b"S",
        b"s",
        b"r",
    ]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
        [f"{upper}/SCAN.png", f"{lower}/scan.png", f"{named_like_a_rid}/{unique}", "unique.png"]
    )
    bdbag_api.validate_bag(str(bag.path), fast=False)


def test_a_bag_with_a_folder_per_file_is_still_read(ml, built):
    """Bags made before the Deriva-Asset-Layout key (each file in a folder of its RID) are read as
    they are: a cache entry or a pinned bag of an earlier version of pytest-deriva."""
    bag = ml.download_dataset_bag(DatasetSpec(rid=built["dataset"][0], version="1.0.0"))
    assert bag.info["Deriva-Asset-Layout"] == "2"
    # The same bag as the earlier layout had it.
    info = bag.path / "bag-info.txt"
    info.write_text("".join(line for line in info.read_text().splitlines(True) if "Deriva-Asset-Layout" not in line))
    for rid in built["Image"][1:]:
        path = bag.asset_path(rid)
        (path.parent / rid).mkdir()
        path.rename(path.parent / rid / path.name)
    old = DatasetBag(bag.path)
    for i, rid in enumerate(built["Image"][1:], start=1):
        assert old.asset_path(rid) == bag.path / "data" / "asset" / "Image" / rid / f"img {i}.png"
        assert old.asset_path(rid).read_bytes() == f"pixels {i}".encode()
