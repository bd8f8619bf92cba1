"""The execution lifecycle through the public API, against the embedded catalog in a real git project."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_deriva import (
    DerivaML,
    DerivaMLModel,
    DerivaMLValidationError,
    Execution,
    ExecutionConfiguration,
    Status,
    UploadProgress,
)
from pytest_deriva.catalog.schema import column

DURATION_RE = r"^\d+\.0H \d+\.0min \d+(\.\d+)?sec$"


def config(workflow, description="d"):
    return ExecutionConfiguration(workflow=workflow, description=description)


def execution_row(ml: DerivaML, rid: str) -> dict:
    found = ml.catalog.select("deriva-ml", "Execution", {"RID": rid})
    assert len(found) == 1, f"no Execution row {rid}"
    return found[0]


def output_links(ml: DerivaML, table: str, execution_rid: str, schema: str = "deriva-ml") -> dict[str, str]:
    """asset RID -> Asset_Role of the links of one execution in <table>_Execution."""
    links = ml.catalog.select(schema, f"{table}_Execution", {"Execution": execution_rid})
    return {r[table]: r["Asset_Role"] for r in links}


def asset_types(ml: DerivaML, table: str, asset_rid: str, schema: str = "deriva-ml") -> list[str]:
    return sorted(r["Asset_Type"] for r in ml.catalog.select(schema, f"{table}_Asset_Type", {table: asset_rid}))


# -- 1. a successful execution ---------------------------------------------------------------
def test_successful_execution_uploads_output_with_checksum_and_links(ml, workflow, tmp_path):
    data = bytes(range(256)) * 41 + b"tail"
    with ml.create_execution(config(workflow, "d")) as exe:
        assert isinstance(exe, Execution)
        assert execution_row(ml, exe.execution_rid)["Status"] == "Running"
        path = exe.asset_file_path("Execution_Asset", "model.pkl")
        path.write_bytes(data)
    rid = exe.execution_rid
    assert execution_row(ml, rid)["Status"] == "Completed"  # execution_stop on leaving the block

    uploaded = exe.upload_execution_outputs()

    row = execution_row(ml, rid)
    assert row["Status"] == "Completed"
    assert row["Description"] == "d"
    assert row["Workflow"] == exe.workflow_rid
    assert re.match(DURATION_RE, row["Duration"]), row["Duration"]

    assets = ml.list_assets("Execution_Asset")
    assert len(assets) == 1
    asset = assets[0]
    assert asset.filename == "model.pkl"
    assert asset.md5 == hashlib.md5(data).hexdigest()
    assert asset.length == len(data)
    assert asset.asset_types == ["Execution_Asset"]
    assert [p.asset_rid for p in uploaded["deriva-ml/Execution_Asset"]] == [asset.rid]

    assert output_links(ml, "Execution_Asset", rid) == {asset.rid: "Output"}
    assert asset_types(ml, "Execution_Asset", asset.rid) == ["Execution_Asset"]
    assert [
        a.rid for a in ml.lookup_execution(rid).list_assets(asset_role="Output") if a.asset_table == "Execution_Asset"
    ] == [asset.rid]

    # Read it back in another execution: byte-identical, and recorded as that execution's input.
    reader = ml.create_execution(config(workflow, "reader"))
    got = reader.download_asset(asset.rid, tmp_path / "dl")
    assert Path(got).read_bytes() == data
    assert output_links(ml, "Execution_Asset", reader.execution_rid) == {asset.rid: "Input"}
    # and straight from the object store
    ml.catalog.objects.get(asset.url, tmp_path / "direct.pkl")
    assert (tmp_path / "direct.pkl").read_bytes() == data


def test_successful_execution_records_configuration_and_environment(ml, workflow, tmp_path):
    with ml.create_execution(config(workflow, "describe me")) as exe:
        pass
    exe.upload_execution_outputs()
    rid = exe.execution_rid

    meta = {a.filename: a for a in ml.lookup_execution(rid).list_assets() if a.asset_table == "Execution_Metadata"}
    assert "configuration.json" in meta, meta.keys()
    envs = [n for n in meta if n.startswith("environment_snapshot_")]
    assert len(envs) == 1
    assert re.fullmatch(r"environment_snapshot_\d{8}_\d{6}\.txt", envs[0])

    assert meta["configuration.json"].asset_types == ["Deriva_Config"]
    assert meta[envs[0]].asset_types == ["Runtime_Env"]
    links = output_links(ml, "Execution_Metadata", rid)
    assert links[meta["configuration.json"].rid] == "Output"
    assert links[meta[envs[0]].rid] == "Output"

    ml.catalog.objects.get(meta["configuration.json"].url, tmp_path / "configuration.json")
    cfg = json.loads((tmp_path / "configuration.json").read_text())
    assert cfg["description"] == "describe me"
    assert cfg["workflow"]["url"] == workflow.url
    assert cfg["workflow"]["checksum"] == workflow.checksum
    assert hashlib.md5((tmp_path / "configuration.json").read_bytes()).hexdigest() == meta["configuration.json"].md5

    ml.catalog.objects.get(meta[envs[0]].url, tmp_path / "env.txt")
    env = json.loads((tmp_path / "env.txt").read_text())
    assert env["python"]["executable"] == sys.executable


# -- 2. an exception inside the with block ---------------------------------------------------
def run_model_that_fails(exe: Execution) -> None:
    with exe:
        exe.asset_file_path("Execution_Asset", "partial.ckpt").write_bytes(b"half a model")
        raise ValueError("the model diverged")


def test_exception_in_block_fails_execution_and_uploads_nothing_until_asked(ml, workflow):
    exe = ml.create_execution(config(workflow, "will fail"))
    with pytest.raises(ValueError, match="the model diverged"):
        run_model_that_fails(exe)
    rid = exe.execution_rid
    row = execution_row(ml, rid)
    assert row["Status"] == "Failed"
    assert "ValueError" in row["Status_Detail"]
    assert "the model diverged" in row["Status_Detail"]
    assert re.match(DURATION_RE, row["Duration"] or ""), row["Duration"]
    assert ml.catalog.select("deriva-ml", "Execution_Asset") == []
    assert ml.catalog.select("deriva-ml", "Execution_Asset_Execution") == []

    exe.upload_execution_outputs()

    assets = ml.list_assets("Execution_Asset")
    assert [(a.filename, a.md5) for a in assets] == [("partial.ckpt", hashlib.md5(b"half a model").hexdigest())]
    assert output_links(ml, "Execution_Asset", rid) == {assets[0].rid: "Output"}
    after = execution_row(ml, rid)
    assert after["Status"] == "Failed"
    assert "the model diverged" in after["Status_Detail"]


def test_keyboard_interrupt_in_block_aborts_execution(ml, workflow):
    exe = ml.create_execution(config(workflow))
    with pytest.raises(KeyboardInterrupt), exe:
        raise KeyboardInterrupt
    row = execution_row(ml, exe.execution_rid)
    assert row["Status"] == "Aborted"
    assert "KeyboardInterrupt" in row["Status_Detail"]


# -- 3. dry run ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_dry_run_writes_nothing(ml, workflow, state, monkeypatch, how):
    before = state(ml)
    if how == "environment":
        monkeypatch.setenv("DERIVA_ML_DRY_RUN", "true")
        exe = ml.create_execution(config(workflow, "dry"))
    else:
        exe = ml.create_execution(config(workflow, "dry"), dry_run=True)
    assert exe.execution_rid == "0000"
    assert exe.workflow_rid == "0000"
    assert exe.dry_run
    with exe:
        exe.asset_file_path("Execution_Asset", "model.pkl").write_bytes(b"not recorded")
        exe.update_status(Status.running, "still nothing")
    assert exe.upload_execution_outputs() == {}
    assert state(ml) == before
    assert ml.catalog.select("deriva-ml", "Workflow") == []


# -- 4. nesting ------------------------------------------------------------------------------
def test_nested_executions_in_sequence_order_with_parents_and_recursion(ml, workflow):
    parent = ml.create_execution(config(workflow, "sweep"))
    kids = [ml.create_execution(config(workflow, f"[Job {i}] sweep")) for i in range(3)]
    for seq in (2, 0, 1):
        parent.add_nested_execution(kids[seq], sequence=seq)

    links = ml.catalog.select("deriva-ml", "Execution_Execution", {"Execution": parent.execution_rid})
    assert {r["Nested_Execution"]: r["Sequence"] for r in links} == {k.execution_rid: i for i, k in enumerate(kids)}

    nested = parent.list_nested_executions()
    assert [n.execution_rid for n in nested] == [k.execution_rid for k in kids]
    assert [n.description for n in nested] == ["[Job 0] sweep", "[Job 1] sweep", "[Job 2] sweep"]

    assert [p.execution_rid for p in kids[1].list_parent_executions()] == [parent.execution_rid]
    assert parent.is_parent()
    assert not parent.is_nested()
    assert kids[0].is_nested()
    assert not kids[0].is_parent()

    grandchild = ml.create_execution(config(workflow, "grandchild"))
    ml.lookup_execution(kids[1].execution_rid).add_nested_execution(grandchild.execution_rid, sequence=0)
    assert kids[1].is_parent()
    assert kids[1].is_nested()
    assert [n.execution_rid for n in parent.list_nested_executions()] == [k.execution_rid for k in kids]
    assert [n.execution_rid for n in parent.list_nested_executions(recurse=True)] == [
        kids[0].execution_rid,
        kids[1].execution_rid,
        grandchild.execution_rid,
        kids[2].execution_rid,
    ]
    assert [p.execution_rid for p in grandchild.list_parent_executions(recurse=True)] == [
        kids[1].execution_rid,
        parent.execution_rid,
    ]


def test_nesting_cycle_terminates_with_recurse(ml, workflow):
    a = ml.create_execution(config(workflow, "a"))
    b = ml.create_execution(config(workflow, "b"))
    a.add_nested_execution(b, sequence=0)
    b.add_nested_execution(a.execution_rid, sequence=0)
    assert [r.execution_rid for r in a.list_nested_executions(recurse=True)] == [b.execution_rid]
    assert [r.execution_rid for r in b.list_nested_executions(recurse=True)] == [a.execution_rid]
    assert [r.execution_rid for r in a.list_parent_executions(recurse=True)] == [b.execution_rid]
    with pytest.raises(DerivaMLValidationError, match=a.execution_rid):
        a.add_nested_execution(a)


def test_unsequenced_children_come_last(ml, workflow):
    parent = ml.create_execution(config(workflow, "p"))
    loose = ml.create_execution(config(workflow, "parallel"))
    first = ml.create_execution(config(workflow, "first"))
    parent.add_nested_execution(loose)  # None: parallel
    parent.add_nested_execution(first, sequence=0)
    assert [r.description for r in parent.list_nested_executions()] == ["first", "parallel"]
    link = ml.catalog.select("deriva-ml", "Execution_Execution", {"Nested_Execution": loose.execution_rid})
    assert [r["Sequence"] for r in link] == [None]


# -- 6. crash safety -------------------------------------------------------------------------
def test_restore_in_new_handle_uploads_files_left_pending(project, workflow, ml):
    exe = ml.create_execution(config(workflow, "crashed"))
    exe.execution_start()
    exe.asset_file_path("Execution_Asset", "a.bin").write_bytes(b"A" * 10)
    exe.asset_file_path("Execution_Asset", "b.bin").write_bytes(b"B" * 20)
    rid = exe.execution_rid
    del exe  # the process "crashes": nothing uploaded, the objects are gone
    ml.catalog.close()
    assert ml.catalog.select("deriva-ml", "Execution_Asset") == []

    fresh = DerivaML(project / ".deriva")
    restored = fresh.restore_execution(rid)
    assert restored.execution_rid == rid
    restored.upload_execution_outputs()

    assets = {
        a.filename: a for a in fresh.lookup_execution(rid).list_assets("Output") if a.asset_table == "Execution_Asset"
    }
    assert {k: (v.md5, v.length) for k, v in assets.items()} == {
        "a.bin": (hashlib.md5(b"A" * 10).hexdigest(), 10),
        "b.bin": (hashlib.md5(b"B" * 20).hexdigest(), 20),
    }
    # It was Running when the process stopped: it did not finish, whatever was uploaded after.
    row = execution_row(fresh, rid)
    assert row["Status"] == "Aborted"
    assert "Did not finish" in row["Status_Detail"]


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from pytest_deriva import DerivaML, ExecutionConfiguration
    project = Path(sys.argv[1])
    ml = DerivaML(project / ".deriva")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description="killed"))
    exe.execution_start()
    exe.asset_file_path("Execution_Asset", "survivor.bin").write_bytes(b"written before the crash")
    print(exe.execution_rid, flush=True)
    os._exit(1)
    """
)


