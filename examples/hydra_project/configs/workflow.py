"""Config group ``workflow``: the recorded program, pinned to the model file's git commit."""

from __future__ import annotations

from hydra_zen import builds, store

from pytest_deriva import Workflow

DigitsWorkflow = builds(
    Workflow,
    name="Digits SVM",
    workflow_type="Training",
    description="A support-vector classifier trained on scikit-learn's digits data.",
    populate_full_signature=True,
)

workflow_store = store(group="workflow")

# REQUIRED: the default workflow.
workflow_store(DigitsWorkflow, name="default_workflow")
