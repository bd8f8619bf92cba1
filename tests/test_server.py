"""The DERIVA server leg: the same runs recorded on the real ERMrest + Hatrac of the local server.

Everything here runs against ``../shared/deriva-server`` (its env file sourced; CI starts it) and
skips with one line without it. The API tests are parametrized over both adapters, so each one
shows the embedded store and the server recording the same thing. Tests that create domain
tables get a fresh catalog of their own; the others share the session's catalog.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from _plugin_helpers import GRID, executions, make_project, outputs, parents_and_children
from conftest import ServerKit, subject_image_schema
from pytest_deriva import (
    DatasetSpec,
    DerivaML,
    DerivaMLConfigurationError,
    DerivaMLException,
    ExecutionConfiguration,
    Status,
    Workflow,
)
from pytest_deriva.catalog.schema import column
from pytest_deriva.catalog.server import ServerCatalog, create_catalog
from pytest_deriva.exceptions import DerivaMLReadOnlyError
from pytest_deriva.tools.main import main as pytest_deriva_main


@pytest.fixture(params=["embedded", "server"])
def fresh_ml(request: pytest.FixtureRequest, project: Path) -> Iterator[DerivaML]:
    """A handle on a catalog of the test's own: a new folder, or a new catalog on the server."""
    if request.param == "embedded":
        handle = DerivaML(project / ".deriva")
        yield handle
        handle.catalog.close()
        return
    kit: ServerKit = request.getfixturevalue("server_login")
    url = kit.new_catalog()
    handle = DerivaML(url, working_dir=project / ".work")
    yield handle
    handle.catalog.close()
    kit.delete_catalog(url)


def _run(ml: DerivaML, project: Path, description: str, files: dict[str, str], **config: Any) -> str:
    workflow = ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(description=description, **config), workflow=workflow)
    with exe.execute() as e:
        for name, text in files.items():
            e.asset_file_path("Execution_Asset", name).write_text(text)
    exe.upload_execution_outputs()
    return exe.execution_rid


# -- executions through the API, on both adapters ------------------------------------------------
def test_an_execution_records_the_same_on_both(any_ml: DerivaML, project: Path, tmp_path: Path) -> None:
    files = {"model weights.v2.pkl": "w" * 1000, "metrics.txt": "acc=1"}
    rid = _run(any_ml, project, "round trip", files)
    record = any_ml.lookup_execution(rid)
    assert record.status == Status.completed
    assert record.description == "round trip"
    assert (record.duration_text or "").endswith("sec")
    assets = {a.filename: a for a in record.list_assets(asset_role="Output")}
    assert set(files) <= set(assets)
    assert "configuration.json" in assets
    assert any(name.startswith("environment_snapshot_") for name in assets)
    weights = assets["model weights.v2.pkl"]
    assert weights.url.startswith("/hatrac/Execution_Asset/")
    got = any_ml.catalog.objects.get(weights.url, tmp_path / "w.pkl")
    assert got.read_text() == files["model weights.v2.pkl"]
    workflow = any_ml.lookup_workflow(record.workflow_rid or "")
    assert workflow.workflow_type == ["Training"]
    # The same file again is the same asset row, not a second one.
    rid2 = _run(any_ml, project, "again", {"metrics.txt": "acc=1"})
    assert rid2 != rid
    again = {a.filename: a.asset_rid for a in any_ml.lookup_execution(rid2).list_assets(asset_role="Output")}
    assert again["metrics.txt"] == assets["metrics.txt"].asset_rid


def test_nesting_and_status_on_both(any_ml: DerivaML, project: Path) -> None:
    parent = _run(any_ml, project, "sweep", {})
    children = [_run(any_ml, project, f"[Job {n}] sweep", {f"out-{n}.txt": str(n)}) for n in range(3)]
    record = any_ml.lookup_execution(parent)
    for n, child in enumerate(reversed(children)):
        record.add_nested_execution(child, sequence=2 - n)
    assert [c.execution_rid for c in record.list_nested_executions()] == children
    assert [p.execution_rid for p in any_ml.lookup_execution(children[1]).list_parent_executions()] == [parent]
    any_ml.lookup_execution(children[2]).update_status(Status.failed, "diverged")
    failed = any_ml.find_executions(status="Failed")
    assert children[2] in [f.execution_rid for f in failed]


