"""The project's hydra-zen configs: each module registers its options as it is imported.

``deriva-run --config-dir examples/hydra_project/configs`` (or ``load_configs("configs")``)
imports them all, ``experiments`` last.
"""
