"""The embedded catalog: a folder in the project, safe to reopen, RIDs, snapshots, vocabularies."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pytest_deriva import (
    DerivaML,
    DerivaMLException,
    DerivaMLInvalidTerm,
    DerivaMLValidationError,
    ExecutionConfiguration,
)

SEEDED = {
    "Asset_Type": {
        "Execution_Config",
        "Runtime_Env",
        "Hydra_Config",
        "Deriva_Config",
        "Execution_Metadata",
        "Execution_Asset",
        "File",
        "Input_File",
        "Output_File",
        "Model_File",
        "Notebook_Output",
    },
    "Asset_Role": {"Input", "Output"},
    "Dataset_Type": {"Complete", "File", "Training", "Testing", "Validation", "Split", "Labeled", "Unlabeled"},
    "Workflow_Type": {
        "Training",
        "Testing",
        "Prediction",
        "Feature_Creation",
        "Visualization",
        "Analysis",
        "Ingest",
        "Data_Cleaning",
        "Embedding",
        "Dataset_Management",
        "VGG19",
        "RETFound",
        "Multimodal",
    },
}


def record_one(ml, workflow, description="one"):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description=description)) as exe:
        exe.asset_file_path("Execution_Asset", "out.bin").write_bytes(description.encode())
    exe.upload_execution_outputs()
    return exe


# -- 12. the catalog folder --------------------------------------------------------------------
def test_reopening_never_alters_data(project, ml, workflow, state):
    exe = record_one(ml, workflow)
    before = state(ml)
    row = ml.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid})[0]
    ml.catalog.close()

    for _ in range(2):
        again = DerivaML(project / ".deriva")
        assert state(again) == before
        assert again.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid})[0] == row
        again.catalog.close()


def test_catalog_folder_keeps_itself_out_of_git(ml, project, workflow, git):
    record_one(ml, workflow)
    gitignore = project / ".deriva" / ".gitignore"
    assert "*" in gitignore.read_text().splitlines()
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    assert ".deriva" not in status
    assert status == ""  # the catalog folder is the only thing the run wrote into the project


def test_new_catalog_has_exactly_the_seeded_terms(ml):
    for vocab, names in SEEDED.items():
        assert {t.name for t in ml.list_vocabulary_terms(vocab)} == names, vocab
        assert all(t.description for t in ml.list_vocabulary_terms(vocab))
    assert ml.list_vocabulary_terms("Feature_Name") == []
    assert {v.name for v in ml.model.vocabularies()} == {*SEEDED, "Feature_Name"}


def test_rids_are_unique_across_tables_and_resolve_to_their_table(ml, workflow):
    exe = record_one(ml, workflow)
    asset = ml.list_assets("Execution_Asset")[0]
    term = ml.lookup_term("Workflow_Type", "Training")

    all_rids = [r["RID"] for t in ml.model.tables() for r in ml.catalog.select(t.schema.name, t.name, columns=["RID"])]
    assert len(all_rids) == len(set(all_rids))
    assert len(all_rids) > 40

    expect = {
        exe.execution_rid: "Execution",
        exe.workflow_rid: "Workflow",
        asset.rid: "Execution_Asset",
        term.rid: "Workflow_Type",
    }
    for rid, table in expect.items():
        found = ml.resolve_rid(rid)
        assert (found.table.name, found.schema) == (table, "deriva-ml"), rid
    assert ml.retrieve_rid(exe.execution_rid)["Description"] == "one"


def test_snapshot_reads_the_old_value(project, ml, workflow):
    exe = record_one(ml, workflow, "before")
    snap = ml.catalog.snapshot()
    ml.catalog.update("deriva-ml", "Execution", [{"RID": exe.execution_rid, "Description": "after"}])
    assert ml.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid})[0]["Description"] == "after"
    old = ml.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid}, snapshot=snap)
    assert [r["Description"] for r in old] == ["before"]
    # and a RID qualified by that snapshot still resolves
    assert ml.resolve_rid(f"{exe.execution_rid}@{snap}").table.name == "Execution"

    reopened = DerivaML(project / ".deriva")
    rows = reopened.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid}, snapshot=snap)
    assert [r["Description"] for r in rows] == ["before"]
    reopened.catalog.close()


def test_snapshot_before_a_row_existed_does_not_show_it(ml, workflow):
    snap = ml.catalog.snapshot()
    exe = record_one(ml, workflow)
    assert ml.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid}, snapshot=snap) == []


def test_sql_injection_in_a_value_is_stored_literally(ml):
    nasty = 'x\'); DROP TABLE "deriva-ml:Workflow"; --'
    term = ml.add_term("Workflow_Type", nasty, "d'; DELETE FROM x; --")
    assert term.name == nasty
    assert ml.lookup_term("Workflow_Type", nasty).description == "d'; DELETE FROM x; --"
    assert [r["Name"] for r in ml.catalog.select("deriva-ml", "Workflow_Type", {"Name": nasty})] == [nasty]
    assert ml.catalog.select("deriva-ml", "Workflow") == []  # the table is still there
    names = {t.name for t in ml.list_vocabulary_terms("Workflow_Type")}
    assert names == SEEDED["Workflow_Type"] | {nasty}


def test_insert_with_unknown_column_names_it(ml, state):
    before = state(ml)
    with pytest.raises(DerivaMLValidationError, match="Colour"):
        ml.catalog.insert("deriva-ml", "Workflow", [{"Name": "w", "Colour": "red"}])
    with pytest.raises(DerivaMLValidationError, match="Shape"):
        ml.catalog.select("deriva-ml", "Workflow", {"Shape": "round"})
    assert state(ml) == before


def test_save_execution_rid_file(ml, workflow, tmp_path, monkeypatch):
    target = tmp_path / "rid.json"
    monkeypatch.setenv("DERIVA_ML_SAVE_EXECUTION_RID", str(target))
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="saved"))
    saved = json.loads(target.read_text())
    assert saved == {
        "hostname": ml.host_name,
        "catalog_id": ml.catalog_id,
        "workflow_rid": exe.workflow_rid,
        "execution_rid": exe.execution_rid,
    }
    assert ml.lookup_execution(saved["execution_rid"]).description == "saved"
    assert ml.lookup_workflow(saved["workflow_rid"]).name == "train"


def test_catalog_is_a_plain_sqlite_database_with_the_model_tables(ml):
    db = sqlite3.connect(ml.catalog.path / "catalog.sqlite")
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()
    assert {"deriva-ml:Execution", "deriva-ml:Workflow", "deriva-ml:Execution_Asset_Execution"} <= names


# -- 8. vocabularies ---------------------------------------------------------------------------
def test_add_and_lookup_terms_by_name_and_synonym(ml):
    term = ml.add_term("Workflow_Type", "Hyperparameter_Search", "Searches hyperparameters.", synonyms=["HPO", "sweep"])
    assert (term.name, term.synonyms) == ("Hyperparameter_Search", ["HPO", "sweep"])
    for key in ("Hyperparameter_Search", "hyperparameter_search", "HPO", "hpo", "SWEEP"):
        assert ml.lookup_term("Workflow_Type", key).name == "Hyperparameter_Search", key
    row = ml.catalog.select("deriva-ml", "Workflow_Type", {"Name": "Hyperparameter_Search"})[0]
    assert row["Synonyms"] == ["HPO", "sweep"]
    assert row["Description"] == "Searches hyperparameters."
    # an existing term is returned, not duplicated
    assert ml.add_term("Workflow_Type", "Hyperparameter_Search", "other").rid == term.rid
    assert len(ml.catalog.select("deriva-ml", "Workflow_Type", {"Name": "Hyperparameter_Search"})) == 1
    with pytest.raises(DerivaMLException, match="Hyperparameter_Search"):
        ml.add_term("Workflow_Type", "Hyperparameter_Search", "other", exists_ok=False)


def test_seeded_terms_are_case_insensitive(ml):
    assert ml.lookup_term("Workflow_Type", "training").name == "Training"
    assert ml.lookup_term("Asset_Type", "RUNTIME_ENV").name == "Runtime_Env"


def test_unknown_term_suggests_close_matches(ml):
    with pytest.raises(DerivaMLInvalidTerm) as err:
        ml.lookup_term("Workflow_Type", "Trainng")
    message = str(err.value)
    assert "Trainng" in message
    assert "'Training'" in message
    assert err.value.term == "Trainng"
    assert err.value.vocabulary == "Workflow_Type"


def test_create_vocabulary(ml):
    table = ml.create_vocabulary("Tissue", "Kinds of tissue.")
    assert table.name == "Tissue"
    assert ml.is_vocabulary("Tissue")
    assert table.schema.name in ml.domain_schemas
    ml.add_term("Tissue", "Retina", "The retina.", synonyms=["retinal"])
    assert ml.lookup_term("Tissue", "RETINAL").name == "Retina"
    assert [t.name for t in ml.list_vocabulary_terms("Tissue")] == ["Retina"]
    row = ml.catalog.select(table.schema.name, "Tissue")[0]
    assert row["URI"] == f"/id/{row['RID']}"
    assert row["ID"] == f"{table.schema.name}:{row['RID']}"
    with pytest.raises(DerivaMLValidationError, match="bad name"):
        ml.create_vocabulary("bad name")
