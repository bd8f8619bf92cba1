"""Features through the public API: definitions, typed records, values deferred to upload."""

from __future__ import annotations

import hashlib

import pytest

from pytest_deriva import (
    DatasetSpec,
    DerivaML,
    DerivaMLException,
    DerivaMLInvalidTerm,
    DerivaMLNotFoundError,
    DerivaMLTableTypeError,
    DerivaMLValidationError,
    ExecutionConfiguration,
)
from pytest_deriva.catalog.schema import column
from pytest_deriva.dataset import Feature, FeatureRecord


@pytest.fixture
def subjects(ml: DerivaML) -> list[str]:
    """Subject rows, a Grade vocabulary and a Mask asset table; a feature Quality of Subject with a
    term, an asset and a plain (optional) score."""
    ml.create_vocabulary("Grade")
    for g in ("Good", "Bad"):
        ml.add_term("Grade", g, f"{g} quality", synonyms=[g.lower() + "ish"])
    ml.create_asset("Mask")
    ml.create_table("Subject", [column("Name", "text")])
    ml.add_dataset_element_type("Subject")
    ml.create_feature(
        "Subject",
        "Quality",
        terms=["Grade"],
        assets=["Mask"],
        metadata=[column("Score", "float4")],
        optional=["Score"],
        comment="How good a subject's data is.",
    )
    return [r["RID"] for r in ml.insert_records("Subject", [{"Name": n} for n in ("a", "b", "c")])]


def test_create_feature_makes_the_table_and_the_term(ml, subjects):
    feature = ml.lookup_feature("Subject", "Quality")
    assert isinstance(feature, Feature)
    t = feature.feature_table
    assert t.name == "Execution_Subject_Quality"
    assert t.schema.name == ml.default_schema
    assert {"Execution", "Subject", "Feature_Name", "Grade", "Mask", "Score"} <= set(t.columns)
    refs = {fk.foreign_key_columns[0].name: fk.pk_table.name for fk in t.foreign_keys}
    assert {k: refs[k] for k in ("Execution", "Subject", "Feature_Name", "Grade", "Mask")} == {
        "Execution": "Execution",
        "Subject": "Subject",
        "Feature_Name": "Feature_Name",
        "Grade": "Grade",
        "Mask": "Mask",
    }
    assert not t.columns["Grade"].nullok
    assert t.columns["Score"].nullok
    assert [c.name for c in feature.term_columns] == ["Grade"]
    assert [c.name for c in feature.asset_columns] == ["Mask"]
    assert [c.name for c in feature.value_columns] == ["Score"]
    assert ml.lookup_term("Feature_Name", "Quality").description == "How good a subject's data is."
    assert ml.find_features("Subject") == [feature]
    with pytest.raises(DerivaMLException, match="exists already"):
        ml.create_feature("Subject", "Quality", terms=["Grade"])
    with pytest.raises(DerivaMLNotFoundError, match=r"no feature 'Size'.*create_feature"):
        ml.lookup_feature("Subject", "Size")
    with pytest.raises(DerivaMLTableTypeError, match="vocabulary"):
        ml.create_feature("Subject", "Other", terms=["Subject"])
    with pytest.raises(DerivaMLValidationError, match="not value columns"):
        ml.create_feature("Subject", "Other", terms=["Grade"], optional=["Nope"])


def test_feature_record_class_types_and_checks_values(ml, subjects):
    Quality = ml.feature_record_class("Subject", "Quality")
    assert issubclass(Quality, FeatureRecord)
    assert Quality.feature.feature_name == "Quality"
    r = Quality(Subject=subjects[0], Grade="goodish", Mask="m.png", Score="0.5")
    assert r.Grade == "Good"  # synonyms resolve to the term's name
    assert r.Score == 0.5
    assert r.Feature_Name == "Quality"
    with pytest.raises(DerivaMLValidationError, match=r"Score='high'"):
        Quality(Subject=subjects[0], Grade="Good", Mask="m.png", Score="high")
    with pytest.raises(DerivaMLInvalidTerm, match=r"'Great'.*Grade.*Bad, Good"):
        Quality(Subject=subjects[0], Grade="Great", Mask="m.png")
    with pytest.raises(DerivaMLValidationError, match=r"Colour is not a column"):
        Quality(Subject=subjects[0], Grade="Good", Mask="m.png", Colour="red")
    with pytest.raises(DerivaMLValidationError, match=r"Grade is required"):
        Quality(Subject=subjects[0], Mask="m.png")
    with pytest.raises(DerivaMLValidationError, match=r"Subject='not a rid'"):
        Quality(Subject="not a rid", Grade="Good", Mask="m.png")


