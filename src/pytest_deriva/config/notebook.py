"""Configured notebooks: ``notebook_config`` in the config package, ``run_notebook`` in the notebook.

::

    # configs/roc_analysis.py
    notebook_config("roc_analysis", defaults={"assets": "roc_probabilities"})

    # the notebook
    ml, execution, config = run_notebook("roc_analysis")
    ...
    execution.upload_execution_outputs()

Overrides come from the ``overrides`` argument and, first, from ``DERIVA_ML_HYDRA_OVERRIDES``
(a JSON list, set by a notebook runner).

Run by ``pytest-deriva notebook run`` (or collected by ``pytest --deriva-run``), the notebook's
execution is the runner's: ``PYTEST_DERIVA_NOTEBOOK_RUN`` names it, and ``run_notebook`` returns a
handle on it (in the runner's catalog) instead of making another. The runner ends it, with the
executed notebook as a ``Notebook_Output`` file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_deriva.config.base import BaseConfig, DerivaBaseConfig
from pytest_deriva.config.deriva_ml_config import DerivaMLConfig
from pytest_deriva.config.loading import load_configs
from pytest_deriva.exceptions import DerivaMLConfigurationError

if TYPE_CHECKING:
    from pytest_deriva.execution import Execution
    from pytest_deriva.ml import DerivaML

__all__ = ["DEFAULT_NOTEBOOK_WORKFLOW_TYPE", "get_notebook_configuration", "notebook_config", "run_notebook"]

T = TypeVar("T")

#: Upstream's default, "Analysis Notebook", is not a seeded Workflow_Type term; "Analysis" is.
DEFAULT_NOTEBOOK_WORKFLOW_TYPE = "Analysis"
OVERRIDES_ENV = "DERIVA_ML_HYDRA_OVERRIDES"
#: Set by the notebook runner for the kernel: JSON {"catalog", "working_dir", "execution_rid"}.
RUNNER_ENV = "PYTEST_DERIVA_NOTEBOOK_RUN"

# Filled by notebook_config() as config modules are imported, like the hydra-zen store.
_notebook_configs: dict[str, Any] = {}


def notebook_config(
    name: str,
    config_class: type[BaseConfig] | None = None,
    defaults: dict[str, str] | None = None,
    **field_defaults: Any,
) -> Any:
    """Register a notebook's configuration (``builds(config_class)`` stored as ``name``).

    Args:
        name: The config's name, as ``run_notebook(name)`` asks for it.
        config_class: A dataclass derived from :class:`BaseConfig` with the notebook's own
            parameters; default :class:`BaseConfig`.
        defaults: The option of each config group (``{"assets": "roc_probabilities"}``), on top
            of ``deriva_ml: default_deriva``, ``datasets: default_dataset``, ``assets: default_asset``.
        **field_defaults: Default values of ``config_class``'s fields.

    Returns:
        The hydra-zen config class.
    """
    from hydra_zen import builds, store

    groups = {"deriva_ml": "default_deriva", "datasets": "default_dataset", "assets": "default_asset"}
    groups.update(defaults or {})
    hydra_defaults: list[Any] = ["_self_", *({g: o} for g, o in groups.items())]
    config = builds(
        config_class or BaseConfig, populate_full_signature=True, hydra_defaults=hydra_defaults, **field_defaults
    )
    store(config, name=name)
    _notebook_configs[name] = config
    return config


def _env_overrides() -> list[str]:
    text = os.environ.get(OVERRIDES_ENV)
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DerivaMLConfigurationError(f"{OVERRIDES_ENV} is not JSON ({e}): {text!r}; give a JSON list.") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DerivaMLConfigurationError(f"{OVERRIDES_ENV} must be a JSON list of override strings, not {text!r}.")
    return value


def runner_execution() -> dict[str, str] | None:
    """The execution a notebook runner started for this notebook (``PYTEST_DERIVA_NOTEBOOK_RUN``)."""
    text = os.environ.get(RUNNER_ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    keys = ("catalog", "working_dir", "execution_rid")
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in keys):
        raise DerivaMLConfigurationError(
            f"{RUNNER_ENV} must be the JSON object a notebook runner sets ({', '.join(keys)}), not {text!r}; "
            f"unset it to run the notebook on its own."
        )
    return {k: value[k] for k in keys}


def _resolve(
    config_class: Any, config_name: str, overrides: list[str] | None, job_name: str, version_base: str
) -> tuple[Any, Path | None, dict[str, str]]:
    """Compose and instantiate a config with Hydra; also Hydra's output folder and choices."""
    from hydra.core.hydra_config import HydraConfig
    from hydra_zen import instantiate, launch, store

    from pytest_deriva.config.multirun import parse_overrides

    store.add_to_hydra_store(overwrite_ok=True)
    all_overrides = _env_overrides() + list(overrides or [])
    parse_overrides(all_overrides)  # a bad override is reported with where it fails
    seen: dict[str, Any] = {}

    def task(cfg: Any) -> Any:
        hc = HydraConfig.get()
        seen["choices"] = {str(k): str(v) for k, v in hc.runtime.choices.items() if v is not None}
        seen["output_dir"] = hc.runtime.output_dir
        return instantiate(cfg)

    result = launch(
        config_class,
        task,
        overrides=all_overrides,
        version_base=version_base,
        config_name=config_name,
        job_name=job_name,
    )
    config = result.return_value
    out = seen.get("output_dir")
    return config, Path(out) if out else None, dict(seen.get("choices", {}))


