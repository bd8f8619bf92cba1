"""pytest-deriva: experiments as tracked, reproducible runs in a DERIVA catalog.

The public API follows DerivaML's execution module::

    from pytest_deriva import DerivaML, ExecutionConfiguration

    ml = DerivaML()  # the embedded catalog in .deriva/ at the project root
    workflow = ml.create_workflow("digits-svm", "Training")
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="SVM")) as exe:
        exe.asset_file_path("Execution_Asset", "model.pkl").write_bytes(b"...")
    exe.upload_execution_outputs()
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pytest_deriva._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_deriva._rid import DRY_RUN_RID, RID
    from pytest_deriva.config import (
        AssetSpecConfig,
        BaseConfig,
        DerivaMLConfig,
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
    from pytest_deriva.dataset import (
        BagCatalog,
        Dataset,
        DatasetBag,
        DatasetHistory,
        DatasetVersion,
        Feature,
        FeatureRecord,
        FileSpec,
        VersionPart,
    )
    from pytest_deriva.dataset.spec import DatasetSpec
    from pytest_deriva.enums import BuiltinTypes, ExecAssetType, ExecMetadataType, MLAsset, MLVocab, Status, UploadState
    from pytest_deriva.exceptions import (
        DerivaMLConfigurationError,
        DerivaMLCycleError,
        DerivaMLDataError,
        DerivaMLDatasetNotFound,
        DerivaMLDirtyWorkflowError,
        DerivaMLException,
        DerivaMLExecutionError,
        DerivaMLInputError,
        DerivaMLInvalidTerm,
        DerivaMLManifestError,
        DerivaMLNotFoundError,
        DerivaMLReadOnlyError,
        DerivaMLSchemaError,
        DerivaMLTableNotFound,
        DerivaMLTableTypeError,
        DerivaMLUploadError,
        DerivaMLValidationError,
        DerivaMLWorkflowError,
    )
    from pytest_deriva.execution import (
        AssetFilePath,
        AssetRID,
        AssetSpec,
        DerivaMLModel,
        Execution,
        ExecutionConfiguration,
        ExecutionRecord,
        UploadProgress,
        Workflow,
    )
    from pytest_deriva.ml import Asset, DerivaML, ResolveRidResult, VocabularyTerm

# Names are imported when first used: the pytest plugin imports this package on every pytest
# run, and most runs (without --deriva-run) need none of it.
_LAZY: dict[str, str] = {
    "AssetSpecConfig": "pytest_deriva.config",
    "BaseConfig": "pytest_deriva.config",
    "DerivaMLConfig": "pytest_deriva.config",
    "DescribedList": "pytest_deriva.config",
    "MultirunSpec": "pytest_deriva.config",
    "create_model_config": "pytest_deriva.config",
    "get_all_multirun_configs": "pytest_deriva.config",
    "get_multirun_config": "pytest_deriva.config",
    "get_notebook_configuration": "pytest_deriva.config",
    "list_multirun_configs": "pytest_deriva.config",
    "load_configs": "pytest_deriva.config",
    "multirun_config": "pytest_deriva.config",
    "notebook_config": "pytest_deriva.config",
    "reset_multirun_state": "pytest_deriva.config",
    "run_model": "pytest_deriva.config",
    "run_notebook": "pytest_deriva.config",
    "with_description": "pytest_deriva.config",
    "BagCatalog": "pytest_deriva.dataset",
    "Dataset": "pytest_deriva.dataset",
    "DatasetBag": "pytest_deriva.dataset",
    "DatasetHistory": "pytest_deriva.dataset",
    "DatasetVersion": "pytest_deriva.dataset",
    "Feature": "pytest_deriva.dataset",
    "FeatureRecord": "pytest_deriva.dataset",
    "FileSpec": "pytest_deriva.dataset",
    "VersionPart": "pytest_deriva.dataset",
    "Asset": "pytest_deriva.ml",
    "AssetFilePath": "pytest_deriva.execution",
    "AssetRID": "pytest_deriva.execution",
    "AssetSpec": "pytest_deriva.execution",
    "BuiltinTypes": "pytest_deriva.enums",
    "DRY_RUN_RID": "pytest_deriva._rid",
    "DatasetSpec": "pytest_deriva.dataset.spec",
    "DerivaML": "pytest_deriva.ml",
    "DerivaMLConfigurationError": "pytest_deriva.exceptions",
    "DerivaMLCycleError": "pytest_deriva.exceptions",
    "DerivaMLDataError": "pytest_deriva.exceptions",
    "DerivaMLDatasetNotFound": "pytest_deriva.exceptions",
    "DerivaMLDirtyWorkflowError": "pytest_deriva.exceptions",
    "DerivaMLException": "pytest_deriva.exceptions",
    "DerivaMLExecutionError": "pytest_deriva.exceptions",
    "DerivaMLInputError": "pytest_deriva.exceptions",
    "DerivaMLInvalidTerm": "pytest_deriva.exceptions",
    "DerivaMLManifestError": "pytest_deriva.exceptions",
    "DerivaMLModel": "pytest_deriva.execution",
    "DerivaMLNotFoundError": "pytest_deriva.exceptions",
    "DerivaMLReadOnlyError": "pytest_deriva.exceptions",
    "DerivaMLSchemaError": "pytest_deriva.exceptions",
    "DerivaMLTableNotFound": "pytest_deriva.exceptions",
    "DerivaMLTableTypeError": "pytest_deriva.exceptions",
    "DerivaMLUploadError": "pytest_deriva.exceptions",
    "DerivaMLValidationError": "pytest_deriva.exceptions",
    "DerivaMLWorkflowError": "pytest_deriva.exceptions",
    "ExecAssetType": "pytest_deriva.enums",
    "ExecMetadataType": "pytest_deriva.enums",
    "Execution": "pytest_deriva.execution",
    "ExecutionConfiguration": "pytest_deriva.execution",
    "ExecutionRecord": "pytest_deriva.execution",
    "MLAsset": "pytest_deriva.enums",
    "MLVocab": "pytest_deriva.enums",
    "RID": "pytest_deriva._rid",
    "ResolveRidResult": "pytest_deriva.ml",
    "Status": "pytest_deriva.enums",
    "UploadProgress": "pytest_deriva.execution",
    "UploadState": "pytest_deriva.enums",
    "VocabularyTerm": "pytest_deriva.ml",
    "Workflow": "pytest_deriva.execution",
}


__version__ = "0.1.0"

__all__ = [
    "DRY_RUN_RID",
    "RID",
    "Asset",
    "AssetFilePath",
    "AssetRID",
    "AssetSpec",
    "AssetSpecConfig",
    "BagCatalog",
    "BaseConfig",
    "BuiltinTypes",
    "Dataset",
    "DatasetBag",
    "DatasetHistory",
    "DatasetSpec",
    "DatasetVersion",
    "DerivaML",
    "DerivaMLConfig",
    "DerivaMLConfigurationError",
    "DerivaMLCycleError",
    "DerivaMLDataError",
    "DerivaMLDatasetNotFound",
    "DerivaMLDirtyWorkflowError",
    "DerivaMLException",
    "DerivaMLExecutionError",
    "DerivaMLInputError",
    "DerivaMLInvalidTerm",
    "DerivaMLManifestError",
    "DerivaMLModel",
    "DerivaMLNotFoundError",
    "DerivaMLReadOnlyError",
    "DerivaMLSchemaError",
    "DerivaMLTableNotFound",
    "DerivaMLTableTypeError",
    "DerivaMLUploadError",
    "DerivaMLValidationError",
    "DerivaMLWorkflowError",
    "DescribedList",
    "ExecAssetType",
    "ExecMetadataType",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "Feature",
    "FeatureRecord",
    "FileSpec",
    "MLAsset",
    "MLVocab",
    "MultirunSpec",
    "ResolveRidResult",
    "Status",
    "UploadProgress",
    "UploadState",
    "VersionPart",
    "VocabularyTerm",
    "Workflow",
    "__version__",
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
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)


def _not_assertion_rewritten() -> None:
    """Have pytest import this package's modules as Python does, not through its assertion rewriter.

    pytest rewrites the ``assert`` statements of every module of a plugin's distribution, and keeps
    the result in bytecode files of its own name (``*-pytest-<version>.pyc``). That serves a plugin
    whose asserts are the user's tests (fixtures that check); this package's are internal checks,
    and where no bytecode can be written (``PYTHONDONTWRITEBYTECODE``, an installation the user may
    not write, where pip's ``.pyc`` files are the only ones) every ``--deriva-run`` would parse,
    rewrite and compile each module again: about 0.2 s. pytest has no public way to unmark a
    package, so its rewriter's mark is taken off here, when it is there; otherwise nothing changes.
    """
    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        cache = getattr(finder, "_marked_for_rewrite_cache", None)
        if isinstance(marked, set) and __name__ in marked:
            marked.discard(__name__)
            if isinstance(cache, dict):
                cache.clear()


_not_assertion_rewritten()
