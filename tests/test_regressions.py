"""Tests for defects found in review: each fails on the code before its fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_deriva import (
    DatasetSpec,
    DerivaML,
    DerivaMLDataError,
    DerivaMLSchemaError,
    DerivaMLValidationError,
    ExecutionConfiguration,
)
from pytest_deriva._rid import is_rid
from pytest_deriva.catalog.schema import column, plain_table
from pytest_deriva.execution.environment import redact_argv


def config(workflow, description="run"):
    return ExecutionConfiguration(workflow=workflow, description=description)


def test_refused_commit_leaves_no_open_transaction(ml, workflow):
    ml.create_table("Subject", [column("Name", "text")])
    table = plain_table(
        "Sample", [column("Subject", "text")], fkeys=[(["Subject"], ml.default_schema, "Subject", ["RID"])]
    )
    ml.catalog.create_table(ml.default_schema, table)
    # Two rows: a multi-row insert is one transaction, whose foreign keys are checked at COMMIT.
    with pytest.raises(DerivaMLDataError, match="refused"):
        ml.catalog.insert(ml.default_schema, "Sample", [{"Subject": "1-NOPE"}, {"Subject": "1-NOPE"}])
    # The handle is still usable and what it writes now is really written.
    rid = ml.create_execution(config(workflow)).execution_rid
    other = DerivaML(ml.catalog.uri)
    assert other.lookup_execution(rid).execution_rid == rid
    assert ml.catalog.select(ml.default_schema, "Sample") == []


def test_torn_manifest_line_is_cut_before_the_next_write(project, ml, workflow):
    exe = ml.create_execution(config(workflow))
    with exe:
        exe.asset_file_path("Execution_Asset", "a.txt").write_text("a")
    manifest = exe.working_dir / "asset-manifest.jsonl"
    with manifest.open("a") as f:
        f.write('{"op": "add", "key": "Execution_Asset/b.t')  # a crash in the middle of a write
    restored = DerivaML(project / ".deriva").restore_execution(exe.execution_rid)
    restored.upload_execution_outputs(clean_folder=False)
    # The next restore reads the manifest, including the upload marks written after the torn line.
    again = DerivaML(project / ".deriva").restore_execution(exe.execution_rid)
    assert again._get_manifest().pending_assets() == {}


def test_dirty_run_is_recorded_under_its_own_checksum(project, ml, git):
    clean = ml.create_workflow("train", "Training", source_path=project / "train.py")
    clean_rid = ml.add_workflow(clean)
    (project / "train.py").write_text("print('changed')\n")
    dirty = ml.create_workflow("train", "Training", source_path=project / "train.py", allow_dirty=True)
    assert dirty.url == clean.url
    assert dirty.checksum != clean.checksum
    exe = ml.create_execution(config(dirty))
    assert exe.workflow_rid != clean_rid
    assert ml.lookup_workflow(exe.workflow_rid).checksum == dirty.checksum


def test_registering_another_file_under_a_used_name_is_refused(ml, workflow, tmp_path):
    exe = ml.create_execution(config(workflow))
    exe.asset_file_path("Execution_Asset", "model.pkl").write_bytes(b"written output")
    other = tmp_path / "elsewhere" / "model.pkl"
    other.parent.mkdir()
    other.write_bytes(b"another file")
    with pytest.raises(DerivaMLValidationError, match="rename_file"):
        exe.asset_file_path("Execution_Asset", other)
    assert (exe.working_dir / "assets" / "Execution_Asset" / "model.pkl").read_bytes() == b"written output"
    exe.asset_file_path("Execution_Asset", other, rename_file="model-2.pkl")


def test_dry_run_in_a_fresh_project_creates_no_catalog(tmp_path):
    project = tmp_path / "fresh"
    project.mkdir()
    (project / "experiment_x.py").write_text("def experiment_x(execution):\n    pass\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--deriva-run", "--deriva-dry-run", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(p.name for p in project.iterdir()) == [".git", "experiment_x.py"]


def test_on_delete_is_one_of_the_sql_actions(ml):
    table = plain_table("Thing", [column("Other", "text")], fkeys=[(["Other"], "deriva-ml", "Workflow", ["RID"])])
    table["foreign_keys"][-1]["on_delete"] = 'CASCADE CHECK ("Other" > 100)'
    with pytest.raises(DerivaMLSchemaError, match="on_delete"):
        ml.catalog.create_table(ml.default_schema, table)
    assert not ml.model.has_table("Thing")


@pytest.mark.parametrize("value", ["1-ABCD\n", "Image\n"])
def test_names_with_a_trailing_newline_are_refused(ml, value):
    assert not is_rid(value)
    with pytest.raises(DerivaMLValidationError):
        ml.create_vocabulary(value)


def test_rid_with_letters_outside_the_alphabet_is_a_clear_error(ml):
    with pytest.raises(DerivaMLValidationError, match="LOUI"):
        ml.catalog.select("deriva-ml", "Execution", snapshot="LOUI")


def test_secret_looking_arguments_are_redacted():
    argv = ["run.py", "db.pass=xyz", "--key", "k1", "--api_key=abc", "https://user:tok@example.org/x", "lr=0.1"]
    redacted = redact_argv(argv)
    for secret in ("xyz", "k1", "abc", "tok"):
        assert all(secret not in a for a in redacted), redacted
    assert "lr=0.1" in redacted


def test_bags_of_two_catalogs_sharing_a_cache_are_not_mixed(tmp_path, workflow):
    shared = tmp_path / "cache"
    bags = []
    for name, members in (("alpha", 1), ("beta", 2)):
        ml = DerivaML(tmp_path / name, cache_dir=shared)
        ml.create_table("Subject", [column("Name", "text")])
        ml.add_dataset_element_type("Subject")
        rows = ml.insert_records("Subject", [{"Name": f"{name}{i}"} for i in range(members)])
        ds = ml.create_dataset("Complete", description=name)
        ml.add_dataset_members(ds.rid, {"Subject": [r["RID"] for r in rows]})
        bag = ml.download_dataset_bag(DatasetSpec(rid=ds.rid, version=str(ml.lookup_dataset(ds.rid).version)))
        bags.append((name, bag))
    for name, bag in bags:
        names = {r["Name"] for r in bag.get_table_as_dict("Subject")}
        assert names, name
        assert all(n.startswith(name) for n in names), (name, names)


def test_feature_on_a_deriva_ml_table_uploads(ml, workflow):
    ml.create_vocabulary("Quality", "How good a dataset is.")
    ml.add_term("Quality", "Good", "Good enough.")
    feature = ml.create_feature("Dataset", "Dataset_Quality", terms=["Quality"])
    ds = ml.create_dataset("Complete", description="rated")
    exe = ml.create_execution(config(workflow))
    record = feature.feature_record_class()
    with exe:
        exe.add_features([record(Dataset=ds.rid, Quality="Good")])
    exe.upload_execution_outputs()
    values = ml.list_feature_values("Dataset", "Dataset_Quality")
    assert [(v.Dataset, v.Quality) for v in values] == [(ds.rid, "Good")]


def test_restored_crashed_run_is_not_completed(project, ml, workflow):
    exe = ml.create_execution(config(workflow))
    exe.execution_start()
    exe.asset_file_path("Execution_Asset", "partial.bin").write_bytes(b"x")
    restored = DerivaML(project / ".deriva").restore_execution(exe.execution_rid)
    restored.upload_execution_outputs()
    record = ml.lookup_execution(exe.execution_rid)
    assert record.status.value == "Aborted"
    assert [a.filename for a in record.list_assets("Output") if a.asset_table == "Execution_Asset"] == ["partial.bin"]


def test_file_names_that_leave_their_folder_are_refused(ml, workflow):
    from pytest_deriva.dataset.files import FileSpec

    exe = ml.create_execution(config(workflow))
    bad = FileSpec(url="file:///data/x%2F..%2F..%2Fescape", md5="0" * 32, length=1)
    with pytest.raises(DerivaMLValidationError, match="plain file name"):
        exe.add_files([bad])
    assert ml.catalog.select("deriva-ml", "File") == []
