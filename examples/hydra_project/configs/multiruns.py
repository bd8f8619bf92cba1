"""Named sweeps: ``deriva-run +multirun=<name>`` (no --multirun needed).

Each is recorded as one parent execution (with the description below) and one child per job.
Overrides after ``+multirun=<name>`` still apply: ``deriva-run +multirun=c_gamma_grid model_config.test_size=0.5``.
"""

from __future__ import annotations

from pytest_deriva.config import multirun_config

multirun_config(
    "c_gamma_grid",
    overrides=["model_config.C=0.1,1.0", "model_config.gamma=0.001,0.01"],
    description="""## C x gamma grid

A 2x2 grid over the SVM's regularization `C` and kernel width `gamma`.

| C | gamma |
|---|-------|
| 0.1, 1.0 | 0.001, 0.01 |
""",
)

multirun_config(
    "quick_vs_strong",
    overrides=["+experiment=digits_quick,digits_strong"],
    description="## Quick vs strong\n\nThe two named experiments side by side.",
)
