"""The execution lifecycle (layer 2): workflows, configurations, executions and their records.

Every name DerivaML documents for ``deriva_ml.execution`` imports from here too, so code written
for DerivaML runs with its imports changed from ``deriva_ml`` to ``pytest_deriva``. The
hydra-zen helpers among them (``BaseConfig``, ``run_model``, ``notebook_config`` ...) live in
:mod:`pytest_deriva.config` and are imported on first use: importing this module must not
import hydra, which takes a while and which most runs do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_deriva._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_deriva.config import (
        AssetSpecConfig,
        BaseConfig,
        DescribedList,
        MultirunSpec,
        create_model_config,
        get_all_multirun_configs,
        get_multirun_config,
        get_notebook_configuration,
        list_multirun_configs,
        load_configs,
        multirun_config,
        notebook_config,
        reset_multirun_state,
        run_model,
        run_notebook,
        with_description,
    )
    from pytest_deriva.execution.configuration import AssetRID, AssetSpec, ExecutionConfiguration
    from pytest_deriva.execution.execution import Execution, format_duration
    from pytest_deriva.execution.manifest import AssetEntry, AssetFilePath, AssetManifest
    from pytest_deriva.execution.model_protocol import DerivaMLModel
    from pytest_deriva.execution.outcome import Outcome, end_run
    from pytest_deriva.execution.record import ExecutionRecord
    from pytest_deriva.execution.upload import UploadProgress
    from pytest_deriva.execution.workflow import Workflow

# This layer's names, from their modules: the package itself imports nothing, so its modules
# import each other without going through it.
_OWN = {
    "AssetRID": ".configuration",
    "AssetSpec": ".configuration",
    "ExecutionConfiguration": ".configuration",
    "Execution": ".execution",
    "format_duration": ".execution",
    "AssetEntry": ".manifest",
    "AssetFilePath": ".manifest",
    "AssetManifest": ".manifest",
    "DerivaMLModel": ".model_protocol",
    "Outcome": ".outcome",
    "end_run": ".outcome",
    "ExecutionRecord": ".record",
    "UploadProgress": ".upload",
    "Workflow": ".workflow",
}

# DerivaML's deriva_ml.execution names that belong to the configuration layer above this one.
_LAZY: dict[str, str] = {
    name: "pytest_deriva.config"
    for name in (
        "AssetSpecConfig",
        "BaseConfig",
        "DescribedList",
        "MultirunSpec",
        "create_model_config",
        "get_all_multirun_configs",
        "get_multirun_config",
        "get_notebook_configuration",
        "list_multirun_configs",
        "load_configs",
        "multirun_config",
        "notebook_config",
        "reset_multirun_state",
        "run_model",
        "run_notebook",
        "with_description",
    )
}

__all__ = [
    "AssetEntry",
    "AssetFilePath",
    "AssetManifest",
    "AssetRID",
    "AssetSpec",
    "AssetSpecConfig",
    "BaseConfig",
    "DerivaMLModel",
    "DescribedList",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "MultirunSpec",
    "Outcome",
    "UploadProgress",
    "Workflow",
    "create_model_config",
    "end_run",
    "format_duration",
    "get_all_multirun_configs",
    "get_multirun_config",
    "get_notebook_configuration",
    "list_multirun_configs",
    "load_configs",
    "multirun_config",
    "notebook_config",
    "reset_multirun_state",
    "run_model",
    "run_notebook",
    "with_description",
]

__getattr__, __dir__ = lazy_exports(__name__, {**_OWN, **_LAZY}, __all__)
