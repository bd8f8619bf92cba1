"""A hydra-zen project in the upstream config layout, written into a real git repository, and
the helpers the configuration tests share (imported by test_config_*.py and test_cli.py).

The layout is the one of ``examples/hydra_project`` and of DerivaML's model template: a config
package with ``base.py`` (the main config), ``deriva.py``, ``datasets.py``, ``assets.py``,
``workflow.py``, a model config module, ``experiments.py`` and ``multiruns.py``, and a model
function in its own package. The tests in this module check the example project itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_deriva import DerivaML

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hydra_project"

MODEL = '''\
"""A tiny model in DerivaML's style: its parameters, then ml_instance and execution."""

from __future__ import annotations

import json
import os
from typing import Literal


def train(
    lr: float = 0.1,
    epochs: int = 2,
    optimizer: Literal["sgd", "adam"] = "sgd",
    fail_on: int | None = None,
    ml_instance=None,
    execution=None,
) -> None:
    calls = os.environ.get("TINY_MODEL_CALLS")
    if calls:
        with open(calls, "a") as f:
            f.write(json.dumps({"lr": lr, "epochs": epochs, "execution": execution is not None}) + "\\n")
    if fail_on is not None and epochs == fail_on:
        raise RuntimeError(f"epochs={epochs} diverged")
    if execution is not None:
        out = execution.asset_file_path("Execution_Asset", "metrics.json")
        out.write_text(json.dumps({"lr": lr, "epochs": epochs, "loss": lr / epochs}))
