"""``pytest-deriva push``: runs recorded offline, copied to the local DERIVA server exactly once.

A sweep is recorded with ``pytest --deriva-run`` on the embedded store (as tests/test_plugin.py
does), pushed with the command, read back through the server with the project's own API and
compared field by field with the original; pushed again (nothing is sent); pushed after a
SIGKILL at each point of a push (``pytest_deriva._faults.PUSH_POINTS``), without duplicates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Loaded here, before pytester's in-process runs: each run unloads the modules it imported first,
# and a class loaded twice is two classes (an ExecutionConfiguration that is not one).
import pytest_deriva.sweep  # noqa: F401
from _plugin_helpers import GRID, catalog, git, make_project
from conftest import ServerKit
from pytest_deriva import DatasetSpec, DerivaML, ExecutionConfiguration
from pytest_deriva._faults import DATA_PUSH_POINTS, PUSH_POINTS
from pytest_deriva.catalog.schema import column
from pytest_deriva.catalog.server import ServerCatalog
from pytest_deriva.exceptions import DerivaMLReadOnlyError
from pytest_deriva.execution.push import PushRefused, push, pushed, pushed_from
from pytest_deriva.tools.main import main as pytest_deriva_main

ML = "deriva-ml"


def record_sweep(pytester: pytest.Pytester, remote: str | None = "https://example.org/org/proj.git") -> Path:
    """The GRID sweep (6 children, one failed, each with an output file) recorded in ``.deriva``."""
    make_project(pytester, {"experiment_grid.py": GRID})
    if remote:
        git(pytester.path, "remote", "add", "origin", remote)
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)
    return pytester.path / ".deriva"


@pytest.fixture
def target(server_login: ServerKit) -> Iterator[str]:
    """A new server catalog of the test's own, set up by catalog init."""
    url = server_login.new_catalog()
    yield url
    server_login.delete_catalog(url)


def counts(url: str) -> dict[str, int]:
    """Rows of every table of the server catalog that a push writes to."""
    cat = ServerCatalog(url)
    try:
        model = cat.refresh_model()
        return {
            t.qualified_name: len(cat.select(t.schema.name, t.name, columns=["RID"]))
            for t in model.tables()
            if t.schema.name not in ("public", "WWW")
        }
    finally:
        cat.close()


def run_record(ml: DerivaML, rid: str, tmp: Path) -> dict[str, Any]:
    """Everything about one run that a push must keep, with RIDs replaced by what they stand for."""
    record = ml.lookup_execution(rid)
    workflow = ml.lookup_workflow(record.workflow_rid or "")
    files = {}
    for role in ("Input", "Output"):
        for asset in record.list_assets(role):
            dest = ml.catalog.objects.get(asset.url, tmp / asset.asset_rid / str(asset.filename))
            files[(asset.asset_table, asset.filename, role)] = (
                asset.md5,
                asset.length,
                asset.url,
                asset.description,
                sorted(asset.asset_types),
                asset.metadata,
                dest.read_bytes(),
            )
    children = [(c.description, c.status.value) for c in record.list_nested_executions()]
    return {
        "description": record.description,
        "status": record.status.value,
        "status_detail": record.status_detail,
        "duration": record.duration,
        "workflow": (workflow.name, workflow.url, workflow.checksum, workflow.version, workflow.workflow_type),
        "parameters": record.parameters,
        "metrics": record.metrics,
        "children": children,
        "files": files,
    }


def test_a_recorded_sweep_is_pushed_unchanged_and_once(pytester: pytest.Pytester, target: str, tmp_path: Path) -> None:
    store = record_sweep(pytester)
    lines: list[str] = []
    result = push(store, target, progress=lines.append)
    assert len(result.executions) == 7
    assert result.workflows_created == 1
    assert result.files >= 7  # each child's output, the metadata files
    assert lines[0] == f"pushing 7 executions to {target}"
    with catalog(store) as local:
        mapping = pushed(local.catalog, target)
        original = {rid: run_record(local, rid, tmp_path / "local") for rid in result.executions}
    assert {mapping[r] for r in result.executions} == set(result.executions.values())
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        for local_rid, server_rid in result.executions.items():
            assert run_record(server, server_rid, tmp_path / "server") == original[local_rid]
        # Nesting and its order, as the server's own API reads them.
        [parent] = [r for r, rec in original.items() if rec["children"]]
        kids = server.lookup_execution(result.executions[parent]).list_nested_executions()
        assert [c.description for c in kids] == [d for d, _ in original[parent]["children"]]
        assert len(server.find_executions()) == 7
        # The server's record names where each row came from.
        cat = server.catalog
        assert isinstance(cat, ServerCatalog)
        with catalog(store) as local:
            origin = pushed_from(cat, result.executions[parent])
            assert origin == f"{local.catalog.catalog_uuid} {parent}"
    finally:
        server.catalog.close()
    # Again: nothing is sent, not even a request.
    before = counts(target)
    again = push(store, target)
    assert again.executions == {}
    assert again.already == 7
    assert again.requests == 0
    assert counts(target) == before


