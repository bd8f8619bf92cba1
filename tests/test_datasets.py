"""Domain tables, datasets, members, nesting and versions through the public API (embedded catalog)."""

from __future__ import annotations

import hashlib

import pytest

from conftest import subject_image_schema
from pytest_deriva import (
    DatasetSpec,
    DerivaML,
    DerivaMLCycleError,
    DerivaMLDataError,
    DerivaMLDatasetNotFound,
    DerivaMLException,
    DerivaMLInvalidTerm,
    DerivaMLNotFoundError,
    DerivaMLTableNotFound,
    DerivaMLValidationError,
    ExecutionConfiguration,
)
from pytest_deriva.catalog.schema import column
from pytest_deriva.dataset import Dataset, DatasetVersion, FileSpec, VersionPart


def make_domain(ml: DerivaML) -> dict[str, list[str]]:
    """Diagnosis vocabulary, Subject (typed columns, FK to the vocabulary), Image asset table (FK to
    Subject), both element types; three subjects and three images."""
    subject_image_schema(ml)
    subjects = ml.insert_records(
        "Subject",
        [
            {"Name": "ann", "Age": 30, "Diagnosis": "Healthy"},
            {"Name": "bob", "Age": 40, "Diagnosis": "Sick"},
            {"Name": "cy", "Age": 50, "Diagnosis": "Healthy"},
        ],
    )
    images = []
    for i, s in enumerate(subjects):
        obj = ml.catalog.objects.put_bytes(f"image {i}".encode(), "Image", f"img{i}.png")
        images.append(
            {"URL": obj.url, "Filename": f"img{i}.png", "Length": obj.length, "MD5": obj.md5, "Subject": s["RID"]}
        )
    stored = ml.insert_records("Image", images)
    return {"Subject": [s["RID"] for s in subjects], "Image": [r["RID"] for r in stored]}


def rids(members: dict[str, list[dict]], table: str) -> list[str]:
    return [r["RID"] for r in members[table]]


# -- domain tables and element types ------------------------------------------------------------
def test_create_table_with_typed_columns_and_foreign_keys(ml):
    make_domain(ml)
    t = ml.model.name_to_table("Subject")
    assert t.schema.name == ml.default_schema
    assert {c: t.columns[c].typename for c in ("Name", "Age", "Diagnosis")} == {
        "Name": "text",
        "Age": "int4",
        "Diagnosis": "text",
    }
    assert [fk.pk_table.name for fk in t.foreign_keys if fk.foreign_key_columns[0].name == "Diagnosis"] == ["Diagnosis"]
    rows = ml.get_table_as_dict("Subject")
    assert [(r["Name"], r["Age"]) for r in rows] == [("ann", 30), ("bob", 40), ("cy", 50)]
    ml.update_records("Subject", [{"RID": rows[0]["RID"], "Age": 31}])
    assert ml.get_table_as_dict("Subject")[0]["Age"] == 31
    # a whole ERMrest document works as well
    from pytest_deriva.catalog.schema import plain_table

    visit = ml.create_table(plain_table("Visit", [column("Day", "date")]))
    assert visit.name == "Visit"
    assert "Day" in visit.columns


def test_create_table_bad_input_writes_nothing(ml, state):
    make_domain(ml)
    before = state(ml)
    with pytest.raises(DerivaMLException, match="already exists"):
        ml.create_table("Subject", [column("X", "text")])
    with pytest.raises(DerivaMLTableNotFound, match="Nowhere"):
        ml.create_table("Visit", [column("Place", "text")], fkeys=[(["Place"], ml.default_schema, "Nowhere", ["RID"])])
    with pytest.raises(DerivaMLValidationError, match="cannot name a table"):
        ml.create_table("bad name", [])
    with pytest.raises(DerivaMLValidationError, match="which DerivaML maintains"):
        ml.insert_records("Dataset", [{"Description": "sneaky"}])
    assert state(ml) == before


def test_dataset_element_types(ml):
    make_domain(ml)
    names = [t.name for t in ml.list_dataset_element_types()]
    assert {"Dataset", "File", "Subject", "Image"} <= set(names)
    assoc = ml.add_dataset_element_type("Subject")  # idempotent
    assert assoc.name == "Dataset_Subject"
    assert assoc.schema.name == "deriva-ml"
    assert {"Dataset", "Subject"} <= set(assoc.columns)
    with pytest.raises(DerivaMLValidationError, match="vocabularies"):
        ml.add_dataset_element_type("Diagnosis")


