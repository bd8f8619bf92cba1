"""``Execution``: the lifecycle of one run, from creation to uploaded outputs.

    config = ExecutionConfiguration(workflow=ml.create_workflow("train", "Training"), description="SVM")
    with ml.create_execution(config) as exe:          # Running
        path = exe.asset_file_path("Execution_Asset", "model.pkl")
        path.write_bytes(...)                         # registered in the manifest at once
    exe.upload_execution_outputs()                    # Completed, outputs in Execution_Asset

Every file registered with :meth:`Execution.asset_file_path` is written through to a crash-safe
manifest; each one either uploads or fails loudly and stays pending, to be uploaded later with
``ml.restore_execution(rid).upload_execution_outputs()``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pytest_deriva._faults import crash_point
from pytest_deriva._rid import DRY_RUN_RID
from pytest_deriva._secrets import redact_file, redact_mapping, redact_text_file
from pytest_deriva.catalog.model import Model, Table
from pytest_deriva.catalog.port import StoredObject
from pytest_deriva.enums import ExecMetadataType, MLAsset, MLVocab, Status
from pytest_deriva.exceptions import (
    DerivaMLConfigurationError,
    DerivaMLException,
    DerivaMLTableNotFound,
    DerivaMLTableTypeError,
    DerivaMLUploadError,
    DerivaMLValidationError,
)
from pytest_deriva.execution import _index, _lease, _paths
from pytest_deriva.execution._datasets import ExecutionDatasetMixin
from pytest_deriva.execution.configuration import ExecutionConfiguration
from pytest_deriva.execution.environment import environment_snapshot, redact_argv
from pytest_deriva.execution.manifest import AssetEntry, AssetFilePath, AssetManifest
from pytest_deriva.execution.record import ExecutionRecord
from pytest_deriva.execution.upload import UploadProgress
from pytest_deriva.execution.workflow import Workflow

if TYPE_CHECKING:
    from pytest_deriva.ml import Asset, DerivaML

__all__ = ["Execution", "ExecutionBase", "format_duration"]

_METADATA_DESCRIPTIONS = {
    "configuration.json": "The ExecutionConfiguration of this execution, as JSON.",
    "uv.lock": "The uv.lock of the workflow's repository: the exact package versions.",
    "config.yaml": "Hydra: the composed configuration of this run.",
    "overrides.yaml": "Hydra: the command-line overrides of this run.",
    "hydra.yaml": "Hydra: Hydra's own configuration for this run.",
}
_ENV_SNAPSHOT_DESCRIPTION = "Runtime environment: Python, platform and installed packages."
_UPLOAD_FAILED = "Upload failed:"
_FINAL = (Status.completed, Status.failed, Status.aborted)

#: A status to write once files are recorded: status, detail and other Execution columns.
_StatusChange = tuple[Status, str, Mapping[str, Any]]
# The stored environment snapshot per object store, for this process.
_ENV_OBJECTS: dict[tuple[str, str], StoredObject] = {}


def format_duration(seconds: float) -> str:
    """The catalog's ``Duration`` text: ``{hours}H {minutes}min {seconds}sec``, e.g. ``0.0H 0.0min 3.1416sec``."""
    hours, remainder = divmod(seconds, 3600)
    minutes, secs = divmod(remainder, 60)
    return f"{round(hours, 0)}H {round(minutes, 0)}min {round(secs, 4)}sec"


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class ExecutionBase:
    """One run of a workflow, with its inputs, outputs and status (the core; see :class:`Execution`).

    Args:
        configuration: Inputs, workflow and description.
        ml_object: The catalog handle.
        workflow: The workflow, if not in ``configuration``.
        reload: The RID of an execution recorded earlier, to pick it up again (its files and manifest).
        planned: ``reload`` names an execution that :meth:`record_planned` recorded in this session
            (still ``Pending``), so its row need not be read again.
        dry_run: Write nothing: the RID is ``0000`` and nothing is recorded or uploaded.
        attached: ``reload`` names an execution that a runner in another process started and
            will end (a notebook's kernel under ``pytest-deriva notebook run``): this handle links
            its inputs and registers and uploads files, and leaves the status to the runner.
    """

    def __init__(
        self,
        configuration: ExecutionConfiguration,
        ml_object: DerivaML,
        workflow: Workflow | None = None,
        reload: str | None = None,
        dry_run: bool = False,
        *,
        hydra_files: Mapping[str, bytes] | None = None,
        planned: bool = False,
        attached: bool = False,
    ) -> None:
        if not isinstance(configuration, ExecutionConfiguration):
            raise DerivaMLValidationError(
                f"configuration must be an ExecutionConfiguration, not {type(configuration).__name__}."
            )
        self.asset_paths: dict[str, list[AssetFilePath]] = {}
        self.configuration = configuration
        self._ml_object = ml_object
        self._logger = ml_object._logger
        self.start_time: datetime | None = None
        self.stop_time: datetime | None = None
        self._status = Status.created
        self._status_detail: str | None = None
        self.uploaded_assets: dict[str, list[AssetFilePath]] | None = None
        self._execution_record: ExecutionRecord | None = None
        self._manifest: AssetManifest | None = None
        self._unfinished = False
        self._attached = bool(attached and reload)
        # Hydra output files given in memory (name -> bytes), recorded like those of a Hydra run folder.
        self._hydra_files = dict(hydra_files or {})
        self.dataset_rids: list[str] = []
        self.datasets: list[Any] = []
        self._working_dir = ml_object.working_dir
        self._cache_dir = ml_object.cache_dir
        if self._working_dir is None:
            raise DerivaMLConfigurationError("DerivaML working_dir is not set; give DerivaML a working_dir.")
        self._dry_run = dry_run or _truthy("DERIVA_ML_DRY_RUN")
        if reload == DRY_RUN_RID:
            self._dry_run = True
        if self._dry_run and not reload:
            # A dry run writes nothing in the project, and dry runs (all RID 0000) must not share a folder.
            self._working_dir = Path(tempfile.mkdtemp(prefix="deriva-dry-run-"))
        self.configuration.argv = redact_argv(list(sys.argv))

        if workflow is not None:
            self.configuration.workflow = workflow
        wf = self.configuration.workflow
        if wf is None:
            raise DerivaMLException(
                "No workflow: pass workflow= to create_execution or set ExecutionConfiguration.workflow "
                "(ml.create_workflow(name, workflow_type) makes one)."
            )
        if not isinstance(wf, Workflow):
            raise DerivaMLException(
                f"Workflow must be a Workflow object, not {type(wf).__name__}. "
                "Use ml.lookup_workflow(rid) or ml.lookup_workflow_by_url(url) to get one."
            )

        _check_inputs(ml_object, self.configuration)  # every input, before anything is written

        self.workflow_rid = ml_object.add_workflow(wf) if not self._dry_run else DRY_RUN_RID
        cat = ml_object.catalog
        # Where a transaction is atomic (the embedded store) and there are no inputs to fetch, the
        # row is written already Pending, with its metadata files and this process's claim, in one
        # transaction: a crash leaves all of it or nothing. Elsewhere it is written Created first.
        at_once = (
            not reload
            and not self._dry_run
            and cat.atomic_transactions
            and not self.configuration.datasets
            and not self.configuration.assets
        )
        if reload:
            self.execution_rid = reload
        elif self._dry_run:
            self.execution_rid = DRY_RUN_RID
        elif at_once:
            items = _metadata_items(ml_object, self.configuration, self._hydra_files, "")  # stored first
            with cat.transaction():
                self.execution_rid = cat.insert(
                    ml_object.ml_schema,
                    "Execution",
                    [
                        {
                            "Description": self.configuration.description,
                            "Workflow": self.workflow_rid,
                            "Status": Status.pending.value,
                            "Status_Detail": _PLANNED,
                        }
                    ],
                )[0]["RID"]
                _lease.claim(self._working_dir, self.execution_rid)
                self._record_metadata_files(items)
        else:
            self.execution_rid = ml_object.catalog.insert(
                ml_object.ml_schema,
                "Execution",
                [
                    {
                        "Description": self.configuration.description,
                        "Workflow": self.workflow_rid,
                        "Status": Status.created.value,
                        "Status_Detail": "Execution created.",
                    }
                ],
            )[0]["RID"]

        self._made_here = not reload  # so it has no folder or manifest yet
        if rid_path := os.environ.get("DERIVA_ML_SAVE_EXECUTION_RID"):
            Path(rid_path).write_text(
                json.dumps(
                    {
                        "hostname": ml_object.host_name,
                        "catalog_id": ml_object.catalog_id,
                        "workflow_rid": self.workflow_rid,
                        "execution_rid": self.execution_rid,
                    }
                )
            )

        if not self._dry_run:
            if not self._attached and not at_once:  # an attached handle's runner owns the run
                _lease.claim(self._working_dir, self.execution_rid)  # a recovery leaves it alone while we live
            if reload and not planned:
                self._execution_record = ml_object.lookup_execution(self.execution_rid)
                self._get_manifest()  # read it now: a corrupt manifest is reported at restore, not later
                # Not finished when restored (Created, Pending, Initializing, Running): the process
                # that ran it stopped first. Only a run that finished is ever set Completed.
                self._unfinished = self._execution_record.status not in _FINAL and not self._attached
            else:
                # Made just now, or recorded Pending by record_planned in this session: the row is
                # known, not read.
                self._execution_record = ExecutionRecord(
                    self.execution_rid,
                    workflow=self.workflow_rid,
                    status=Status.pending if planned or at_once else Status.created,
                    description=self.configuration.description,
                    status_detail=_PLANNED if planned or at_once else None,
                    _ml_instance=ml_object,
                    _logger=self._logger,
                )
        if at_once:
            self._status, self._status_detail = Status.pending, _PLANNED
            self.start_time = datetime.now()
        else:
            self._initialize_execution(reload)

    # -- set-up ------------------------------------------------------------------------------
    @property
    def _model(self) -> Model:
        return self._ml_object.model

    def _initialize_execution(self, reload: str | None = None) -> None:
        # Inputs are linked when the run is made, and by an attached handle (its runner made none).
        link = not self._dry_run and (not reload or self._attached)
        for dataset in self.configuration.datasets:
            self.update_status(Status.initializing, f"Materialize bag {dataset.rid}... ")
            self.datasets.append(self._ml_object.download_dataset_bag(dataset))
            self.dataset_rids.append(dataset.rid)
        if self.dataset_rids and link:
            self._ml_object.catalog.insert(
                self._ml_object.ml_schema,
                "Dataset_Execution",
                [{"Dataset": d, "Execution": self.execution_rid} for d in self.dataset_rids],
                on_conflict_skip=True,
            )

        if self.configuration.assets:
            self.update_status(Status.running, "Downloading assets ...")
        for spec in self.configuration.assets:
            table = self._ml_object.resolve_rid(spec.rid).table.name
            dest = _paths.execution_root(self._working_dir, self.execution_rid) / "downloaded-assets" / table
            dest.mkdir(parents=True, exist_ok=True)
            self.asset_paths.setdefault(table, []).append(
                self.download_asset(spec.rid, dest, update_catalog=link, use_cache=spec.cache)
            )

        if reload or self._dry_run:
            return
        self._record_metadata_files()
        self.start_time = datetime.now()

    def _record_metadata_files(self, stored: dict[str, tuple[AssetEntry, StoredObject, str]] | None = None) -> None:
        """Store the metadata files every execution records and link them, then set ``Pending``
        (unless they were ``stored`` already, for a row written ``Pending``).

        They are made here and stored straight from memory (or from where they are, for Hydra's
        files and uv.lock), and recorded in one transaction with the status: none of them passes
        through the execution's folder or its manifest.
        """
        items = stored or _metadata_items(self._ml_object, self.configuration, self._hydra_files, self.execution_rid)
        rids = self._record_assets(items, final_status=None if stored else (Status.pending, _PLANNED, {}))
        if params := _run_parameters(self._ml_object, self._hydra_files):
            _index.write_parameters(self._ml_object, {self.execution_rid: params})
        table = MLAsset.execution_metadata.value
        self.uploaded_assets = {
            f"{self._ml_object.ml_schema}/{table}": [
                AssetFilePath(Path(n), asset_table=table, file_name=n, asset_types=e.asset_types, asset_rid=rids[k])
                for k, (e, _, n) in items.items()
            ]
        }

    @classmethod
    def record_planned(
        cls,
        ml_object: DerivaML,
        workflow: Workflow,
        runs: Sequence[tuple[ExecutionConfiguration, Mapping[str, bytes]]],
        recorded: Callable[[list[str]], None] | None = None,
    ) -> list[str]:
        """Record many executions of one workflow at once, each ``Pending`` with its metadata files
        (configuration, Hydra files, environment), as ``create_execution`` would one by one; their RIDs.

        A few requests for all of them rather than a dozen each: one insert of the rows, one
        object per new file, and one insert per table for the files' rows, links and types, then
        one update of the statuses. Inputs are checked before anything is written; dataset bags
        are downloaded when an execution runs (:meth:`Execution` with ``reload=``). ``recorded``
        is called with the RIDs as soon as the rows exist.
        """
        if not runs:
            return []
        for configuration, _ in runs:
            configuration.workflow = workflow
            configuration.argv = redact_argv(list(sys.argv))
            _check_inputs(ml_object, configuration)
        workflow_rid = ml_object.add_workflow(workflow)
        cat, schema = ml_object.catalog, ml_object.ml_schema
        rows = cat.insert(
            schema,
            "Execution",
            [
                {
                    "Description": c.description,
                    "Workflow": workflow_rid,
                    "Status": Status.created.value,
                    "Status_Detail": "Execution created.",
                }
                for c, _ in runs
            ],
        )
        rids = [str(r["RID"]) for r in rows]
        try:
            if recorded is not None:
                recorded(rids)  # the caller notes them (for a recovery) before anything else
            crash_point("plan:rows")
            links = [
                {"Dataset": d.rid, "Execution": rid} for (c, _), rid in zip(runs, rids, strict=True) for d in c.datasets
            ]
            if links:
                cat.insert(schema, "Dataset_Execution", links, on_conflict_skip=True)
            # Input assets are linked now and downloaded when a run starts.
            tables = {a.rid: ml_object.resolve_rid(a.rid).table for c, _ in runs for a in c.assets}
            inputs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for (c, _), rid in zip(runs, rids, strict=True):
                for a in c.assets:
                    assoc, col, ecol = ml_object.model.find_association(tables[a.rid], "Execution")
                    row = {col: a.rid, ecol: rid, "Asset_Role": "Input"}
                    inputs.setdefault((assoc.schema.name, assoc.name), []).append(row)
            for (assoc_schema, assoc_name), rows in inputs.items():
                cat.insert(assoc_schema, assoc_name, rows, on_conflict_skip=True)
            items: dict[str, tuple[AssetEntry, StoredObject, str]] = {}
            owners: dict[str, str] = {}
            for (configuration, files), rid in zip(runs, rids, strict=True):
                mine = _metadata_items(ml_object, configuration, files, rid)
                items.update(mine)
                owners.update(dict.fromkeys(mine, rid))
            crash_point("plan:stored")
            # The sweep's parameters, indexed in one insert for all of its runs.
            params = {rid: _run_parameters(ml_object, files) for (_, files), rid in zip(runs, rids, strict=True)}
            _index.write_parameters(ml_object, params)
            with cat.transaction():
                table = ml_object._table(f"{schema}:{MLAsset.execution_metadata.value}")
                _record_asset_rows(ml_object, table, [(k, *items[k]) for k in items], owners)
                cat.update(
                    schema,
                    "Execution",
                    [{"RID": rid, "Status": Status.pending.value, "Status_Detail": _PLANNED} for rid in rids],
                    returning=False,
                )
        except BaseException:
            # Leave no row saying less than the truth: these never ran and never will.
            with contextlib.suppress(Exception):
                cat.update(
                    schema,
                    "Execution",
                    [{"RID": rid, "Status": Status.aborted.value, "Status_Detail": _NOT_PLANNED} for rid in rids],
                    returning=False,
                )
            raise
        return rids

    # -- properties --------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        if self._execution_record is not None:
            return self._execution_record.status
        return self._status

    @status.setter
    def status(self, value: Status) -> None:
        self._status = value
        if self._execution_record is not None:
            self._execution_record._status = value

    @property
    def status_detail(self) -> str | None:
        """Why the execution has its status (``Status_Detail``), as last set by this process."""
        return self._status_detail

    @property
    def execution_record(self) -> ExecutionRecord | None:
        return self._execution_record

    @property
    def working_dir(self) -> Path:
        """This execution's own folder."""
        return _paths.execution_root(self._working_dir, self.execution_rid)

    @property
    def catalog(self) -> DerivaML:
        """The live catalog handle."""
        return self._ml_object

    @property
    def database_catalog(self) -> Any:
        """A catalog-like view of the first downloaded dataset, or None without datasets."""
        if not self.datasets:
            return None
        return getattr(self.datasets[0], "database_catalog", None)

    @property
    def dry_run(self) -> bool:
        return self._dry_run

    # -- status ------------------------------------------------------------------------------
    def update_status(self, status: Status | str, msg: str) -> None:
        """Set the execution's ``Status`` and ``Status_Detail`` in the catalog."""
        self._write_status(Status(status), msg, {})

    def _write_status(self, status: Status, msg: str, columns: Mapping[str, Any]) -> None:
        """Status, detail and other Execution columns (``Duration``) in one write."""
        self._status, self._status_detail = status, msg
        self._logger.info("%s %s: %s", self.execution_rid, status.value, msg)
        if self._dry_run or self._execution_record is None or (self._attached and status in _FINAL):
            return  # an attached handle's runner records how the run ended
        self._execution_record.update_status(status, msg, **columns)

    def execution_start(self) -> None:
        """Mark the start: record the time and set ``Running``."""
        self.start_time = datetime.now()
        self.uploaded_assets = None
        # Upstream sets "Initializing" here; the model is running, so the record says so.
        self.update_status(Status.running, "Start execution ...")
        crash_point("run:started")

    def _duration(self) -> str:
        self.stop_time = datetime.now()
        start = self.start_time or self.stop_time
        return format_duration((self.stop_time - start).total_seconds())

    def _finish(self, status: Status, msg: str) -> None:
        self._write_status(status, msg, {"Duration": self._duration()})

    def execution_stop(self) -> None:
        """Mark the end: record the ``Duration`` and set ``Completed``."""
        self._finish(Status.completed, "Algorithm execution ended.")

    def execute(self) -> Self:
        """Start the execution; also usable as ``with exe.execute():``."""
        self.execution_start()
        return self

    def __enter__(self) -> Self:
        self.execution_start()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, exc_tb: Any) -> bool:
        if exc_type is None:
            self.execution_stop()
            return True
        if issubclass(exc_type, KeyboardInterrupt):
            self._finish(Status.aborted, f"Interrupted: {exc_type.__name__}")
        else:
            self._finish(Status.failed, f"{exc_type.__name__}: {exc_value}")
        self._logger.error("Execution %s failed: %s: %s", self.execution_rid, exc_type.__name__, exc_value)
        return False

    # -- registering files -------------------------------------------------------------------
    @property
    def _folder(self) -> Path:
        """This execution's folder, not made (it is made by the first file registered)."""
        folder = self.__dict__.get("_folder_path")
        if folder is None or folder.name != self.execution_rid:
            folder = self.__dict__["_folder_path"] = _paths.execution_folder(self._working_dir, self.execution_rid)
        return folder

    def _asset_path(self, table: str, filename: str) -> Path:
        """Where a registered file of asset table ``table`` is (nothing is made)."""
        folders: dict[str, tuple[Path, Path]] = self.__dict__.setdefault("_asset_folders", {})
        root = self._folder
        known = folders.get(table)
        if known is None or known[0] is not root:
            known = folders[table] = (root, root / "assets" / table)
        return known[1] / filename

    def refresh_manifest(self) -> None:
        """Read the registered files again: another process (a notebook's kernel) registered some."""
        if self._manifest is not None:
            self._manifest.close()
        self._manifest = None

    def _get_manifest(self) -> AssetManifest:
        if self._manifest is None:
            self._manifest = AssetManifest(self._folder / _paths.MANIFEST_NAME, self.execution_rid, new=self._made_here)
        return self._manifest

    def _metadata_validator(self, table: Table) -> Callable[[dict[str, Any]], None]:
        allowed = self._model.asset_metadata(table)

        def check(values: dict[str, Any]) -> None:
            unknown = sorted(set(values) - allowed)
            if unknown:
                raise DerivaMLValidationError(
                    f"Asset table {table.name} has no metadata column {', '.join(map(repr, unknown))}; "
                    f"its metadata columns are: {', '.join(sorted(allowed)) or '(none)'}."
                )

        return check

    def asset_file_path(
        self,
        asset_name: str,
        file_name: str | Path,
        asset_types: list[str] | str | None = None,
        copy_file: bool = False,
        rename_file: str | None = None,
        metadata: Any = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> AssetFilePath:
        """Register a file for upload and return the path to write it at.

        Three modes: ``file_name`` a new plain name (returns a path to write to); an existing
        file, symlinked into the execution's folder; or, with ``copy_file``, copied there.
        ``rename_file`` gives the name it is stored under. The registration is in the manifest
        before this returns.

        Raises:
            DerivaMLTableTypeError: ``asset_name`` is not an asset table.
            DerivaMLInvalidTerm: an asset type is not an ``Asset_Type`` term.
            DerivaMLValidationError: a name that would leave the folder, or unknown metadata columns.
        """
        _paths.check_asset_arguments(asset_name, file_name, rename_file)  # types, empty and long names
        table = self._ml_object._asset_table(asset_name)
        types = asset_types or kwargs.pop("Asset_Type", None) or table.name
        type_list = [types] if isinstance(types, str) else list(types)
        type_list = [self._ml_object.lookup_term(MLVocab.asset_type, t).name for t in type_list]

        meta: dict[str, Any] = {}
        if metadata is not None:
            if hasattr(metadata, "model_dump"):
                meta = {k: v for k, v in metadata.model_dump().items() if v is not None}
            else:
                meta = dict(metadata)
        meta.update(kwargs)
        validate = self._metadata_validator(table)
        validate(meta)

        source = Path(file_name)
        if rename_file is not None:
            _paths.checked_file_name(str(rename_file), "rename_file")
        existing = source.exists()
        if existing:
            if source.is_dir():
                raise DerivaMLValidationError(f"{source} is a folder; register the files in it one by one.")
            target = rename_file or source.name
        else:
            if source.name != str(file_name) or source.is_absolute():
                raise DerivaMLValidationError(
                    f"{str(file_name)!r} does not exist and is not a plain file name. Give a new file's plain name "
                    "(e.g. 'model.pt'; it is placed in the execution's folder) or the path of an existing file."
                )
            target = _paths.checked_file_name(rename_file or source.name)
        if target == "_implementations.log":  # Hydra's name collides with a reserved one upstream.
            target = "-implementations.log"

        flat = _paths.asset_dir(self._working_dir, self.execution_rid, table.name) / target
        key = f"{table.name}/{target}"
        if existing:
            pending = self._get_manifest().pending_assets()
            same = flat.exists() and flat.resolve() == source.resolve()
            if key in pending and (flat.exists() or flat.is_symlink()) and not same:
                raise DerivaMLValidationError(
                    f"{key} is already registered for upload by execution {self.execution_rid} (at {flat}); "
                    f"registering {source} under the same name would replace it. Give rename_file= another name."
                )
            if flat.is_symlink() or (flat.exists() and not same):
                flat.unlink()  # an uploaded earlier file of that name: the new one replaces it
            if not flat.exists():
                if copy_file:
                    shutil.copy2(source, flat)
                else:
                    try:
                        flat.symlink_to(source.resolve())
                    except OSError:
                        shutil.copy2(source, flat)

        manifest = self._get_manifest()
        manifest.add_asset(
            key,
            AssetEntry(
                asset_table=table.name,
                schema=table.schema.name,
                asset_types=type_list,
                metadata=meta,
                description=description,
            ),
        )
        result = AssetFilePath(
            flat, asset_table=table.name, file_name=target, asset_metadata=meta, asset_types=type_list
        )
        result._bind_manifest(manifest, key, validate)
        return result

    def unregister_asset_file(self, asset_name: str, file_name: str) -> None:
        """Take back a registration: the file ``file_name`` of asset table ``asset_name`` will not be
        uploaded (a file registered up front that the run will not write). The file itself is kept."""
        table = self._ml_object._asset_table(asset_name)
        key = f"{table.name}/{_paths.checked_file_name(str(file_name))}"
        manifest = self._get_manifest()
        if key not in manifest.pending_assets():
            raise DerivaMLValidationError(
                f"{file_name!r} is not registered for upload in {table.name} by execution {self.execution_rid} "
                f"(pending: {', '.join(sorted(manifest.pending_assets())) or 'none'})."
            )
        manifest.remove([key])

    def table_path(self, table: str) -> Path:
        """A CSV file whose rows are inserted into domain table ``table`` on upload."""
        for schema in self._ml_object.domain_schemas:
            if table in self._model.schemas[schema].tables:
                return _paths.table_csv_path(self._working_dir, self.execution_rid, schema, table)
        raise DerivaMLTableNotFound(
            table, f"Table {table!r} is not in any domain schema ({self._ml_object.domain_schemas})"
        )

    # -- uploading ---------------------------------------------------------------------------
    def _store(
        self, src: Path, table: str, filename: str, max_retries: int, retry_delay: float, take: bool = False
    ) -> StoredObject:
        attempt = 0
        while True:
            try:
                return self._ml_object.catalog.objects.put(src, table, filename, take=take)
            except OSError:
                attempt += 1
                if attempt > max_retries:
                    raise
                time.sleep(retry_delay * 2 ** (attempt - 1))

    def _record_assets(
        self,
        stored: Mapping[str, tuple[AssetEntry, StoredObject, str]],
        final_status: _StatusChange | None = None,
        also: Callable[[], None] | None = None,
    ) -> dict[str, str]:
        """Asset rows, Output links and types for stored objects, ``also`` (more writes of the
        run's end), and then the status, in one transaction; key -> RID."""
        ml = self._ml_object
        cat = ml.catalog
        rids: dict[str, str] = {}
        groups: dict[tuple[str, str], list[tuple[str, AssetEntry, StoredObject, str]]] = {}
        for key, (entry, obj, filename) in stored.items():
            groups.setdefault((entry.schema, entry.asset_table), []).append((key, entry, obj, filename))
        # A few requests per asset table, not per file: one insert of the new rows (a look-up
        # only for those already there), one of the Output links and one of the types.
        with cat.transaction():
            for (schema, table), items in groups.items():
                rids.update(self._record_asset_table(ml._table(f"{schema}:{table}"), items))
            crash_point("upload:recorded")
            if also is not None:
                also()
            if final_status is not None:
                self._write_status(*final_status)
        return rids

    def _record_asset_table(self, t: Table, items: list[tuple[str, AssetEntry, StoredObject, str]]) -> dict[str, str]:
        return _record_asset_rows(self._ml_object, t, items, {k: self.execution_rid for k, *_ in items})

    def _upload_execution_dirs(
        self,
        progress_callback: Callable[[UploadProgress], None] | None = None,
        max_retries: int = 3,
        retry_delay: float = 5.0,
        timeout: tuple[int, int] | None = None,
        chunk_size: int | None = None,
        final_status: _StatusChange | None = None,
        take: bool = False,
        also: Callable[[], None] | None = None,
    ) -> dict[str, list[AssetFilePath]]:
        """Upload the pending files and record them. With ``take`` (the folder is removed after a
        successful upload) the embedded store may keep a file itself instead of a copy: a file's
        name in the folder goes once its row is recorded, and one whose row is not recorded gets
        its own copy back, so nothing written to the folder later can change a stored object."""
        manifest = self._get_manifest()
        pending = manifest.pending_assets()
        errors: dict[str, str] = {}
        stored: dict[str, tuple[AssetEntry, StoredObject, str]] = {}
        missing = [key for key in pending if not (self._asset_path(*key.split("/", 1))).is_file()]
        if missing:
            # Registered but never written (a run stopped in between, or its source was removed):
            # reported and dropped, never blocking the other files. The run did not do all it said.
            self._logger.warning(
                "Execution %s: registered but never written, not uploaded: %s", self.execution_rid, ", ".join(missing)
            )
            manifest.remove(missing)
            pending = manifest.pending_assets()
            if final_status is not None and final_status[0] is Status.completed:
                final_status = (
                    Status.aborted,
                    f"Registered but never written: {', '.join(missing)}. The other files were uploaded.",
                    final_status[2],
                )
        total = len(pending)
        for n, (key, entry) in enumerate(pending.items(), start=1):
            table, filename = key.split("/", 1)
            src = self._asset_path(table, filename)
            try:
                obj = self._store(src, table, filename, max_retries, retry_delay, take)
            except (OSError, DerivaMLException) as e:
                errors[key] = f"{type(e).__name__}: {e}"
                continue
            stored[key] = (entry, obj, filename)
            if progress_callback is not None:
                progress_callback(
                    UploadProgress(filename, obj.length, obj.length, 100.0, "upload", f"Uploaded {key}", n, total)
                )

        rids: dict[str, str] = {}
        crash_point("upload:stored")
        try:
            rids = self._record_assets(stored, None if errors else final_status, also)
            also = None
        except DerivaMLException:
            # Find the rows the catalog refuses, one file at a time; record the others.
            for key, item in stored.items():
                try:
                    rids.update(self._record_assets({key: item}))
                except DerivaMLException as e:
                    errors[key] = f"{type(e).__name__}: {e}"
            if also is not None:
                also()
            if final_status is not None and not errors:
                self._write_status(*final_status)
        if rids:
            manifest.mark_uploaded(rids)
        if errors:
            manifest.mark_failed(errors)
        if take:
            for key in stored:
                table, filename = key.split("/", 1)
                path = self._asset_path(table, filename)
                if key in rids:
                    path.unlink(missing_ok=True)  # recorded: the store holds the file
                else:
                    _unshare(path)

        asset_map: dict[str, list[AssetFilePath]] = {}
        for key, rid in rids.items():
            entry, _, filename = stored[key]
            asset_map.setdefault(f"{entry.schema}/{entry.asset_table}", []).append(
                AssetFilePath(
                    self._asset_path(entry.asset_table, filename),
                    asset_table=entry.asset_table,
                    file_name=filename,
                    asset_metadata=entry.metadata,
                    asset_types=entry.asset_types,
                    asset_rid=rid,
                )
            )
        self._upload_tables()
        if not errors:
            # Feature values wait for their asset files: insert them once every file is recorded.
            uploaded = {(stored[k][0].asset_table, stored[k][2]): rid for k, rid in rids.items()}
            self._upload_features(uploaded)  # type: ignore[attr-defined]  # from ExecutionDatasetMixin
        if errors:
            listing = "; ".join(f"{k}: {v}" for k, v in errors.items())
            raise DerivaMLUploadError(
                f"{len(errors)} of {total} files of execution {self.execution_rid} did not upload and stay pending "
                f"in {manifest.path}: {listing}. Fix the cause, then call upload_execution_outputs() again "
                f"(after ml.restore_execution({self.execution_rid!r}) in a new process)."
            )
        return asset_map

    def _upload_tables(self) -> None:
        root = self._folder / "table"
        if not root.exists():
            return
        for csv_file in sorted(root.glob("*/*/*.csv")):
            schema, table = csv_file.parent.parent.name, csv_file.parent.name
            with csv_file.open(newline="", encoding="utf-8") as f:
                rows = [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(f)]
            if rows:
                self._ml_object.catalog.insert(schema, table, rows)
            csv_file.rename(csv_file.with_suffix(".csv.uploaded"))

    def upload_execution_outputs(
        self,
        clean_folder: bool | None = None,
        progress_callback: Callable[[UploadProgress], None] | None = None,
        max_retries: int = 3,
        retry_delay: float = 5.0,
        timeout: tuple[int, int] | None = None,
        chunk_size: int | None = None,
    ) -> dict[str, list[AssetFilePath]]:
        """Upload every pending registered file and record it as an output of this execution.

        Call it after the ``with`` block. On success the status is ``Completed`` (an execution that
        already ``Failed`` or was ``Aborted`` keeps that status and its detail: its files upload, its
        outcome does not change). A file that fails raises :class:`DerivaMLUploadError` after the
        others are uploaded, and stays pending in the manifest.
        """
        if self._dry_run:
            if clean_folder is not False and self._working_dir.name.startswith("deriva-dry-run-"):
                shutil.rmtree(self._working_dir, ignore_errors=True)
            return {}
        if clean_folder is None:
            clean_folder = getattr(self._ml_object, "clean_execution_dir", True)
        # A run that failed or was aborted keeps that outcome; a failed *upload* does not count.
        detail = self._execution_record.status_detail if self._execution_record is not None else None
        keep_outcome = self.status in (Status.failed, Status.aborted) and not (detail or "").startswith(_UPLOAD_FAILED)
        if self._attached:  # the files go now; the runner records the outcome (and its own files)
            keep_outcome, clean_folder = True, False
        try:
            if not keep_outcome and not self._ml_object.catalog.atomic_transactions:
                # On a server the upload takes requests, and the record says so meanwhile. The
                # embedded store records the files and the final status in one transaction.
                self.update_status(Status.running, "Uploading execution files...")
            self.uploaded_assets = self._upload_execution_dirs(
                progress_callback,
                max_retries,
                retry_delay,
                timeout,
                chunk_size,
                final_status=None if keep_outcome else self._final_status(),
                take=bool(clean_folder),
            )
        except Exception as e:
            if not keep_outcome:
                self.update_status(Status.failed, f"{_UPLOAD_FAILED} {e}")
            raise
        self._release()
        if clean_folder:
            self._clean_folder_contents(self._folder)
        return self.uploaded_assets

    def end(
        self,
        status: Status | str,
        detail: str,
        *,
        progress_callback: Callable[[UploadProgress], None] | None = None,
        timeout: tuple[int, int] | None = None,
        chunk_size: int | None = None,
        also: Callable[[], None] | None = None,
    ) -> dict[str, list[AssetFilePath]]:
        """End the run with its outcome: record the ``Duration``, upload every registered file, and
        set ``status`` and ``detail`` (the outcome, e.g. ``Failed`` and the error) in the same
        write that follows the files, so the record never says more than is true.

        Use it instead of ``execution_stop()`` plus ``upload_execution_outputs()`` when the outcome
        is known (the pytest plugin and ``run_model`` do). Until it returns the record says
        ``Running``; a crash in between leaves work that a restore finishes. When a file does not
        upload, a ``Completed`` run ends ``Failed`` with the reason, another outcome is kept, and
        :class:`DerivaMLUploadError` is raised with the file still pending. ``also`` makes more
        writes of the run's end (the index of its metrics) in the same transaction as its files.
        """
        status = Status(status)
        started = self.start_time is not None  # a restored execution: its Duration is not known here
        closing = {"Duration": self._duration()} if started else {}
        self._status, self._status_detail = status, detail
        if self._dry_run or self._execution_record is None:
            return self.upload_execution_outputs()
        try:
            self.uploaded_assets = self._upload_execution_dirs(
                progress_callback,
                timeout=timeout,
                chunk_size=chunk_size,
                final_status=(status, detail, closing),
                take=bool(getattr(self._ml_object, "clean_execution_dir", True)),
                also=also,
            )
        except Exception as e:
            failed = (Status.failed, f"{_UPLOAD_FAILED} {e}") if status is Status.completed else (status, detail)
            try:
                self._write_status(*failed, closing)
            except DerivaMLException as again:  # the catalog is gone too: a restore finishes the run
                self._logger.error("Execution %s: status not recorded: %s", self.execution_rid, again)
            raise
        self._release()
        if getattr(self._ml_object, "clean_execution_dir", True):
            self._clean_folder_contents(self._folder)
        return self.uploaded_assets

    def _release(self) -> None:
        """Nothing left to recover once the outcome is recorded and every file uploaded."""
        if self.status in _FINAL and not self._get_manifest().pending_assets():
            _lease.release(self._working_dir, self.execution_rid)

    def upload_assets(self, assets_dir: str | Path) -> dict[str, Any]:
        """Upload every file in ``assets_dir``, a folder named like an asset table, as outputs
        of this execution; returns file name -> the uploaded file's ``AssetFilePath`` (with its RID)."""
        folder = Path(assets_dir)
        if not folder.is_dir() or not self._model.is_asset(folder.name):
            raise DerivaMLTableTypeError(
                "asset", folder.name, f"upload_assets needs a folder named like an asset table, not {folder}."
            )
        if self._dry_run:
            return {}
        for f in sorted(p for p in folder.iterdir() if p.is_file()):
            self.asset_file_path(folder.name, f, copy_file=True)
        uploaded = self._upload_execution_dirs()
        return {a.file_name: a for assets in uploaded.values() for a in assets}

    def _final_status(self) -> _StatusChange:
        if self._unfinished:
            return (
                Status.aborted,
                "Did not finish: the process running it stopped. Its registered files were uploaded after a restore.",
                {},
            )
        return Status.completed, "Successfully end the execution.", {}

    def _clean_folder_contents(self, folder_path: Path, remove_folder: bool = True) -> None:
        manifest = self._get_manifest()
        if manifest.pending_assets():
            return  # never delete a file that is still to be uploaded
        manifest.close()
        if remove_folder:
            tables = {entry.asset_table for entry in manifest.assets.values()}
            if not _remove_known_folder(folder_path, tables):
                shutil.rmtree(folder_path, ignore_errors=True)
        else:
            for child in folder_path.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        self._manifest = None

    # -- inputs ------------------------------------------------------------------------------
    def download_asset(
        self, asset_rid: str, dest_dir: Path, update_catalog: bool = True, use_cache: bool = False
    ) -> AssetFilePath:
        """Fetch an asset's file into ``dest_dir`` (verified by MD5) and, unless told not to,
        record it as an ``Input`` of this execution. With ``use_cache``, reuse a copy cached by MD5."""
        asset = self._ml_object.lookup_asset(asset_rid)
        filename = _paths.checked_file_name(asset.filename or f"{asset.asset_rid}.bin", "asset file name")
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / filename
        if use_cache:
            cached = self._cache_dir / "assets" / f"{asset_rid}_{asset.md5}" / filename
            if not cached.exists():
                self._ml_object.catalog.objects.get(asset.url, cached)
            if target.exists() or target.is_symlink():
                target.unlink()
            target.symlink_to(cached)
        else:
            self._ml_object.catalog.objects.get(asset.url, target)
        result = AssetFilePath(
            target,
            asset_table=asset.asset_table,
            file_name=filename,
            asset_metadata=asset.metadata,
            asset_types=asset.asset_types,
            asset_rid=asset_rid,
        )
        if update_catalog and not self._dry_run:
            t = self._ml_object._table(f"{asset.schema}:{asset.asset_table}")
            assoc, col, ecol = self._model.find_association(t, "Execution")
            self._ml_object.catalog.insert(
                assoc.schema.name,
                assoc.name,
                [{col: asset_rid, ecol: self.execution_rid, "Asset_Role": "Input"}],
                on_conflict_skip=True,
            )
        return result

    def download_dataset_bag(self, dataset: Any) -> Any:
        """Download a dataset as a BDBag (see :meth:`DerivaML.download_dataset_bag`)."""
        return self._ml_object.download_dataset_bag(dataset)

    def list_assets(self, asset_role: str | None = None) -> list[Asset]:
        """Assets this execution read (``Input``) or wrote (``Output``)."""
        if self._execution_record is None:
            return []
        return self._execution_record.list_assets(asset_role=asset_role)

    def list_input_datasets(self) -> list[Any]:
        if self._execution_record is None:
            return []
        return self._execution_record.list_input_datasets()

    # -- nesting -----------------------------------------------------------------------------
    def add_nested_execution(
        self, nested_execution: Execution | ExecutionRecord | str, sequence: int | None = None
    ) -> None:
        """Make another execution a child of this one; ``sequence`` orders it (None: parallel)."""
        if self._dry_run:
            return
        rid = nested_execution if isinstance(nested_execution, str) else nested_execution.execution_rid
        if rid == DRY_RUN_RID:
            return
        self._ml_object._add_nested_execution(self.execution_rid, rid, sequence)

    def list_nested_executions(self, recurse: bool = False, _visited: set[str] | None = None) -> list[ExecutionRecord]:
        if self._execution_record is None:
            return []
        return self._execution_record.list_nested_executions(recurse=recurse, _visited=_visited)

    def list_parent_executions(self, recurse: bool = False, _visited: set[str] | None = None) -> list[ExecutionRecord]:
        if self._execution_record is None:
            return []
        return self._execution_record.list_parent_executions(recurse=recurse, _visited=_visited)

    def is_nested(self) -> bool:
        return self._execution_record is not None and self._execution_record.is_nested()

    def is_parent(self) -> bool:
        return self._execution_record is not None and self._execution_record.is_parent()

    def __str__(self) -> str:
        return "\n".join(
            [
                f"caching_dir: {self._cache_dir}",
                f"_working_dir: {self._working_dir}",
                f"execution_rid: {self.execution_rid}",
                f"workflow_rid: {self.workflow_rid}",
                f"asset_paths: {self.asset_paths}",
                f"configuration: {self.configuration}",
            ]
        )

    def __repr__(self) -> str:
        return f"Execution(rid={self.execution_rid!r}, status={self.status.value!r})"


class Execution(ExecutionDatasetMixin, ExecutionBase):
    """One run of a workflow: its inputs (datasets, assets), outputs (files, datasets, features),
    status and timing. See :class:`ExecutionBase` for the arguments."""


logging.getLogger("pytest_deriva").addHandler(logging.NullHandler())


# -- recording, shared by one execution and by a planned batch -----------------------------------
_PLANNED = "Initialize status finished."
_NOT_PLANNED = "Not run: its metadata could not be recorded."


def _remove_known_folder(folder: Path, tables: set[str]) -> bool:
    """Remove an execution's folder that holds only what registering files makes there (the manifest
    and empty asset folders), with a call per entry instead of a walk; False if it holds more."""
    if _paths.recycle(folder, tables):  # kept, emptied, for this process's next execution
        return True
    try:
        os.unlink(folder / _paths.MANIFEST_NAME)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    for path in [*(folder / "assets" / t for t in sorted(tables)), folder / "assets", folder]:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def _unshare(path: Path) -> None:
    """Give ``path`` its own copy of its bytes if it shares them with another name (a stored object)."""
    try:
        if path.is_symlink() or path.stat().st_nlink == 1:
            return
    except FileNotFoundError:
        return
    tmp = path.with_name(f".unshare-{os.getpid()}-{path.name}")
    shutil.copy2(path, tmp)
    os.replace(tmp, path)


def _check_inputs(ml_object: DerivaML, configuration: ExecutionConfiguration) -> None:
    """Check an execution's workflow types, datasets and assets before anything is written."""
    wf = configuration.workflow
    assert wf is not None
    for wt in wf.workflow_type:
        ml_object.lookup_term(MLVocab.workflow_type, wt)
    for d in configuration.datasets:
        ml_object.validate_dataset_spec(d)
    for a in configuration.assets:
        found = ml_object.resolve_rid(a.rid)
        if not ml_object.model.is_asset(found.table):
            raise DerivaMLTableTypeError(
                "asset",
                a.rid,
                f"Asset {a.rid} in the configuration is a row of {found.table.name}, not of an asset table.",
            )


def _run_parameters(ml_object: DerivaML, hydra_files: Mapping[str, bytes]) -> dict[str, Any]:
    """The parameters of a run, for the index: from the Hydra files given in memory, else from
    the Hydra run folder's ``config.yaml`` / ``overrides.yaml`` (what :func:`_metadata_items` records)."""
    files = dict(hydra_files)
    out = ml_object.hydra_runtime_output_dir
    if not files and out and Path(out).is_dir():
        for f in sorted(Path(out).rglob("*.yaml")):
            if f.name in ("config.yaml", "overrides.yaml"):
                files[f"hydra-{Path(out).name}-{f.name}"] = f.read_bytes()
    # Redacted as the recorded files are: a secret in the configuration is not indexed either.
    return _index.parameters_from_files({name: redact_text_file(name, data) for name, data in files.items()})


def _metadata_items(
    ml_object: DerivaML, configuration: ExecutionConfiguration, hydra_files: Mapping[str, bytes], key_prefix: str
) -> dict[str, tuple[AssetEntry, StoredObject, str]]:
    """Store the metadata files of one execution (from memory, or from where they are); key -> what
    to record, with keys ``<key_prefix>:<table>/<name>`` (the execution's RID where many are recorded
    at once)."""
    objects = ml_object.catalog.objects
    schema = ml_object.ml_schema
    table = MLAsset.execution_metadata.value
    items: dict[str, tuple[AssetEntry, StoredObject, str]] = {}

    def add(name: str, obj: StoredObject, asset_type: str, description: str | None) -> None:
        entry = AssetEntry(asset_table=table, schema=schema, asset_types=[asset_type], description=description)
        items[f"{key_prefix}:{table}/{name}"] = (entry, obj, name)

    if not ml_object._metadata_types_known:  # terms are never removed: checked once a handle
        for asset_type in {t.value for t in ExecMetadataType}:
            ml_object.lookup_term(MLVocab.asset_type, asset_type)
        ml_object._metadata_types_known = True
    config = json.dumps(redact_mapping(configuration.model_dump(mode="json"))).encode()
    add(
        "configuration.json",
        objects.put_bytes(config, table, "configuration.json"),
        ExecMetadataType.deriva_config.value,
        _METADATA_DESCRIPTIONS["configuration.json"],
    )
    wf = configuration.workflow
    assert wf is not None
    if wf.git_root and (lock := Path(wf.git_root) / "uv.lock").is_file():
        add(
            "uv.lock",
            objects.put(lock, table, "uv.lock"),
            ExecMetadataType.execution_config.value,
            _METADATA_DESCRIPTIONS["uv.lock"],
        )
    if diff := wf.source_diff():
        name = f"workflow-diff-{Path(wf.source_path or 'workflow').name}.patch"
        add(
            name,
            objects.put_bytes(diff.encode(), table, name),
            ExecMetadataType.execution_config.value,
            f"Uncommitted changes of the workflow file {wf.source_path} when this execution ran "
            f"(apply them to {wf.url} to reproduce it).",
        )
    for name, data in hydra_files.items():
        checked = _paths.checked_file_name(name)
        original = checked.rsplit("-", 1)[-1]
        add(
            checked,
            objects.put_bytes(redact_text_file(checked, data), table, checked),
            ExecMetadataType.hydra_config.value,
            _METADATA_DESCRIPTIONS.get(original),
        )
    out = ml_object.hydra_runtime_output_dir
    if out and Path(out).is_dir():
        for f in sorted(Path(out).rglob("*")):
            if f.is_file():
                name = _paths.checked_file_name(f"hydra-{Path(out).name}-{f.name}")
                redacted = redact_file(f)  # the secrets of Hydra's files are not recorded; the files stay
                add(
                    name,
                    objects.put(f, table, name) if redacted is None else objects.put_bytes(redacted, table, name),
                    ExecMetadataType.hydra_config.value,
                    _METADATA_DESCRIPTIONS.get(f.name),
                )
    name, text = environment_snapshot()
    key = (ml_object.catalog.catalog_uuid or str(id(objects)), name)
    env = _ENV_OBJECTS.get(key)
    if env is None:  # the snapshot is the same for the whole process: store it once
        env = _ENV_OBJECTS[key] = objects.put_bytes(text.encode(), table, name)
    add(name, env, ExecMetadataType.runtime_env.value, _ENV_SNAPSHOT_DESCRIPTION)
    return items


_COMMITTED_ASSET_ROWS = 256  # the most recent ones a process remembers


def _record_asset_rows(
    ml: DerivaML,
    t: Table,
    items: list[tuple[str, AssetEntry, StoredObject, str]],
    owners: Mapping[str, str],
) -> dict[str, str]:
    """Rows of asset table ``t`` for stored objects, each linked as an Output of the execution
    ``owners[key]``, with its types; key -> asset RID. A few requests for any number of files."""
    cat = ml.catalog
    schema = t.schema.name
    by_file: dict[tuple[str, str], str] = {}  # (MD5, file name) -> asset RID
    typed: set[str] = set()  # rows this process recorded with their types before
    for _, _, obj, filename in items:
        known = ml._asset_rows.get((schema, t.name, obj.md5, filename))
        if known:
            by_file[(obj.md5, filename)] = known
            typed.add(known)
        elif committed := ml._committed_asset_rows.get((schema, t.name, obj.md5, filename)):
            by_file[(obj.md5, filename)] = committed
    new: dict[tuple[str, str], dict[str, Any]] = {}
    for _, entry, obj, filename in items:
        if (obj.md5, filename) not in by_file:
            new.setdefault(
                (obj.md5, filename),
                {
                    "URL": obj.url,
                    "Filename": filename,
                    "Length": obj.length,
                    "MD5": obj.md5,
                    "Description": entry.description,
                    **entry.metadata,
                },
            )
    # URL (``/hatrac/<table>/<md5>.<file name>``) is the asset table's key: a row for the same
    # bytes and name, made earlier or by another process meanwhile, is skipped and then read, so
    # a file is recorded once however often it is uploaded. Nothing is read for a new file.
    for r in cat.insert(schema, t.name, list(new.values()), on_conflict_skip=True):
        by_file[(r["MD5"], r["Filename"])] = r["RID"]
    if raced := [row["URL"] for k, row in new.items() if k not in by_file]:
        for r in cat.select(schema, t.name, {"URL": raced}, columns=["RID", "MD5", "Filename"]):
            by_file[(r["MD5"], r["Filename"])] = r["RID"]
            # Committed before this transaction began: it stays, whatever becomes of this one.
            ml._committed_asset_rows[(schema, t.name, r["MD5"], r["Filename"])] = r["RID"]
            if len(ml._committed_asset_rows) > _COMMITTED_ASSET_ROWS:
                ml._committed_asset_rows.popitem(last=False)
    assoc, col, ecol = ml.model.find_association(t, "Execution")
    atype, tcol, _ = ml.model.find_association(t, MLVocab.asset_type.value)
    links: dict[tuple[str, str], dict[str, Any]] = {}
    types: dict[tuple[str, str], dict[str, Any]] = {}
    rids: dict[str, str] = {}
    for key, entry, obj, filename in items:
        rid = by_file[(obj.md5, filename)]
        if filename.startswith("environment_snapshot_"):
            ml._asset_rows[(schema, t.name, obj.md5, filename)] = rid  # shared by every execution of this process
        links[(rid, owners[key])] = {col: rid, ecol: owners[key], "Asset_Role": "Output"}
        if rid not in typed:
            for at in entry.asset_types:
                types[(rid, at)] = {tcol: rid, "Asset_Type": at}
        rids[key] = rid
    cat.insert(assoc.schema.name, assoc.name, list(links.values()), on_conflict_skip=True)
    cat.insert(atype.schema.name, atype.name, list(types.values()), on_conflict_skip=True)
    return rids
