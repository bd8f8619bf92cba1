"""Dataset and feature operations of an ``Execution`` (mixed into it).

Feature values an execution adds are checked at once and staged in its folder
(``feature/<schema>/<Target>/<Feature>/<Feature>.jsonl``); nothing reaches the catalog until
``upload_execution_outputs``, which inserts them after every file is uploaded, with each asset
column's local file replaced by the RID of its uploaded asset row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva._rid import DRY_RUN_RID, is_rid
from pytest_deriva.catalog.model import Column, Table
from pytest_deriva.catalog.port import select_in
from pytest_deriva.exceptions import DerivaMLExecutionError, DerivaMLUploadError, DerivaMLValidationError
from pytest_deriva.execution import _paths

if TYPE_CHECKING:
    from pytest_deriva.dataset.dataset import Dataset
    from pytest_deriva.dataset.feature import Feature, FeatureRecord
    from pytest_deriva.dataset.files import FileSpec
    from pytest_deriva.dataset.version import DatasetVersion
    from pytest_deriva.execution.execution import ExecutionBase as _Base
else:
    _Base = object

__all__ = ["ExecutionDatasetMixin"]

_UPLOADED_SUFFIX = ".uploaded"


class ExecutionDatasetMixin(_Base):
    """Datasets and features made or read by an execution. ``Execution`` inherits these methods."""

    _staged_targets: dict[str, set[str]] | None = None

    # -- datasets ----------------------------------------------------------------------------
    def _no_dry_run(self, what: str) -> None:
        if self._dry_run or self.execution_rid == DRY_RUN_RID:
            raise DerivaMLExecutionError(
                f"{what} writes to the catalog, and a dry run writes nothing; run without dry_run to {what}."
            )

    def create_dataset(
        self,
        dataset_types: str | list[str] | None = None,
        version: DatasetVersion | str | None = None,
        description: str = "",
    ) -> Dataset:
        """Create a dataset made by this execution (linked in ``Dataset_Execution``; default version 0.1.0)."""
        self._no_dry_run("create_dataset")
        return self._ml_object.create_dataset(
            dataset_types=dataset_types, description=description, execution_rid=self.execution_rid, version=version
        )

    def add_files(
        self,
        files: Iterable[FileSpec],
        dataset_types: str | list[str] | None = None,
        description: str = "",
    ) -> Dataset:
        """Register files in ``File`` (by URL, MD5 and length) and return a dataset of them made by
        this execution (see :meth:`DerivaML.add_files`)."""
        self._no_dry_run("add_files")
        return self._ml_object.add_files(
            files, dataset_types=dataset_types, description=description, execution_rid=self.execution_rid
        )

    # -- features ----------------------------------------------------------------------------
    def add_features(self, features: Iterable[FeatureRecord]) -> int:
        """Stage feature values for upload; returns how many. NOTHING is written to the catalog
        until :meth:`upload_execution_outputs`.

        Each record's ``Execution`` becomes this execution. Its target must be a row of the
        feature's table; an asset column holds a file registered with :meth:`asset_file_path` in
        this execution (the path it returned, or the file's name) or the RID of an existing asset.
        All records are checked before any is staged.

        Raises:
            DerivaMLValidationError: a record that is not a feature record, a target that is not a
                row of the target table, a value given twice for a target, or an asset value that
                is neither a file of this execution nor an asset RID; nothing is staged.
        """
        from pytest_deriva.dataset.feature import FeatureRecord

        records = list(features)
        groups: dict[str, tuple[Feature, list[FeatureRecord]]] = {}
        for r in records:
            feature = type(r).feature if isinstance(r, FeatureRecord) else None
            if feature is None:
                raise DerivaMLValidationError(
                    f"{r!r} is not a feature record; make records with ml.feature_record_class(table, name)."
                )
            groups.setdefault(feature.feature_table.qualified_name, (feature, []))[1].append(r)
        staged: list[tuple[Path, list[str]]] = []
        for feature, group in groups.values():
            staged.append(self._stage_lines(feature, group))
        for path, lines in staged:
            with path.open("a", encoding="utf-8") as f:
                f.write("".join(lines))
        for _, group in groups.values():
            for r in group:
                r.Execution = self.execution_rid
        return len(records)

    def _stage_lines(self, feature: Feature, records: list[FeatureRecord]) -> tuple[Path, list[str]]:
        """Check one feature's records; the file they go to and their JSON lines."""

        target = feature.target_table
        ml = self._ml_object
        wanted = [str(getattr(r, target.name)) for r in records]
        found = {row["RID"] for row in select_in(ml.catalog, target, "RID", wanted)}
        missing = [x for x in dict.fromkeys(wanted) if x not in found]
        if missing:
            raise DerivaMLValidationError(
                f"Feature {feature.feature_name!r} describes rows of {target.name}, and "
                f"{', '.join(missing)} {'is not one' if len(missing) == 1 else 'are not'}; give RIDs of {target.name}."
            )
        path = _paths.feature_value_path(
            self._working_dir, self.execution_rid, feature.feature_table.schema.name, target.name, feature.feature_name
        )
        taken = self._staged(path, target.name)
        twice = sorted({x for x in wanted if x in taken or wanted.count(x) > 1})
        if twice:
            raise DerivaMLValidationError(
                f"Feature {feature.feature_name!r}: this execution gives {target.name} {', '.join(twice)} more than "
                "one value; an execution records one value per row and feature."
            )
        lines = []
        for r in records:
            values = r.model_dump(mode="json")
            for col in feature.asset_columns:
                values[col.name] = self._asset_reference(feature, col, getattr(r, col.name))
            values["Execution"] = self.execution_rid
            lines.append(json.dumps(values) + "\n")
        taken.update(wanted)
        return path, lines

    def _staged(self, path: Path, target_column: str) -> set[str]:
        """Targets already staged in ``path`` (read once, then kept up to date)."""
        if self._staged_targets is None:
            self._staged_targets = {}
        key = str(path)
        if key not in self._staged_targets:
            taken: set[str] = set()
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        taken.add(json.loads(line)[target_column])
            self._staged_targets[key] = taken
        return self._staged_targets[key]

    def _asset_reference(self, feature: Feature, col: Column, value: Any) -> str | None:
        """``<Table>/<file name>`` of a file registered in this execution, or an existing asset's RID."""
        from pytest_deriva.execution.manifest import AssetFilePath

        if value is None:
            return None
        table: Table = feature._referenced_table(col)
        manifest = self._get_manifest()
        if isinstance(value, AssetFilePath) and value.asset_table:
            name, key = value.file_name, f"{value.asset_table}/{value.file_name}"
            if value.asset_table != table.name:
                raise DerivaMLValidationError(
                    f"Feature {feature.feature_name!r} column {col.name} takes {table.name} files; "
                    f"{value} is registered for {value.asset_table}."
                )
        else:
            text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
            name = Path(text).name
            key = f"{table.name}/{name}"
            if key not in manifest.assets and is_rid(text):
                found = self._ml_object.resolve_rid(text)
                if found.table.name != table.name:
                    raise DerivaMLValidationError(
                        f"Feature {feature.feature_name!r} column {col.name}: {text} is a row of {found.table.name}, "
                        f"not of the asset table {table.name}."
                    )
                return text
            if key in manifest.assets and name != text:
                flat = _paths.asset_dir(self._working_dir, self.execution_rid, table.name) / name
                if Path(text).resolve() != flat.resolve():
                    key = ""  # a different file of the same name
        if key not in manifest.assets:
            raise DerivaMLValidationError(
                f"Feature {feature.feature_name!r} column {col.name}: {value!s} is not a file registered in "
                f"execution {self.execution_rid} for {table.name}. Register it first with "
                f"execution.asset_file_path({table.name!r}, ...) and pass the path it returns, "
                f"or give the RID of an existing {table.name} asset."
            )
        return key

    def _pending_feature_values(self) -> dict[str, int]:
        """Staged feature values not inserted yet, by feature table file (``schema/Target/Feature``)."""
        root = self._folder / "feature"
        out: dict[str, int] = {}
        if root.exists():
            for path in sorted(root.glob("*/*/*/*.jsonl")):
                lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
                out["/".join(path.parent.relative_to(root).parts)] = len(lines)
        return out

    def _upload_features(self, uploaded: dict[tuple[str, str], str]) -> None:
        """Insert the feature values staged by ``add_features``, in one transaction; ``uploaded``
        maps (asset table, file name) of this upload to the asset RIDs (files uploaded by an earlier
        attempt are found in the manifest)."""
        root = self._folder / "feature"
        files = sorted(root.glob("*/*/*/*.jsonl")) if root.exists() else []
        if not files or self._dry_run:
            return
        ml = self._ml_object
        rids: dict[str, str] = {
            key: e.rid for key, e in self._get_manifest().assets.items() if e.rid is not None and not e.is_pending
        }
        rids.update({f"{t}/{n}": rid for (t, n), rid in uploaded.items()})
        batches: list[tuple[Table, list[dict[str, Any]]]] = []
        for path in files:
            schema, target, name = path.parent.parent.parent.name, path.parent.parent.name, path.parent.name
            # The values are filed under the feature table's schema; the target may be in another.
            qualified = f"{schema}:{target}"
            feature = ml.lookup_feature(qualified if ml.model.has_table(qualified) else target, name)
            rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
            for row in rows:
                for col in feature.asset_columns:
                    ref = row.get(col.name)
                    if isinstance(ref, str) and "/" in ref:
                        if ref not in rids:
                            raise DerivaMLUploadError(
                                f"Feature {name} of {target} refers to {ref}, which has not been uploaded; "
                                f"its values stay staged in {path}."
                            )
                        row[col.name] = rids[ref]
            batches.append((feature.feature_table, _columns_only(feature.feature_table, rows)))
        with ml.catalog.transaction():
            for table, rows in batches:
                ml.catalog.insert(table.schema.name, table.name, rows, on_conflict_skip=True)
        for path in files:
            path.rename(path.with_name(path.name + _UPLOADED_SUFFIX))
        self._staged_targets = None


def _columns_only(table: Table, rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k in table.columns} for r in rows]