def test_feature_values_with_assets_are_written_at_upload_only(ml, workflow, subjects, state):
    Quality = ml.feature_record_class("Subject", "Quality")
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="grading")) as exe:
        masks = []
        for i in range(2):
            path = exe.asset_file_path("Mask", f"mask{i}.png")
            path.write_bytes(f"mask {i}".encode())
            masks.append(path)
        before = state(ml)
        added = exe.add_features(
            [
                Quality(Subject=subjects[0], Grade="Good", Mask=masks[0], Score=0.9),
                Quality(Subject=subjects[1], Grade="bad", Mask="mask1.png"),  # the file's name works too
            ]
        )
        assert added == 2
        assert state(ml) == before  # nothing in the catalog yet
        assert ml.list_feature_values("Subject", "Quality") == []
    assert ml.list_feature_values("Subject", "Quality") == []  # still nothing before the upload

    uploaded = exe.upload_execution_outputs()
    mask_rids = {p.file_name: p.asset_rid for p in uploaded[f"{ml.default_schema}/Mask"]}
    values = {v.Subject: v for v in ml.list_feature_values("Subject", "Quality")}
    assert set(values) == set(subjects[:2])
    assert values[subjects[0]].Mask == mask_rids["mask0.png"]
    assert values[subjects[1]].Mask == mask_rids["mask1.png"]
    assert (values[subjects[0]].Grade, values[subjects[1]].Grade) == ("Good", "Bad")
    assert values[subjects[0]].Score == pytest.approx(0.9)
    assert values[subjects[1]].Score is None
    assert {v.Execution for v in values.values()} == {exe.execution_rid}
    mask = ml.lookup_asset(mask_rids["mask0.png"])
    assert mask.md5 == hashlib.md5(b"mask 0").hexdigest()

    # A later execution refers to the uploaded mask by RID; the values are in the dataset's bags.
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as again:
        again.add_features([Quality(Subject=subjects[2], Grade="Good", Mask=mask_rids["mask0.png"])])
    again.upload_execution_outputs()
    assert len(ml.list_feature_values("Subject", "Quality")) == 3
    ds = ml.create_dataset("Labeled")
    ds.add_dataset_members({"Subject": subjects[:2]})
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.rid))
    in_bag = bag.list_feature_values("Subject", "Quality")
    assert {(v["Subject"], v["Mask"]) for v in in_bag} == {(s, values[s].Mask) for s in subjects[:2]}
    assert bag.asset_path(mask_rids["mask1.png"]).read_bytes() == b"mask 1"


def test_bad_feature_values_stage_nothing(ml, workflow, subjects, tmp_path):
    Quality = ml.feature_record_class("Subject", "Quality")
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        mask = exe.asset_file_path("Mask", "mask.png")
        mask.write_bytes(b"m")
        elsewhere = tmp_path / "other.png"
        elsewhere.write_bytes(b"x")
        good = Quality(Subject=subjects[0], Grade="Good", Mask=mask)
        with pytest.raises(DerivaMLValidationError, match=r"other\.png is not a file registered.*asset_file_path"):
            exe.add_features([good, Quality(Subject=subjects[1], Grade="Good", Mask=elsewhere)])
        with pytest.raises(DerivaMLValidationError, match=r"is a row of Subject, not of the asset table Mask"):
            exe.add_features([Quality(Subject=subjects[1], Grade="Good", Mask=subjects[2])])
        with pytest.raises(DerivaMLValidationError, match=rf"{exe.execution_rid} is not one; give RIDs of Subject"):
            exe.add_features([Quality(Subject=exe.execution_rid, Grade="Good", Mask=mask)])
        with pytest.raises(DerivaMLValidationError, match="more than one value"):
            exe.add_features([good, Quality(Subject=subjects[0], Grade="Bad", Mask=mask)])
        with pytest.raises(DerivaMLValidationError, match="not a feature record"):
            exe.add_features([{"Subject": subjects[0]}])
    exe.upload_execution_outputs()
    assert ml.list_feature_values("Subject", "Quality") == []


def test_staged_feature_values_survive_a_crash_and_upload_after_restore(ml, workflow, subjects):
    Quality = ml.feature_record_class("Subject", "Quality")
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with exe:
        mask = exe.asset_file_path("Mask", "mask.png")
        mask.write_bytes(b"m")
        exe.add_features([Quality(Subject=subjects[0], Grade="Good", Mask=mask)])
    # The process ends here without uploading; a new handle picks the execution up.
    restored = DerivaML(ml.catalog.path).restore_execution(exe.execution_rid)
    uploaded = restored.upload_execution_outputs()
    [value] = ml.list_feature_values("Subject", "Quality")
    assert value.Mask == uploaded[f"{ml.default_schema}/Mask"][0].asset_rid
    assert value.Execution == exe.execution_rid
