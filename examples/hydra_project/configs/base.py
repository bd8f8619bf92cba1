"""The main config, ``deriva_model``: ``run_model`` with one option of each group by default."""

from __future__ import annotations

from hydra_zen import store

from pytest_deriva.config import create_model_config

DerivaModelConfig = create_model_config(description="Digits SVM")

store(DerivaModelConfig, name="deriva_model")
