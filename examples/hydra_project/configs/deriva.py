"""Config group ``deriva_ml``: which catalog the runs are recorded in.

``default_deriva`` is the embedded store (``$DERIVA_CATALOG``, else ``.deriva`` at the project
root). Name another catalog on the command line with ``--catalog PATH``.
"""

from __future__ import annotations

from hydra_zen import store

from pytest_deriva.config import DerivaMLConfig

deriva_store = store(group="deriva_ml")

# REQUIRED: the default catalog.
deriva_store(DerivaMLConfig, name="default_deriva")

# A DERIVA server, as upstream projects configure one (hostname and catalog id).
deriva_store(DerivaMLConfig, name="example_server", hostname="www.example.org", catalog_id=1)
