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
# Folders this process made, per execution folder, checked first so that the hot path makes no
# mkdir system calls. Removing an execution's folder forgets them through forget().
_known: dict[Path, set[Path]] = {}


def _ensure(folder: Path, root: Path) -> Path:
    known = _known.setdefault(root, set())
    if folder not in known:
        folder.mkdir(parents=True, exist_ok=True)
        known.add(folder)
    return folder


def forget(root: Path) -> None:
    """Forget the folders made under an execution folder (after it was removed)."""
    _known.pop(root, None)


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
    if not _NAME_RE.fullmatch(name):
        raise DerivaMLValidationError(f"{what} {name!r} cannot name a folder; use letters, digits, '_' and '-'.")
    return name


def execution_root(working_dir: Path, execution_rid: str) -> Path:
    """The folder of one execution (made if missing)."""
    root = Path(working_dir) / "execution" / _segment(execution_rid, "Execution RID")
    return _ensure(root, root)


def asset_dir(working_dir: Path, execution_rid: str, asset_table: str) -> Path:
    """The flat folder of an asset table's registered files (made if missing)."""
    root = execution_root(working_dir, execution_rid)
    return _ensure(root / "assets" / _segment(asset_table, "Asset table"), root)


def manifest_path(working_dir: Path, execution_rid: str) -> Path:
    return execution_root(working_dir, execution_rid) / "asset-manifest.jsonl"


def feature_value_path(
    working_dir: Path, execution_rid: str, schema: str, target_table: str, feature_name: str
) -> Path:
    root = execution_root(working_dir, execution_rid)
    d = (
        root
        / "feature"
        / _segment(schema, "Schema")
        / _segment(target_table, "Table")
        / _segment(feature_name, "Feature")
    )
    return _ensure(d, root) / f"{feature_name}.jsonl"


def table_csv_path(working_dir: Path, execution_rid: str, schema: str, table: str) -> Path:
    root = execution_root(working_dir, execution_rid)
    d = root / "table" / _segment(schema, "Schema") / _segment(table, "Table")
    return _ensure(d, root) / f"{table}.csv"
