"""Where an execution keeps its files inside the DerivaML working directory.

<working_dir>/execution/<execution RID>/
    assets/<AssetTable>/<file>        registered files (flat per table)
    asset-manifest.jsonl              the crash-safe record of every registration
    feature/<schema>/<table>/<feature>/<feature>.jsonl
    table/<schema>/<table>/<table>.csv
    downloaded-assets/<AssetTable>/   input assets
<working_dir>/execution/.spare-<lease>/assets/<AssetTable>/
    the emptied folders of the process's last cleaned execution, renamed into place for its next
    one (see :func:`recycle`); never an execution's, gone when the process ends
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import threading
from pathlib import Path

from pytest_deriva._filenames import NAME_MAX, check_length, checked_file_name
from pytest_deriva.catalog.model import Table
from pytest_deriva.exceptions import DerivaMLInputError, DerivaMLValidationError

__all__ = [
    "MANIFEST_NAME",
    "NAME_MAX",
    "SPARE_PREFIX",
    "asset_dir",
    "check_asset_arguments",
    "checked_file_name",
    "execution_folder",
    "execution_root",
    "feature_value_path",
    "manifest_path",
    "recycle",
    "remove_spare",
    "table_csv_path",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def _ensure(folder: Path) -> Path:
    # The folder itself is asked, not a cache of folders made: a cache goes stale when someone
    # else removes a folder. One stat (about 2 us) where a folder exists; mkdir(exist_ok=True)
    # would cost twice that, an exception each time.
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_asset_arguments(asset_name: object, file_name: object, rename_file: object = None) -> None:
    """The checks of ``Execution.asset_file_path``'s arguments that need no catalog: their types,
    empty names and over-long names, before any path is looked at or anything is written.

    Raises:
        DerivaMLInputError: a value of the wrong type (``None`` for a table, a number for a name).
        DerivaMLValidationError: an empty name, or a name longer than :data:`NAME_MAX` bytes.
    """
    if not isinstance(asset_name, str | Table):
        raise DerivaMLInputError(
            f"asset_name {DerivaMLInputError.shown(asset_name)} ({type(asset_name).__name__}) is not a table name; "
            "give the name of an asset table as a string, for example 'Execution_Asset'."
        )
    if isinstance(asset_name, str) and not asset_name.strip():
        raise DerivaMLInputError(
            f"asset_name is empty ({asset_name!r}); give the name of an asset table, for example 'Execution_Asset'."
        )
    if isinstance(file_name, bytes) or not isinstance(file_name, str | os.PathLike):
        raise DerivaMLInputError(
            f"file_name {DerivaMLInputError.shown(file_name)} ({type(file_name).__name__}) is not a file name; give "
            "a new file's plain name (for example 'model.pt') or the path of an existing file, as a string or Path."
        )
    text = os.fspath(file_name)
    if not isinstance(text, str) or not text:
        raise DerivaMLValidationError(
            f"file_name is empty ({text!r}); give a new file's plain name (for example 'model.pt') or the path "
            "of an existing file."
        )
    path = Path(text)
    for part in path.parts:  # no existing file has a longer name: refuse before stat() fails
        check_length(part, "file_name" if part == path.name else "a folder in file_name")
    if rename_file is not None:
        checked_file_name(rename_file, "rename_file")


def _segment(name: str, what: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise DerivaMLValidationError(f"{what} {name!r} cannot name a folder; use letters, digits, '_' and '-'.")
    return name


@functools.lru_cache(maxsize=64)
def _executions(working_dir: Path) -> Path:
    return Path(working_dir) / "execution"


def _root(working_dir: Path, execution_rid: str) -> Path:
    return _executions(working_dir) / _segment(execution_rid, "Execution RID")


def execution_folder(working_dir: Path, execution_rid: str) -> Path:
    """The folder of one execution, which is made only when something is written there."""
    return _root(working_dir, execution_rid)


def execution_root(working_dir: Path, execution_rid: str) -> Path:
    """The folder of one execution (made if missing)."""
    return _ensure(_root(working_dir, execution_rid))


def asset_dir(working_dir: Path, execution_rid: str, asset_table: str) -> Path:
    """The flat folder of an asset table's registered files (made if missing, with its parents)."""
    root = _root(working_dir, execution_rid)
    folder = root / "assets" / _segment(asset_table, "Asset table")
    if folder.is_dir() or _take_spare(root, asset_table):
        return folder
    try:  # from the top down: three calls for a new execution's folder, where mkdir -p makes five
        for level in (root, root / "assets", folder):
            with contextlib.suppress(FileExistsError):
                os.mkdir(level)
    except FileNotFoundError:  # the working directory's execution folder is new too
        folder.mkdir(parents=True, exist_ok=True)
    return folder


MANIFEST_NAME = "asset-manifest.jsonl"