def test_restore_after_process_exits_without_upload(project, ml):
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(project)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    rid = done.stdout.strip()
    assert ml.catalog.select("deriva-ml", "Execution_Asset") == []

    restored = ml.restore_execution()  # the one execution in the working directory
    assert restored.execution_rid == rid
    restored.upload_execution_outputs()

    assets = [a for a in ml.lookup_execution(rid).list_assets("Output") if a.asset_table == "Execution_Asset"]
    assert [(a.filename, a.md5) for a in assets] == [
        ("survivor.bin", hashlib.md5(b"written before the crash").hexdigest())
    ]
    assert execution_row(ml, rid)["Description"] == "killed"


# -- 9. user asset tables and metadata -------------------------------------------------------
def test_create_asset_table_and_upload_with_metadata(ml, workflow):
    image = ml.create_asset("Image", column_defs=[column("Subject_Name", "text")])
    schema = image.schema.name
    assert schema != "deriva-ml"
    tables = {(t.schema.name, t.name) for t in ml.model.tables()}
    assert {(schema, "Image"), (schema, "Image_Asset_Type"), (schema, "Image_Execution")} <= tables
    assert ml.lookup_term("Asset_Type", "Image").name == "Image"
    assert ml.model.asset_metadata("Image") == {"Subject_Name"}

    with ml.create_execution(config(workflow, "images")) as exe:
        a = exe.asset_file_path("Image", "a.png", metadata={"Subject_Name": "s1"})
        a.write_bytes(b"png a")
        b = exe.asset_file_path("Image", "b.png", metadata={"Subject_Name": "s1"})
        b.write_bytes(b"png b")
        b.metadata["Subject_Name"] = "s2"  # changed after registration: this is what uploads
    exe.upload_execution_outputs()

    stored = {r["Filename"]: r for r in ml.catalog.select(schema, "Image")}
    assert {k: v["Subject_Name"] for k, v in stored.items()} == {"a.png": "s1", "b.png": "s2"}
    for r in stored.values():
        assert asset_types(ml, "Image", r["RID"], schema) == ["Image"]
    assert output_links(ml, "Image", exe.execution_rid, schema) == {r["RID"]: "Output" for r in stored.values()}
    assert {x.filename: x.metadata for x in ml.list_assets("Image")} == {
        "a.png": {"Subject_Name": "s1"},
        "b.png": {"Subject_Name": "s2"},
    }


