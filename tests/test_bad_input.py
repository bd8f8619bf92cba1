"""Bad input: each is a clear error naming the offending value, and nothing is written."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _plugin_helpers import make_project as make_plugin_project
from conftest import make_project as make_test_project
from pytest_deriva import (
    DatasetSpec,
    DerivaML,
    DerivaMLConfigurationError,
    DerivaMLException,
    DerivaMLInvalidTerm,
    DerivaMLManifestError,
    DerivaMLNotFoundError,
    DerivaMLTableTypeError,
    DerivaMLValidationError,
    ExecutionConfiguration,
    Workflow,
)
from pytest_deriva.catalog import connect
from pytest_deriva.collect import check_marker
from pytest_deriva.exceptions import DerivaMLInputError
from pytest_deriva.execution import AssetSpec


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


# -- the table: every bad input through a public entry point, refused, nothing written ----------
@dataclass
class Bench:
    """What a row of the table may use: a catalog with a workflow, an execution with one
    registered file, an existing file, and a folder that must stay absent."""

    ml: DerivaML
    workflow: Workflow
    exe: Any
    project: Path
    existing: Path
    fresh: Path  # a catalog folder no row may create


LONG = "m" * 300  # bytes too: 300 > 255
LONG_UTF8 = "é" * 130  # 130 characters, 260 bytes


def row(description: str, call: Callable[[Bench], object], error: type[Exception], message: str, *marks: Any) -> Any:
    return pytest.param(description, call, error, message, id=description, marks=marks)


BAD_INPUTS = [
    # -- DerivaML(...) ---------------------------------------------------------------------------
    row("catalog=123", lambda b: DerivaML(123), DerivaMLInputError, r"DerivaML\(catalog=123\): .*int.*folder path"),
    row("catalog=bytes", lambda b: DerivaML(b"/tmp/x"), DerivaMLInputError, r"catalog=b'/tmp/x'.*bytes"),
    row("catalog=list", lambda b: DerivaML([str(b.fresh)]), DerivaMLInputError, r"catalog=\[.*list"),
    row(
        "hostname=42",
        lambda b: DerivaML(hostname=42, catalog_id=1),
        DerivaMLInputError,
        r"DerivaML\(hostname=42\).*host name",
    ),
    row(
        "catalog_id=1.5",
        lambda b: DerivaML(hostname="h.example.org", catalog_id=1.5),
        DerivaMLInputError,
        r"catalog_id=1\.5.*float.*catalog id",
    ),
    row(
        "catalog_id=True",
        lambda b: DerivaML(hostname="h.example.org", catalog_id=True),
        DerivaMLInputError,
        r"catalog_id=True",
    ),
    row(
        "working_dir=123",
        lambda b: DerivaML(b.fresh, working_dir=123),
        DerivaMLInputError,
        r"working_dir=123.*a folder",
    ),
    row("cache_dir=[]", lambda b: DerivaML(b.fresh, cache_dir=[]), DerivaMLInputError, r"cache_dir=\[\].*a folder"),
    row(
        "domain_schema=5",
        lambda b: DerivaML(b.fresh, domain_schema=5),
        DerivaMLInputError,
        r"domain_schema=5.*schema name",
    ),
    row(
        "read_only='yes'",
        lambda b: DerivaML(b.fresh, read_only="yes"),
        DerivaMLInputError,
        r"read_only='yes'.*True or False",
    ),
    row(
        "read_only of a missing catalog",
        lambda b: DerivaML(b.fresh, read_only=True),
        DerivaMLConfigurationError,
        r"no catalog\.sqlite in it.*a read-only catalog is never created",
    ),
    row("connect(123)", lambda b: connect(123), DerivaMLInputError, r"Catalog 123 \(int\) is not a catalog location"),
    row(
        "read_only on a server",
        lambda b: connect("https://h.example.org/ermrest/catalog/1", read_only=True),
        DerivaMLConfigurationError,
        r"read_only=True is for embedded catalogs",
    ),
    # -- workflow types ----------------------------------------------------------------------------
    row(
        "create_workflow(workflow_type=42)",
        lambda b: b.ml.create_workflow("w", 42, source_path=b.project / "train.py"),
        DerivaMLInputError,
        r"workflow_type=42 \(int\) is not a workflow type; give a Workflow_Type term such as 'Training'",
    ),
    row(
        "create_workflow(workflow_type=[])",
        lambda b: b.ml.create_workflow("w", [], source_path=b.project / "train.py"),
        DerivaMLInputError,
        r"workflow_type is an empty list",
    ),
    row(
        "create_workflow(workflow_type=['Training', 3])",
        lambda b: b.ml.create_workflow("w", ["Training", 3], source_path=b.project / "train.py"),
        DerivaMLInputError,
        r"workflow_type holds 3 \(int\), not a name",
    ),
    row(
        "create_workflow(workflow_type=None)",
        lambda b: b.ml.create_workflow("w", None, source_path=b.project / "train.py"),
        DerivaMLInputError,
        r"workflow_type=None \(NoneType\)",
    ),
    row(
        "Workflow(workflow_type=42)",
        lambda b: Workflow(name="w", workflow_type=42, source_path=b.project / "train.py"),
        DerivaMLInputError,
        r"workflow_type=42 \(int\) is not a workflow type",
    ),
    row(
        "Workflow(name=42)",
        lambda b: Workflow(name=42, workflow_type="Training", source_path=b.project / "train.py"),
        DerivaMLInputError,
        r"^Workflow: name = 42: input should be a valid string\.$",
    ),
    row(
        "workflow.workflow_type = 42 (bound)",
        lambda b: setattr(b.ml.lookup_workflow(b.ml.add_workflow(b.workflow)), "workflow_type", 42),
        DerivaMLInputError,
        r"workflow_type=42 \(int\)",
    ),
    # -- configurations and specs ----------------------------------------------------------------
    row(
        "datasets='1-ABCD'",
        lambda b: ExecutionConfiguration(datasets="1-ABCD"),
        DerivaMLInputError,
        r"datasets='1-ABCD' \(str\) is not a list; give a list, for example datasets=\['1-ABCD'\]",
    ),
    row(
        "assets='1-ABCD'",
        lambda b: ExecutionConfiguration(assets="1-ABCD"),
        DerivaMLInputError,
        r"assets='1-ABCD' \(str\) is not a list",
    ),
    row(
        "datasets={'rid': ...}",
        lambda b: ExecutionConfiguration(datasets={"rid": "1-ABCD"}),
        DerivaMLInputError,
        r"datasets=\{'rid': '1-ABCD'\} \(dict\) is not a list",
    ),
    row("datasets=42", lambda b: ExecutionConfiguration(datasets=42), DerivaMLInputError, r"datasets=42 \(int\)"),
    row(
        "datasets=['1-abcd']",
        lambda b: ExecutionConfiguration(datasets=["1-abcd"]),
        DerivaMLInputError,
        r"rid = '1-abcd': is not a RID; RIDs look like '1-ABCD'",
    ),
    row(
        "ExecutionConfiguration(description=42)",
        lambda b: ExecutionConfiguration(description=42),
        DerivaMLInputError,
        r"^ExecutionConfiguration: description = 42: input should be a valid string\.$",
    ),
    row("DatasetSpec(rid=42)", lambda b: DatasetSpec(rid=42), DerivaMLInputError, r"^DatasetSpec: rid = 42: "),
    row(
        "DatasetSpec(rid='zz')",
        lambda b: DatasetSpec(rid="zz"),
        DerivaMLInputError,
        r"^DatasetSpec: rid = 'zz': is not a RID",
    ),
    row("DatasetSpec()", lambda b: DatasetSpec(), DerivaMLInputError, r"^DatasetSpec: rid: is required\.$"),
    row(
        "DatasetSpec(materialize='maybe')",
        lambda b: DatasetSpec(rid="1-ABCD", materialize="maybe"),
        DerivaMLInputError,
        r"materialize = 'maybe': input should be a valid boolean",
    ),
    row("AssetSpec(rid='x y')", lambda b: AssetSpec(rid="x y"), DerivaMLInputError, r"^AssetSpec: rid = 'x y': "),
    # -- asset_file_path ---------------------------------------------------------------------------
    row(
        "asset_file_path(None, ...)",
        lambda b: b.exe.asset_file_path(None, "model.pt"),
        DerivaMLInputError,
        r"asset_name None \(NoneType\) is not a table name",
    ),
    row(
        "asset_file_path(table, None)",
        lambda b: b.exe.asset_file_path("Execution_Asset", None),
        DerivaMLInputError,
        r"file_name None \(NoneType\) is not a file name",
    ),
    row(
        "asset_file_path(table, 42)",
        lambda b: b.exe.asset_file_path("Execution_Asset", 42),
        DerivaMLInputError,
        r"file_name 42 \(int\)",
    ),
    row(
        "asset_file_path(table, '')",
        lambda b: b.exe.asset_file_path("Execution_Asset", ""),
        DerivaMLValidationError,
        r"file_name is empty \(''\)",
    ),
    row(
        "asset_file_path(table, 300 characters)",
        lambda b: b.exe.asset_file_path("Execution_Asset", LONG),
        DerivaMLValidationError,
        r"file_name 'mmm.*' \(300 characters\) is 300 bytes long; a file name can have at most 255",
    ),
    row(
        "asset_file_path(table, 260 bytes of UTF-8)",
        lambda b: b.exe.asset_file_path("Execution_Asset", LONG_UTF8),
        DerivaMLValidationError,
        r"is 260 bytes long",
    ),
    row(
        "asset_file_path(table, rename_file=42)",
        lambda b: b.exe.asset_file_path("Execution_Asset", "model.pt", rename_file=42),
        DerivaMLInputError,
        r"rename_file 42 \(int\) is not a file name",
    ),
    row(
        "asset_file_path(existing, rename_file of 300 characters)",
        lambda b: b.exe.asset_file_path("Execution_Asset", b.existing, rename_file=LONG),
        DerivaMLValidationError,
        r"rename_file 'mmm.*' \(300 characters\) is 300 bytes long",
    ),
    # -- the deriva marker's keywords, as the plugin checks them -----------------------------------
    row(
        "marker workflow_type=42",
        lambda b: check_marker((), {"workflow_type": 42}),
        DerivaMLInputError,
        r"@pytest.mark.deriva workflow_type=42 \(int\) is not a workflow type",
    ),
    row(
        "marker datasets='1-ABCD'",
        lambda b: check_marker((), {"datasets": "1-ABCD"}),
        DerivaMLInputError,
        r"@pytest.mark.deriva\(datasets='1-ABCD'\) takes a list.*datasets=\['1-ABCD'\]",
    ),
    row(
        "marker assets=5",
        lambda b: check_marker((), {"assets": 5}),
        DerivaMLInputError,
        r"assets=5\) takes a list, not a value of type int",
    ),
    row(
        "marker dry_run='yes'",
        lambda b: check_marker((), {"dry_run": "yes"}),
        DerivaMLInputError,
        r"dry_run='yes'\) takes True or False",
    ),
    row(
        "marker description=5",
        lambda b: check_marker((), {"description": 5}),
        DerivaMLInputError,
        r"description=5\) takes a str",
    ),
    row(
        "marker config=['x']",
        lambda b: check_marker((), {"config": ["x"]}),
        DerivaMLInputError,
        r"config=\['x'\]\) takes the name of a config",
    ),
    row(
        "marker positional argument",
        lambda b: check_marker(("Training",), {}),
        DerivaMLInputError,
        r"takes keywords only, not \('Training',\)",
    ),
    row(
        "marker misspelt keyword",
        lambda b: check_marker((), {"descrption": "x"}),
        DerivaMLInputError,
        r"unknown @pytest.mark.deriva keyword 'descrption'; the keywords are assets, config, ",
    ),
]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.parts)


@pytest.fixture(scope="module")
def shared_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """One catalog for the whole table (each row checks that it wrote nothing, so rows cannot
    disturb each other), made once: a catalog per row would make the table slow."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for who in ("AUTHOR", "COMMITTER"):
            mp.setenv(f"GIT_{who}_NAME", "Test")
            mp.setenv(f"GIT_{who}_EMAIL", "test@example.org")
        root = tmp_path_factory.mktemp("bad-input-table")
        project = make_test_project(root / "proj")
        ml = DerivaML(project / ".deriva")
        workflow = ml.create_workflow("train", "Training", source_path=project / "train.py")
        exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="bench"))
        exe.asset_file_path("Execution_Asset", "good.bin").write_bytes(b"good")
        existing = root / "weights.bin"
        existing.write_bytes(b"w")
        yield Bench(ml, workflow, exe, project, existing, root / "fresh")
        ml.catalog.close()


