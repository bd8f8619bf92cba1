"""The asset manifest: a crash-safe, append-only record of every file an execution registers.

Each registration, metadata change and upload result is one JSON line, appended to the file
before the call that made it returns. A crash at any point leaves a manifest from which the
files still pending upload later (``restore_execution`` + ``upload_execution_outputs``).

A line that cannot be read in the middle of the file means the manifest is corrupt: loading
stops with an error that names the file and line, and the file is left exactly as it is. A torn
*last* line is a write the crash interrupted before it was acknowledged; it is ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_deriva.enums import UploadState
from pytest_deriva.exceptions import DerivaMLManifestError

__all__ = ["AssetEntry", "AssetFilePath", "AssetManifest"]

_log = logging.getLogger("pytest_deriva")


@dataclass
class AssetEntry:
    """One registered file: where it goes and what it carries."""

    asset_table: str
    schema: str
    asset_types: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    state: UploadState = UploadState.pending
    rid: str | None = None
    error: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.state != UploadState.uploaded


class AssetManifest:
    """The manifest of one execution, kept in ``asset-manifest.jsonl``."""

    def __init__(self, path: Path, execution_rid: str, *, new: bool = False) -> None:
        """``new``: the execution was made by this process just now, so it has no manifest yet."""
        self.path = Path(path)
        self.execution_rid = execution_rid
        self._lock = threading.RLock()
        self._fd: int | None = None  # open for appending from the first write until close()
        self.assets: dict[str, AssetEntry] = {}
        if not new and self.path.exists():
            self._load()

    def close(self) -> None:
        """Close the file (it is opened again by the next write)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def _load(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        complete = raw.endswith(b"\n") or not raw
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self._apply(record)
            except (ValueError, KeyError, TypeError) as e:
                is_last = number == len(lines) and not complete
                if is_last:
                    _log.warning(
                        "Dropping the torn last line %d of %s (a write interrupted by a crash).", number, self.path
                    )
                    # Cut it off, or the next append would continue that line and corrupt it.
                    os.truncate(self.path, raw.rfind(b"\n") + 1)
                    continue
                raise DerivaMLManifestError(
                    f"The asset manifest {self.path} is corrupt at line {number} ({e}). It has been left as it is; "
                    "repair or remove that line, then restore the execution again."
                ) from e

    def _apply(self, record: Mapping[str, Any]) -> None:
        op, key = record["op"], record["key"]
        if op == "add":
            e = dict(record["entry"])
            self.assets[key] = AssetEntry(
                asset_table=e["asset_table"],
                schema=e["schema"],
                asset_types=list(e["asset_types"]),
                metadata=dict(e.get("metadata") or {}),
                description=e.get("description"),
            )
        elif op == "metadata":
            self.assets[key].metadata.update(record["metadata"])
        elif op == "uploaded":
            entry = self.assets[key]
            entry.state, entry.rid, entry.error = UploadState.uploaded, record["rid"], None
        elif op == "removed":
            self.assets.pop(key, None)
        elif op == "failed":
            entry = self.assets[key]
            entry.state, entry.error = UploadState.failed, record["error"]
        else:
            raise KeyError(f"unknown operation {op!r}")

    def _write(self, records: Iterable[Mapping[str, Any]]) -> None:
        # One O_APPEND write per call: the line is in the file (the OS's page cache) before the
        # call returns, so it survives any crash of this process. No fsync: it would not make the
        # registered file itself durable either (nobody fsyncs that), and costs ~0.4 ms a call.
        # The file stays open between writes (closed by close(), before the folder is cleaned): a
        # run's registration and its upload result are two writes, not two opens.
        data = "".join(json.dumps(r, default=str) + "\n" for r in records).encode()
        if not data:
            return
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the execution's first file: its folder is made now
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, data)

    def add_asset(self, key: str, entry: AssetEntry) -> None:
        """Register (or re-register) a file; it is pending until uploaded."""
        record = {
            "op": "add",
            "key": key,
            "entry": {k: v for k, v in asdict(entry).items() if k not in ("state", "rid", "error")},
        }
        with self._lock:
            self._write([record])
            self._apply(record)

    def update_metadata(self, key: str, metadata: Mapping[str, Any]) -> None:
        record = {"op": "metadata", "key": key, "metadata": dict(metadata)}
        with self._lock:
            self._write([record])
            self._apply(record)

    def mark_uploaded(self, rids: Mapping[str, str]) -> None:
        """Record upload results (key -> asset RID) in one write."""
        records = [{"op": "uploaded", "key": k, "rid": rid} for k, rid in rids.items()]
        with self._lock:
            self._write(records)
            for r in records:
                self._apply(r)

    def mark_failed(self, errors: Mapping[str, str]) -> None:
        records = [{"op": "failed", "key": k, "error": err} for k, err in errors.items()]
        with self._lock:
            self._write(records)
            for r in records:
                self._apply(r)

    def remove(self, keys: Iterable[str]) -> None:
        """Take registrations back (they will not be uploaded), in one write."""
        records = [{"op": "removed", "key": k} for k in keys]
        with self._lock:
            self._write(records)
            for r in records:
                self._apply(r)

    def pending_assets(self) -> dict[str, AssetEntry]:
        return {k: e for k, e in self.assets.items() if e.is_pending}