def test_unknown_metadata_key_is_a_validation_error(ml, workflow):
    ml.create_asset("Image", column_defs=[column("Subject_Name", "text")])
    exe = ml.create_execution(config(workflow, "images"))
    with pytest.raises(DerivaMLValidationError, match="Subjekt"):
        exe.asset_file_path("Image", "c.png", metadata={"Subjekt": "x"})
    ok = exe.asset_file_path("Image", "d.png", metadata={"Subject_Name": "s1"})
    with pytest.raises(DerivaMLValidationError, match="Colour"):
        ok.metadata["Colour"] = "red"
    ok.write_bytes(b"d")
    exe.upload_execution_outputs()
    schema = ml.model.name_to_table("Image").schema.name
    assert [(r["Filename"], r["Subject_Name"]) for r in ml.catalog.select(schema, "Image")] == [("d.png", "s1")]


# -- 10. asset_file_path modes ---------------------------------------------------------------
def test_asset_file_path_modes_and_awkward_names(ml, workflow, tmp_path):
    linked_src = tmp_path / "weights.bin"
    linked_src.write_bytes(b"W" * 50)
    copied_src = tmp_path / "copyme.txt"
    copied_src.write_bytes(b"original")

    with ml.create_execution(config(workflow, "modes")) as exe:
        new = exe.asset_file_path("Execution_Asset", "new.txt")
        assert not new.exists()
        assert Path(new).is_relative_to(exe.working_dir)
        assert new.asset_table == "Execution_Asset"
        new.write_text("fresh")

        linked = exe.asset_file_path("Execution_Asset", linked_src)
        assert linked.is_symlink()
        assert linked.resolve() == linked_src.resolve()
        assert linked.name == "weights.bin"

        copied = exe.asset_file_path("Execution_Asset", copied_src, copy_file=True)
        assert not copied.is_symlink()
        assert copied.read_bytes() == b"original"
        copied_src.write_bytes(b"changed after the copy")  # must not reach the catalog

        renamed = exe.asset_file_path("Execution_Asset", linked_src, rename_file="renamed.bin")
        assert renamed.name == "renamed.bin"

        dotted = exe.asset_file_path("Execution_Asset", "my model.v2.final.pt")
        dotted.write_bytes(b"dots and spaces")
    exe.upload_execution_outputs()

    got = {a.filename: a.md5 for a in ml.list_assets("Execution_Asset")}
    md5 = lambda b: hashlib.md5(b).hexdigest()  # noqa: E731
    assert got == {
        "new.txt": md5(b"fresh"),
        "weights.bin": md5(b"W" * 50),
        "copyme.txt": md5(b"original"),
        "renamed.bin": md5(b"W" * 50),
        "my model.v2.final.pt": md5(b"dots and spaces"),
    }
    assert set(output_links(ml, "Execution_Asset", exe.execution_rid).values()) == {"Output"}
    assert len(output_links(ml, "Execution_Asset", exe.execution_rid)) == 5