def test_a_crashed_execution_uploads_later(any_ml: DerivaML, project: Path) -> None:
    workflow = any_ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = any_ml.create_execution(ExecutionConfiguration(description="crash"), workflow=workflow)
    exe.execution_start()
    exe.asset_file_path("Execution_Asset", "partial.txt").write_text("half")
    # The process dies here; a new handle finds the execution and uploads what it registered.
    restored = DerivaML(any_ml.catalog.uri, working_dir=any_ml.working_dir).restore_execution(exe.execution_rid)
    restored.upload_execution_outputs()
    record = any_ml.lookup_execution(exe.execution_rid)
    assert record.status == Status.aborted
    assert "partial.txt" in [a.filename for a in record.list_assets(asset_role="Output")]


# -- datasets, versions, bags and features, on both ---------------------------------------------
def test_datasets_versions_and_bags_on_both(fresh_ml: DerivaML, project: Path) -> None:
    ml = fresh_ml
    subject_image_schema(ml)
    subjects = ml.insert_records("Subject", [{"Name": n, "Age": a} for n, a in (("ann", 30), ("bob", 40))])
    images = []
    for i, s in enumerate(subjects):
        obj = ml.catalog.objects.put_bytes(f"image {i} {ml.catalog.uri}".encode(), "Image", f"img {i}.png")
        images.append(
            {"URL": obj.url, "Filename": f"img {i}.png", "Length": obj.length, "MD5": obj.md5, "Subject": s["RID"]}
        )
    stored = ml.insert_records("Image", images)
    dataset = ml.create_dataset(dataset_types=["Training"], description="two subjects")
    dataset.add_dataset_members({"Subject": [s["RID"] for s in subjects], "Image": [r["RID"] for r in stored]})
    first = dataset.current_version
    ml.update_records("Subject", [{"RID": subjects[0]["RID"], "Age": 31}])
    dataset.increment_dataset_version("minor", "after the update")
    bag = ml.download_dataset_bag(DatasetSpec(rid=dataset.dataset_rid, version=str(first)), materialize=True)
    ages = {r["Name"]: r["Age"] for r in bag.get_table_as_dict("Subject")}
    assert ages == {"ann": 30, "bob": 40}  # the version, not today's data
    files = sorted(p.name for p in bag.path.rglob("img *.png"))
    assert files == ["img 0.png", "img 1.png"]
    bag.validate()  # bdbag's full validation: the files fetched (from Hatrac on a server) match the manifest
    latest = ml.download_dataset_bag(DatasetSpec(rid=dataset.dataset_rid, version=str(dataset.current_version)))
    assert {r["Name"]: r["Age"] for r in latest.get_table_as_dict("Subject")}["ann"] == 31
    # An execution reads the dataset: it is recorded as an input.
    rid = _run(ml, project, "reads", {}, datasets=[DatasetSpec(rid=dataset.dataset_rid, version=str(first))])
    assert dataset.dataset_rid in [d.dataset_rid for d in ml.lookup_execution(rid).list_input_datasets()]


def test_features_on_both(fresh_ml: DerivaML, project: Path) -> None:
    ml = fresh_ml
    ml.create_vocabulary("Grade")
    ml.add_term("Grade", "Good", "good")
    ml.create_table("Subject", [column("Name", "text")])
    ml.create_feature("Subject", "Quality", terms=["Grade"])
    (subject,) = ml.insert_records("Subject", [{"Name": "s"}])
    workflow = ml.create_workflow("grade", "Feature_Creation", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(description="grading"), workflow=workflow)
    Record = ml.feature_record_class("Subject", "Quality")
    with exe.execute() as e:
        e.add_features([Record(Subject=subject["RID"], Grade="Good")])
    exe.upload_execution_outputs()
    values = list(ml.list_feature_values("Subject", "Quality"))
    assert [(v.Subject, v.Grade, v.Execution) for v in values] == [(subject["RID"], "Good", exe.execution_rid)]


