"""``deriva-run``: the upstream config layout run unchanged, sweeps with the basic, joblib and
submitit launchers (in subprocesses), Hydra's flags passed through, and errors without tracebacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_deriva import DerivaML
from pytest_deriva.cli import main
from test_config_project import executions, isolated_hydra, run_git, subprocess_env, sweep_of, unique, write_project

DERIVA_RUN = Path(sys.executable).with_name("deriva-run")
TIMEOUT = 120  # seconds for one subprocess run; a launcher that hangs fails the test, not the suite


def run(project: Path, *args: str, script: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``deriva-run *args`` (or ``python script *args``) in ``project``, in a fresh process."""
    if script is not None:
        command = [sys.executable, str(script), *args]
    elif DERIVA_RUN.exists():
        command = [str(DERIVA_RUN), *args]
    else:  # not installed as a console script: the same entry point
        command = [sys.executable, "-m", "pytest_deriva.cli", *args]
    done = subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=TIMEOUT, env=subprocess_env(), check=False
    )
    assert "Traceback" not in done.stderr or done.returncode != 0, done.stderr
    return done


@pytest.fixture
def layout(project: Path, ml: DerivaML) -> Path:
    """The upstream layout, named as upstream names it: ``configs/`` and ``models/``."""
    write_project(project)
    return project


# -- the upstream layout, unchanged ----------------------------------------------------------
def test_deriva_run_runs_the_upstream_layout(layout: Path, ml: DerivaML) -> None:
    done = run(layout, "--config-dir", "configs", "model_config=fast")
    assert done.returncode == 0, done.stderr
    (execution,) = executions(ml).values()
    assert execution["Status"] == "Completed"
    assert execution["Description"] == "Tiny model"
    assert {n.split("-", 4)[-1] for n in execution["metadata"] if n.startswith("hydra-")} >= {
        "config.yaml",
        "overrides.yaml",
        "hydra.yaml",
    }
    url = ml.lookup_workflow(execution["Workflow"]).url
    assert url is not None
    assert url.endswith("/models/tiny.py")


def test_upstreams_runner_script_runs_unchanged(layout: Path, ml: DerivaML) -> None:
    # src/deriva_run.py of the model template: zen(run_model).hydra_main(config_name="deriva_model").
    done = run(layout, "+experiment=quick", script=layout / "deriva_run.py")
    assert done.returncode == 0, done.stderr
    (execution,) = executions(ml).values()
    assert execution["Description"] == "Quick tiny run"
    url = ml.lookup_workflow(execution["Workflow"]).url
    assert url is not None
    assert url.endswith("/models/tiny.py"), "the workflow is the model's file, not the runner"


@pytest.mark.parametrize(
    "launcher",
    [
        [],
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=2"],
    ],
    ids=["basic", "joblib", "submitit_local"],
)
def test_a_sweep_has_one_parent_with_four_children_with_every_launcher(
    layout: Path, ml: DerivaML, launcher: list[str]
) -> None:
    done = run(layout, "--config-dir", "configs", "+multirun=grid", *launcher)
    assert done.returncode == 0, done.stderr
    parent, children = sweep_of(ml)
    assert parent["Description"] == "## Grid\n\nA 2x2 grid over lr and epochs."
    assert parent["Status"] == "Completed"
    assert parent["Status_Detail"] == "4 of 4 completed"
    assert parent["Duration"]
    assert sorted(seq for _, seq in parent["children"]) == [0, 1, 2, 3]
    assert parent["ordered"] == [c["RID"] for c in children]
    assert [c["Description"] for c in children] == [f"[Job {n}] Tiny model" for n in range(4)]
    for n, child in enumerate(children):
        assert child["Status"] == "Completed"
        assert {f"hydra-{n}-config.yaml", f"hydra-{n}-overrides.yaml", f"hydra-{n}-hydra.yaml"} <= set(
            child["metadata"]
        ), child["metadata"]
    # Each child ran its own job's values, in Hydra's job order.
    for child, (lr, epochs) in zip(children, [(0.1, 1), (0.1, 2), (0.01, 1), (0.01, 2)], strict=True):
        overrides = f"hydra-{children.index(child)}-overrides.yaml"
        assert overrides in child["metadata"]
        metrics = [a for a in ml.lookup_execution(child["RID"]).list_assets("Output") if a.filename == "metrics.json"]
        stored = json.loads(
            Path(ml.catalog.objects.get(metrics[0].url, ml.cache_dir / child["RID"] / "m.json")).read_text()
        )
        assert (stored["lr"], stored["epochs"]) == (lr, epochs)


