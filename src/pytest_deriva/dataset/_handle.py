"""Dataset, version, bag and feature operations of the ``DerivaML`` handle (mixed into it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_deriva.ml.deriva_ml import DerivaMLBase as _Base
else:
    _Base = object

__all__ = ["DatasetMixin"]


class DatasetMixin(_Base):
    """Datasets and features on the catalog handle. ``DerivaML`` inherits these methods."""

    def lookup_dataset(self, dataset_rid: str) -> Any:
        """The ``Dataset`` row a RID names."""
        self._expect_table(dataset_rid, "Dataset", "a dataset")
        return self.catalog.select(self.ml_schema, "Dataset", {"RID": dataset_rid})[0]