# -- datasets -----------------------------------------------------------------------------------
def test_create_dataset_records_types_version_and_snapshot(ml):
    ds = ml.create_dataset(["Training", "labeled"], description="first")
    assert isinstance(ds, Dataset)
    assert ds.version == DatasetVersion(0, 1, 0)
    assert str(ds.current_version) == "0.1.0"
    assert ds.types == ["Training", "Labeled"]  # synonyms and case resolve to the term's name
    assert ds.description == "first"
    [h] = ds.dataset_history()
    assert h.snapshot
    assert h.dataset_rid == ds.rid
    assert h.execution_rid is None
    row = ml.catalog.select("deriva-ml", "Dataset", {"RID": ds.rid})[0]
    assert row["Version"] == h.version_rid
    assert row["Deleted"] is False
    other = ml.create_dataset("Testing", version="2.1.0")
    assert str(other.version) == "2.1.0"
    assert ml.lookup_dataset(ds.rid) == ds
    assert ml.find_datasets() == [ds, other]
    ds.description = "renamed"
    assert ml.lookup_dataset(ds.rid).description == "renamed"
    ml.delete_dataset(other)
    assert ml.find_datasets() == [ds]
    with pytest.raises(DerivaMLDatasetNotFound, match="deleted"):
        ml.lookup_dataset(other.rid)
    assert ml.lookup_dataset(other.rid, deleted=True) == other


def test_members_across_tables_nested_and_recursive(ml):
    domain = make_domain(ml)
    parent = ml.create_dataset("Complete", description="all")
    child = ml.create_dataset("Testing", description="part")
    ml.add_dataset_members(child, [domain["Subject"][2]])  # RIDs: tables are looked up
    ml.add_dataset_members(
        parent, {"Subject": domain["Subject"][:2], "Image": domain["Image"][:1], "Dataset": [child.rid]}
    )
    members = ml.list_dataset_members(parent)
    assert rids(members, "Subject") == domain["Subject"][:2]
    assert rids(members, "Image") == domain["Image"][:1]
    assert rids(members, "Dataset") == [child.rid]
    assert members["Subject"][0]["Name"] == "ann"
    deep = parent.list_dataset_members(recurse=True)
    assert rids(deep, "Subject") == domain["Subject"]
    assert parent.list_dataset_children() == [child]
    assert child.list_dataset_parents() == [parent]
    assert ml.list_dataset_members(parent, limit=1)["Subject"] == members["Subject"][:1]


def test_member_changes_bump_minor_and_parents_follow(ml):
    domain = make_domain(ml)
    grandparent, parent, child = (ml.create_dataset("Complete") for _ in range(3))
    parent.add_dataset_members([child.rid])
    grandparent.add_dataset_members([parent.rid])
    assert (str(grandparent.version), str(parent.version), str(child.version)) == ("0.2.0", "0.2.0", "0.1.0")

    child.add_dataset_members({"Subject": domain["Subject"]}, description="three subjects")
    assert (str(grandparent.version), str(parent.version), str(child.version)) == ("0.3.0", "0.3.0", "0.2.0")
    assert child.dataset_history()[-1].description == "three subjects"
    assert child.rid in parent.dataset_history()[-1].description
    child.add_dataset_members({"Subject": domain["Subject"][:1]})  # already members: no new version
    assert str(child.version) == "0.2.0"

    child.delete_dataset_members([domain["Subject"][0]])
    assert str(child.version) == "0.3.0"
    assert str(grandparent.version) == "0.4.0"
    assert rids(child.list_dataset_members(), "Subject") == domain["Subject"][1:]

    assert child.increment_dataset_version(VersionPart.major, "release") == DatasetVersion(1, 0, 0)
    assert str(parent.version) == "1.0.0"
    assert str(grandparent.version) == "1.0.0"
    assert ml.increment_dataset_version(child, "patch") == DatasetVersion(1, 0, 1)
    versions = [str(h.dataset_version) for h in ml.dataset_history(child.rid)]
    assert versions == ["0.1.0", "0.2.0", "0.3.0", "1.0.0", "1.0.1"]


