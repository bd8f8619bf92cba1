"""Config group ``model_config``: the parameters of the model function ``train_digits``.

deriva-run model_config=digits_strong            # another named option
deriva-run model_config.C=3.0                    # one parameter changed
"""

from __future__ import annotations

from hydra_zen import builds, store
from models.digits import train_digits

# zen_partial: run_model adds ml_instance and execution when it calls the model.
DigitsConfig = builds(train_digits, populate_full_signature=True, zen_partial=True)

model_store = store(group="model_config")

# REQUIRED: the default model config.
model_store(DigitsConfig, name="default_model", zen_meta={"description": "C=1, gamma=0.001"})
model_store(
    DigitsConfig,
    name="digits_quick",
    C=1.0,
    gamma=0.001,
    test_size=0.5,
    zen_meta={"description": "Quick check: half the data held out."},
)
model_store(
    DigitsConfig,
    name="digits_strong",
    C=10.0,
    gamma=0.0005,
    zen_meta={"description": "Less regularization, a smoother kernel."},
)
