"""The execution lifecycle (layer 2): workflows, configurations, executions and their records."""

from __future__ import annotations

from pytest_deriva.execution.configuration import AssetRID, AssetSpec, ExecutionConfiguration
from pytest_deriva.execution.execution import Execution, format_duration
from pytest_deriva.execution.manifest import AssetEntry, AssetFilePath, AssetManifest
from pytest_deriva.execution.model_protocol import DerivaMLModel
from pytest_deriva.execution.record import ExecutionRecord
from pytest_deriva.execution.upload import UploadProgress
from pytest_deriva.execution.workflow import Workflow

__all__ = [
    "AssetEntry",
    "AssetFilePath",
    "AssetManifest",
    "AssetRID",
    "AssetSpec",
    "DerivaMLModel",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "UploadProgress",
    "Workflow",
    "format_duration",
]
