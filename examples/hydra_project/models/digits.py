"""A support-vector classifier on scikit-learn's bundled digits data, as a DerivaML model.

``run_model`` calls it with the parameters of the selected ``model_config`` and the keywords
``ml_instance`` (the catalog handle) and ``execution`` (this run's execution); it writes the
model and its metrics as output files, which are uploaded when it returns.
"""

from __future__ import annotations

import json
import pickle
from typing import Any


def train_digits(
    C: float = 1.0,
    gamma: float = 0.001,
    test_size: float = 0.25,
    ml_instance: Any = None,
    execution: Any = None,
) -> None:
    """Train an SVM with ``C`` and ``gamma``; record the model and its test accuracy."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=0)
    model = SVC(C=C, gamma=gamma).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    print(f"C={C} gamma={gamma}: accuracy {accuracy:.3f}")
    if execution is None:  # called without an execution (a plain call, or a preview)
        return
    with execution.asset_file_path("Execution_Asset", "model.pkl", asset_types="Model_File").open("wb") as f:
        pickle.dump(model, f)
    metrics = {"accuracy": accuracy, "C": C, "gamma": gamma}
    execution.asset_file_path("Execution_Asset", "metrics.json").write_text(json.dumps(metrics))