# -- in this process: flags and errors -----------------------------------------------------------
@dataclass
class Cli:
    project: Path
    pkg: str
    ml: DerivaML
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config-dir", str(self.project / self.pkg), *args])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(
    project: Path, ml: DerivaML, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    with isolated_hydra():
        pkg = unique("cfgcli")
        write_project(project, pkg, unique("models"))
        monkeypatch.chdir(project)
        yield Cli(project, pkg, ml, capsys)


def test_info_lists_groups_options_and_multiruns(cli: Cli) -> None:
    code, out, _ = cli("--info")
    assert code == 0
    assert "model_config:\n  - default_model\n  - fast\n  - slow" in out
    assert "experiment:\n  - quick" in out
    assert "multirun (+multirun=<name>):\n  - grid: Grid" in out


def test_hydras_flags_pass_through(cli: Cli, state: Callable[[DerivaML], dict[str, Any]]) -> None:
    before = state(cli.ml)
    code, out, _ = cli("--cfg", "job", "+experiment=quick")
    assert code == 0
    assert "description: Quick tiny run" in out
    assert "lr: 0.5" in out
    code, out, _ = cli("--help")
    assert code == 0
    assert "--config-dir" in out
    assert "+multirun=<name>" in out
    assert "== Configuration groups ==" in out
    assert "model_config: default_model, fast, slow" in out
    assert state(cli.ml) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["+multirun=gird"], "Unknown multirun config 'gird'. Available multirun configs: grid."),
        (["model_config=fsat"], "Options of 'model_config': default_model, fast, slow."),
        (["-m", "model_config=fast,fsat"], "Unknown option 'fsat' of config group 'model_config'"),
        (["model_config.lr=0.1,,0.2"], "    model_config.lr=0.1,,0.2\n                        ^"),
        (["model_config.epochs=ten"], "Value 'ten' of type 'str' could not be converted to Integer"),
        (["model_config.optimizer=adamw"], "optimizer: expects Literal['sgd', 'adam'], got 'adamw'"),
        (["-m", "model_config.optimizer=sgd,adamw"], "optimizer: expects Literal['sgd', 'adam'], got 'adamw'"),
        (["--catalog", "no/such/catalog"], "does not exist"),
        (["--config-name", "nope"], "No main config 'nope' in the store. Top-level configs: "),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_bad_input_is_a_clear_error_without_a_traceback_and_writes_nothing(
    cli: Cli, state: Callable[[DerivaML], dict[str, Any]], args: list[str], expected: str
) -> None:
    before = state(cli.ml)
    code, out, err = cli(*args)
    assert code == 1
    assert expected in err, err
    assert "Traceback" not in err + out
    assert state(cli.ml) == before
    assert not (cli.project / "calls.jsonl").exists()


def test_allow_dirty_and_catalog(cli: Cli, tmp_path: Path) -> None:
    model = next(cli.project.glob("models_*/tiny.py"))
    model.write_text(model.read_text() + "\n# an uncommitted change\n")
    code, _, err = cli("model_config=fast")
    assert code == 1
    assert "uncommitted changes" in err
    assert "Traceback" not in err
    assert executions(cli.ml) == {}

    other = DerivaML(tmp_path / "other")
    try:
        code, _, err = cli("--allow-dirty", "--catalog", str(tmp_path / "other"), "model_config=fast")
        assert code == 0, err
        (execution,) = executions(other).values()
        assert execution["Status"] == "Completed"
        assert any(n.startswith("workflow-diff-") for n in execution["metadata"])  # the change is recorded
        assert executions(cli.ml) == {}
    finally:
        other.catalog.close()


def test_a_failing_model_keeps_its_traceback_and_the_sweep_is_closed(cli: Cli) -> None:
    code, _, err = cli("-m", "model_config.epochs=1,2", "model_config.fail_on=2")
    assert code == 1
    assert "RuntimeError: epochs=2 diverged" in err
    parent, children = sweep_of(cli.ml)
    assert [c["Status"] for c in children] == ["Completed", "Failed"]
    assert parent["Status"] == "Failed"
    assert parent["Status_Detail"] == "1 of 2 completed, 1 failed"


