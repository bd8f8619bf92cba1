"""Datasets: versioned sets of catalog rows and files (specification models)."""

from __future__ import annotations

from pytest_deriva.dataset.spec import DatasetSpec

__all__ = ["DatasetSpec"]