def get_notebook_configuration(
    config_class: type[T],
    config_name: str,
    overrides: list[str] | None = None,
    job_name: str = "notebook",
    version_base: str = "1.3",
) -> T:
    """Compose a notebook's configuration with Hydra (defaults, overrides) and instantiate it.

    Overrides in ``DERIVA_ML_HYDRA_OVERRIDES`` (a JSON list) apply first, then ``overrides``.
    The result's ``config_choices`` holds the option chosen in each group.

    Raises:
        DerivaMLConfigurationError: a bad override (showing where) or a bad environment value.
    """
    config, _, choices = _resolve(config_class, config_name, overrides, job_name, version_base)
    if hasattr(config, "config_choices"):
        config.config_choices = choices
    return config  # type: ignore[no-any-return]


def run_notebook(
    config_name: str,
    overrides: list[str] | None = None,
    workflow_name: str | None = None,
    workflow_type: str = DEFAULT_NOTEBOOK_WORKFLOW_TYPE,
    ml_class: type[DerivaML] | None = None,
    config_package: str = "configs",
    *,
    source_path: str | os.PathLike[str] | None = None,
) -> tuple[DerivaML, Execution, BaseConfig]:
    """Set up a notebook's execution: load the configs, compose ``config_name``, open the
    catalog, make the workflow and a started execution with the inputs downloaded.

    End the notebook with ``execution.upload_execution_outputs()``.

    Args:
        config_name: A config registered with :func:`notebook_config` (or stored directly).
        overrides: Hydra overrides (``["assets=other_assets"]``).
        workflow_name: Default: ``config_name`` in title case.
        workflow_type: A ``Workflow_Type`` term; default ``Analysis`` (upstream's default
            ``Analysis Notebook`` is not a seeded term).
        ml_class: A ``DerivaML`` subclass for the handle.
        config_package: The package of config modules to load first.
        source_path: The notebook's file, when it cannot be found from the caller (else set
            ``DERIVA_ML_WORKFLOW_URL``/``DERIVA_ML_WORKFLOW_CHECKSUM`` as a notebook runner does).

    Returns:
        ``(ml, execution, config)``.
    """
    from pytest_deriva.execution.configuration import ExecutionConfiguration

    load_configs(config_package)
    config_class = _notebook_configs.get(config_name, DerivaBaseConfig)
    config, output_dir, choices = _resolve(config_class, config_name, overrides, "notebook", "1.3")
    if hasattr(config, "config_choices"):
        config.config_choices = choices
    if (run := runner_execution()) is not None:
        return _attach(run, config, choices, ml_class)
    deriva = DerivaMLConfig.coerce(getattr(config, "deriva_ml", None))
    ml = deriva.model_copy(update={"hydra_runtime_output_dir": output_dir}).instantiate(ml_class)
    description = getattr(config, "description", "") or ""
    workflow = ml.create_workflow(
        name=workflow_name or config_name.replace("_", " ").title(),
        workflow_type=workflow_type,
        description=description or f"Running {config_name}",
        source_path=source_path,
    )
    exec_config = ExecutionConfiguration(
        workflow=workflow,
        datasets=list(getattr(config, "datasets", None) or []),
        assets=list(getattr(config, "assets", None) or []),
        description=description or f"Execution of {config_name}",
        config_choices=choices,
    )
    execution = ml.create_execution(exec_config, dry_run=bool(getattr(config, "dry_run", False)))
    execution.execution_start()
    return ml, execution, config


def _attach(
    run: dict[str, str], config: Any, choices: dict[str, str], ml_class: type[DerivaML] | None
) -> tuple[DerivaML, Execution, BaseConfig]:
    """``run_notebook`` under a runner: the runner's catalog and execution, this config's inputs."""
    from pytest_deriva.execution.configuration import ExecutionConfiguration
    from pytest_deriva.execution.execution import Execution
    from pytest_deriva.ml import DerivaML

    ml = (ml_class or DerivaML)(run["catalog"], working_dir=run["working_dir"])
    record = ml.lookup_execution(run["execution_rid"])
    workflow = ml.lookup_workflow(record.workflow_rid) if record.workflow_rid else None
    exec_config = ExecutionConfiguration(
        workflow=workflow,
        datasets=list(getattr(config, "datasets", None) or []),
        assets=list(getattr(config, "assets", None) or []),
        description=record.description or "",
        config_choices=choices,
    )
    execution = Execution(exec_config, ml, reload=run["execution_rid"], attached=True)
    execution.execution_start()
    return ml, execution, config
