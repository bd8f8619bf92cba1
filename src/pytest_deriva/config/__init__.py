"""Layer 3, configuration with hydra-zen: DerivaML's configuration helpers, sweeps and runner.

- :mod:`.base`: ``BaseConfig``, ``DescribedList``, ``with_description``, ``AssetSpecConfig``.
- :mod:`.deriva_ml_config`: ``DerivaMLConfig``, the catalog as a config value.
- :mod:`.loading`: ``load_configs``, ``config_groups``, ``experiment_parameters``.
- :mod:`.multirun`: ``MultirunSpec`` and its registry, ``parse_sweep``.
- :mod:`.runner`: ``run_model``, ``create_model_config``, the sweep callback.
- :mod:`.notebook`: ``notebook_config``, ``get_notebook_configuration``, ``run_notebook``.

For the pytest plugin: :func:`parse_sweep` turns ``--deriva-sweep`` overrides into parameter
combinations and :func:`experiment_parameters` gives a named config's parameters.

Names are imported on first use: hydra and hydra-zen take a while to import, and importing
this package must not cost that (the pytest plugin imports it only when asked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_deriva._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_deriva.config.base import (
        AssetSpecConfig,
        BaseConfig,
        DerivaBaseConfig,
        DescribedList,
        base_defaults,
        with_description,
    )
    from pytest_deriva.config.deriva_ml_config import DerivaMLConfig
    from pytest_deriva.config.loading import (
        ResolvedExperiment,
        config_groups,
        experiment_parameters,
        load_configs,
        resolve_experiment,
    )
    from pytest_deriva.config.multirun import (
        MultirunSpec,
        expand_multirun,
        get_all_multirun_configs,
        get_multirun_config,
        list_multirun_configs,
        multirun_config,
        parse_overrides,
        parse_sweep,
    )
    from pytest_deriva.config.notebook import get_notebook_configuration, notebook_config, run_notebook
    from pytest_deriva.config.runner import (
        DerivaSweepCallback,
        create_model_config,
        reset_multirun_state,
        run_model,
        run_model_task,
    )

_LAZY: dict[str, str] = {
    "AssetSpecConfig": ".base",
    "BaseConfig": ".base",
    "DerivaBaseConfig": ".base",
    "DerivaMLConfig": ".deriva_ml_config",
    "DerivaSweepCallback": ".runner",
    "DescribedList": ".base",
    "MultirunSpec": ".multirun",
    "ResolvedExperiment": ".loading",
    "base_defaults": ".base",
    "config_groups": ".loading",
    "create_model_config": ".runner",
    "expand_multirun": ".multirun",
    "experiment_parameters": ".loading",
    "get_all_multirun_configs": ".multirun",
    "get_multirun_config": ".multirun",
    "get_notebook_configuration": ".notebook",
    "list_multirun_configs": ".multirun",
    "load_configs": ".loading",
    "multirun_config": ".multirun",
    "notebook_config": ".notebook",
    "parse_overrides": ".multirun",
    "parse_sweep": ".multirun",
    "reset_multirun_state": ".runner",
    "resolve_experiment": ".loading",
    "run_model": ".runner",
    "run_model_task": ".runner",
    "run_notebook": ".notebook",
    "with_description": ".base",
}

__all__ = [
    "AssetSpecConfig",
    "BaseConfig",
    "DerivaBaseConfig",
    "DerivaMLConfig",
    "DerivaSweepCallback",
    "DescribedList",
    "MultirunSpec",
    "ResolvedExperiment",
    "base_defaults",
    "config_groups",
    "create_model_config",
    "expand_multirun",
    "experiment_parameters",
    "get_all_multirun_configs",
    "get_multirun_config",
    "get_notebook_configuration",
    "list_multirun_configs",
    "load_configs",
    "multirun_config",
    "notebook_config",
    "parse_overrides",
    "parse_sweep",
    "reset_multirun_state",
    "resolve_experiment",
    "run_model",
    "run_model_task",
    "run_notebook",
    "with_description",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
