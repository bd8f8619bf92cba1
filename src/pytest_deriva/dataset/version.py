"""Dataset versions: ``major.minor.patch`` numbers and the history records that pin them.

A version names a catalog snapshot (``Dataset_Version.Snapshot``); reading a dataset at a
version reads the catalog as it was then. The numbers follow semantic versioning as DerivaML
uses it: *major* for changes of meaning or schema, *minor* for added or removed members or
changed values, *patch* for small corrections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, SupportsInt

from pydantic import BaseModel, ConfigDict

from pytest_deriva.exceptions import DerivaMLValidationError

__all__ = ["DatasetHistory", "DatasetVersion", "VersionPart"]

_VERSION_RE = re.compile(r"^\s*v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)\s*$")


class VersionPart(StrEnum):
    """Which part of a version to increment."""

    major = "major"
    minor = "minor"
    patch = "patch"


@dataclass(frozen=True, order=True)
class DatasetVersion:
    """A semantic version ``major.minor.patch`` of a dataset; ordered, hashable, immutable.

    >>> DatasetVersion.parse("0.2.0") < DatasetVersion(1, 0, 0)
    True
    >>> str(DatasetVersion(0, 1, 0).increment_version("minor"))
    '0.2.0'
    """

    major: int
    minor: int = 0
    patch: int = 0

    def __init__(self, major: SupportsInt, minor: SupportsInt = 0, patch: SupportsInt = 0) -> None:
        parts = (int(major), int(minor), int(patch))
        if min(parts) < 0:
            raise DerivaMLValidationError(f"Version numbers are not negative: {parts}.")
        object.__setattr__(self, "major", parts[0])
        object.__setattr__(self, "minor", parts[1])
        object.__setattr__(self, "patch", parts[2])

    @classmethod
    def parse(cls, version: str | DatasetVersion | tuple[int, int, int] | list[int] | dict[str, int]) -> DatasetVersion:
        """A version from ``"1.2.3"``, a 3-tuple or list, a ``{"major", "minor", "patch"}`` dict, or a version.

        Raises:
            DerivaMLValidationError: for anything else, naming the value.
        """
        if isinstance(version, DatasetVersion):
            return version
        if isinstance(version, dict):
            try:
                return cls(version["major"], version.get("minor", 0), version.get("patch", 0))
            except (KeyError, TypeError, ValueError) as e:
                raise DerivaMLValidationError(f"{version!r} is not a version; give e.g. '1.2.0'.") from e
        if isinstance(version, tuple | list) and len(version) == 3:
            try:
                return cls(*version)
            except (TypeError, ValueError) as e:
                raise DerivaMLValidationError(f"{version!r} is not a version; give e.g. '1.2.0'.") from e
        m = _VERSION_RE.match(version) if isinstance(version, str) else None
        if m is None:
            raise DerivaMLValidationError(
                f"{version!r} is not a version: versions are 'major.minor.patch' numbers such as '0.1.0' or '1.2.3'."
            )
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def increment_version(self, component: VersionPart | str) -> DatasetVersion:
        """The next version: ``major`` resets minor and patch, ``minor`` resets patch."""
        try:
            part = VersionPart(component)
        except ValueError:
            raise DerivaMLValidationError(
                f"{component!r} is not a version part; use 'major', 'minor' or 'patch'."
            ) from None
        if part is VersionPart.major:
            return DatasetVersion(self.major + 1, 0, 0)
        if part is VersionPart.minor:
            return DatasetVersion(self.major, self.minor + 1, 0)
        return DatasetVersion(self.major, self.minor, self.patch + 1)

    def bump_major(self) -> DatasetVersion:
        return self.increment_version(VersionPart.major)

    def bump_minor(self) -> DatasetVersion:
        return self.increment_version(VersionPart.minor)

    def bump_patch(self) -> DatasetVersion:
        return self.increment_version(VersionPart.patch)

    def to_tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def to_dict(self) -> dict[str, int]:
        return {"major": self.major, "minor": self.minor, "patch": self.patch}

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __repr__(self) -> str:
        return f"DatasetVersion({self.major}, {self.minor}, {self.patch})"


class DatasetHistory(BaseModel):
    """One version of a dataset, as ``Dataset_Version`` records it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    dataset_version: DatasetVersion
    dataset_rid: str
    version_rid: str
    execution_rid: str | None = None
    description: str = ""
    minid: str | None = None
    snapshot: str | None = None
    timestamp: str | None = None

    @classmethod
    def _from_row(cls, row: dict[str, Any]) -> DatasetHistory:
        return cls(
            dataset_version=DatasetVersion.parse(row["Version"]),
            dataset_rid=row["Dataset"],
            version_rid=row["RID"],
            execution_rid=row.get("Execution"),
            description=row.get("Description") or "",
            minid=row.get("Minid"),
            snapshot=row.get("Snapshot"),
            timestamp=row.get("RCT"),
        )
