"""``DatasetSpecConfig``: a hydra-zen config of :class:`DatasetSpec` (imported on first use: hydra-zen is slow)."""

from __future__ import annotations

from typing import Any

from hydra_zen import builds

from pytest_deriva.dataset.spec import DatasetSpec

__all__ = ["DatasetSpecConfig"]

#: ``DatasetSpecConfig(rid="1-ABCD", version="1.0.0")`` in a hydra-zen store; instantiates to a DatasetSpec.
DatasetSpecConfig: Any = builds(DatasetSpec, populate_full_signature=True, hydra_convert="all")
