"""``Dataset``: a live handle on one dataset of a catalog.

A dataset is a row of ``Dataset`` with types (``Dataset_Dataset_Type``), members (one
``Dataset_<Element>`` association per element table, nested datasets in ``Dataset_Dataset``) and
versions (``Dataset_Version``, each pinning a catalog snapshot)::

    ds = ml.create_dataset(["Training"], description="Digits, first 40")
    ds.add_dataset_members({"Image": image_rids})       # 0.1.0 -> 0.2.0 (member changes bump minor)
    ds.increment_dataset_version("major", "Release")    # 1.0.0
    ds.list_dataset_members(version="0.2.0")            # the members and values as they were then
    bag = ds.download_dataset_bag("1.0.0")              # a BDBag of that version

The operations live on the catalog handle (``DerivaML``); this class names one dataset so they
read naturally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_deriva.dataset.version import DatasetHistory, DatasetVersion, VersionPart

if TYPE_CHECKING:
    from pytest_deriva.dataset.bag import DatasetBag
    from pytest_deriva.ml.deriva_ml import DerivaML

__all__ = ["Dataset"]


class Dataset:
    """One dataset of a catalog: RID, description, types, current version, members and history.

    Get one from :meth:`DerivaML.create_dataset`, :meth:`DerivaML.lookup_dataset` or
    :meth:`DerivaML.find_datasets`. Two handles on the same RID are equal.
    """

    def __init__(self, ml: DerivaML, dataset_rid: str, description: str = "", execution_rid: str | None = None) -> None:
        self._ml = ml
        self.dataset_rid = dataset_rid
        self._description = description or ""
        self._execution_rid = execution_rid

    # -- identity ----------------------------------------------------------------------------
    @property
    def rid(self) -> str:
        """The dataset's RID (also ``dataset_rid``)."""
        return self.dataset_rid

    @property
    def description(self) -> str:
        """The description; assigning writes it through to the catalog."""
        return self._description

    @description.setter
    def description(self, value: str) -> None:
        self._ml.catalog.update(self._ml.ml_schema, "Dataset", [{"RID": self.dataset_rid, "Description": value}])
        self._description = value

    @property
    def execution_rid(self) -> str | None:
        """The execution that made the dataset (its first version's ``Execution``), if any."""
        if self._execution_rid is None:
            history = self.dataset_history()
            self._execution_rid = history[0].execution_rid if history else None
        return self._execution_rid

    @property
    def dataset_types(self) -> list[str]:
        """Its ``Dataset_Type`` terms."""
        return self._ml._dataset_types_of(self.dataset_rid)

    types = dataset_types

    @property
    def current_version(self) -> DatasetVersion:
        """The latest version."""
        return self._ml.dataset_version(self.dataset_rid)

    version = current_version

    # -- types -------------------------------------------------------------------------------
    def add_dataset_types(self, dataset_types: str | Iterable[str]) -> None:
        """Add ``Dataset_Type`` terms (checked against the vocabulary)."""
        self._ml._add_dataset_types(self.dataset_rid, dataset_types)

    add_dataset_type = add_dataset_types

    def remove_dataset_type(self, dataset_type: str) -> None:
        """Remove one ``Dataset_Type`` term from this dataset."""
        self._ml._remove_dataset_type(self.dataset_rid, dataset_type)

    # -- versions ----------------------------------------------------------------------------
    def dataset_history(self) -> list[DatasetHistory]:
        """Every version, oldest first."""
        return self._ml.dataset_history(self.dataset_rid)

    def increment_dataset_version(
        self, component: VersionPart | str, description: str = "", execution_rid: str | None = None
    ) -> DatasetVersion:
        """Make a new version (see :meth:`DerivaML.increment_dataset_version`)."""
        return self._ml.increment_dataset_version(self.dataset_rid, component, description, execution_rid)

    # -- members -----------------------------------------------------------------------------
    def list_dataset_members(
        self, recurse: bool = False, limit: int | None = None, version: DatasetVersion | str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Member rows by table (see :meth:`DerivaML.list_dataset_members`)."""
        return self._ml.list_dataset_members(self.dataset_rid, recurse=recurse, limit=limit, version=version)

    def add_dataset_members(
        self,
        members: Iterable[str] | Mapping[str, Iterable[str]],
        validate: bool = True,
        description: str = "",
        execution_rid: str | None = None,
    ) -> None:
        """Add members (see :meth:`DerivaML.add_dataset_members`)."""
        self._ml.add_dataset_members(self.dataset_rid, members, validate, description, execution_rid)

    def delete_dataset_members(
        self,
        members: Iterable[str] | Mapping[str, Iterable[str]],
        description: str = "",
        execution_rid: str | None = None,
    ) -> None:
        """Remove members (see :meth:`DerivaML.delete_dataset_members`)."""
        self._ml.delete_dataset_members(self.dataset_rid, members, description, execution_rid)

    def list_dataset_children(
        self, recurse: bool = False, version: DatasetVersion | str | None = None
    ) -> list[Dataset]:
        """Nested datasets (with ``recurse``, all descendants)."""
        return self._ml.list_dataset_children(self.dataset_rid, recurse=recurse, version=version)

    def list_dataset_parents(self, recurse: bool = False, version: DatasetVersion | str | None = None) -> list[Dataset]:
        """Datasets this one is nested in (with ``recurse``, all ancestors)."""
        return self._ml.list_dataset_parents(self.dataset_rid, recurse=recurse, version=version)

    # -- bags --------------------------------------------------------------------------------
    def download_dataset_bag(self, version: DatasetVersion | str | None = None, materialize: bool = True) -> DatasetBag:
        """Download a version (default: the current one) as a BDBag (see :meth:`DerivaML.download_dataset_bag`)."""
        from pytest_deriva.dataset.spec import DatasetSpec

        return self._ml.download_dataset_bag(
            DatasetSpec(
                rid=self.dataset_rid, version=None if version is None else str(version), materialize=materialize
            )
        )

    # -- dunder ------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return self.dataset_rid == other.dataset_rid

    def __hash__(self) -> int:
        return hash(self.dataset_rid)

    def __repr__(self) -> str:
        return f"Dataset(rid={self.dataset_rid!r}, description={self._description!r})"
