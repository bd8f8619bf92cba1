"""Config group ``assets``: input assets (model weights and the like), by RID.

Pin assets like this (``cache=True`` reuses a download with the same checksum)::

    assets_store([AssetSpecConfig(rid="1-WXYZ", cache=True)], name="pretrained")
"""

from __future__ import annotations

from hydra_zen import store

from pytest_deriva.config import with_description

assets_store = store(group="assets")

# REQUIRED: the default assets.
assets_store(with_description([], "No input assets."), name="default_asset")