def cli(store: Path, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTEST_DERIVA_CRASH_AT", None)
    if crash:
        env["PYTEST_DERIVA_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "pytest_deriva.tools.main", "push", *args, "--catalog", str(store)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("point", PUSH_POINTS)
def test_a_push_killed_anywhere_completes_without_duplicates(
    pytester: pytest.Pytester, target: str, point: str
) -> None:
    store = record_sweep(pytester)
    killed = cli(store, target, crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    done = cli(store, target)
    assert done.returncode == 0, done.stderr
    assert "pushed 7 executions" in done.stdout
    after = counts(target)
    assert after[f"{ML}:Execution"] == 7
    assert after[f"{ML}:Workflow"] == 1
    assert after[f"{ML}:Execution_Execution"] == 6
    with catalog(store) as local:
        here = {
            t: len(local.catalog.select(ML, t, columns=["RID"]))
            for t in ("Execution_Asset", "Execution_Asset_Execution", "Execution_Metadata_Execution")
        }
        params = len(local.catalog.select("pytest-deriva", "Execution_Parameter", columns=["RID"]))
    for table, n in here.items():
        assert after[f"{ML}:{table}"] == n, table
    assert after["pytest-deriva:Execution_Parameter"] == params
    again = cli(store, target)
    assert "nothing to push: 7 executions already on" in again.stdout
    assert counts(target) == after


def test_bad_input_is_refused_before_anything_is_written(
    pytester: pytest.Pytester, server_login: ServerKit, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = record_sweep(pytester, remote=None)  # the workflow's URL is file://<the project>
    empty = counts(target)
    assert pytest_deriva_main(["push", target, "--catalog", str(store)]) == 1
    err = capsys.readouterr().err
    assert "file://" in err
    assert "git remote add origin" in err
    assert counts(target) == empty
    # A catalog without the deriva-ml schema: the command that sets it up.
    bare = server_login.new_catalog(init=False)
    try:
        with pytest.raises(Exception, match=rf"pytest-deriva catalog init {bare}"):
            push(store, bare)
    finally:
        server_login.delete_catalog(bare)
    # An unknown RID, and a folder that is not a catalog.
    with pytest.raises(Exception, match="No execution 9-ZZZZ"):
        push(store, target, ["9-ZZZZ"])
    with pytest.raises(PushRefused, match="No embedded catalog"):
        push(pytester.path / "nowhere", target)
    assert counts(target) == empty


def _execution(ml: DerivaML, project: Path, description: str, **config: Any) -> Any:
    workflow = ml.create_workflow("train", "Training", source_path=project / "train.py")
    return ml.create_execution(ExecutionConfiguration(description=description, **config), workflow=workflow)


def test_runs_not_finished_are_pushed_only_when_asked(ml: DerivaML, project: Path, target: str, tmp_path: Path) -> None:
    ml.add_term("Workflow_Type", "Offline_Training", "Training on a laptop")
    workflow = ml.create_workflow("offline", "Offline_Training", source_path=project / "train.py")
    done = ml.create_execution(ExecutionConfiguration(description="finished"), workflow=workflow)
    with done.execute() as e:
        e.asset_file_path("Execution_Asset", "a.txt").write_text("a")
    done.upload_execution_outputs()
    running = _execution(ml, project, "still running")
    running.execution_start()
    store = Path(ml.catalog.uri)
    empty = counts(target)
    with pytest.raises(PushRefused, match=rf"{running.execution_rid} is Running.*--include-running"):
        push(store, target)
    assert counts(target) == empty
    # Named, the finished one goes alone; the running one when asked, and it can be pushed again later.
    first = push(store, target, [done.execution_rid])
    assert list(first.executions) == [done.execution_rid]
    # The term the server lacked was added, with its description, and the push said so.
    assert first.lines()[0] == "added Workflow_Type terms the server lacked: Offline_Training"
    result = push(store, target, include_running=True)
    assert list(result.executions) == [running.execution_rid]
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        assert server.lookup_execution(result.executions[running.execution_rid]).status.value == "Running"
        # When it has ended, the next push brings its state and its files.
        with running.execute() as e:
            e.asset_file_path("Execution_Asset", "late.txt").write_text("late")
        running.upload_execution_outputs()
        later = push(store, target)
        assert later.executions == result.executions
        again = server.lookup_execution(result.executions[running.execution_rid])
        assert again.status.value == "Completed"
        assert again.duration == ml.lookup_execution(running.execution_rid).duration
        assert "late.txt" in [a.filename for a in again.outputs]
        assert push(store, target).executions == {}
        assert server.lookup_term("Workflow_Type", "Offline_Training").description == "Training on a laptop"
        assert [
            a.filename
            for a in server.lookup_execution(pushed(ml.catalog, target)[done.execution_rid]).outputs
            if a.filename == "a.txt"
        ] == ["a.txt"]
    finally:
        server.catalog.close()


def domain(ml: DerivaML) -> None:
    """The tables the data runs use (made with the same calls here and on the server)."""
    ml.create_vocabulary("Grade")
    ml.create_table("Subject", [column("Name", "text")])
    ml.create_feature("Subject", "Quality", terms=["Grade"])
    ml.add_dataset_element_type("Subject")


def record_data_runs(ml: DerivaML, project: Path) -> dict[str, Any]:
    """Runs with datasets and features: a dataset of two versions (a nested dataset, subjects
    added between them) read at its first version by a run that grades subjects, and a dataset
    that run made."""
    domain(ml)
    ml.add_term("Grade", "Good", "good")
    ml.add_term("Grade", "Poor", "poor")
    s1, s2, s3 = ml.insert_records("Subject", [{"Name": "s1"}, {"Name": "s2"}, {"Name": "s3"}])
    child = ml.create_dataset(dataset_types=["Training"], description="child")
    child.add_dataset_members({"Subject": [s1["RID"]]})
    parent = ml.create_dataset(dataset_types=["Complete"], description="parent")
    parent.add_dataset_members({"Dataset": [child.dataset_rid], "Subject": [s2["RID"]]})
    first = str(parent.current_version)
    parent.add_dataset_members({"Subject": [s3["RID"]]})
    exe = _execution(ml, project, "grading", datasets=[DatasetSpec(rid=parent.dataset_rid, version=first)])
    Record = ml.feature_record_class("Subject", "Quality")
    with exe.execute() as e:
        e.add_features([Record(Subject=s1["RID"], Grade="Good"), Record(Subject=s3["RID"], Grade="Poor")])
        made = e.create_dataset(dataset_types=["Testing"], description="made by the run")
        ml.add_dataset_members(made.dataset_rid, {"Subject": [s3["RID"]]})
    exe.upload_execution_outputs()
    return {
        "run": exe.execution_rid,
        "parent": parent.dataset_rid,
        "child": child.dataset_rid,
        "made": made.dataset_rid,
    }


def dataset_record(ml: DerivaML, rid: str, ids: dict[str, str]) -> dict[str, Any]:
    """A dataset as the API reads it, each version's members by name (nested datasets by description)."""
    ds = ml.lookup_dataset(rid)
    versions = {}
    for h in ml.dataset_history(rid):
        members = ml.list_dataset_members(rid, version=h.dataset_version)
        versions[str(h.dataset_version)] = (
            h.description,
            ids.get(h.execution_rid or "", h.execution_rid),
            sorted(r["Name"] for r in members["Subject"]),
            sorted(r["Description"] for r in members["Dataset"]),
        )
    return {
        "description": ds.description,
        "types": sorted(ml._dataset_types_of(rid)),
        "version": str(ml.dataset_version(rid)),
        "versions": versions,
    }


def data_record(ml: DerivaML, run: str, ids: dict[str, str]) -> dict[str, Any]:
    """A run's datasets (read and made) and feature values as the API reads them."""
    record = ml.lookup_execution(run)
    datasets = {d.description: dataset_record(ml, d.dataset_rid, ids) for d in ml.find_datasets()}
    names = {r["RID"]: r["Name"] for r in ml.get_table_as_dict("Subject")}
    values = sorted(
        (names[v.Subject], v.Grade, ids.get(v.Execution or "", v.Execution))
        for v in ml.list_feature_values("Subject", "Quality")
    )
    linked = sorted(r["Dataset"] for r in ml.catalog.select(ML, "Dataset_Execution", {"Execution": run}))
    return {
        "status": record.status.value,
        "datasets": datasets,
        "linked": sorted(ml.lookup_dataset(d).description for d in linked),
        "values": values,
    }


def test_a_run_with_datasets_and_features_is_pushed_with_them_once(
    ml: DerivaML, project: Path, target: str, tmp_path: Path
) -> None:
    rids = record_data_runs(ml, project)
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        domain(server)
        result = push(Path(ml.catalog.uri), target)
        assert list(result.executions) == [rids["run"]]
        there = result.executions[rids["run"]]
        original = data_record(ml, rids["run"], {rids["run"]: "the run"})
        assert data_record(server, there, {there: "the run"}) == original
        assert original["datasets"]["parent"]["versions"]["0.2.0"][2:] == (["s2"], ["child"])
        assert original["linked"] == ["made by the run", "parent"]
        mapping = pushed(ml.catalog, target)
        cat = server.catalog
        assert isinstance(cat, ServerCatalog)
        assert pushed_from(cat, mapping[rids["parent"]]) == f"{ml.catalog.catalog_uuid} {rids['parent']}"
        # Again: nothing sent; and a later version of a pushed dataset goes with the next run that reads it.
        before = counts(target)
        assert push(Path(ml.catalog.uri), target).requests == 0
        assert counts(target) == before
        ml.add_dataset_members(rids["child"], {"Subject": [ml.get_table_as_dict("Subject")[1]["RID"]]})
        later = _execution(ml, project, "later", datasets=[DatasetSpec(rid=rids["child"])])
        with later.execute():
            pass
        later.upload_execution_outputs()
        push(Path(ml.catalog.uri), target)
        assert dataset_record(server, mapping[rids["child"]], {}) == dataset_record(ml, rids["child"], {})
        assert counts(target)["Domain:Subject"] == 3
    finally:
        server.catalog.close()


@pytest.mark.parametrize("point", DATA_PUSH_POINTS)
def test_a_push_of_datasets_and_features_killed_anywhere_completes_once(
    ml: DerivaML, project: Path, target: str, tmp_path: Path, point: str
) -> None:
    rids = record_data_runs(ml, project)
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        domain(server)
        store = Path(ml.catalog.uri)
        killed = cli(store, target, crash=point)
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        done = cli(store, target)
        assert done.returncode == 0, done.stderr
        after = counts(target)
        for table in ("Dataset", "Dataset_Version", "Dataset_Subject", "Dataset_Dataset", "Dataset_Execution"):
            assert after[f"{ML}:{table}"] == len(ml.catalog.select(ML, table, columns=["RID"])), table
        there = pushed(ml.catalog, target)[rids["run"]]
        assert data_record(server, there, {there: "r"}) == data_record(ml, rids["run"], {rids["run"]: "r"})
        assert "nothing to push" in cli(store, target).stdout
        assert counts(target) == after
    finally:
        server.catalog.close()


def test_a_pinned_server_dataset_is_read_offline_and_the_push_links_to_it(
    ml: DerivaML, project: Path, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        domain(server)
        subjects = server.insert_records("Subject", [{"Name": "a"}, {"Name": "b"}])
        dataset = server.create_dataset(dataset_types=["Training"], description="on the server")
        dataset.add_dataset_members({"Subject": [subjects[0]["RID"]]})
        version = str(dataset.current_version)
        dataset.add_dataset_members({"Subject": [subjects[1]["RID"]]})  # a later version: not the pinned one
        store = Path(ml.catalog.uri)
        assert pytest_deriva_main(["pin", target, f"{dataset.dataset_rid}@{version}", "--catalog", str(store)]) == 0
        out = capsys.readouterr().out
        assert f"pinned dataset {dataset.dataset_rid} version {version} (1 Subject" in out
        assert "bag downloaded" in out
        [local] = [d.dataset_rid for d in ml.find_datasets()]
        assert f"DatasetSpec(rid={local!r}, version={version!r})" in out
        # Again: the same local dataset, nothing fetched.
        assert pytest_deriva_main(["pin", target, f"{dataset.dataset_rid}@{version}", "--catalog", str(store)]) == 0
        assert "bag already cached" in capsys.readouterr().out
        assert len(ml.find_datasets()) == 1
        # Offline: the run reads the server's bag from the cache.
        exe = _execution(ml, project, "offline", datasets=[DatasetSpec(rid=local, version=version)])
        with exe.execute() as e:
            [bag] = e.datasets
            assert bag.from_cache
            assert bag.rid == dataset.dataset_rid
            assert [r["Name"] for r in bag.list_dataset_members()["Subject"]] == ["a"]
        exe.upload_execution_outputs()
        before = counts(target)
        result = push(store, target)
        there = result.executions[exe.execution_rid]
        links = server.catalog.select(ML, "Dataset_Execution", {"Execution": there})
        assert [r["Dataset"] for r in links] == [dataset.dataset_rid]
        after = counts(target)
        for table in ("Dataset", "Dataset_Version", "Dataset_Subject", "Domain:Subject"):
            name = table if ":" in table else f"{ML}:{table}"
            assert after[name] == before[name], table
        assert push(store, target).requests == 0
    finally:
        server.catalog.close()
    assert pytest_deriva_main(["pin", target, "9-ZZZZ", "--catalog", str(store)]) == 1
    assert "9-ZZZZ" in capsys.readouterr().err
    assert pytest_deriva_main(["pin", "nowhere", "1-AB", "--catalog", str(store)]) == 1
    assert "'nowhere' is not a server catalog; pin from https://" in capsys.readouterr().err


def test_files_that_name_rows_and_feature_values_with_files_are_pushed_with_them(
    ml: DerivaML, project: Path, target: str, tmp_path: Path
) -> None:
    def tables(m: DerivaML) -> None:
        m.create_table("Subject", [column("Name", "text")])
        m.create_asset("Scan", referenced_tables=["Subject"])
        m.create_feature("Subject", "Marked", assets=["Scan"])

    tables(ml)
    (subject,) = ml.insert_records("Subject", [{"Name": "s"}])
    exe = _execution(ml, project, "scanning")
    Marked = ml.feature_record_class("Subject", "Marked")
    with exe.execute() as e:
        scan = e.asset_file_path("Scan", "scan.txt", Subject=subject["RID"])
        scan.write_text("scan of s")
        e.add_features([Marked(Subject=subject["RID"], Scan=scan)])
    exe.upload_execution_outputs()
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        tables(server)
        result = push(Path(ml.catalog.uri), target)
        assert list(result.executions) == [exe.execution_rid]
        [value] = server.list_feature_values("Subject", "Marked")
        assert value.Execution == result.executions[exe.execution_rid]
        [row] = server.catalog.select("Domain", "Scan", {"RID": value.Scan})
        [named] = server.catalog.select("Domain", "Subject", {"RID": row["Subject"]})
        assert named["Name"] == "s"
        assert value.Subject == row["Subject"]
        assert server.catalog.objects.get(row["URL"], tmp_path / "scan.txt").read_text() == "scan of s"
        assert counts(target)["Domain:Subject"] == 1
    finally:
        server.catalog.close()


def test_runs_with_rows_push_does_not_copy_are_refused_not_dropped(ml: DerivaML, project: Path, target: str) -> None:
    from pytest_deriva.catalog import schema as ddl

    ml.create_table("Note", [column("Text", "text")])
    ml.catalog.create_table(
        ml.default_schema,
        ddl.association_table(
            "Note_Execution", ("Note", ml.default_schema, "Note", "RID"), ("Execution", ML, "Execution", "RID")
        ),
    )
    (note,) = ml.insert_records("Note", [{"Text": "n"}])
    exe = _execution(ml, project, "notes")
    with exe.execute():
        pass
    exe.upload_execution_outputs()
    ml.insert_records("Note_Execution", [{"Note": note["RID"], "Execution": exe.execution_rid}])
    empty = counts(target)
    with pytest.raises(PushRefused, match=r"Note_Execution \(1 rows; runs " + exe.execution_rid):
        push(Path(ml.catalog.uri), target)
    assert counts(target) == empty


def test_a_login_that_may_not_write_is_refused_one_that_may_pushes(
    ml: DerivaML, project: Path, server_login: ServerKit, target: str
) -> None:
    if not server_login.plain_credential:
        pytest.skip("the server kit names no plain user")
    exe = _execution(ml, project, "mine")
    with exe.execute():
        pass
    exe.upload_execution_outputs()
    admin = ServerCatalog(target)
    for acl in ("enumerate", "select"):
        admin._ermrest.put(f"/acl/{acl}", json=[server_login.plain_user])
    admin.close()
    empty = counts(target)
    with pytest.raises(DerivaMLReadOnlyError, match="may not insert into deriva-ml:Execution"):
        push(Path(ml.catalog.uri), target, credential=server_login.plain_credential)
    assert counts(target) == empty
    # Allowed to insert (not an admin, not the owner), the user pushes, and once.
    admin = ServerCatalog(target)
    admin._ermrest.put("/acl/insert", json=[server_login.plain_user])
    # And to store files: Hatrac decides that, by namespace, server-wide (so taken back after).
    granted = []
    try:
        for namespace in ("Execution_Metadata", "Execution_Asset"):
            admin.objects.put_bytes(b"x", namespace, "made-by-admin.txt")  # the namespace exists
            for acl in ("create", "subtree-create", "subtree-update"):
                granted.append(f"/hatrac/{namespace};acl/{acl}/{server_login.plain_user}")
                admin.objects._store.put(granted[-1])
        result = push(Path(ml.catalog.uri), target, credential=server_login.plain_credential)
        assert list(result.executions) == [exe.execution_rid]
        assert push(Path(ml.catalog.uri), target, credential=server_login.plain_credential).already == 1
        assert counts(target)[f"{ML}:Execution"] == 1
    finally:
        for path in granted:
            admin.objects._store.delete(path)
        admin.close()


def test_pytest_pushes_the_sessions_runs_at_the_end(pytester: pytest.Pytester, target: str, tmp_path: Path) -> None:
    make_project(pytester, {"experiment_grid.py": GRID})
    git(pytester.path, "remote", "add", "origin", "https://example.org/org/proj.git")
    result = pytester.runpytest("--deriva-run", f"--deriva-push={target}", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"deriva: pushing 7 executions to {target}",
            f"*= deriva: pushed to {target} =*",
            f"pushed 7 executions to {target} (0 there before): 1 workflows added*",
            "  1-* -> * https://localhost/chaise/record/#*/deriva-ml:Execution/RID=*",
        ]
    )
    assert counts(target)[f"{ML}:Execution"] == 7
    # The next session pushes its own runs only: the one it recorded.
    (pytester.path / "experiment_one.py").write_text("def experiment_one(execution):\n    return 0.5\n")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "one")
    again = pytester.runpytest("--deriva-run", f"--deriva-push={target}", "experiment_one.py")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines([f"pushed 1 executions to {target} (7 there before)*"])
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        assert len(server.find_executions()) == 8
        assert [r.metrics for r in server.find_executions(metrics={"value": 0.5})] == [{"value": 0.5}]
    finally:
        server.catalog.close()


def test_deriva_push_needs_an_embedded_session_and_a_server(pytester: pytest.Pytester) -> None:
    make_project(pytester, {"experiment_grid.py": GRID})
    bad = pytester.runpytest("--deriva-run", "--deriva-push=.elsewhere")
    bad.stderr.fnmatch_lines(["*--deriva-push '.elsewhere' is not a server catalog*"])
    url = "https://localhost/ermrest/catalog/1"
    both = pytester.runpytest("--deriva-run", f"--deriva-push={url}", f"--deriva-catalog={url}")
    both.stderr.fnmatch_lines(["*--deriva-push copies runs from the embedded store*"])
    assert bad.ret == both.ret == pytest.ExitCode.USAGE_ERROR


def test_deriva_run_pushes_what_it_recorded(project: Path, ml: DerivaML, target: str, tmp_path: Path) -> None:
    from test_cli import run
    from test_config_project import write_project

    write_project(project)
    first = run(project, "--config-dir", "configs", "model_config=fast")  # recorded, not pushed
    assert first.returncode == 0, first.stderr
    done = run(project, "--config-dir", "configs", "--push", target, "+multirun=grid")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"pushed 5 executions to {target} (0 there before)" in done.stdout  # the sweep: a parent, 4 jobs
    server = DerivaML(target, working_dir=tmp_path / "work")
    try:
        runs = server.find_executions()
        assert len(runs) == 5
        [parent] = [r for r in runs if r.is_parent()]
        assert [c.description for c in parent.list_nested_executions()] == [f"[Job {n}] Tiny model" for n in range(4)]
    finally:
        server.catalog.close()
    refused = run(project, "--config-dir", "configs", "--push", "nowhere", "model_config=fast")
    assert refused.returncode == 1
    assert "--push 'nowhere' is not a server catalog" in refused.stderr
