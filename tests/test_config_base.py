"""Config building blocks: BaseConfig, DescribedList, AssetSpecConfig, DerivaMLConfig,
load_configs, experiment_parameters and the model-signature check."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from hydra_zen import builds, instantiate, launch

from pytest_deriva import AssetSpec, DatasetSpec, DerivaML, DerivaMLConfigurationError
from pytest_deriva.config import (
    AssetSpecConfig,
    BaseConfig,
    DerivaMLConfig,
    DescribedList,
    experiment_parameters,
    load_configs,
    resolve_experiment,
    with_description,
)
from pytest_deriva.config.runner import check_model_arguments
from pytest_deriva.dataset import DatasetSpecConfig
from test_config_project import isolated_hydra, unique, write_project


@pytest.fixture
def isolated() -> Iterator[None]:
    with isolated_hydra():
        yield


# -- BaseConfig, DescribedList, AssetSpecConfig ------------------------------------------------
def test_described_lists_instantiate_to_lists_with_a_description() -> None:
    assets = instantiate(with_description(["3WMG", "3XPA"], "Weights of two runs"))
    assert isinstance(assets, DescribedList)
    assert assets == ["3WMG", "3XPA"]
    assert assets.description == "Weights of two runs"
    assert repr(assets) == "DescribedList(['3WMG', '3XPA'], description='Weights of two runs')"
    datasets = instantiate(with_description([DatasetSpecConfig(rid="1-ABCD", version="1.0.0")], "Digits"))
    assert datasets == [DatasetSpec(rid="1-ABCD", version="1.0.0")]
    assert datasets.description == "Digits"
    assert repr(DescribedList()) == "DescribedList([])"


def test_asset_spec_config_and_base_config() -> None:
    spec = instantiate(AssetSpecConfig(rid="6-EPNR", cache=True))
    assert spec == AssetSpec(rid="6-EPNR", cache=True)
    config = BaseConfig()
    assert (config.deriva_ml, config.datasets, config.assets, config.dry_run, config.description) == (
        None,
        None,
        None,
        False,
        "",
    )
    assert config.config_choices == {}
    assert config.script_config is None


# -- DerivaMLConfig ------------------------------------------------------------------------------
def test_deriva_ml_config_is_built_outside_hydra_and_opens_the_named_catalog(ml: DerivaML, project: Path) -> None:
    path = Path(ml.catalog.path)  # type: ignore[attr-defined]
    config = DerivaMLConfig(catalog=str(path))
    assert config.hydra_runtime_output_dir is None
    assert not config.is_server
    assert config.location == str(path)
    handle = config.instantiate()
    try:
        assert Path(handle.catalog.path) == path  # type: ignore[attr-defined]
    finally:
        handle.catalog.close()
    assert DerivaMLConfig.coerce(str(path)).location == str(path)
    assert DerivaMLConfig.coerce({"catalog": str(path), "_target_": "x"}).location == str(path)
    assert DerivaMLConfig.coerce(config) is config


def test_deriva_ml_config_default_and_server_locations(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert DerivaMLConfig().location == str(project / ".deriva")
    monkeypatch.setenv("DERIVA_CATALOG", "/somewhere/else")
    assert DerivaMLConfig().location == "/somewhere/else"
    server = DerivaMLConfig(hostname="www.example.org", catalog_id="52")
    assert server.is_server
    assert server.location == "https://www.example.org/ermrest/catalog/52"
    with pytest.raises(DerivaMLConfigurationError, match="DERIVA server"):
        server.instantiate()


def test_naming_a_catalog_that_is_not_one_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DerivaMLConfigurationError, match=r"does not exist.*create=True"):
        DerivaMLConfig(catalog=str(tmp_path / "nowhere"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(DerivaMLConfigurationError, match="is not a pytest-deriva catalog"):
        DerivaMLConfig(catalog=str(tmp_path / "notes"), create=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DerivaMLConfigurationError, match="is a file"):
        DerivaMLConfig(catalog=str(tmp_path / "file"))
    with pytest.raises(DerivaMLConfigurationError, match="must be a DerivaMLConfig"):
        DerivaMLConfig.coerce(42)
    made = DerivaMLConfig(catalog=str(tmp_path / "new"), create=True).instantiate()
    made.catalog.close()
    assert (tmp_path / "new" / "catalog.sqlite").is_file()
    assert not list((tmp_path / "nowhere").parent.glob("nowhere"))  # the refused one was not made


def test_deriva_ml_config_in_a_hydra_job_takes_the_jobs_output_folder(
    ml: DerivaML, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    conf = builds(DerivaMLConfig, catalog=str(ml.catalog.path), populate_full_signature=True)  # type: ignore[attr-defined]
    job = launch(conf, instantiate, version_base="1.3", job_name="cfg")
    inside = job.return_value
    assert isinstance(inside, DerivaMLConfig)
    out = Path(str(inside.hydra_runtime_output_dir))
    assert out.is_relative_to(project / "outputs")
    assert (out / ".hydra" / "config.yaml").is_file()


# -- load_configs ------------------------------------------------------------------------------
def test_load_configs_imports_every_module_experiments_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None
) -> None:
    pkg, recorder = unique("cfgorder"), unique("seen")
    (tmp_path / f"{recorder}.py").write_text("seen = []\n")
    record = f"import {recorder}\n{recorder}.seen.append(__name__)\n"
    files = [
        "__init__.py",
        "a.py",
        "experiments.py",
        "z.py",
        "b.py",
        "sub/__init__.py",
        "sub/c.py",
        "sub/experiments.py",
    ]
    for name in files:
        (tmp_path / pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / name).write_text(record if not name.endswith("__init__.py") else "")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_configs(pkg)
    order = sys.modules[recorder].seen
    assert [n.removeprefix(pkg + ".") for n in order] == ["a", "b", "z", "sub.c", "sub.experiments", "experiments"]
    assert loaded == sorted(order)
    assert load_configs(unique("no_such_package")) == []


def test_load_configs_reports_a_broken_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: None) -> None:
    pkg = unique("cfgbroken")
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "model.py").write_text("import not_installed_anywhere_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere_xyz"):
        load_configs(pkg)


# -- experiment_parameters -----------------------------------------------------------------------
def test_experiment_parameters_from_the_store(project: Path, monkeypatch: pytest.MonkeyPatch, isolated: None) -> None:
    pkg, models = unique("cfgexp"), unique("models")
    write_project(project, pkg, models)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.chdir(project)
    # An experiment: its model config's parameters, with its own description.
    assert experiment_parameters("quick", pkg) == {"lr": 0.5, "epochs": 1, "optimizer": "sgd", "fail_on": None}
    quick = resolve_experiment("quick")
    assert quick.group == "experiment"
    assert quick.description == "Quick tiny run"
    assert quick.model.__name__ == "train"
    assert quick.config_choices["model_config"] == "fast"
    assert quick.overrides == ["+experiment=quick"]
    # A model config by name; its zen_meta description.
    slow = resolve_experiment("slow")
    assert slow.group == "model_config"
    assert slow.parameters["epochs"] == 5
    assert slow.parameters["lr"] == 0.01
    assert resolve_experiment("fast").description == "One quick epoch"
    assert resolve_experiment("quick", overrides=["model_config.lr=0.25"]).parameters["lr"] == 0.25
    with pytest.raises(DerivaMLConfigurationError) as info:
        experiment_parameters("quik")
    assert "Did you mean 'quick'" in str(info.value)
    assert "Experiments: quick" in str(info.value)
    assert "default_model, fast, slow" in str(info.value)


# -- the model's signature -----------------------------------------------------------------------
def model(
    lr: float = 0.1,
    epochs: int = 2,
    optimizer: Literal["sgd", "adam"] = "sgd",
    sizes: list[int] | None = None,
    ml_instance: DerivaML | None = None,
    execution: object = None,
) -> None:
    """A model function with annotated parameters."""


def test_check_model_arguments_accepts_what_fits_and_names_what_does_not() -> None:
    check_model_arguments(functools.partial(model, lr=1, epochs=3, optimizer="adam", sizes=[1, 2]))
    from omegaconf import OmegaConf

    check_model_arguments(functools.partial(model, sizes=OmegaConf.create([1, 2])))
    with pytest.raises(DerivaMLConfigurationError) as info:
        check_model_arguments(
            functools.partial(functools.partial(model, epochs="ten"), optimizer="adamw", sizes=["x"], momentum=0.9)
        )
    text = str(info.value)
    assert "nothing was recorded" in text
    assert "epochs: expects int, got 'ten'" in text
    assert "optimizer: expects Literal['sgd', 'adam'], got 'adamw'" in text
    assert "sizes: expects" in text
    assert "momentum: not a parameter of model" in text
