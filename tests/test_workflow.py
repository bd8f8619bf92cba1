"""Workflows: identified by git (URL at the file's last commit, checksum), deduplicated, bound to the catalog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_deriva import (
    DerivaMLDirtyWorkflowError,
    DerivaMLInvalidTerm,
    DerivaMLWorkflowError,
    ExecutionConfiguration,
    Workflow,
)

REMOTE_URL = "https://example.org/org/proj"  # the origin the project fixture sets, sanitized


def workflow_row(ml, rid):
    found = ml.catalog.select("deriva-ml", "Workflow", {"RID": rid})
    assert len(found) == 1
    return found[0]


def type_names(ml, rid):
    return sorted(
        r["Workflow_Type"] for r in ml.catalog.select("deriva-ml", "Workflow_Workflow_Type", {"Workflow": rid})
    )


def test_url_pins_the_files_last_commit_and_checksum_is_hash_object(ml, project, git):
    file_commit = git(project, "rev-parse", "HEAD")
    (project / "other.py").write_text("x = 1\n")  # a later commit that does not touch train.py
    git(project, "add", "other.py")
    git(project, "commit", "-q", "-m", "other")
    assert git(project, "rev-parse", "HEAD") != file_commit

    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert wf.url == f"{REMOTE_URL}/blob/{file_commit}/train.py"
    assert wf.checksum == git(project, "hash-object", "train.py")

    exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description="x"))
    row = workflow_row(ml, exe.workflow_rid)
    assert (row["Name"], row["URL"], row["Checksum"]) == ("train", wf.url, wf.checksum)
    assert type_names(ml, exe.workflow_rid) == ["Training"]
    assert ml.catalog.select("deriva-ml", "Execution", {"RID": exe.execution_rid})[0]["Workflow"] == exe.workflow_rid


def test_new_commit_of_the_file_is_a_new_workflow(ml, project, git, workflow):
    first_rid = ml.add_workflow(workflow)
    (project / "train.py").write_text((project / "train.py").read_text() + "# tuned\n")
    git(project, "commit", "-q", "-am", "tune")
    second = ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert second.url == f"{REMOTE_URL}/blob/{git(project, 'rev-parse', 'HEAD')}/train.py"
    assert second.checksum == git(project, "hash-object", "train.py")
    assert second.checksum != workflow.checksum
    assert ml.add_workflow(second) != first_rid
    assert len(ml.catalog.select("deriva-ml", "Workflow")) == 2


def test_file_in_a_subfolder_has_its_repo_path_in_the_url(ml, project, git):
    script = project / "src" / "pkg" / "fit model.py"
    script.parent.mkdir(parents=True)
    script.write_text("print('fit')\n")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "fit")
    wf = ml.create_workflow("fit", "Training", source_path=script)
    assert wf.url == f"{REMOTE_URL}/blob/{git(project, 'rev-parse', 'HEAD')}/src/pkg/fit model.py"


def test_add_workflow_deduplicates_and_executions_reuse_it(ml, project, workflow):
    rid = ml.add_workflow(workflow)
    again = ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert ml.add_workflow(again) == rid
    assert ml.add_workflow(workflow) == rid
    e1 = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="one"))
    e2 = ml.create_execution(ExecutionConfiguration(workflow=again, description="two"))
    assert e1.workflow_rid == e2.workflow_rid == rid
    assert [r["RID"] for r in ml.catalog.select("deriva-ml", "Workflow")] == [rid]
    assert type_names(ml, rid) == ["Training"]
    assert sorted(r.description for r in ml.find_executions(workflow=rid)) == ["one", "two"]


def test_dirty_file_is_refused_before_anything_is_written(ml, project, state):
    ml.create_execution(
        ExecutionConfiguration(
            workflow=ml.create_workflow("train", "Training", source_path=project / "train.py"), description="clean"
        )
    )
    (project / "train.py").write_text((project / "train.py").read_text() + "print('changed line')\n")
    before = state(ml)
    with pytest.raises(DerivaMLDirtyWorkflowError) as err:
        ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert str((project / "train.py").resolve()) in str(err.value)
    assert err.value.path == str((project / "train.py").resolve())
    with pytest.raises(DerivaMLDirtyWorkflowError, match=re.escape("train.py")):
        Workflow(name="train", workflow_type="Training", source_path=project / "train.py")
    assert state(ml) == before


def test_allow_dirty_records_the_diff_with_the_execution(ml, project, tmp_path):
    (project / "train.py").write_text((project / "train.py").read_text() + "print('changed line')\n")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py", allow_dirty=True)
    assert wf.is_dirty
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="dirty")) as exe:
        pass
    exe.upload_execution_outputs()

    diffs = [
        a
        for a in ml.lookup_execution(exe.execution_rid).list_assets("Output")
        if a.asset_table == "Execution_Metadata" and a.filename.startswith("workflow-diff-")
    ]
    assert len(diffs) == 1
    ml.catalog.objects.get(diffs[0].url, tmp_path / "diff.patch")
    text = (tmp_path / "diff.patch").read_text()
    assert "+print('changed line')" in text
    assert "train.py" in text


def test_allow_dirty_from_the_environment(ml, project, monkeypatch):
    (project / "train.py").write_text((project / "train.py").read_text() + "# wip\n")
    monkeypatch.setenv("DERIVA_ML_ALLOW_DIRTY", "true")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert wf.is_dirty
    assert wf.version is not None
    assert wf.version.endswith("-dirty")


def test_changes_to_other_files_do_not_make_the_workflow_dirty(ml, project):
    (project / "README.md").write_text("# edited, not committed\n")
    (project / "scratch.py").write_text("untracked = True\n")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert not wf.is_dirty
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="clean")) as exe:
        pass
    exe.upload_execution_outputs()
    names = [a.filename for a in ml.lookup_execution(exe.execution_rid).list_assets()]
    assert "configuration.json" in names
    assert not [n for n in names if n.startswith("workflow-diff-")]


def test_remote_credentials_never_reach_the_catalog(ml, project, git, tmp_path):
    git(project, "remote", "set-url", "origin", "https://alice:s3cr3t-t0ken@example.org/org/proj.git")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    assert wf.url.startswith(f"{REMOTE_URL}/blob/")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="creds")) as exe:
        pass
    exe.upload_execution_outputs()

    row = workflow_row(ml, exe.workflow_rid)
    assert "s3cr3t" not in row["URL"]
    assert "alice" not in row["URL"]
    # nowhere in the catalog: neither in rows nor in stored files
    for t in ml.model.tables():
        for r in ml.catalog.select(t.schema.name, t.name):
            assert "s3cr3t" not in repr(r), (t.name, r)
    for obj in (Path(ml.catalog.path) / "objects").rglob("*"):
        if obj.is_file():
            assert b"s3cr3t" not in obj.read_bytes(), obj


def test_bound_description_writes_to_the_catalog(ml, workflow):
    rid = ml.add_workflow(workflow)
    wf = ml.lookup_workflow(rid)
    assert wf.rid == rid
    assert wf.url == workflow.url
    wf.description = "x"
    assert workflow_row(ml, rid)["Description"] == "x"
    assert ml.lookup_workflow(rid).description == "x"


def test_bound_workflow_type_replaces_the_types(ml, workflow):
    rid = ml.add_workflow(workflow)
    wf = ml.lookup_workflow(rid)
    assert wf.workflow_type == ["Training"]
    wf.workflow_type = ["Testing"]
    assert type_names(ml, rid) == ["Testing"]
    assert ml.lookup_workflow(rid).workflow_type == ["Testing"]


def test_bound_workflow_type_rejects_unknown_terms(ml, workflow):
    rid = ml.add_workflow(workflow)
    wf = ml.lookup_workflow(rid)
    with pytest.raises(DerivaMLInvalidTerm, match="Trainng"):
        wf.workflow_type = ["Trainng"]
    assert type_names(ml, rid) == ["Training"]


def test_add_and_remove_workflow_type(ml, workflow):
    rid = ml.add_workflow(workflow)
    wf = ml.lookup_workflow(rid)
    wf.add_workflow_type("analysis")  # looked up case-insensitively, stored by name
    assert type_names(ml, rid) == ["Analysis", "Training"]
    wf.add_workflow_type("Analysis")  # already there: no duplicate link
    assert type_names(ml, rid) == ["Analysis", "Training"]
    wf.remove_workflow_type("Training")
    assert type_names(ml, rid) == ["Analysis"]
    assert wf.workflow_types == ["Analysis"]
    with pytest.raises(DerivaMLInvalidTerm, match="Nonsense"):
        wf.add_workflow_type("Nonsense")


def test_file_outside_a_git_repository(ml, tmp_path, state):
    script = tmp_path / "loose" / "script.py"
    script.parent.mkdir()
    script.write_text("print(1)\n")
    before = state(ml)
    with pytest.raises(DerivaMLWorkflowError) as err:
        ml.create_workflow("loose", "Training", source_path=script)
    assert str(script.resolve()) in str(err.value)
    with pytest.raises(DerivaMLWorkflowError, match=re.escape("missing.py")):
        ml.create_workflow("gone", "Training", source_path=tmp_path / "missing.py")
    assert state(ml) == before


def test_workflow_url_and_checksum_from_the_environment(ml, monkeypatch, tmp_path):
    monkeypatch.setenv("DERIVA_ML_WORKFLOW_URL", "https://example.org/nb/blob/abc/analysis.ipynb")
    monkeypatch.setenv("DERIVA_ML_WORKFLOW_CHECKSUM", "deadbeef")
    wf = ml.create_workflow("nb", "Analysis", source_path=tmp_path / "not-even-there.ipynb")
    rid = ml.add_workflow(wf)
    row = workflow_row(ml, rid)
    assert (row["URL"], row["Checksum"]) == ("https://example.org/nb/blob/abc/analysis.ipynb", "deadbeef")