@pytest.fixture
def bench(shared_bench: Bench, monkeypatch: pytest.MonkeyPatch) -> Bench:
    cwd = shared_bench.project.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)  # a default catalog would be made here: none may be
    monkeypatch.delenv("DERIVA_CATALOG", raising=False)
    return shared_bench


@pytest.mark.parametrize(("description", "call", "error", "message"), BAD_INPUTS)
def test_bad_input_is_refused_clearly_and_writes_nothing(bench, state, description, call, error, message):
    root = bench.project.parent
    before = state(bench.ml)
    files = files_under(root)
    with pytest.raises(error) as err:
        call(bench)
    text = str(err.value)
    assert re.search(message, text), f"{description}: {text}"
    assert "\n" not in text, text  # one line, not a pydantic page
    assert len(text) < 400, text
    assert err.value.__cause__ is None or not type(err.value.__cause__).__module__.startswith("pydantic")
    assert state(bench.ml) == before, description  # no row, object or snapshot
    assert files_under(root) == files, description  # no folder, catalog or file made
    assert not bench.fresh.exists()


def test_the_table_has_the_inputs_issue_9_names():
    names = {p.id for p in BAD_INPUTS}
    for named in (
        "catalog=123",
        "create_workflow(workflow_type=42)",
        "Workflow(workflow_type=42)",
        "marker workflow_type=42",
        "asset_file_path(None, ...)",
        "asset_file_path(table, '')",
        "asset_file_path(table, 300 characters)",
        "datasets='1-ABCD'",
    ):
        assert named in names


# -- the marker's keywords through pytest: a collection error naming the value, never a traceback --
@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("workflow_type=42", "*experiment_x: @pytest.mark.deriva workflow_type=42 (int) is not a workflow type*"),
        ("datasets='1-ABCD'", "*experiment_x: @pytest.mark.deriva(datasets='1-ABCD') takes a list*"),
        ("dry_run='no'", "*experiment_x: @pytest.mark.deriva(dry_run='no') takes True or False*"),
    ],
)
def test_bad_marker_value_is_a_collection_error(pytester, marker, message):
    source = f"import pytest\n\n\n@pytest.mark.deriva({marker})\ndef experiment_x(execution):\n    pass\n"
    root = make_plugin_project(pytester, {"experiment_bad.py": source})
    result = pytester.runpytest("--deriva-run")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, text
    result.stdout.fnmatch_lines(["*ERROR collecting experiment_bad.py*", message])
    assert "INTERNALERROR" not in text
    assert "Traceback" not in text
    if (root / ".deriva").exists():
        ml = DerivaML(root / ".deriva")
        assert ml.find_executions() == []
        ml.catalog.close()