def test_versions_are_immutable_views(ml):
    domain = make_domain(ml)
    child = ml.create_dataset("Testing")
    child.add_dataset_members([domain["Subject"][2]])
    ds = ml.create_dataset("Complete")
    ds.add_dataset_members({"Subject": domain["Subject"][:2], "Image": domain["Image"][:1], "Dataset": [child.rid]})
    assert str(ds.version) == "0.2.0"
    # Edits: a value changes, a member goes, another comes; then a release.
    ml.update_records("Subject", [{"RID": domain["Subject"][0], "Name": "ANN", "Age": 99}])
    ml.update_records("Subject", [{"RID": domain["Subject"][2], "Diagnosis": "Sick"}])
    ds.delete_dataset_members([domain["Image"][0]])
    ds.add_dataset_members([domain["Image"][1]])
    ds.increment_dataset_version("major", "first release")
    assert str(ds.version) == "1.0.0"
    # ... and edits after the release, in no version yet.
    ml.update_records("Subject", [{"RID": domain["Subject"][1], "Name": "BOB"}])

    v1 = ds.list_dataset_members(version="0.1.0")
    assert all(rows == [] for rows in v1.values())
    v2 = ds.list_dataset_members(version=DatasetVersion(0, 2, 0), recurse=True)
    assert [(r["Name"], r["Age"]) for r in v2["Subject"]] == [("ann", 30), ("bob", 40), ("cy", 50)]
    assert rids(v2, "Image") == domain["Image"][:1]
    assert v2["Subject"][2]["Diagnosis"] == "Healthy"  # the nested dataset's member, as it was
    v3 = ds.list_dataset_members(version="1.0.0", recurse=True)
    assert [(r["Name"], r["Age"]) for r in v3["Subject"]] == [("ANN", 99), ("bob", 40), ("cy", 50)]
    assert rids(v3, "Image") == domain["Image"][1:2]
    assert v3["Subject"][2]["Diagnosis"] == "Sick"
    live = ds.list_dataset_members()
    assert [r["Name"] for r in live["Subject"]] == ["ANN", "BOB"]
    assert ds.list_dataset_children(version="0.1.0") == []
    assert ds.list_dataset_children(version="0.2.0") == [child]


# -- bad input ----------------------------------------------------------------------------------
def test_bad_dataset_inputs_are_refused_and_write_nothing(ml, state):
    domain = make_domain(ml)
    ds = ml.create_dataset("Training")
    ds.add_dataset_members([domain["Subject"][0]])
    term = ml.lookup_term("Diagnosis", "Healthy")
    before = state(ml)

    with pytest.raises(DerivaMLDatasetNotFound, match=f"row of Subject, not a dataset.*{domain['Subject'][0]}"):
        ml.lookup_dataset(domain["Subject"][0])
    with pytest.raises(DerivaMLDatasetNotFound, match="9-ZZZZ"):
        ml.list_dataset_members("9-ZZZZ")
    with pytest.raises(DerivaMLNotFoundError, match=r"no version 3\.0\.0; its versions are: 0\.1\.0, 0\.2\.0"):
        ds.list_dataset_members(version="3.0.0")
    with pytest.raises(DerivaMLNotFoundError, match=r"its versions are: 0\.1\.0, 0\.2\.0"):
        ml.download_dataset_bag(DatasetSpec(rid=ds.rid, version="0.9.0"))
    with pytest.raises(DerivaMLValidationError, match=r"not a version"):
        DatasetSpec(rid=ds.rid, version="one")
    with pytest.raises(
        DerivaMLValidationError,
        match=rf"{term.rid} is a row of Diagnosis, which is not a dataset element type.*"
        r"add_dataset_element_type\('Diagnosis'\)",
    ):
        ds.add_dataset_members([domain["Image"][0], term.rid])
    with pytest.raises(DerivaMLValidationError, match="not a dataset element type"):
        ds.add_dataset_members({"Diagnosis": [term.rid]})
    with pytest.raises(DerivaMLValidationError, match=f"{domain['Image'][0]} is not a row of Subject"):
        ds.add_dataset_members({"Subject": [domain["Image"][0]]})
    with pytest.raises(DerivaMLValidationError, match=f"{domain['Subject'][1]} is not a member"):
        ds.delete_dataset_members([domain["Subject"][0], domain["Subject"][1]])
    with pytest.raises(DerivaMLInvalidTerm, match="Nonsense"):
        ml.create_dataset(["Training", "Nonsense"])
    with pytest.raises(DerivaMLValidationError, match="version part"):
        ds.increment_dataset_version("huge")
    assert state(ml) == before


def test_nesting_cycles_are_refused(ml, state):
    a, b, c = (ml.create_dataset("Complete") for _ in range(3))
    a.add_dataset_members([b.rid])
    b.add_dataset_members([c.rid])
    before = state(ml)
    with pytest.raises(DerivaMLCycleError):
        c.add_dataset_members([a.rid])
    with pytest.raises(DerivaMLCycleError):
        a.add_dataset_members([a.rid])
    assert state(ml) == before


