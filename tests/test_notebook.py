"""Notebooks as tracked runs: ``pytest-deriva notebook run`` / ``deriva-ml-run-notebook`` execute
small real notebooks (made with nbformat, in a tmp git project) in a python3 kernel of this venv's
ipykernel, on the embedded store and on the server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conftest import run_git
from pytest_deriva import DerivaML
from pytest_deriva.execution._git import git_file_info
from pytest_deriva.tools.main import main

OVERRIDES_CELL = "import json, os\nprint('overrides', json.loads(os.environ['DERIVA_ML_HYDRA_OVERRIDES']))"


def write_notebook(path: Path, *cells: str, commit: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    if commit:
        run_git(path.parent, "add", path.name)
        run_git(path.parent, "commit", "-q", "-m", f"add {path.name}")
    return path


def run(*args: str) -> int:
    return main(["notebook", "run", *args])


def printed(capsys: pytest.CaptureFixture[str], what: str = "execution") -> list[str]:
    """The RIDs the runner printed (the server's catalog is shared by the tests of a session)."""
    return re.findall(rf"{what} (\S+) ", capsys.readouterr().out)


def outputs_of(ml: DerivaML, rid: str) -> dict[str, Any]:
    """The execution's output files by name: (asset types, local copy)."""
    found = {}
    for asset in ml.lookup_execution(rid).list_assets("Output"):
        target = ml.cache_dir / "test-notebook" / rid / str(asset.filename)
        found[asset.filename] = (asset.asset_types, Path(ml.catalog.objects.get(asset.url, target)))
    return found


def executed(ml: DerivaML, rid: str, name: str) -> Any:
    types, path = outputs_of(ml, rid)[name]
    assert types == ["Notebook_Output"]
    return nbformat.read(path, as_version=4)


def stream(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    return project


def test_a_notebook_run_is_one_completed_execution_with_the_executed_notebook(
    in_project: Path, catalog_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = write_notebook(in_project / "analysis.ipynb", OVERRIDES_CELL, "6 * 7")
    assert run(str(nb), "lr=0.5", "+tag=first", "--catalog", catalog_location) == 0
    ml = DerivaML(catalog_location, working_dir=in_project / ".check")
    (rid,) = printed(capsys)
    record = ml.lookup_execution(rid)
    assert record.status.value == "Completed"
    assert record.parameters == {"lr": 0.5, "tag": "first"}
    done = executed(ml, record.execution_rid, "analysis_output.ipynb")
    assert stream(done.cells[0]) == "overrides ['lr=0.5', '+tag=first']\n"
    assert done.cells[1].outputs[0]["data"]["text/plain"] == "42"
    # The workflow is the notebook at its commit, checksummed without outputs.
    workflow = ml.lookup_workflow(record.workflow_rid)
    commit = run_git(in_project, "log", "-n1", "--pretty=%H")
    assert workflow.url == f"https://example.org/org/proj/blob/{commit}/analysis.ipynb"
    assert workflow.workflow_types == ["Analysis"]
    assert workflow.checksum == git_file_info(nb).checksum
    ml.catalog.close()


def test_a_failing_cell_fails_the_run_and_the_partial_notebook_is_recorded(
    in_project: Path, catalog_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = write_notebook(in_project / "broken.ipynb", "x = 1", "print('before')\nx / 0", "print('never')")
    assert run(str(nb), "--catalog", catalog_location) == 1
    ml = DerivaML(catalog_location, working_dir=in_project / ".check")
    (rid,) = printed(capsys)
    record = ml.lookup_execution(rid)
    assert record.status.value == "Failed"
    detail = record.status_detail or ""
    assert detail.startswith("Cell 1 failed: ZeroDivisionError: division by zero")
    assert "x / 0" in detail  # the failing cell
    assert "Traceback" in detail
    outputs = outputs_of(ml, record.execution_rid)
    assert "traceback.txt" in outputs
    done = executed(ml, record.execution_rid, "broken_output.ipynb")
    assert stream(done.cells[1]) == "before\n"
    assert [o.output_type for o in done.cells[1].outputs][-1] == "error"
    assert done.cells[2].outputs == []  # never ran
    ml.catalog.close()


def test_multirun_is_one_parent_with_a_child_per_job(
    in_project: Path, catalog_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = write_notebook(in_project / "sweep.ipynb", OVERRIDES_CELL, "assert os.environ['X'] if False else True")
    assert run(str(nb), "--multirun", "C=1,10", "--catalog", catalog_location, "gamma=0.5") == 0
    out = capsys.readouterr().out
    ml = DerivaML(catalog_location, working_dir=in_project / ".check")
    (parent_rid,) = re.findall(r"sweep (\S+) Completed: 2 of 2 completed", out)
    parent = ml.lookup_execution(parent_rid)
    assert parent.status.value == "Completed"
    children = parent.list_nested_executions()
    assert [c.execution_rid for c in children] == re.findall(r"execution (\S+) ", out)
    assert [c.parameters for c in children] == [{"C": 1, "gamma": 0.5}, {"C": 10, "gamma": 0.5}]
    assert [c.description for c in children] == ["[Job 0] Notebook sweep.ipynb", "[Job 1] Notebook sweep.ipynb"]
    for child, expected in zip(children, (["C=1", "gamma=0.5"], ["C=10", "gamma=0.5"]), strict=True):
        assert child.status.value == "Completed"
        done = executed(ml, child.execution_rid, "sweep_output.ipynb")
        assert stream(done.cells[0]) == f"overrides {expected}\n"
    ml.catalog.close()


CONFIGS = """\
from dataclasses import dataclass

from hydra_zen import store

from pytest_deriva.config import BaseConfig, DerivaMLConfig, notebook_config, with_description

store(group="deriva_ml")(DerivaMLConfig, name="default_deriva")
store(group="datasets")(with_description([], "No datasets."), name="default_dataset")
store(group="assets")(with_description([], "No assets."), name="default_asset")


@dataclass
class AnalysisConfig(BaseConfig):
    lr: float = 0.1


notebook_config("analysis", config_class=AnalysisConfig)
"""


def test_run_notebook_in_the_notebook_is_the_runners_execution(
    in_project: Path, catalog_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_project / "configs").mkdir()
    (in_project / "configs" / "__init__.py").write_text("")
    (in_project / "configs" / "analysis.py").write_text(CONFIGS)
    run_git(in_project, "add", "configs")
    nb = write_notebook(
        in_project / "tracked.ipynb",
        "from pytest_deriva.config import run_notebook\nml, execution, config = run_notebook('analysis')",
        "path = execution.asset_file_path('Execution_Asset', 'lr.txt')\npath.write_text(str(config.lr))",
        "execution.upload_execution_outputs()\nprint(execution.execution_rid)",
    )
    assert run(str(nb), "lr=0.25", "--catalog", catalog_location) == 0
    ml = DerivaML(catalog_location, working_dir=in_project / ".check")
    (rid,) = printed(capsys)
    record = ml.lookup_execution(rid)
    assert record.status.value == "Completed"
    # One execution: the notebook's run_notebook did not make another.
    assert [r.execution_rid for r in ml.find_executions(workflow=record.workflow_rid)] == [rid]
    outputs = outputs_of(ml, record.execution_rid)
    assert outputs["lr.txt"][1].read_text() == "0.25"
    done = executed(ml, record.execution_rid, "tracked_output.ipynb")
    assert stream(done.cells[2]).strip() == record.execution_rid
    ml.catalog.close()


def test_re_executing_an_unchanged_notebook_is_the_same_workflow(
    in_project: Path, ml: DerivaML, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = write_notebook(in_project / "same.ipynb", "print('hello')")
    before = git_file_info(nb)
    assert run(str(nb)) == 0
    (record,) = ml.find_executions()
    # Save the executed notebook (with its outputs) over the file, as Jupyter does.
    _, path = outputs_of(ml, record.execution_rid)["same_output.ipynb"]
    nb.write_bytes(path.read_bytes())
    after = git_file_info(nb)
    assert not after.is_dirty
    assert after.checksum == before.checksum
    assert run(str(nb)) == 0
    assert len({r.workflow_rid for r in ml.find_executions()}) == 1
    # A changed cell is a changed notebook.
    write_notebook(nb, "print('bye')", commit=False)
    assert git_file_info(nb).is_dirty
    assert run(str(nb)) == 2  # refused before anything is written
    assert "pass --allow-dirty" in capsys.readouterr().err
    assert len(ml.find_executions()) == 2


def test_bad_input_is_refused_before_anything_is_written(
    in_project: Path, ml: DerivaML, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = write_notebook(in_project / "ok.ipynb", "1")
    assert run(str(nb), "C=1,2") == 2
    assert "add --multirun" in capsys.readouterr().err
    assert run(str(nb), "C=[1") == 2
    assert "Cannot parse override 'C=[1'" in capsys.readouterr().err
    assert run(str(in_project / "missing.ipynb")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run(str(in_project / "train.py")) == 2
    assert "not a notebook" in capsys.readouterr().err
    assert run(str(nb), "--kernel", "no-such-kernel") == 2
    assert "No Jupyter kernel named 'no-such-kernel'" in capsys.readouterr().err
    assert ml.find_executions() == []


def test_without_the_extra_the_message_names_it(in_project: Path) -> None:
    nb = write_notebook(in_project / "ok.ipynb", "1")
    code = (
        "import sys\nsys.modules['nbclient'] = None  # as if it were not installed\n"
        "from pytest_deriva.tools.notebook import main\nsys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(nb)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "pip install 'pytest-deriva[notebooks]'" in done.stderr
    assert "nbclient" in done.stderr
    assert not (in_project / ".deriva").exists()


def test_the_upstream_entry_point_runs_a_notebook(in_project: Path) -> None:
    nb = write_notebook(in_project / "entry.ipynb", OVERRIDES_CELL)
    script = Path(sys.executable).parent / "deriva-ml-run-notebook"
    done = subprocess.run([str(script), str(nb), "k=v"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Completed" in done.stdout
    ml = DerivaML(in_project / ".deriva", read_only=True, working_dir=in_project / ".w", cache_dir=in_project / ".c")
    (record,) = ml.find_executions()
    assert json.loads(json.dumps(record.parameters)) == {"k": "v"}
    ml.catalog.close()


# -- experiment notebooks under pytest --deriva-run -----------------------------------------------
EXPERIMENT_PY = """
def experiment_plain(execution):
    execution.asset_file_path("Execution_Asset", "plain.txt").write_text("plain")
"""


def test_experiment_notebooks_are_collected_and_recorded_one_execution_each(
    pytester: pytest.Pytester, catalog_location: str
) -> None:
    root = pytester.path
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "experiment_plain.py").write_text(EXPERIMENT_PY)
    run_git(root, "init", "-q", "-b", "main")
    write_notebook(root / "experiment_ok.ipynb", "print('fine')", commit=False)
    write_notebook(root / "experiment_broken.ipynb", "x = 1", "x / 0", commit=False)
    write_notebook(root / "notes.ipynb", "raise SystemExit('not an experiment')", commit=False)
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "experiments")

    listed = pytester.runpytest("--deriva-run", "--collect-only", "-q", f"--deriva-catalog={root}-collect")
    assert sorted(line for line in listed.outlines if "::" in line) == [
        "experiment_broken.ipynb::experiment_broken",
        "experiment_ok.ipynb::experiment_ok",
        "experiment_plain.py::experiment_plain",
    ]
    result = pytester.runpytest_subprocess("--deriva-run", "-n", "2", f"--deriva-catalog={catalog_location}")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert out.count("deriva: recorded executions") == 1
    rids = {}
    for name in ("experiment_ok.ipynb::experiment_ok", "experiment_broken.ipynb::experiment_broken"):
        (line,) = [line for line in result.outlines if line.endswith(name) or f"  {name}  " in line]
        rids[name.split(".")[0]] = line.split()[0]
    assert "Cell 1 failed: ZeroDivisionError: division by zero" in out

    ml = DerivaML(catalog_location, working_dir=root / ".check")
    ok = ml.lookup_execution(rids["experiment_ok"])
    assert ok.status.value == "Completed"
    assert stream(executed(ml, ok.execution_rid, "experiment_ok_output.ipynb").cells[0]) == "fine\n"
    assert ml.lookup_workflow(ok.workflow_rid).workflow_types == ["Analysis"]
    broken = ml.lookup_execution(rids["experiment_broken"])
    assert broken.status.value == "Failed"
    assert "Cell 1 failed: ZeroDivisionError: division by zero" in (broken.status_detail or "")
    assert "x / 0" in (broken.status_detail or "")
    done = executed(ml, broken.execution_rid, "experiment_broken_output.ipynb")
    assert done.cells[1].outputs[-1].output_type == "error"
    ml.catalog.close()


def test_secret_overrides_reach_the_notebook_but_no_record(
    in_project: Path, ml: DerivaML, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = write_notebook(
        in_project / "secret.ipynb",
        OVERRIDES_CELL,
        "raise ValueError(json.loads(os.environ['DERIVA_ML_HYDRA_OVERRIDES'])[0].split('=')[1])",
    )
    assert run(str(nb), "api_token=hunter22", "lr=1") == 1
    out = capsys.readouterr().out
    assert "api_token=***" in out
    assert "hunter22" not in out
    (record,) = ml.find_executions()
    assert record.parameters == {"api_token": "***", "lr": 1}
    assert "ValueError: ***" in (record.status_detail or "")  # the kernel saw it; the record does not
    assert "hunter22" not in (record.status_detail or "")
    for _, path in outputs_of(ml, record.execution_rid).values():
        assert b"hunter22" not in path.read_bytes()
    assert "***" in stream(executed(ml, record.execution_rid, "secret_output.ipynb").cells[0])


def test_a_named_multirun_from_the_notebooks_configs(in_project: Path) -> None:
    (in_project / "configs").mkdir()
    (in_project / "configs" / "__init__.py").write_text("")
    (in_project / "configs" / "multiruns.py").write_text(
        "from pytest_deriva.config import multirun_config\n\n"
        "multirun_config('grid', ['C=1,2', 'gamma=0.5'], description='A named grid')\n"
    )
    run_git(in_project, "add", "configs")
    nb = write_notebook(in_project / "named.ipynb", OVERRIDES_CELL)
    script = str(Path(sys.executable).parent / "deriva-ml-run-notebook")
    refused = subprocess.run([script, str(nb), "+multirun=grid"], capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert "is a sweep of 2 job(s); add --multirun" in refused.stderr
    done = subprocess.run([script, str(nb), "-m", "+multirun=grid"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    ml = DerivaML(in_project / ".deriva", read_only=True, working_dir=in_project / ".w", cache_dir=in_project / ".c")
    (parent,) = [r for r in ml.find_executions() if r.parent is None]
    assert parent.description == "A named grid"
    children = parent.list_nested_executions()
    assert [c.parameters for c in children] == [{"C": 1, "gamma": 0.5}, {"C": 2, "gamma": 0.5}]
    assert [c.description for c in children] == ["[Job 0] A named grid", "[Job 1] A named grid"]
    ml.catalog.close()