def test_same_bytes_same_name_reuse_one_asset_row(ml, workflow):
    rids = []
    for desc in ("first", "second"):
        with ml.create_execution(config(workflow, desc)) as exe:
            exe.asset_file_path("Execution_Asset", "same.bin").write_bytes(b"identical bytes")
        exe.upload_execution_outputs()
        rids.append(exe.execution_rid)

    rows = ml.catalog.select("deriva-ml", "Execution_Asset", {"Filename": "same.bin"})
    assert len(rows) == 1
    links = ml.catalog.select("deriva-ml", "Execution_Asset_Execution", {"Execution_Asset": rows[0]["RID"]})
    assert sorted(r["Execution"] for r in links) == sorted(rids)
    assert {r["Asset_Role"] for r in links} == {"Output"}
    # the environment snapshot is one object and one row however many executions of a process record it
    envs = [
        r
        for r in ml.catalog.select("deriva-ml", "Execution_Metadata")
        if r["Filename"].startswith("environment_snapshot_")
    ]
    assert len(envs) == 1
    env_links = ml.catalog.select("deriva-ml", "Execution_Metadata_Execution", {"Execution_Metadata": envs[0]["RID"]})
    assert sorted(r["Execution"] for r in env_links) == sorted(rids)


# -- 13. the model protocol ------------------------------------------------------------------
def test_derivaml_model_protocol_is_runtime_checkable():
    def my_model(epochs: int = 1, ml_instance=None, execution=None) -> None:
        return None

    def keyword_only(*, ml_instance, execution) -> None:
        return None

    def any_keywords(**kwargs) -> None:
        return None

    class CallableModel:
        def __call__(self, ml_instance=None, execution=None) -> None:
            return None

    def no_injected(epochs: int = 1) -> None:  # run_model could not pass ml_instance= or execution=
        return None

    def no_execution(ml_instance=None) -> None:
        return None

    def positional_only(ml_instance, execution, /) -> None:
        return None

    for model in (my_model, keyword_only, any_keywords, CallableModel()):
        assert isinstance(model, DerivaMLModel), model
    # any callable passed before (issue 10, item 8): these do not take the injected keywords
    for other in (no_injected, no_execution, positional_only, lambda: None, print, 42, "a string"):
        assert not isinstance(other, DerivaMLModel), other


