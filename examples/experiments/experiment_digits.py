"""A sweep recorded by pytest: ``pytest --deriva-run examples/experiments``.

Each parameter combination trains a support-vector classifier on scikit-learn's bundled digits
data, writes the model and its metrics as output files, and returns its accuracy, which is
recorded with the execution and shown in the summary. The four combinations are one sweep: one
parent execution with a nested child per combination.
"""

from __future__ import annotations

import json
import pickle

import pytest


@pytest.mark.deriva(workflow_type="Training", description="Digits SVM sweep over C and gamma")
@pytest.mark.parametrize("gamma", [0.001, 0.01])
@pytest.mark.parametrize("C", [0.1, 1.0])
def experiment_svm(C, gamma, ml_instance, execution):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    model = SVC(C=C, gamma=gamma).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    with execution.asset_file_path("Execution_Asset", "model.pkl", asset_types="Model_File").open("wb") as f:
        pickle.dump(model, f)
    execution.asset_file_path("Execution_Asset", "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    return {"accuracy": accuracy}
