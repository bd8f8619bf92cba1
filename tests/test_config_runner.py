"""run_model under Hydra, in this process: single runs, sweeps with the basic launcher, dry runs,
refused configs and notebooks, against the embedded catalog of a real git project.

The launchers that run jobs in other processes (joblib, submitit) are tested through
``deriva-run`` in test_cli.py.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hydra_zen import builds, launch, store

from pytest_deriva import DRY_RUN_RID, DerivaML, DerivaMLConfigurationError
from pytest_deriva.config import (
    base_defaults,
    get_notebook_configuration,
    load_configs,
    reset_multirun_state,
    run_model,
    run_model_task,
    run_notebook,
)
from pytest_deriva.config import runner as runner_module
from test_config_project import executions, isolated_hydra, sweep_of, unique, write_project

DURATION_RE = re.compile(r"^\d+\.0H \d+\.0min \d+(\.\d+)?sec$")


@dataclass
class Tiny:
    project: Path
    pkg: str
    models: str
    ml: DerivaML
    main: Any  # the main config class (create_model_config)
    calls: Path

    def run(self, *overrides: str, multirun: bool = False, task: Callable[[Any], Any] = run_model_task) -> Any:
        return launch(
            self.main,
            task,
            overrides=list(overrides),
            multirun=multirun,
            version_base="1.3",
            config_name="deriva_model",
            job_name="tiny",
        )

    def model_calls(self) -> list[dict[str, Any]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]


@pytest.fixture
def tiny(project: Path, ml: DerivaML, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tiny]:
    with isolated_hydra():
        pkg, models = unique("cfg"), unique("models")
        write_project(project, pkg, models)
        monkeypatch.chdir(project)
        monkeypatch.syspath_prepend(str(project))
        calls = project / "calls.jsonl"
        monkeypatch.setenv("TINY_MODEL_CALLS", str(calls))
        load_configs(pkg)
        store.add_to_hydra_store(overwrite_ok=True)
        main = importlib.import_module(f"{pkg}.base").DerivaModelConfig
        yield Tiny(project, pkg, models, ml, main, calls)


def configuration_of(ml: DerivaML, execution_rid: str) -> dict[str, Any]:
    record = ml.lookup_execution(execution_rid)
    for asset in record.list_assets(asset_role="Output"):
        if asset.filename == "configuration.json":
            path = ml.catalog.objects.get(asset.url, ml.cache_dir / "test" / execution_rid / "configuration.json")
            return json.loads(Path(path).read_text())  # type: ignore[no-any-return]
    raise AssertionError(f"no configuration.json for {execution_rid}")


# -- single runs ---------------------------------------------------------------------------------
def test_a_single_run_records_one_execution_with_hydra_files_and_choices(tiny: Tiny) -> None:
    job = tiny.run("model_config=fast")
    runs = executions(tiny.ml)
    assert len(runs) == 1
    (run,) = runs.values()
    assert run["Status"] == "Completed"
    assert run["Description"] == "Tiny model"
    assert DURATION_RE.match(run["Duration"])
    run_dir = Path(job.hydra_cfg.hydra.runtime.output_dir).name
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        assert f"hydra-{run_dir}-{name}" in run["metadata"]
    config = configuration_of(tiny.ml, run["RID"])
    assert config["config_choices"]["model_config"] == "fast"
    assert config["config_choices"]["workflow"] == "default_workflow"
    # The workflow is the model's own file at its commit, not the runner.
    workflow = tiny.ml.lookup_workflow(run["Workflow"])
    assert workflow.url is not None
    assert workflow.url.endswith(f"/{tiny.models}/tiny.py")
    assert tiny.model_calls() == [{"lr": 0.5, "epochs": 1, "execution": True}]
    assert [a.filename for a in tiny.ml.list_assets("Execution_Asset")] == ["metrics.json"]


def test_an_experiment_override_selects_its_options(tiny: Tiny) -> None:
    tiny.run("+experiment=quick")
    (run,) = executions(tiny.ml).values()
    assert run["Description"] == "Quick tiny run"
    assert configuration_of(tiny.ml, run["RID"])["config_choices"]["experiment"] == "quick"


# -- sweeps with the basic launcher ----------------------------------------------------------
def test_a_basic_launcher_sweep_has_one_parent_and_four_children_in_job_order(tiny: Tiny) -> None:
    tiny.run("model_config.lr=0.1,0.01", "model_config.epochs=1,2", multirun=True)
    parent, children = sweep_of(tiny.ml)
    assert parent["Description"] == "Tiny model"
    assert parent["Status"] == "Completed"
    assert parent["Status_Detail"] == "4 of 4 completed"
    assert DURATION_RE.match(parent["Duration"])
    assert [seq for _, seq in sorted(parent["children"], key=lambda c: c[1])] == [0, 1, 2, 3]
    assert parent["ordered"] == [c["RID"] for c in children]
    assert [c["Description"] for c in children] == [f"[Job {n}] Tiny model" for n in range(4)]
    for n, child in enumerate(children):
        assert child["Status"] == "Completed"
        assert {f"hydra-{n}-config.yaml", f"hydra-{n}-overrides.yaml", f"hydra-{n}-hydra.yaml"} <= set(
            child["metadata"]
        )
    # The parent records the sweep's multirun.yaml; the jobs ran in Hydra's order.
    assert any(name.endswith("-multirun.yaml") for name in parent["metadata"])
    assert [(c["lr"], c["epochs"]) for c in tiny.model_calls()] == [(0.1, 1), (0.1, 2), (0.01, 1), (0.01, 2)]


def test_a_failed_job_still_closes_the_parent_with_the_summary(tiny: Tiny) -> None:
    with pytest.raises(RuntimeError, match="epochs=2 diverged"):
        tiny.run("model_config.lr=0.1,0.01", "model_config.epochs=1,2", "model_config.fail_on=2", multirun=True)
    parent, children = sweep_of(tiny.ml)
    assert [c["Status"] for c in children] == ["Completed", "Failed", "Completed", "Failed"]
    assert parent["Status"] == "Failed"
    assert parent["Status_Detail"] == "2 of 4 completed, 2 failed"
    assert DURATION_RE.match(parent["Duration"])


def test_reset_multirun_state_isolates_sweeps_in_one_process(tiny: Tiny, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "same-sweep-dir"
    tiny.run("model_config.lr=0.1,0.01", "model_config.epochs=1,2", f"hydra.sweep.dir={sweep_dir}", multirun=True)
    assert runner_module._handles, "the sweep's process kept its catalog handle"
    reset_multirun_state()
    assert not runner_module._handles
    first, _ = sweep_of(tiny.ml)
    tiny.run("model_config.lr=0.5,0.6", "model_config.epochs=3,4", f"hydra.sweep.dir={sweep_dir}", multirun=True)
    reset_multirun_state()
    runs = executions(tiny.ml)
    parents = [r for r in runs.values() if r["children"]]
    assert len(parents) == 2
    assert len(runs) == 10
    second = next(p for p in parents if p["RID"] != first["RID"])
    assert runs[first["RID"]]["children"] == first["children"]  # the first sweep gained no children
    assert len(second["children"]) == 4
    assert {p["Status_Detail"] for p in parents} == {"4 of 4 completed"}


def test_a_sweep_without_the_callback_still_has_one_parent(tiny: Tiny) -> None:
    # A main config written by hand, as older projects do: builds(run_model) without the callback.
    plain = builds(run_model, description="Plain", populate_full_signature=True, hydra_defaults=base_defaults)
    launch(
        plain,
        run_model_task,
        overrides=["model_config.epochs=1,2,3"],
        multirun=True,
        version_base="1.3",
        config_name="plain_main",
    )
    parent, children = sweep_of(tiny.ml)
    assert len(children) == 3
    assert parent["Status"] == "Completed"
    assert parent["Status_Detail"] == "3 of 3 completed"


# -- dry runs and refused configs ----------------------------------------------------------
def test_a_dry_run_records_nothing_and_does_not_call_the_model(
    tiny: Tiny, state: Callable[[DerivaML], dict[str, Any]]
) -> None:
    before = state(tiny.ml)
    tiny.run("dry_run=true")
    tiny.run("dry_run=true", "model_config.epochs=1,2", multirun=True)
    assert state(tiny.ml) == before
    assert tiny.model_calls() == []


def test_a_dry_run_calls_a_script_config_without_an_execution(
    tiny: Tiny, state: Callable[[DerivaML], dict[str, Any]]
) -> None:
    train = importlib.import_module(f"{tiny.models}.tiny").train
    before = state(tiny.ml)
    import functools

    run_model(
        deriva_ml=None,
        datasets=[],
        assets=[],
        description="preview",
        workflow=None,
        model_config=functools.partial(train, lr=0.3),
        script_config=functools.partial(train, lr=0.7),
        dry_run=True,
    )
    assert state(tiny.ml) == before
    assert tiny.model_calls() == [{"lr": 0.7, "epochs": 2, "execution": False}]
    assert DRY_RUN_RID == "0000"


def test_a_value_of_the_wrong_type_is_refused_before_anything_is_written(
    tiny: Tiny, state: Callable[[DerivaML], dict[str, Any]]
) -> None:
    before = state(tiny.ml)
    with pytest.raises(DerivaMLConfigurationError, match=r"optimizer: expects Literal\['sgd', 'adam'\], got 'adamw'"):
        tiny.run("model_config.optimizer=adamw")
    with pytest.raises(DerivaMLConfigurationError, match="optimizer"):
        tiny.run("model_config.optimizer=sgd,adamw", multirun=True)
    assert state(tiny.ml) == before
    assert tiny.model_calls() == []


def test_a_catalog_that_does_not_exist_is_refused(tiny: Tiny, tmp_path: Path) -> None:
    with pytest.raises(DerivaMLConfigurationError, match="does not exist"):
        tiny.run(f"++deriva_ml.catalog={tmp_path / 'missing'}")
    assert not (tmp_path / "missing").exists()


# -- notebooks -------------------------------------------------------------------------------------
def test_notebooks_resolve_their_config_and_record_an_analysis(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = importlib.import_module(f"{tiny.pkg}.roc_analysis").RocBuilds
    monkeypatch.setenv("DERIVA_ML_HYDRA_OVERRIDES", json.dumps(["threshold=0.8", "execution_rids=[1,2]"]))
    config = get_notebook_configuration(conf, "roc_analysis", overrides=["execution_rids=[3JRC,3KT0]"])
    assert config.threshold == 0.8
    assert list(config.execution_rids) == ["3JRC", "3KT0"]
    assert config.config_choices["deriva_ml"] == "default_deriva"

    monkeypatch.delenv("DERIVA_ML_HYDRA_OVERRIDES")
    ml, execution, config = run_notebook(
        "roc_analysis", config_package=tiny.pkg, source_path=tiny.project / "deriva_run.py"
    )
    assert config.threshold == 0.7
    row = executions(ml)[execution.execution_rid]
    assert row["Status"] == "Running"
    assert row["Description"] == "ROC analysis"
    assert any(n.endswith("-config.yaml") for n in row["metadata"])
    assert ml.lookup_workflow(execution.workflow_rid).workflow_types == ["Analysis"]
    execution.upload_execution_outputs()
    assert ml.lookup_execution(execution.execution_rid).status.value == "Completed"
    ml.catalog.close()

    monkeypatch.setenv("DERIVA_ML_HYDRA_OVERRIDES", "not json")
    with pytest.raises(DerivaMLConfigurationError, match="DERIVA_ML_HYDRA_OVERRIDES"):
        get_notebook_configuration(conf, "roc_analysis")