# -- catalog set-up ------------------------------------------------------------------------------
def test_the_model_is_the_same_on_both_and_shows_well_in_chaise(any_ml: DerivaML) -> None:
    model = any_ml.catalog.refresh_model()
    ml = model.schemas["deriva-ml"]
    assert len(ml.tables) == 24
    execution = ml.tables["Execution"].doc["annotations"]
    sections = [f["markdown_name"] for f in execution["tag:isrd.isi.edu,2016:visible-foreign-keys"]["detailed"]]
    assert sections[:2] == ["Parent Executions", "Child Executions"]
    fkeys = {fk.name[1]: fk.doc for fk in ml.tables["Execution_Execution"].foreign_keys}
    assert fkeys["Execution_Execution_Nested_Execution_fkey"]["on_delete"] == "CASCADE"
    assert not ml.tables["Execution_Asset_Execution"].columns["Asset_Role"].nullok
    assert model.schemas["deriva-ml"].doc["annotations"]["tag:misd.isi.edu,2015:display"] == {
        "name_style": {"underline_space": True}
    }


def test_catalog_create_and_init_are_idempotent(server_login: ServerKit, capsys: pytest.CaptureFixture[str]) -> None:
    assert pytest_deriva_main(["catalog", "create", server_login.url]) == 0
    out = capsys.readouterr().out
    url = out.split("created catalog ", 1)[1].split()[0]
    try:
        assert "created schema deriva-ml with 24 tables" in out
        assert "added 13 Workflow_Type terms" in out
        assert pytest_deriva_main(["catalog", "init", url]) == 0
        assert "nothing to do" in capsys.readouterr().out
        cat = ServerCatalog(url)
        tables = cat.model.schemas["deriva-ml"].tables
        assert len(tables) == 24
        # A term removed by hand comes back; nothing else is touched.
        cat.delete("deriva-ml", "Dataset_Type", {"Name": "Split"})
        assert pytest_deriva_main(["catalog", "init", url, "--credential", server_login.credential]) == 0
        assert "added 1 Dataset_Type terms: Split" in capsys.readouterr().out
    finally:
        server_login.delete_catalog(url)


def test_a_catalog_without_the_ml_schema_names_catalog_init(server_login: ServerKit) -> None:
    url = server_login.new_catalog(init=False)
    try:
        with pytest.raises(DerivaMLConfigurationError, match=f"pytest-deriva catalog init {url}"):
            DerivaML(url)
        assert "deriva-ml" not in ServerCatalog(url).refresh_model().schemas  # nothing written
    finally:
        server_login.delete_catalog(url)


# -- bad input: each a clear error that names the fix, and nothing written ----------------------
def test_a_missing_catalog_says_how_to_create_one(server_login: ServerKit) -> None:
    with pytest.raises(DerivaMLConfigurationError, match=r"does not exist.*pytest-deriva catalog create"):
        DerivaML(f"{server_login.url}/ermrest/catalog/987654")


def test_anonymous_and_expired_logins_say_how_to_log_in(
    server_catalog_url: str, deriva_server: ServerKit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DERIVA_CREDENTIAL_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.deriva/credential.json either
    with pytest.raises(DerivaMLConfigurationError, match=r"requires a login.*no credential was found.*deriva"):
        DerivaML(server_catalog_url)
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({deriva_server.host: {"cookie": "webauthn=expired-session"}}))
    with pytest.raises(DerivaMLConfigurationError, match=r"not accepted.*expired") as info:
        DerivaML(server_catalog_url, credential=str(stale))
    assert "expired-session" not in str(info.value)  # the credential never appears in a message
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"elsewhere.org": {"cookie": "webauthn=x"}}))
    with pytest.raises(DerivaMLConfigurationError, match="no entry for host"):
        DerivaML(server_catalog_url, credential=str(other))


