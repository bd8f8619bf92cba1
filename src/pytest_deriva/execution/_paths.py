"""Where an execution keeps its files inside the DerivaML working directory.

<working_dir>/execution/<execution RID>/
    assets/<AssetTable>/<file>        registered files (flat per table)
    asset-manifest.jsonl              the crash-safe record of every registration
    feature/<schema>/<table>/<feature>/<feature>.jsonl
    table/<schema>/<table>/<table>.csv
    downloaded-assets/<AssetTable>/   input assets
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_deriva.exceptions import DerivaMLValidationError

__all__ = [
    "asset_dir",
    "checked_file_name",
    "execution_root",
    "feature_value_path",
    "forget",
    "manifest_path",
    "table_csv_path",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
# Folders this process made or saw; checked first so the hot path makes no mkdir system calls.
# A folder removed by clean-up is forgotten through forget().
_known: set[Path] = set()


def _ensure(folder: Path) -> Path:
    if folder not in _known:
        folder.mkdir(parents=True, exist_ok=True)
        _known.add(folder)
    return folder


def forget(folder: Path) -> None:
    """Drop ``folder`` and everything below it from the cache of existing folders (after removal)."""
    for known in [k for k in _known if k == folder or k.is_relative_to(folder)]:
        _known.discard(known)


def checked_file_name(name: str, what: str = "file name") -> str:
    """Return ``name`` if it is a plain file name that stays inside its folder, else raise.

    Several dots and spaces are fine (``my model.v2.pt``); separators, ``..``, absolute paths and
    NUL bytes are not: a registered file never escapes its execution's folder.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or Path(name).is_absolute():
        raise DerivaMLValidationError(
            f"{what} {name!r} is not a plain file name; it must not contain '/', '\\\\', be '..' or be absolute. "
            "Give just the name, for example 'model.pt'."
        )
    return name


def _segment(name: str, what: str) -> str:
    if not _NAME_RE.match(name):
        raise DerivaMLValidationError(f"{what} {name!r} cannot name a folder; use letters, digits, '_' and '-'.")
    return name


def execution_root(working_dir: Path, execution_rid: str) -> Path:
    """The folder of one execution (made if missing)."""
    return _ensure(Path(working_dir) / "execution" / _segment(execution_rid, "Execution RID"))


def asset_dir(working_dir: Path, execution_rid: str, asset_table: str) -> Path:
    """The flat folder of an asset table's registered files (made if missing)."""
    return _ensure(execution_root(working_dir, execution_rid) / "assets" / _segment(asset_table, "Asset table"))


def manifest_path(working_dir: Path, execution_rid: str) -> Path:
    return execution_root(working_dir, execution_rid) / "asset-manifest.jsonl"


def feature_value_path(
    working_dir: Path, execution_rid: str, schema: str, target_table: str, feature_name: str
) -> Path:
    d = (
        execution_root(working_dir, execution_rid)
        / "feature"
        / _segment(schema, "Schema")
        / _segment(target_table, "Table")
        / _segment(feature_name, "Feature")
    )
    return _ensure(d) / f"{feature_name}.jsonl"


def table_csv_path(working_dir: Path, execution_rid: str, schema: str, table: str) -> Path:
    d = execution_root(working_dir, execution_rid) / "table" / _segment(schema, "Schema") / _segment(table, "Table")
    return _ensure(d) / f"{table}.csv"