# -- 14. upload progress and cleaning --------------------------------------------------------
def test_progress_callback_gets_one_report_per_file(ml, workflow):
    with ml.create_execution(config(workflow, "progress")) as exe:
        exe.asset_file_path("Execution_Asset", "one.bin").write_bytes(b"1" * 7)
        exe.asset_file_path("Execution_Asset", "two.bin").write_bytes(b"2" * 9)
    reports: list[UploadProgress] = []
    exe.upload_execution_outputs(progress_callback=reports.append)
    assert all(isinstance(r, UploadProgress) for r in reports)
    by_name = {r.file_name: r for r in reports}
    assert set(by_name) == {"one.bin", "two.bin"}
    assert (by_name["one.bin"].bytes_total, by_name["two.bin"].bytes_total) == (7, 9)
    assert all(r.percent_complete == 100.0 and r.files_total == 2 for r in reports)


@pytest.mark.parametrize("clean", [True, False])
def test_clean_folder(ml, workflow, clean):
    with ml.create_execution(config(workflow, "clean")) as exe:
        path = exe.asset_file_path("Execution_Asset", "out.bin")
        path.write_bytes(b"out")
    folder = exe.working_dir
    assert folder.is_dir()
    exe.upload_execution_outputs(clean_folder=clean)
    assert len(ml.list_assets("Execution_Asset")) == 1
    if clean:
        assert not folder.exists()
    else:
        assert path.read_bytes() == b"out"