def test_a_user_without_write_access_is_refused_and_nothing_is_written(server_login: ServerKit, project: Path) -> None:
    if not server_login.plain_credential:
        pytest.skip("the server kit names no plain user")
    url = server_login.new_catalog()
    try:
        admin = ServerCatalog(url)
        for acl in ("enumerate", "select"):
            admin._ermrest.put(f"/acl/{acl}", json=[server_login.plain_user])
        reader = DerivaML(url, credential=server_login.plain_credential, working_dir=project / ".work")
        assert reader.lookup_term("Workflow_Type", "Training").name == "Training"  # reading works
        before = len(admin.select("deriva-ml", "Workflow"))
        with pytest.raises(DerivaMLReadOnlyError, match=r"Permission denied.*Ask the catalog's owner"):
            _run(reader, project, "not mine", {"x.txt": "x"})
        assert len(admin.select("deriva-ml", "Workflow")) == before
        assert admin.select("deriva-ml", "Execution") == []
        # And a user outside the admin group cannot create catalogs.
        with pytest.raises(DerivaMLReadOnlyError, match="Permission denied"):
            create_catalog(server_login.url, credential=server_login.plain_credential)
    finally:
        server_login.delete_catalog(url)


def test_an_untrusted_certificate_fails_fast_and_clearly(
    server_catalog_url: str, server_login: ServerKit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs only: not the kit's local CA
    start = time.monotonic()
    with pytest.raises(DerivaMLConfigurationError, match=r"Cannot verify the TLS certificate.*REQUESTS_CA_BUNDLE"):
        DerivaML(server_catalog_url)
    assert time.monotonic() - start < 20


def test_a_server_gone_mid_run_keeps_the_files_pending(server_login: ServerKit, project: Path) -> None:
    url = server_login.new_catalog()
    ml = DerivaML(url, working_dir=project / ".work")
    workflow = ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(description="gone"), workflow=workflow)
    exe.execution_start()
    path = exe.asset_file_path("Execution_Asset", "result.txt")
    path.write_text("kept")
    server_login.delete_catalog(url)  # the catalog goes away while the run is under way
    with pytest.raises(DerivaMLException):
        exe.upload_execution_outputs()
    assert path.read_text() == "kept"
    pending = exe._get_manifest().pending_assets()
    assert "result.txt" in [Path(str(p)).name for p in pending]


# -- the pytest plugin and Hydra, on the server --------------------------------------------------
def test_a_pytest_sweep_on_the_server(pytester: pytest.Pytester, server_login: ServerKit) -> None:
    url = server_login.new_catalog()
    try:
        make_project(pytester, {"experiment_grid.py": GRID})
        result = pytester.runpytest("--deriva-run", f"--deriva-catalog={url}", "--deriva-verbose", "-p", "no:randomly")
        result.assert_outcomes(passed=5, failed=1)
        out = result.stdout.str()
        assert f"deriva: catalog {url} (DERIVA server, from --deriva-catalog)" in out
        with catalog_at(url) as ml:
            assert len(executions(ml)) == 7
            [(parent, links)] = parents_and_children(ml).items()
            assert [link["Sequence"] for link in links] == [0, 1, 2, 3, 4, 5]
            assert ml.lookup_execution(parent).status_detail == "5 of 6 completed, 1 failed"
            first = links[0]["Nested_Execution"]
            assert any(name.startswith("out-") for name in outputs(ml, first))
        result.stdout.fnmatch_lines(
            [f"    {parent}  https://localhost/chaise/record/#*/deriva-ml:Execution/RID={parent}"]
        )
        # Round trips (the server issue's goal): a completed child with one output file makes at
        # most 10 requests plus its upload while it runs; planning adds a few per child, not a dozen.
        per_child = [int(line.split()[-1]) for line in out.splitlines() if "Completed" in line and "b=" in line]
        assert len(per_child) == 5
        assert max(per_child) <= 11, per_child
        total = int(re.search(r"requests to localhost from this process: (\d+)", out)[1])  # type: ignore[index]
        assert total <= 14 * 6 + 20, total
    finally:
        server_login.delete_catalog(url)


