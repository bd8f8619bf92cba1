"""Enumerations shared by every layer: status values, vocabulary and asset table names."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BuiltinTypes", "ExecAssetType", "ExecMetadataType", "MLAsset", "MLVocab", "Status", "UploadState"]


class Status(StrEnum):
    """Execution status values, as stored in ``Execution.Status``."""

    initializing = "Initializing"
    created = "Created"
    pending = "Pending"
    running = "Running"
    aborted = "Aborted"
    completed = "Completed"
    failed = "Failed"


class MLVocab(StrEnum):
    """Vocabulary tables of the ``deriva-ml`` schema."""

    dataset_type = "Dataset_Type"
    workflow_type = "Workflow_Type"
    asset_type = "Asset_Type"
    asset_role = "Asset_Role"
    feature_name = "Feature_Name"


class MLAsset(StrEnum):
    """Asset tables of the ``deriva-ml`` schema."""

    execution_metadata = "Execution_Metadata"
    execution_asset = "Execution_Asset"
    file = "File"


class ExecMetadataType(StrEnum):
    """``Asset_Type`` terms for the metadata files every execution records."""

    execution_config = "Execution_Config"
    runtime_env = "Runtime_Env"
    hydra_config = "Hydra_Config"
    deriva_config = "Deriva_Config"


class ExecAssetType(StrEnum):
    """``Asset_Type`` terms for execution output files."""

    input_file = "Input_File"
    output_file = "Output_File"
    model_file = "Model_File"
    notebook_output = "Notebook_Output"


class UploadState(StrEnum):
    """State of one registered file in an execution's manifest."""

    pending = "pending"
    uploaded = "uploaded"
    failed = "failed"


class BuiltinTypes(StrEnum):
    """ERMrest column types the catalog port stores."""

    text = "text"
    markdown = "markdown"
    int2 = "int2"
    int4 = "int4"
    int8 = "int8"
    float4 = "float4"
    float8 = "float8"
    boolean = "boolean"
    date = "date"
    timestamp = "timestamp"
    timestamptz = "timestamptz"
    json = "json"
    jsonb = "jsonb"
    serial4 = "serial4"
    serial8 = "serial8"
    ermrest_rid = "ermrest_rid"
    ermrest_uri = "ermrest_uri"
    ermrest_curie = "ermrest_curie"
    ermrest_rct = "ermrest_rct"
    ermrest_rmt = "ermrest_rmt"
    ermrest_rcb = "ermrest_rcb"
    ermrest_rmb = "ermrest_rmb"
