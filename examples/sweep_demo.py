"""A small sweep recorded in the embedded catalog: one parent execution, one child per C.

Each child trains a support-vector classifier on scikit-learn's bundled digits data, writes the
model and its metrics as output files, and is nested under the parent in sweep order. Then the
script reads the record back from the catalog and prints it.

The same sweep as ``experiments/experiment_digits.py``, written with the Python API instead of
pytest: ``python examples/sweep_demo.py``. Runs go to ``.deriva/`` at the project root.
"""

from __future__ import annotations

import json
import pickle
import sys

from show_runs import show

from pytest_deriva import DerivaML, ExecutionConfiguration

C_VALUES = [0.1, 1.0]


def experiment_svm(C: float = 1.0, ml_instance: DerivaML | None = None, execution=None) -> dict[str, float]:
    """Train an SVM on the digits data; a DerivaML model function (ml_instance, execution keywords)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    model = SVC(C=C, gamma=0.001).fit(x_train, y_train)
    metrics = {"C": C, "accuracy": float(model.score(x_test, y_test))}
    with execution.asset_file_path("Execution_Asset", "model.pkl", asset_types="Model_File").open("wb") as f:
        pickle.dump(model, f)
    execution.asset_file_path("Execution_Asset", "metrics.json").write_text(json.dumps(metrics))
    return metrics


def main() -> int:
    ml = DerivaML()  # the embedded catalog in .deriva/ at the project root
    workflow = ml.create_workflow("digits-svm-sweep", "Training", description="SVM on the digits data, swept over C")

    parent = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="Digits SVM sweep over C"))
    with parent:
        for job, c in enumerate(C_VALUES):
            child = ml.create_execution(
                ExecutionConfiguration(workflow=workflow, description=f"[Job {job}] Digits SVM, C={c}")
            )
            with child:
                experiment_svm(C=c, ml_instance=ml, execution=child)
            child.upload_execution_outputs()
            parent.add_nested_execution(child, sequence=job)
    parent.upload_execution_outputs()

    show(ml, parent.execution_rid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
