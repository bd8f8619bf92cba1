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

from pytest_deriva._rid import DRY_RUN_RID, RID
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

__version__ = "0.1.0"

__all__ = [
    "DRY_RUN_RID",
    "RID",
    "Asset",
    "AssetFilePath",
    "AssetRID",
    "AssetSpec",
    "BuiltinTypes",
    "DatasetSpec",
    "DerivaML",
    "DerivaMLConfigurationError",
    "DerivaMLCycleError",
    "DerivaMLDataError",
    "DerivaMLDatasetNotFound",
    "DerivaMLDirtyWorkflowError",
    "DerivaMLException",
    "DerivaMLExecutionError",
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
    "ExecAssetType",
    "ExecMetadataType",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "MLAsset",
    "MLVocab",
    "ResolveRidResult",
    "Status",
    "UploadProgress",
    "UploadState",
    "VocabularyTerm",
    "Workflow",
    "__version__",
]