def test_the_summary_shows_every_run_and_where_hydras_folders_went(cli: Cli) -> None:
    code, out, _ = cli("model_config.epochs=1")
    assert code == 0
    (single,) = executions(cli.ml)
    lines = out.splitlines()
    assert "runs" in lines
    [row] = [line for line in lines if line.strip().startswith(single)]
    assert row.split()[0] == single, row
    assert "Completed" in row, row
    [where] = [line for line in lines if line.startswith("Hydra's output folders: ")]
    folder = Path(where.removeprefix("Hydra's output folders: "))
    assert folder.is_relative_to(Path(tempfile.gettempdir()) / "deriva-run"), folder
    assert folder.parent.parent.name == "outputs", folder
    assert (folder / ".hydra" / "config.yaml").is_file()
    assert not (cli.project / "outputs").exists()

    code, out, _ = cli("-m", "model_config.epochs=1,2", "model_config.fail_on=2")
    assert code == 1
    runs = executions(cli.ml)
    [parent] = [r for r in runs.values() if r["children"]]
    children = [runs[rid] for rid, _ in sorted(parent["children"], key=lambda c: c[1])]
    lines = out.splitlines()
    assert f"sweep {parent['RID']}  Tiny model  Failed: 1 of 2 completed, 1 failed" in lines
    ok, failed = ([line for line in lines if line.strip().split()[1:2] == [c["RID"]]] for c in children)
    assert ok[0].split()[:4] == ["0", children[0]["RID"], "model_config.epochs=1", "Completed"], ok
    assert failed[0].split()[:3] == ["1", children[1]["RID"], "model_config.epochs=2"], failed
    assert "Failed: RuntimeError: epochs=2 diverged" in failed[0]
    [where] = [line for line in lines if line.startswith("Hydra's output folders: ")]
    assert Path(where.removeprefix("Hydra's output folders: ")).parent.parent.name == "multirun", where
    assert not (cli.project / "multirun").exists()


def _metrics_file(ml: DerivaML, rid: str) -> dict[str, Any]:
    """The metrics.json the tiny model wrote as an Execution_Asset of run ``rid``."""
    [asset] = [
        a
        for a in ml.lookup_execution(rid).list_assets("Output")
        if a.asset_table == "Execution_Asset" and a.filename == "metrics.json"
    ]
    return dict(json.loads(Path(ml.catalog.objects.get(asset.url, ml.cache_dir / rid / "metrics.json")).read_text()))


def test_reproduce_reruns_a_deriva_run_child_at_its_commit(layout: Path, ml: DerivaML) -> None:
    """``pytest-deriva reproduce`` of a multirun's child: deriva-run again at the recorded commit,
    with the recorded config dir and name and that job's values only, into the same catalog."""
    done = run(layout, "--config-dir", "configs", "-m", "model_config.epochs=1,3")
    assert done.returncode == 0, done.stderr
    _, children = sweep_of(ml)
    original = children[1]["RID"]
    assert _metrics_file(ml, original) == {"lr": 0.1, "epochs": 3, "loss": 0.1 / 3}
    # The project moves on: the model's loss changes, committed. The reproduction runs the old code.
    model = layout / "models" / "tiny.py"
    model.write_text(model.read_text().replace('"loss": lr / epochs', '"loss": 2 * lr / epochs'))
    run_git(layout, "commit", "-qam", "loss doubled")

    again = subprocess.run(
        [sys.executable, "-m", "pytest_deriva.tools.main", "reproduce", original],
        cwd=layout,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=subprocess_env(),
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"reproducing {original} ([Job 1] Tiny model): models/tiny.py at commit" in again.stdout
    assert "with deriva-run" in again.stdout
    [new] = [r for r in ml.find_executions() if r.description == f"Reproduces {original}: [Job 1] Tiny model"]
    assert new.status.value == "Completed"
    assert new.parent is None  # a run of its own, not a child of the sweep
    assert new.workflow is not None
    assert new.workflow.checksum == ml.lookup_execution(original).workflow.checksum  # type: ignore[union-attr]
    assert _metrics_file(ml, new.rid) == {"lr": 0.1, "epochs": 3, "loss": 0.1 / 3}
    assert f"recorded {new.rid}: Completed" in again.stdout
    assert len(run_git(layout, "worktree", "list").splitlines()) == 1  # the temporary worktree is gone