def test_clean_execution_dir_setting_is_the_default(project, workflow):
    keep = DerivaML(project / ".deriva", clean_execution_dir=False)
    with keep.create_execution(config(workflow, "kept")) as exe:
        exe.asset_file_path("Execution_Asset", "out.bin").write_bytes(b"out")
    exe.upload_execution_outputs()
    assert (exe.working_dir / "assets" / "Execution_Asset" / "out.bin").read_bytes() == b"out"
    keep.catalog.close()


# -- what a run leaves on disk (issue 13: fewer files, the same guarantees) ----------------------
def _objects(ml: DerivaML) -> Path:
    return Path(ml.catalog.path) / "objects"  # type: ignore[attr-defined]


def test_a_run_claims_itself_in_its_lease_and_releases_itself_when_done(ml, workflow):
    from pytest_deriva.execution import _lease

    exe = ml.create_execution(config(workflow, "claimed"))
    lease = _lease.own_lease(ml.working_dir)
    assert exe.execution_rid in _lease.claims_of(ml.working_dir, lease)  # a recovery leaves it alone
    # No folder is made for a run until it registers a file.
    assert not (ml.working_dir / "execution" / exe.execution_rid).exists()
    with exe:
        exe.asset_file_path("Execution_Asset", "out.txt").write_text("out")
    assert exe.execution_rid in _lease.claims_of(ml.working_dir, lease)  # its file is not uploaded yet
    exe.upload_execution_outputs()
    assert exe.execution_rid not in _lease.claims_of(ml.working_dir, lease)
    assert not (ml.working_dir / "execution" / exe.execution_rid).exists()


def test_an_uploaded_file_is_stored_once_and_later_writes_to_a_kept_folder_do_not_change_it(ml, workflow):
    """Hard links are used only where the run's folder is removed after the upload; a folder that is
    kept holds copies, so writing to a file there after the upload cannot change what was stored."""
    ml.clean_execution_dir = False
    with ml.create_execution(config(workflow, "kept")) as exe:
        path = exe.asset_file_path("Execution_Asset", "weights.bin")
        path.write_bytes(b"first version")
    [stored] = exe.upload_execution_outputs()["deriva-ml/Execution_Asset"]
    path.write_bytes(b"changed afterwards")  # the folder is kept: the user may write there again
    [asset] = ml.list_assets("Execution_Asset")
    assert asset.rid == stored.asset_rid
    obj = _objects(ml) / asset.md5[:2] / asset.md5
    assert obj.read_bytes() == b"first version"
    assert hashlib.md5(obj.read_bytes()).hexdigest() == asset.md5


def test_a_file_whose_row_is_refused_keeps_its_own_bytes(ml, workflow, monkeypatch):
    """The store took the file by a hard link; the row was refused, so the file stays pending in the
    folder, and it gets its own copy back: fixing it there must not change the stored object."""
    from pytest_deriva.exceptions import DerivaMLException, DerivaMLUploadError
    from pytest_deriva.execution import execution as execution_module

    exe = ml.create_execution(config(workflow, "refused"))
    with exe:
        path = exe.asset_file_path("Execution_Asset", "result.txt")
        path.write_bytes(b"bytes as first written")

    def refuse(*args, **kwargs):
        raise DerivaMLException("refused by the test")

    monkeypatch.setattr(execution_module, "_record_asset_rows", refuse)
    with pytest.raises(DerivaMLUploadError, match=r"result\.txt"):
        exe.upload_execution_outputs()
    monkeypatch.undo()
    assert path.stat().st_nlink == 1  # its own bytes again, not the store's
    digest = hashlib.md5(b"bytes as first written").hexdigest()
    stored = _objects(ml) / digest[:2] / digest
    path.write_bytes(b"fixed")  # what a user may do before uploading again
    if stored.exists():
        assert stored.read_bytes() == b"bytes as first written"
    exe.upload_execution_outputs()
    [asset] = ml.list_assets("Execution_Asset")
    assert asset.md5 == hashlib.md5(b"fixed").hexdigest()


