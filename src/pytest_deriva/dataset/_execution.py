"""Dataset and feature operations of an ``Execution`` (mixed into it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_deriva.execution.execution import ExecutionBase as _Base
else:
    _Base = object

__all__ = ["ExecutionDatasetMixin"]


class ExecutionDatasetMixin(_Base):
    """Datasets and features made or read by an execution. ``Execution`` inherits these methods."""

    def _upload_features(self, uploaded: dict[tuple[str, str], str]) -> None:
        """Insert the feature values staged by ``add_features``; ``uploaded`` maps
        (asset table, file name) of this upload to the asset RIDs."""
        _ = uploaded

    def _pending_feature_values(self) -> Any:
        return None
