"""Config group ``datasets``: the input datasets of a run.

The digits data ships with scikit-learn, so the default has none. With datasets in the
catalog, pin them by RID and version::

    datasets_store(
        with_description([DatasetSpecConfig(rid="1-ABCD", version="1.0.0")], "Digits, 1797 images"),
        name="digits_catalog",
    )
"""

from __future__ import annotations

from hydra_zen import store

from pytest_deriva.config import with_description

datasets_store = store(group="datasets")

# REQUIRED: the default datasets.
datasets_store(
    with_description([], "No catalog datasets: the digits data ships with scikit-learn."), name="default_dataset"
)
datasets_store([], name="no_datasets")