class _WriteThrough(dict[str, Any]):
    """A view of an AssetFilePath's metadata whose changes reach the manifest."""

    def __init__(self, owner: AssetFilePath) -> None:
        super().__init__(owner.asset_metadata)
        self._owner = owner

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._owner.metadata = {key: value}

    def update(self, *args: Any, **kwargs: Any) -> None:
        values = dict(*args, **kwargs)
        super().update(values)
        self._owner.metadata = values


_BasePath: type[Path] = type(Path())


class AssetFilePath(_BasePath):  # type: ignore[valid-type,misc]
    """A path to a registered file that also knows its asset table, types and metadata.

    It is a :class:`pathlib.Path` (write to it, open it); ``metadata`` set on it is written through
    to the manifest. After upload, ``asset_rid`` is the RID of the asset row.
    """

    asset_path: Path
    asset_table: str
    file_name: str
    asset_metadata: dict[str, Any]
    asset_types: list[str]
    asset_rid: str | None

    def __new__(cls, asset_path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> AssetFilePath:
        if sys.version_info >= (3, 12):
            return super().__new__(cls, asset_path)  # type: ignore[call-arg]
        if type(asset_path) is _BasePath or isinstance(asset_path, AssetFilePath):  # parsed: its parts are taken
            return cls._from_parsed_parts(asset_path._drv, asset_path._root, asset_path._parts)  # type: ignore[union-attr,no-any-return]
        return cls._from_parts([os.fspath(asset_path)])  # type: ignore[no-any-return]

    def __init__(
        self,
        asset_path: str | os.PathLike[str],
        asset_table: str = "",
        file_name: str = "",
        asset_metadata: Mapping[str, Any] | None = None,
        asset_types: list[str] | str | None = None,
        asset_rid: str | None = None,
    ) -> None:
        if sys.version_info >= (3, 12):
            super().__init__(asset_path)
        self.asset_path = (
            asset_path if isinstance(asset_path, Path) and type(asset_path) is _BasePath else Path(asset_path)
        )
        self.asset_table = asset_table
        self.file_name = file_name or self.asset_path.name
        self.asset_metadata = dict(asset_metadata or {})
        self.asset_types = [asset_types] if isinstance(asset_types, str) else list(asset_types or [])
        self.asset_rid = asset_rid
        self._manifest: AssetManifest | None = None
        self._manifest_key: str | None = None
        self._validate: Callable[[dict[str, Any]], None] | None = None

    if sys.version_info >= (3, 12):

        def with_segments(self, *segments: str | os.PathLike[str]) -> Path:
            # Paths derived from this one (parent, joinpath) are plain paths.
            return Path(*segments)

    def _bind_manifest(
        self, manifest: AssetManifest, key: str, validate: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self._manifest, self._manifest_key, self._validate = manifest, key, validate

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata column values of this file's asset row.

        Item assignment (``p.metadata["Subject"] = "1-ABC"``) and assignment of a mapping both
        write through to the manifest, so nothing set here is lost.
        """
        return _WriteThrough(self)

    @metadata.setter
    def metadata(self, values: Mapping[str, Any]) -> None:
        values = dict(values)
        if self._validate is not None:
            self._validate(values)
        self.asset_metadata.update(values)
        if self._manifest is not None and self._manifest_key is not None:
            self._manifest.update_metadata(self._manifest_key, values)

    def set_metadata(self, key: str, value: Any) -> None:
        """Set one metadata column value."""
        self.metadata = {key: value}