def test_a_cleaned_runs_folders_are_reused_by_the_next_run_of_the_process(ml, workflow):
    """The emptied folders of a cleaned run are kept, hidden, and renamed into place for the process's
    next run (two renames a run where there were three mkdir and three rmdir); nothing of the first
    run reaches the second, and a spare is never taken for an execution."""
    runs = ml.working_dir / "execution"
    with ml.create_execution(config(workflow, "first")) as first:
        first.asset_file_path("Execution_Asset", "a.bin").write_bytes(b"a")
    first.upload_execution_outputs()
    [spare] = list(runs.iterdir())
    assert spare.name.startswith(".spare-")
    assert sorted(p.relative_to(spare).as_posix() for p in spare.rglob("*")) == [
        "asset-manifest.jsonl",
        "assets",
        "assets/Execution_Asset",
    ]
    assert (spare / "asset-manifest.jsonl").stat().st_size == 0  # every entry was uploaded
    inode = spare.stat().st_ino
    manifest_inode = (spare / "asset-manifest.jsonl").stat().st_ino

    # The next run registers a file of another asset table: the same folders, renamed.
    with ml.create_execution(config(workflow, "second")) as second:
        path = second.asset_file_path("Execution_Metadata", "b.txt")
        path.write_text("b")
        folder = runs / second.execution_rid
        assert folder.stat().st_ino == inode
        assert (folder / "asset-manifest.jsonl").stat().st_ino == manifest_inode  # no inode freed per run
        assert [json.loads(line)["key"] for line in (folder / "asset-manifest.jsonl").open()] == [
            "Execution_Metadata/b.txt"
        ]
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
            "asset-manifest.jsonl",
            "assets",
            "assets/Execution_Metadata",
            "assets/Execution_Metadata/b.txt",
        ]
        assert [p.name for p in runs.iterdir()] == [second.execution_rid]
        # restore_execution() without a RID sees one execution here, not the spare.
        assert ml.restore_execution().execution_rid == second.execution_rid
    uploaded = second.upload_execution_outputs()
    [asset] = uploaded["deriva-ml/Execution_Metadata"]
    assert ml.lookup_asset(asset.asset_rid).filename == "b.txt"
    assert [p.name for p in runs.iterdir()] == [spare.name]


def test_a_folder_holding_anything_else_is_never_reused(ml, workflow):
    with ml.create_execution(config(workflow, "first")) as first:
        first.asset_file_path("Execution_Asset", "a.bin").write_bytes(b"a")
        (first.working_dir / "assets" / "Execution_Asset" / "notes.txt").write_text("not registered")
    first.upload_execution_outputs()
    assert not (ml.working_dir / "execution" / first.execution_rid).exists()  # removed, as before
    with ml.create_execution(config(workflow, "second")) as second:
        second.asset_file_path("Execution_Asset", "b.bin").write_bytes(b"b")
        assert sorted(p.name for p in (second.working_dir / "assets" / "Execution_Asset").iterdir()) == ["b.bin"]
    second.upload_execution_outputs()


def test_the_spare_folders_go_when_the_process_ends(project, tmp_path):
    script = f"""
from pytest_deriva import DerivaML, ExecutionConfiguration
ml = DerivaML({str(project / ".deriva")!r})
wf = ml.create_workflow("train", "Training", source_path={str(project / "train.py")!r})
for i in range(3):
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description=str(i))) as exe:
        exe.asset_file_path("Execution_Asset", "out.bin").write_bytes(bytes([i]))
    exe.upload_execution_outputs()
print(sorted(p.name for p in (ml.working_dir / "execution").iterdir()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "'.spare-" in done.stdout  # kept while the process ran
    assert list((project / ".deriva" / "work" / "execution").iterdir()) == []
