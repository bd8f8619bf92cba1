"""Config group ``experiment``: named combinations of the other groups' options.

    deriva-run +experiment=digits_quick

Experiments are stored in the ``_global_`` package so that their defaults override the main
config's groups; this module is loaded last because it refers to the other groups' options.
"""

from __future__ import annotations

from hydra_zen import make_config, store

from configs.base import DerivaModelConfig

experiment_store = store(group="experiment", package="_global_")

experiment_store(
    make_config(
        hydra_defaults=["_self_", {"override /model_config": "digits_quick"}],
        description="Digits SVM, quick check",
        bases=(DerivaModelConfig,),
    ),
    name="digits_quick",
)
experiment_store(
    make_config(
        hydra_defaults=["_self_", {"override /model_config": "digits_strong"}],
        description="Digits SVM, strong model",
        bases=(DerivaModelConfig,),
    ),
    name="digits_strong",
)
