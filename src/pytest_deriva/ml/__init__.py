"""Layer 2, the ML layer: the ``DerivaML`` catalog handle and its value types."""

from __future__ import annotations

from pytest_deriva.ml.deriva_ml import DerivaML, find_project_root
from pytest_deriva.ml.records import Asset, ResolveRidResult, VocabularyTerm

__all__ = ["Asset", "DerivaML", "ResolveRidResult", "VocabularyTerm", "find_project_root"]