def test_a_pytest_sweep_on_the_server_under_xdist(pytester: pytest.Pytester, server_login: ServerKit) -> None:
    pytest.importorskip("xdist")
    url = server_login.new_catalog()
    try:
        make_project(pytester, {"experiment_grid.py": GRID})
        result = pytester.runpytest_subprocess("--deriva-run", f"--deriva-catalog={url}", "-n", "2")
        result.assert_outcomes(passed=5, failed=1)
        with catalog_at(url) as ml:
            tree = parents_and_children(ml)
            assert len(tree) == 1
            [(parent, links)] = tree.items()
            assert sorted(link["Sequence"] for link in links) == [0, 1, 2, 3, 4, 5]
            assert ml.lookup_execution(parent).status.value == "Failed"
    finally:
        server_login.delete_catalog(url)


@pytest.mark.parametrize(
    "launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]], ids=["basic", "joblib"]
)
def test_deriva_run_multirun_on_the_server(server_login: ServerKit, project: Path, launcher: list[str]) -> None:
    from test_cli import run
    from test_config_project import sweep_of, write_project

    url = server_login.new_catalog()
    try:
        write_project(project)
        done = run(project, "--config-dir", "configs", "--catalog", url, "+multirun=grid", *launcher)
        assert done.returncode == 0, done.stderr[-3000:]
        with catalog_at(url) as ml:
            parent, children = sweep_of(ml)
            assert parent["Status_Detail"] == "4 of 4 completed"
            assert sorted(seq for _, seq in parent["children"]) == [0, 1, 2, 3]
            assert [c["Description"] for c in children] == [f"[Job {n}] Tiny model" for n in range(4)]
            assert all({f"hydra-{n}-config.yaml"} <= set(c["metadata"]) for n, c in enumerate(children))
    finally:
        server_login.delete_catalog(url)


@contextmanager
def catalog_at(url: str) -> Iterator[DerivaML]:
    """A handle on a server catalog, closed afterwards."""
    ml = DerivaML(url)
    try:
        yield ml
    finally:
        ml.catalog.close()


def test_concurrent_first_records_of_one_workflow_leave_one_row(server_login: ServerKit, project: Path) -> None:
    """A server has no lock and Workflow no unique key: processes that record the same new code at
    once (joblib jobs, several machines) must still leave one Workflow row, used by all."""
    url = server_login.new_catalog()
    handles = [DerivaML(url, working_dir=project / f".work-{n}") for n in range(4)]
    try:
        for round_ in range(3):
            barrier = threading.Barrier(len(handles))

            def record(ml: DerivaML, checksum: str = f"{round_:040x}", barrier: threading.Barrier = barrier) -> str:
                wf = Workflow(
                    name="race",
                    workflow_type="Training",
                    url=f"https://example.org/race-{checksum}.py",
                    checksum=checksum,
                )
                barrier.wait()
                return ml.add_workflow(wf)

            with ThreadPoolExecutor(len(handles)) as pool:
                rids = list(pool.map(record, handles))
            rows = handles[0].catalog.select("deriva-ml", "Workflow", {"Checksum": f"{round_:040x}"})
            assert [r["RID"] for r in rows] == [rids[0]]
            assert set(rids) == {rids[0]}
            types = handles[0].catalog.select("deriva-ml", "Workflow_Workflow_Type", {"Workflow": rids[0]})
            assert [t["Workflow_Type"] for t in types] == ["Training"]
    finally:
        for ml in handles:
            ml.catalog.close()
        server_login.delete_catalog(url)