# -- executions -----------------------------------------------------------------------------------
def test_execution_records_input_dataset_and_hands_over_its_bag(ml, workflow):
    domain = make_domain(ml)
    ds = ml.create_dataset("Training", description="inputs")
    ds.add_dataset_members({"Subject": domain["Subject"][:2], "Image": domain["Image"][:2]})
    ml.update_records("Subject", [{"RID": domain["Subject"][0], "Name": "later"}])  # not in 0.2.0

    config = ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=ds.rid, version="0.2.0")])
    with ml.create_execution(config) as exe:
        [bag] = exe.datasets
        assert bag.dataset_rid == ds.rid
        assert str(bag.version) == "0.2.0"
        members = bag.list_dataset_members()
        assert [r["Name"] for r in members["Subject"]] == ["ann", "bob"]
        assert bag.asset_path(domain["Image"][1]).read_bytes() == b"image 1"
        assert exe.database_catalog.lookup_dataset(ds.rid).description == "inputs"
        assert exe.list_input_datasets() == [ds]
    exe.upload_execution_outputs()
    links = ml.catalog.select("deriva-ml", "Dataset_Execution", {"Execution": exe.execution_rid})
    assert [r["Dataset"] for r in links] == [ds.rid]
    assert ml.lookup_execution(exe.execution_rid).list_input_datasets() == [ds]


def test_execution_with_a_non_dataset_writes_nothing(ml, workflow, state):
    domain = make_domain(ml)
    before = state(ml)
    with pytest.raises(DerivaMLException, match=domain["Subject"][0]):
        ml.create_execution(ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=domain["Subject"][0])]))
    assert state(ml) == before


def test_execution_with_a_missing_version_names_the_versions(ml, workflow):
    ds = ml.create_dataset("Training")
    with pytest.raises(DerivaMLNotFoundError, match=r"no version 2\.0\.0; its versions are: 0\.1\.0"):
        ml.create_execution(
            ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=ds.rid, version="2.0.0")])
        )


def test_execution_with_a_missing_version_writes_nothing(ml, workflow, state):
    ds = ml.create_dataset("Training")
    before = state(ml)
    with pytest.raises(DerivaMLNotFoundError):
        ml.create_execution(
            ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=ds.rid, version="2.0.0")])
        )
    assert state(ml) == before


def test_execution_creates_datasets_and_adds_files(ml, workflow, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for name, data in (("a.txt", b"alpha"), ("b c.txt", b"beta")):
        (folder / name).write_bytes(data)
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        made = exe.create_dataset(["Training"], description="made here")
        files = exe.add_files(FileSpec.create_filespecs(folder, description="raw"), dataset_types="Testing")
    assert made.execution_rid == exe.execution_rid
    assert made.dataset_history()[0].execution_rid == exe.execution_rid
    assert set(files.types) == {"File", "Testing"}
    assert str(files.version) == "0.1.0"
    rows = files.list_dataset_members()["File"]
    assert sorted(r["Filename"] for r in rows) == ["a.txt", "b c.txt"]
    assert {r["MD5"] for r in rows} == {hashlib.md5(b"alpha").hexdigest(), hashlib.md5(b"beta").hexdigest()}
    assert all(r["URL"].startswith("file://") for r in rows)
    linked = {
        r["Dataset"] for r in ml.catalog.select("deriva-ml", "Dataset_Execution", {"Execution": exe.execution_rid})
    }
    assert linked == {made.rid, files.rid}
    # The files' bag materializes from their file:// URLs and validates.
    bag = files.download_dataset_bag()
    assert sorted(p.name for p in (bag.path / "data" / "asset" / "File").rglob("*.txt")) == ["a.txt", "b c.txt"]
    with pytest.raises(DerivaMLValidationError, match="MD5"):
        FileSpec(url="x.txt", md5="nope", length=1)


def test_a_registered_file_changed_since_fails_materialization(ml, workflow, tmp_path):
    """A file:// asset is read once into the bag and checked against the MD5 it was registered with."""
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"alpha")
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        files = exe.add_files(FileSpec.create_filespecs(folder, description="raw"), dataset_types="Testing")
    (folder / "a.txt").write_bytes(b"omega")
    with pytest.raises(DerivaMLDataError, match=r"a\.txt.*fails its checksum"):
        files.download_dataset_bag()


def test_dataset_version_and_spec_config():
    v = DatasetVersion.parse("1.2.3")
    assert v.to_tuple() == (1, 2, 3)
    assert v < DatasetVersion(1, 10, 0)
    assert str(v.bump_major()) == "2.0.0"
    assert DatasetVersion.parse({"major": 0, "minor": 3, "patch": 0}) == DatasetVersion(0, 3)
    assert DatasetSpec(rid="1-ABCD", version=[1, 0, 0]).version == "1.0.0"
    from hydra_zen import instantiate

    from pytest_deriva.dataset import DatasetSpecConfig

    spec = instantiate(DatasetSpecConfig(rid="1-ABCD", version="0.21.0", materialize=False))
    assert spec == DatasetSpec(rid="1-ABCD", version="0.21.0", materialize=False)