'''

CONFIGS = {
    "__init__.py": '"""Configs of the tiny project."""\n',
    "base.py": """\
from hydra_zen import store

from pytest_deriva.config import create_model_config

DerivaModelConfig = create_model_config(description="Tiny model")
store(DerivaModelConfig, name="deriva_model")
""",
    "deriva.py": """\
from hydra_zen import store

from pytest_deriva.config import DerivaMLConfig

deriva_store = store(group="deriva_ml")
deriva_store(DerivaMLConfig, name="default_deriva")
""",
    "datasets.py": """\
from hydra_zen import store

from pytest_deriva.config import with_description

datasets_store = store(group="datasets")
datasets_store(with_description([], "No datasets."), name="default_dataset")
""",
    "assets.py": """\
from hydra_zen import store

from pytest_deriva.config import with_description

store(group="assets")(with_description([], "No assets."), name="default_asset")
""",
    "workflow.py": """\
from hydra_zen import builds, store

from pytest_deriva import Workflow

store(group="workflow")(
    builds(Workflow, name="Tiny", workflow_type="Training", populate_full_signature=True),
    name="default_workflow",
)
""",
    "tiny.py": """\
from hydra_zen import builds, store

from {models}.tiny import train

TinyConfig = builds(train, populate_full_signature=True, zen_partial=True)
model_store = store(group="model_config")
model_store(TinyConfig, name="default_model", zen_meta={{"description": "Two epochs at lr 0.1"}})
model_store(TinyConfig, name="fast", epochs=1, lr=0.5, zen_meta={{"description": "One quick epoch"}})
model_store(TinyConfig, name="slow", epochs=5, lr=0.01)
""",
    "experiments.py": """\
from hydra_zen import make_config, store

from {pkg}.base import DerivaModelConfig

experiment_store = store(group="experiment", package="_global_")
experiment_store(
    make_config(
        hydra_defaults=["_self_", {{"override /model_config": "fast"}}],
        description="Quick tiny run",
        bases=(DerivaModelConfig,),
    ),
    name="quick",
)
""",
    "roc_analysis.py": """\
from dataclasses import dataclass
from typing import Any

from pytest_deriva.config import BaseConfig, notebook_config


@dataclass
class RocConfig(BaseConfig):
    threshold: float = 0.5
    execution_rids: Any = None


RocBuilds = notebook_config("roc_analysis", config_class=RocConfig, threshold=0.7, description="ROC analysis")
""",
    "multiruns.py": """\
from pytest_deriva.config import multirun_config

multirun_config(
    "grid",
    overrides=["model_config.lr=0.1,0.01", "model_config.epochs=1,2"],
    description="## Grid\\n\\nA 2x2 grid over lr and epochs.",
)
""",
}

#: Upstream's runner script (the model template's src/deriva_run.py), unchanged in shape.
RUNNER = """\
from hydra_zen import store, zen

from pytest_deriva.config import load_configs, run_model

load_configs("{pkg}")

if __name__ == "__main__":
    store.add_to_hydra_store()
    zen(run_model).hydra_main(config_name="deriva_model", version_base="1.3", config_path=None)
"""


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def write_project(root: Path, pkg: str = "configs", models: str = "models") -> Path:
    """Write the config package ``pkg`` and the model package ``models`` into the git
    repository ``root``, with a runner script, and commit them. Returns the config folder."""
    (root / models).mkdir(parents=True, exist_ok=True)
    (root / models / "__init__.py").write_text("")
    (root / models / "tiny.py").write_text(MODEL)
    (root / pkg).mkdir(exist_ok=True)
    for name, text in CONFIGS.items():
        (root / pkg / name).write_text(text.format(pkg=pkg, models=models))
    (root / "deriva_run.py").write_text(RUNNER.format(pkg=pkg))
    (root / ".gitignore").write_text(".deriva/\noutputs/\nmultirun/\n")
    run_git(root, "add", ".")
    run_git(root, "commit", "-q", "-m", "tiny hydra project")
    return root / pkg


@contextmanager
def isolated_hydra() -> Iterator[None]:
    """Undo what loading a config package does to the process: hydra-zen's store, Hydra's
    ConfigStore, the multirun and notebook registries, sys.path, imported modules, open handles."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra_zen import store

    from pytest_deriva.config import multirun, notebook, reset_multirun_state

    saved_repo = dict(store._internal_repo)
    saved_queue = set(store._queue)
    saved_cs = set(_leaves(ConfigStore.instance().repo))
    saved_multiruns = dict(multirun._registry)
    saved_notebooks = dict(notebook._notebook_configs)
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    try:
        yield
    finally:
        reset_multirun_state()
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # type: ignore[assignment]
        store._internal_repo.clear()
        store._internal_repo.update(saved_repo)
        store._queue.clear()
        store._queue.update(saved_queue)
        # Forget the configs the test stored; keep what Hydra's plugins registered meanwhile.
        for path in set(_leaves(ConfigStore.instance().repo)) - saved_cs:
            if path[0] != "hydra":
                _delete(ConfigStore.instance().repo, path)
        multirun._registry.clear()
        multirun._registry.update(saved_multiruns)
        notebook._notebook_configs.clear()
        notebook._notebook_configs.update(saved_notebooks)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            del sys.modules[name]


def _leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


def _delete(tree: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree.pop(path[-1], None)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def executions(ml: DerivaML) -> dict[str, dict[str, Any]]:
    """Every execution by RID: its row, its children (job order) and its metadata file names."""
    out: dict[str, dict[str, Any]] = {}
    for row in ml.catalog.select("deriva-ml", "Execution"):
        links = ml.catalog.select("deriva-ml", "Execution_Execution", {"Execution": row["RID"]})
        record = ml.lookup_execution(row["RID"])
        out[row["RID"]] = {
            **row,
            "children": [(link["Nested_Execution"], link["Sequence"]) for link in links],
            "ordered": [c.execution_rid for c in record.list_nested_executions()],
            "metadata": sorted(
                a.filename for a in record.list_assets(asset_role="Output") if a.asset_table == "Execution_Metadata"
            ),
        }
    return out


def sweep_of(ml: DerivaML) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one sweep recorded in ``ml``: its parent and its children in Sequence order."""
    runs = executions(ml)
    parents = [r for r in runs.values() if r["children"]]
    assert len(parents) == 1, f"expected exactly one parent, got {[p['Description'] for p in parents]}"
    parent = parents[0]
    children = [runs[rid] for rid, _ in sorted(parent["children"], key=lambda c: c[1])]
    assert len(runs) == 1 + len(children), "every execution is the parent or one of its children"
    return parent, children


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYDRA_"))}
    env.update(extra)
    return env


# -- the example project -------------------------------------------------------------------------
@pytest.fixture
def example_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with isolated_hydra():
        monkeypatch.syspath_prepend(str(EXAMPLE))
        from pytest_deriva.config import load_configs

        loaded = load_configs("configs")
        assert "configs.experiments" in loaded
        yield


@pytest.mark.usefixtures("example_loaded")
def test_example_project_has_the_upstream_groups_and_sweeps() -> None:
    from pytest_deriva.config import config_groups, get_multirun_config, parse_sweep

    groups = config_groups()
    for group in ("deriva_ml", "datasets", "assets", "workflow", "model_config", "experiment"):
        assert groups[group], group
    assert "deriva_model" in groups[""]
    assert {"default_deriva", "default_dataset", "default_asset", "default_workflow", "default_model"} <= {
        n for names in groups.values() for n in names
    }
    spec = get_multirun_config("c_gamma_grid")
    assert spec is not None
    assert spec.description.startswith("## C x gamma grid")
    assert parse_sweep(["+multirun=c_gamma_grid"]) == [
        {"model_config.C": 0.1, "model_config.gamma": 0.001},
        {"model_config.C": 0.1, "model_config.gamma": 0.01},
        {"model_config.C": 1.0, "model_config.gamma": 0.001},
        {"model_config.C": 1.0, "model_config.gamma": 0.01},
    ]


@pytest.mark.usefixtures("example_loaded")
def test_example_experiment_parameters_are_the_model_keywords() -> None:
    from pytest_deriva.config import experiment_parameters, resolve_experiment

    assert experiment_parameters("digits_quick") == {"C": 1.0, "gamma": 0.001, "test_size": 0.5}
    resolved = resolve_experiment("digits_strong")
    assert resolved.group == "experiment"
    assert resolved.parameters == {"C": 10.0, "gamma": 0.0005, "test_size": 0.25}
    assert resolved.description == "Digits SVM, strong model"
    assert resolved.model.__name__ == "train_digits"
    assert resolved.config_choices["model_config"] == "digits_strong"