# -- the spare folder ---------------------------------------------------------------------------
# Making a run's three folders (execution/<RID>/assets/<Table>) and removing them after its upload
# costs 0.3-0.6 ms a run on ext4, more than everything else the file system does for it. A process
# keeps the emptied folders of its last cleaned execution instead, renamed to
# execution/.spare-<its lease>, and renames them into place for its next execution's first file:
# two renames a run where there were three mkdir and three rmdir. The spare is one per process and
# working directory; it goes when the process ends, or, after a crash, with the process's lease
# (recovery). Names starting with "." are never an execution's RID.
SPARE_PREFIX = ".spare-"
_WITH_MANIFEST = sorted(["assets", MANIFEST_NAME])
_spare_guard = threading.Lock()
_spares: dict[Path, tuple[int, Path, str]] = {}  # execution/ -> (pid, the spare, its asset table)


def _take_spare(root: Path, asset_table: str) -> bool:
    """Put this process's spare folders in place as ``root``'s (with ``assets/<asset_table>``)."""
    with _spare_guard:
        held = _spares.pop(root.parent, None)
    if held is None or held[0] != os.getpid():
        return False
    _, spare, table = held
    try:
        os.rename(spare, root)  # refused if root exists with something in it (it is then left alone)
    except OSError:
        _remove_chain(spare, table)
        return False
    if table != asset_table:
        try:
            os.rename(root / "assets" / table, root / "assets" / asset_table)
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(root / "assets" / table)
            return False  # the caller makes what is missing
    return True


def recycle(root: Path, tables: set[str]) -> bool:
    """Keep ``root``, an execution's folder whose files are all uploaded, as this process's spare if
    it holds nothing but its manifest and ``assets/<the one table>`` (empty); True if it is gone
    from ``root``.

    The manifest is kept too, emptied: ext4 looks for a free inode past every recently deleted one,
    so a file made and deleted per run makes each later new file slower (most of a run's time in
    the kernel went there). Folders and manifest reused, a run frees no inode at all.
    """
    if len(tables) != 1:
        return False
    (table,) = tables
    parent, pid = root.parent, os.getpid()
    with _spare_guard:
        held = _spares.get(parent)
        if held is not None and held[0] == pid:
            return False  # one spare is enough
        here, assets = str(root), os.path.join(root, "assets")  # strings: a pathlib join costs ~10 us
        try:  # only what the clean-up left: anything else is not ours to carry to the next run
            if sorted(os.listdir(here)) not in (["assets"], _WITH_MANIFEST):
                return False
            if os.listdir(assets) != [table] or os.listdir(os.path.join(assets, table)):
                return False
            with contextlib.suppress(FileNotFoundError):
                os.truncate(os.path.join(here, MANIFEST_NAME), 0)  # all uploaded: an empty one says the same
        except OSError:
            return False
        from pytest_deriva.execution import _lease

        spare = parent / f"{SPARE_PREFIX}{_lease.own_lease(parent.parent)}"
        try:
            os.rename(here, spare)
        except OSError:
            return False
        _spares[parent] = (pid, spare, table)
    return True


def _remove_chain(spare: Path, table: str | None = None) -> None:
    """Remove a spare's empty folders and empty manifest (nothing that holds a file)."""
    with contextlib.suppress(OSError):
        if os.stat(spare / MANIFEST_NAME).st_size == 0:
            os.unlink(spare / MANIFEST_NAME)
    with contextlib.suppress(OSError):
        for t in [table] if table else os.listdir(spare / "assets"):
            os.rmdir(spare / "assets" / t)
    with contextlib.suppress(OSError):
        os.rmdir(spare / "assets")
    with contextlib.suppress(OSError):
        os.rmdir(spare)


def remove_spare(working_dir: Path, lease: str) -> None:
    """Remove the spare folders of lease ``lease`` (a stopped process's) in ``working_dir``."""
    _remove_chain(Path(working_dir) / "execution" / f"{SPARE_PREFIX}{lease}")


@atexit.register
def _remove_own_spares() -> None:
    pid = os.getpid()
    with _spare_guard:
        own = [(spare, table) for p, spare, table in _spares.values() if p == pid]
        _spares.clear()
    for spare, table in own:
        _remove_chain(spare, table)


def manifest_path(working_dir: Path, execution_rid: str) -> Path:
    """The execution's manifest (its folder is made by the manifest's first write)."""
    return _root(working_dir, execution_rid) / MANIFEST_NAME


def feature_value_path(
    working_dir: Path, execution_rid: str, schema: str, target_table: str, feature_name: str
) -> Path:
    d = (
        _root(working_dir, execution_rid)
        / "feature"
        / _segment(schema, "Schema")
        / _segment(target_table, "Table")
        / _segment(feature_name, "Feature")
    )
    return _ensure(d) / f"{feature_name}.jsonl"


def table_csv_path(working_dir: Path, execution_rid: str, schema: str, table: str) -> Path:
    d = _root(working_dir, execution_rid) / "table" / _segment(schema, "Schema") / _segment(table, "Table")
    return _ensure(d) / f"{table}.csv"
