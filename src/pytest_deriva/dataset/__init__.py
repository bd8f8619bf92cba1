"""Datasets: versioned sets of catalog rows and files, their bags, and features.

- :class:`Dataset`: a live dataset (members, versions, nesting, history).
- :class:`DatasetSpec`, :data:`DatasetSpecConfig`: which dataset and version an execution reads.
- :class:`DatasetVersion`, :class:`VersionPart`, :class:`DatasetHistory`: versions.
- :class:`DatasetBag`, :class:`BagCatalog`: a downloaded version, read from its BDBag.
- :class:`Feature`, :class:`FeatureRecord`: feature tables and their values.
- :class:`FileSpec`: files registered by URL and checksum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_deriva._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_deriva.dataset._config import DatasetSpecConfig
    from pytest_deriva.dataset.bag import BagCatalog, DatasetBag
    from pytest_deriva.dataset.dataset import Dataset
    from pytest_deriva.dataset.feature import Feature, FeatureRecord
    from pytest_deriva.dataset.files import FileSpec
    from pytest_deriva.dataset.spec import DatasetSpec
    from pytest_deriva.dataset.version import DatasetHistory, DatasetVersion, VersionPart

# Imported when first used: ExecutionConfiguration imports DatasetSpec on every pytest run, and
# DatasetSpecConfig needs hydra-zen (~0.3 s to import).
_LAZY: dict[str, str] = {
    "BagCatalog": "pytest_deriva.dataset.bag",
    "Dataset": "pytest_deriva.dataset.dataset",
    "DatasetBag": "pytest_deriva.dataset.bag",
    "DatasetHistory": "pytest_deriva.dataset.version",
    "DatasetSpec": "pytest_deriva.dataset.spec",
    "DatasetSpecConfig": "pytest_deriva.dataset._config",
    "DatasetVersion": "pytest_deriva.dataset.version",
    "Feature": "pytest_deriva.dataset.feature",
    "FeatureRecord": "pytest_deriva.dataset.feature",
    "FileSpec": "pytest_deriva.dataset.files",
    "VersionPart": "pytest_deriva.dataset.version",
}

__all__ = [
    "BagCatalog",
    "Dataset",
    "DatasetBag",
    "DatasetHistory",
    "DatasetSpec",
    "DatasetSpecConfig",
    "DatasetVersion",
    "Feature",
    "FeatureRecord",
    "FileSpec",
    "VersionPart",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
