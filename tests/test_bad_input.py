"""Bad input: each is a clear error naming the offending value, and nothing is written."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pytest_deriva import (
    DerivaML,
    DerivaMLConfigurationError,
    DerivaMLException,
    DerivaMLInvalidTerm,
    DerivaMLManifestError,
    DerivaMLNotFoundError,
    DerivaMLTableTypeError,
    DerivaMLUploadError,
    DerivaMLValidationError,
    ExecutionConfiguration,
)


def config(workflow, description="bad input", **kw):
    return ExecutionConfiguration(workflow=workflow, description=description, **kw)


def manifest_of(exe) -> Path:
    return exe.working_dir / "asset-manifest.jsonl"


def with_one_registration(ml, workflow):
    """An execution with one good file registered, so that its manifest exists."""
    exe = ml.create_execution(config(workflow))
    exe.asset_file_path("Execution_Asset", "good.bin").write_bytes(b"good")
    assert manifest_of(exe).is_file()
    return exe


# -- vocabulary terms --------------------------------------------------------------------------
def test_unknown_vocabulary_term(ml, project, state):
    before = state(ml)
    with pytest.raises(DerivaMLInvalidTerm, match="Nonexistent_Type"):
        ml.lookup_term("Workflow_Type", "Nonexistent_Type")
    with pytest.raises(DerivaMLInvalidTerm, match="Nonexistent_Type"):
        ml.create_workflow("train", "Nonexistent_Type", source_path=project / "train.py")
    with pytest.raises(DerivaMLTableTypeError, match="Workflow"):
        ml.add_term("Workflow", "x", "Workflow is not a vocabulary")
    with pytest.raises(DerivaMLValidationError):
        ml.add_term("Workflow_Type", "   ", "blank")
    assert state(ml) == before


def test_unknown_asset_type(ml, workflow, state):
    exe = with_one_registration(ml, workflow)
    manifest = manifest_of(exe).read_bytes()
    before = state(ml)
    with pytest.raises(DerivaMLInvalidTerm, match="Weights_File"):
        exe.asset_file_path("Execution_Asset", "w.bin", asset_types="Weights_File")
    with pytest.raises(DerivaMLInvalidTerm, match="Weights_File"):
        exe.asset_file_path("Execution_Asset", "w.bin", asset_types=["Model_File", "Weights_File"])
    assert state(ml) == before
    assert manifest_of(exe).read_bytes() == manifest


# -- RIDs --------------------------------------------------------------------------------------
def test_rid_that_does_not_exist(ml, state):
    before = state(ml)
    with pytest.raises(DerivaMLNotFoundError, match="1-ZZZZ"):
        ml.lookup_execution("1-ZZZZ")
    with pytest.raises(DerivaMLNotFoundError, match="1-ZZZZ"):
        ml.resolve_rid("1-ZZZZ")
    with pytest.raises(DerivaMLNotFoundError, match="1-ZZZZ"):
        ml.lookup_workflow("1-ZZZZ")
    assert state(ml) == before


def test_rid_of_the_wrong_table(ml, workflow, state):
    workflow_rid = ml.add_workflow(workflow)
    term_rid = ml.lookup_term("Workflow_Type", "Training").rid
    before = state(ml)
    with pytest.raises(DerivaMLTableTypeError) as err:
        ml.lookup_execution(workflow_rid)
    assert workflow_rid in str(err.value)
    assert "Workflow" in str(err.value)
    with pytest.raises(DerivaMLTableTypeError, match=term_rid):
        ml.lookup_workflow(term_rid)
    with pytest.raises(DerivaMLTableTypeError, match=workflow_rid):
        ml.lookup_asset(workflow_rid)
    assert state(ml) == before


@pytest.mark.parametrize("bad", ["abc", "1-abcd", "1-ABCDE", "", "1-ABCD@", "../1-ABCD"])
def test_malformed_rid(ml, state, bad):
    before = state(ml)
    with pytest.raises(DerivaMLValidationError) as err:
        ml.lookup_execution(bad)
    assert repr(bad) in str(err.value)
    assert state(ml) == before


def test_wrong_or_missing_rids_in_a_configuration_write_nothing(ml, workflow, state):
    workflow_rid = ml.add_workflow(workflow)
    before = state(ml)
    with pytest.raises(DerivaMLTableTypeError, match=workflow_rid):
        ml.create_execution(config(workflow, assets=[workflow_rid]))
    with pytest.raises(DerivaMLNotFoundError, match="1-ZZZZ"):
        ml.create_execution(config(workflow, assets=["1-ZZZZ"]))
    with pytest.raises(DerivaMLValidationError, match="ExecutionConfiguration"):
        ml.create_execution({"description": "a dict is not a configuration"})
    assert state(ml) == before


def test_nesting_with_a_wrong_rid_writes_nothing(ml, workflow, state):
    exe = ml.create_execution(config(workflow))
    before = state(ml)
    with pytest.raises(DerivaMLTableTypeError, match=exe.workflow_rid):
        exe.add_nested_execution(exe.workflow_rid)
    with pytest.raises(DerivaMLNotFoundError, match="1-ZZZZ"):
        exe.add_nested_execution("1-ZZZZ")
    other = ml.create_execution(config(workflow, "other"))
    after_other = state(ml)
    with pytest.raises(DerivaMLValidationError, match="-1"):
        exe.add_nested_execution(other, sequence=-1)
    assert state(ml) == after_other
    assert before["counts"]["deriva-ml:Execution_Execution"] == 0


# -- asset tables and file names ---------------------------------------------------------------
def test_asset_file_path_on_a_table_that_is_not_an_asset_table(ml, workflow, state):
    exe = with_one_registration(ml, workflow)
    manifest = manifest_of(exe).read_bytes()
    before = state(ml)
    with pytest.raises(DerivaMLTableTypeError, match="Workflow"):
        exe.asset_file_path("Workflow", "model.pkl")
    with pytest.raises(DerivaMLTableTypeError, match="No_Such_Table"):
        exe.asset_file_path("No_Such_Table", "model.pkl")
    assert state(ml) == before
    assert manifest_of(exe).read_bytes() == manifest


@pytest.mark.parametrize(
    ("file_name", "rename"),
    [
        ("../x", None),
        ("a/../../x", None),
        ("sub/x", None),
        ("a\\b", None),
        ("a\x00b", None),
        ("model.pkl", "../x"),
        ("model.pkl", "/etc/passwd"),
        ("model.pkl", "a/b"),
        ("model.pkl", ".."),
    ],
)
def test_file_names_that_would_leave_the_execution_folder(
    ml, workflow, state, tmp_path, monkeypatch, file_name, rename
):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # so "../x" names tmp_path/x, which does not exist
    exe = with_one_registration(ml, workflow)
    manifest = manifest_of(exe).read_bytes()
    files = sorted(p for p in exe.working_dir.rglob("*"))
    before = state(ml)
    with pytest.raises(DerivaMLValidationError) as err:
        exe.asset_file_path("Execution_Asset", file_name, rename_file=rename)
    assert repr(rename if rename is not None else file_name) in str(err.value)
    assert state(ml) == before
    assert manifest_of(exe).read_bytes() == manifest
    assert sorted(p for p in exe.working_dir.rglob("*")) == files
    assert not (tmp_path / "x").exists()


def test_rename_of_an_existing_file_cannot_escape(ml, workflow, tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"w")
    exe = with_one_registration(ml, workflow)
    manifest = manifest_of(exe).read_bytes()
    for bad in ("../x", "/etc/passwd", "a/b"):
        with pytest.raises(DerivaMLValidationError, match=re.escape(repr(bad))):
            exe.asset_file_path("Execution_Asset", src, rename_file=bad)
    assert manifest_of(exe).read_bytes() == manifest
    assert not (exe.working_dir.parent / "x").exists()


# -- the working directory and the catalog location --------------------------------------------
def test_unusable_working_directory(ml, project, tmp_path, state):
    before = state(ml)
    with pytest.raises(DerivaMLConfigurationError, match="/proc/nope"):
        DerivaML(project / ".deriva", working_dir="/proc/nope")
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    with pytest.raises(DerivaMLConfigurationError, match="not-a-dir"):
        DerivaML(project / ".deriva", working_dir=a_file)
    with pytest.raises(DerivaMLConfigurationError, match="/proc/nope"):
        DerivaML(project / ".deriva", cache_dir="/proc/nope/cache")
    assert a_file.read_text() == "x"
    assert state(ml) == before


def test_bad_working_dir_creates_no_catalog(tmp_path):
    new_catalog = tmp_path / "fresh"
    with pytest.raises(DerivaMLConfigurationError, match="/proc/nope"):
        DerivaML(new_catalog, working_dir="/proc/nope")
    assert not new_catalog.exists()


def test_catalog_path_that_is_a_file(tmp_path):
    path = tmp_path / "catalog"
    path.write_bytes(b"I am a file")
    with pytest.raises(DerivaMLConfigurationError, match=re.escape(str(path))):
        DerivaML(path)
    assert path.read_bytes() == b"I am a file"


def test_catalog_folder_with_unrelated_files(tmp_path):
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(DerivaMLConfigurationError, match=re.escape(str(folder))):
        DerivaML(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_bad_server_locations_are_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DerivaMLConfigurationError, match=re.escape("Cannot reach the DERIVA server 127.0.0.1:9")):
        DerivaML(hostname="127.0.0.1:9", catalog_id=1)
    with pytest.raises(DerivaMLConfigurationError, match="https://<host>/ermrest/catalog/<id>"):
        DerivaML("https://127.0.0.1:9/ermrest/catalogue/1")
    with pytest.raises(DerivaMLConfigurationError, match=re.escape("s3://bucket")):
        DerivaML("s3://bucket/catalog")
    with pytest.raises(DerivaMLConfigurationError, match="empty"):
        DerivaML("")
    assert list(tmp_path.iterdir()) == []  # nothing made in the current directory


# -- the manifest ------------------------------------------------------------------------------
def test_corrupt_manifest_is_reported_and_left_alone(ml, workflow):
    exe = ml.create_execution(config(workflow))
    exe.execution_start()
    for name in ("a.bin", "b.bin", "c.bin", "d.bin"):
        exe.asset_file_path("Execution_Asset", name).write_bytes(name.encode())
    path = manifest_of(exe)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 4
    middle = len(lines) // 2
    corrupt = b"".join([*lines[:middle], b'{"op": "add", "key": garbage\n', *lines[middle:]])
    path.write_bytes(corrupt)
    rid = exe.execution_rid
    del exe

    with pytest.raises(DerivaMLManifestError) as err:
        ml.restore_execution(rid)
    assert str(path) in str(err.value)
    assert f"line {middle + 1}" in str(err.value)
    assert path.read_bytes() == corrupt
    assert ml.catalog.select("deriva-ml", "Execution_Asset") == []


def test_corrupt_manifest_blocks_upload_without_touching_the_file(ml, workflow):
    exe = ml.create_execution(config(workflow))
    exe.execution_start()
    exe.asset_file_path("Execution_Asset", "a.bin").write_bytes(b"a")
    exe.asset_file_path("Execution_Asset", "b.bin").write_bytes(b"b")
    path = manifest_of(exe)
    lines = path.read_bytes().splitlines(keepends=True)
    corrupt = b"".join([lines[0], b"\x00\xff not json\n", *lines[1:]])
    path.write_bytes(corrupt)
    rid = exe.execution_rid
    del exe
    with pytest.raises(DerivaMLManifestError, match=re.escape("asset-manifest.jsonl")):
        ml.restore_execution(rid).upload_execution_outputs()
    assert path.read_bytes() == corrupt
    assert ml.catalog.select("deriva-ml", "Execution_Asset") == []


def test_torn_last_manifest_line_is_ignored(ml, workflow):
    exe = ml.create_execution(config(workflow))
    exe.execution_start()
    exe.asset_file_path("Execution_Asset", "kept.bin").write_bytes(b"kept")
    path = manifest_of(exe)
    with path.open("ab") as f:
        f.write(b'{"op": "add", "key": "Execution_Asset/torn.b')  # a crash mid-write
    rid = exe.execution_rid
    del exe
    ml.restore_execution(rid).upload_execution_outputs()
    assert [a.filename for a in ml.list_assets("Execution_Asset")] == ["kept.bin"]


# -- a registered file that was never written ------------------------------------------------
def test_file_never_written_is_reported_and_skipped_and_the_run_aborted(ml, workflow, caplog):
    # The common "model path registered up front" case, with the run stopped before writing it.
    with ml.create_execution(config(workflow, "half")) as exe:
        exe.asset_file_path("Execution_Asset", "written.bin").write_bytes(b"here")
        exe.asset_file_path("Execution_Asset", "never written.bin")
    rid = exe.execution_rid

    exe.upload_execution_outputs()  # never blocked by the missing file
    assert [a.filename for a in ml.list_assets("Execution_Asset")] == ["written.bin"]
    row = ml.catalog.select("deriva-ml", "Execution", {"RID": rid})[0]
    assert row["Status"] == "Aborted"
    assert "Registered but never written: Execution_Asset/never written.bin" in row["Status_Detail"]
    assert "never written.bin" in caplog.text
    assert exe._get_manifest().pending_assets() == {}  # dropped: a later upload does not trip on it
    exe.upload_execution_outputs()
    links = ml.catalog.select("deriva-ml", "Execution_Asset_Execution", {"Execution": rid})
    assert len(links) == 1  # written.bin was not uploaded twice


def test_a_registration_can_be_taken_back(ml, workflow):
    with ml.create_execution(config(workflow)) as exe:
        exe.asset_file_path("Execution_Asset", "model.pt")
        exe.asset_file_path("Execution_Asset", "kept.txt").write_text("k")
        exe.unregister_asset_file("Execution_Asset", "model.pt")
        with pytest.raises(DerivaMLException, match="not registered for upload"):
            exe.unregister_asset_file("Execution_Asset", "other.pt")
    exe.upload_execution_outputs()
    assert [a.filename for a in ml.list_assets("Execution_Asset")] == ["kept.txt"]
    assert ml.lookup_execution(exe.execution_rid).status.value == "Completed"


def test_source_removed_before_upload_is_reported_and_skipped(ml, workflow, tmp_path):
    src = tmp_path / "external.bin"
    src.write_bytes(b"external")
    with ml.create_execution(config(workflow)) as exe:
        exe.asset_file_path("Execution_Asset", src)  # symlinked
        exe.asset_file_path("Execution_Asset", "other.bin").write_bytes(b"other")
    src.unlink()
    exe.upload_execution_outputs()
    assert [a.filename for a in ml.list_assets("Execution_Asset")] == ["other.bin"]
    detail = ml.lookup_execution(exe.execution_rid).status_detail
    assert "external.bin" in detail


def test_errors_are_derivaml_exceptions(ml):
    with pytest.raises(DerivaMLException):
        ml.lookup_execution("abc")
