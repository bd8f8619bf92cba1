"""Looking at recorded runs (issue 11): the query API (``find_executions``, ``ExecutionRecord``'s
parameters, metrics and times) and the ``pytest-deriva runs / show / compare`` commands, on the
embedded store and on the server (``catalog_location`` skips that leg without a server)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

# Loaded here, before pytester's in-process runs: each run unloads the modules it imported first,
# and a class loaded twice is two classes (an ExecutionConfiguration that is not one).
import pytest_deriva.sweep  # noqa: F401
from _plugin_helpers import make_project
from pytest_deriva import DerivaML
from pytest_deriva.catalog.schema import INDEX_SCHEMA
from pytest_deriva.enums import Status
from pytest_deriva.tools.main import main

SWEEP = """
import pytest


@pytest.mark.deriva(description="Small sweep")
@pytest.mark.parametrize("lr", [0.01, 0.1, 1.0])
def experiment_small(lr, execution):
    if lr == 1.0:
        raise ValueError("diverged")
    return {
        "acc": 1 - lr,
        "loss": float("nan") if lr == 0.1 else lr,
        "per_class": {"0": 0.5, "1": lr},
        "note": "ok",
    }


def experiment_number(execution):
    return 0.25
"""


@pytest.fixture
def recorded(pytester: pytest.Pytester, catalog_location: str) -> tuple[str, str]:
    """A sweep of three (one fails) and a single run returning a number, recorded in the catalog;
    (catalog, the sweep's parent RID)."""
    make_project(pytester, {"experiment_small.py": SWEEP})
    result = pytester.runpytest("--deriva-run", f"--deriva-catalog={catalog_location}", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    found = re.search(r"^sweep (\S+)\s+Small sweep", result.stdout.str(), re.MULTILINE)
    assert found, result.stdout.str()
    return catalog_location, found.group(1)


@pytest.fixture
def handle(recorded: tuple[str, str], tmp_path: Path) -> Iterator[DerivaML]:
    ml = DerivaML(recorded[0], working_dir=tmp_path / "reader")
    yield ml
    ml.catalog.close()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- the query API --------------------------------------------------------------------------------
def test_a_sweeps_children_with_parameters_metrics_and_times(recorded: tuple[str, str], handle: DerivaML) -> None:
    _, parent = recorded
    children = handle.find_executions(parent=parent)
    assert [c.parameters for c in children] == [{"lr": 0.01}, {"lr": 0.1}, {"lr": 1.0}]
    assert [c.status for c in children] == [Status.completed, Status.completed, Status.failed]
    first, second, failed = children
    assert first.metrics == {"acc": 0.99, "loss": 0.01, "per_class.0": 0.5, "per_class.1": 0.01, "note": "ok"}
    assert second.metrics["loss"] == "nan"  # kept as its text, not dropped and not a number
    assert failed.metrics == {}
    assert failed.status_detail == "ValueError: diverged"
    for c in children:
        assert c.parent == parent
        assert isinstance(c.duration, timedelta)
        assert c.start_time is not None
        assert c.stop_time is not None
        assert c.start_time <= c.stop_time
        assert isinstance(c.duration_text, str)
        assert c.duration_text.endswith("sec")
        assert c.workflow is not None
        assert c.workflow.name == "experiment_small"
    assert "metrics.json" in [a.filename for a in first.outputs]
    assert "traceback.txt" in [a.filename for a in failed.outputs]
    sweep = handle.lookup_execution(parent)
    assert sweep.parent is None
    assert sweep.parameters == {}


def test_metrics_json_stays_valid_json(handle: DerivaML, recorded: tuple[str, str], tmp_path: Path) -> None:
    second = handle.find_executions(parent=recorded[1])[1]
    [asset] = [a for a in second.outputs if a.filename == "metrics.json"]
    data = json.loads(handle.catalog.objects.get(asset.url, tmp_path / "m.json").read_text(), parse_constant=None)
    assert data == {"acc": 0.9, "loss": None, "per_class": {"0": 0.5, "1": 0.1}, "note": "ok"}


def test_a_returned_number_is_the_metric_value(handle: DerivaML) -> None:
    single = handle.find_executions(metrics={"value": 0.25})[-1]  # the server's catalog has other tests' runs
    assert single.description
    assert "experiment_number" in single.description
    assert single.parent is None


def test_filters_by_parameter_metric_status_and_time(handle: DerivaML, recorded: tuple[str, str]) -> None:
    _, parent = recorded

    def rids(**filters: object) -> list[str]:
        return [r.rid for r in handle.find_executions(parent=parent, **filters)]  # type: ignore[arg-type]

    children = rids()
    assert rids(params={"lr": 0.1}) == [children[1]]
    assert rids(params={"lr": [0.01, 1.0]}) == [children[0], children[2]]
    assert rids(params={"lr": ("<", 0.5)}) == children[:2]
    assert rids(metrics={"acc": (">", 0.95)}) == [children[0]]
    assert rids(metrics={"acc": lambda v: isinstance(v, float) and v >= 0.9}) == children[:2]
    assert rids(metrics={"per_class.1": (">=", 0.1)}) == [children[1]]
    assert rids(params={"missing": 1}) == []
    assert rids(status="Failed") == [children[2]]
    assert rids(status=["Completed", "Failed"]) == children
    assert rids(since=timedelta(hours=1)) == children
    assert rids(until="2000-01-01") == []
    assert [r.rid for r in handle.find_executions(parent=parent, limit=1)] == [children[2]]
    with pytest.raises(Exception, match="operator"):
        handle.find_executions(parent=parent, metrics={"acc": ("~", 1)})


def test_the_result_converts_to_a_table(handle: DerivaML, recorded: tuple[str, str]) -> None:
    runs = handle.find_executions(parent=recorded[1])
    records = runs.to_records()
    assert [r["params.lr"] for r in records] == [0.01, 0.1, 1.0]
    assert [r["metrics.acc"] for r in records] == [0.99, 0.9, None]
    assert {"RID", "Status", "Status_Detail", "Parent", "Start", "Stop", "Duration", "Workflow"} <= set(records[0])
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            runs.to_dataframe()
    else:
        frame = runs.to_dataframe()
        assert list(frame.index) == [r.rid for r in runs]
        assert list(frame["params.lr"]) == [0.01, 0.1, 1.0]


def test_runs_recorded_before_the_index_are_read_from_their_files(
    recorded: tuple[str, str], handle: DerivaML, tmp_path: Path
) -> None:
    location, parent = recorded
    if "://" in location:
        pytest.skip("the embedded leg stands for both: the fallback reads the same files")
    rids = [r.rid for r in handle.find_executions(parent=parent)]
    handle.catalog.delete(INDEX_SCHEMA, "Execution_Parameter", {"Execution": rids})
    handle.catalog.delete(INDEX_SCHEMA, "Execution_Metric", {"Execution": rids})
    fresh = DerivaML(location, working_dir=tmp_path / "again")
    try:
        children = fresh.find_executions(parent=parent, params={"lr": ("<", 0.5)})
        assert [c.parameters for c in children] == [{"lr": 0.01}, {"lr": 0.1}]
        assert children[0].metrics["per_class.0"] == 0.5
        assert math.isclose(float(children[1].metrics["acc"] or 0), 0.9)
        assert children[1].metrics["loss"] is None  # null in the file: the original text was not kept there
    finally:
        fresh.catalog.close()


def test_the_index_lives_outside_deriva_ml(
    recorded: tuple[str, str], handle: DerivaML, capsys: pytest.CaptureFixture[str]
) -> None:
    """Made by ``catalog init`` on a server, by the first run that writes to an embedded store;
    ``catalog init`` finds nothing more to do afterwards."""
    location, _ = recorded
    assert {"Execution_Parameter", "Execution_Metric"} <= set(handle.model.schemas[INDEX_SCHEMA].tables)
    assert "Execution_Parameter" not in handle.model.schemas["deriva-ml"].tables
    code, out, _ = run_cli(capsys, "catalog", "init", location)
    assert code == 0
    assert INDEX_SCHEMA not in out


# -- the command ----------------------------------------------------------------------------------
def test_compare_a_sweep_sorted_by_a_metric(recorded: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    location, parent = recorded
    code, out, err = run_cli(capsys, "compare", parent, "--sort", "acc", "--catalog", location)
    assert code == 0, err
    lines = out.splitlines()
    # the metrics in the order the experiment returned them
    assert lines[0].split() == ["RID", "lr", "acc", "loss", "per_class.0", "per_class.1", "note", "status", "duration"]
    assert lines[1].startswith("*")
    assert " 0.01 " in lines[1]
    assert "Completed" in lines[1]
    assert "Failed" in lines[3]
    assert "* best by acc (highest)" in out

    code, out, _ = run_cli(capsys, "compare", parent, "--sort", "per_class.1", "--asc", "--json", "--catalog", location)
    data = json.loads(out)
    assert [r["params.lr"] for r in data["runs"]] == [0.01, 0.1, 1.0]
    assert data["best"] == data["runs"][0]["RID"]
    assert data["sorted_by"] == "per_class.1"

    code, out, _ = run_cli(capsys, "compare", parent, "--csv", "--catalog", location)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["params.lr"] for r in rows] == ["0.01", "0.1", "1.0"]
    assert [r["Status"] for r in rows] == ["Completed", "Completed", "Failed"]


def test_compare_two_runs_shows_their_config_diff(
    recorded: tuple[str, str], handle: DerivaML, capsys: pytest.CaptureFixture[str]
) -> None:
    location, parent = recorded
    a, _, c = (r.rid for r in handle.find_executions(parent=parent))
    code, out, _ = run_cli(capsys, "compare", a, c, "--catalog", location)
    assert code == 0
    assert f"configuration diff {a} -> {c}:" in out
    assert "  -lr: 0.01" in out
    assert "  +lr: 1.0" in out


def test_runs_and_show(recorded: tuple[str, str], handle: DerivaML, capsys: pytest.CaptureFixture[str]) -> None:
    location, parent = recorded
    children = [r.rid for r in handle.find_executions(parent=parent)]
    code, out, _ = run_cli(capsys, "runs", "--catalog", location, "--limit", "0", "--json")
    assert code == 0
    kinds = {r["RID"]: r["Kind"] for r in json.loads(out)}
    assert kinds[parent] == "sweep of 3"
    assert kinds[children[0]] == f"child of {parent}"

    code, out, _ = run_cli(capsys, "runs", "--catalog", location, "--parent", parent, "--metric", "acc>=0.9")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == children[:2]

    code, out, _ = run_cli(capsys, "show", children[2], "--catalog", location)
    assert code == 0
    assert "status    Failed: ValueError: diverged" in out
    assert "workflow  experiment_small" in out
    assert "  lr = 1" in out
    assert "traceback:" in out
    assert "ValueError: diverged" in out.split("traceback:")[1]
    assert f"sweep     {parent}" in out

    code, out, _ = run_cli(capsys, "show", parent, "--catalog", location, "--json")
    info = json.loads(out)
    assert [c["RID"] for c in info["Children"]] == children
    assert info["Status_Detail"] == "2 of 3 completed, 1 failed"


def test_clear_errors(recorded: tuple[str, str], handle: DerivaML, capsys: pytest.CaptureFixture[str]) -> None:
    location, parent = recorded
    child = handle.find_executions(parent=parent)[0].rid
    code, _, err = run_cli(capsys, "show", "9-ZZZZ", "--catalog", location)
    assert code == 1
    assert "9-ZZZZ" in err
    assert "pytest-deriva runs" in err
    code, _, err = run_cli(capsys, "compare", child, "--catalog", location)
    assert code == 2
    assert f"{child} is not a sweep" in err
    assert f"pytest-deriva compare {parent}" in err
    code, _, err = run_cli(capsys, "compare", parent, "--sort", "f1", "--catalog", location)
    assert code == 2
    assert "no metric 'f1'" in err
    assert "acc" in err
    code, _, err = run_cli(capsys, "runs", "--metric", "acc", "--catalog", location)
    assert code == 2
    assert "NAME>VALUE" in err


def test_the_catalog_is_chosen_as_the_plugin_chooses_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make_project(pytester, {"experiment_small.py": SWEEP})
    pytester.runpytest("--deriva-run", "-p", "no:randomly").assert_outcomes(passed=3, failed=1)
    monkeypatch.delenv("DERIVA_CATALOG", raising=False)
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")  # .deriva at the project root, found from below it
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0
    assert "sweep of 3" in out

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DERIVA_CATALOG", str(pytester.path / ".deriva"))
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0
    assert "sweep of 3" in out

    monkeypatch.setenv("DERIVA_CATALOG", str(tmp_path / "nowhere"))
    code, _, err = run_cli(capsys, "runs")
    assert code == 1
    assert f"No catalog at {tmp_path / 'nowhere'} (from DERIVA_CATALOG)" in err


def test_the_installed_command(recorded: tuple[str, str]) -> None:
    location, parent = recorded
    done = subprocess.run(
        [sys.executable, "-m", "pytest_deriva.tools.main", "compare", parent, "--sort", "acc", "--catalog", location],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "* best by acc (highest)" in done.stdout


def test_a_hydra_sweep_is_found_and_compared_by_its_parameters(
    project: Path, ml: DerivaML, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli import run
    from test_config_project import write_project

    write_project(project)
    done = run(project, "--config-dir", "configs", "+multirun=grid")
    assert done.returncode == 0, done.stderr
    [parent] = [r for r in ml.find_executions() if r.list_nested_executions()]
    children = ml.find_executions(parent=parent.rid)
    assert len(children) == 4
    swept = [{k: v for k, v in c.parameters.items() if k.split(".")[-1] in ("lr", "epochs")} for c in children]
    assert len({json.dumps(s, sort_keys=True) for s in swept}) == 4, swept  # each child its own lr and epochs
    code, out, _ = run_cli(capsys, "compare", parent.rid, "--catalog", str(project / ".deriva"))
    assert code == 0
    header = out.splitlines()[0].split()
    assert any(h.endswith("lr") for h in header)
    assert any(h.endswith("epochs") for h in header)
