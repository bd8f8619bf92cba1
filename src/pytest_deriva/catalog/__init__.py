"""Layer 1, the catalog port: an ERMrest-shaped interface and its adapters.

- :mod:`~pytest_deriva.catalog.port`: the ``CatalogPort`` and ``ObjectStore`` protocols.
- :mod:`~pytest_deriva.catalog.embedded`: the embedded adapter (SQLite + file store).
- :mod:`~pytest_deriva.catalog.schema`: the ``deriva-ml`` schema as ERMrest JSON.
- :mod:`~pytest_deriva.catalog.model`: a view of an ERMrest model document.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pytest_deriva.catalog.embedded import EmbeddedCatalog, is_embedded_catalog
from pytest_deriva.catalog.model import Model
from pytest_deriva.catalog.port import CatalogPort, ObjectStore, StoredObject
from pytest_deriva.exceptions import DerivaMLConfigurationError

__all__ = [
    "CatalogPort",
    "EmbeddedCatalog",
    "Model",
    "ObjectStore",
    "StoredObject",
    "connect",
    "is_embedded_catalog",
]

_SERVER_RE = re.compile(r"^https?://[^/]+/ermrest/catalog/[^/]+/?$")


def connect(catalog: str | os.PathLike[str] | CatalogPort, *, create: bool = True) -> CatalogPort:
    """Open a catalog by location: a folder (embedded store) or ``https://host/ermrest/catalog/N``.

    The storage is chosen by the form of the location (a URL scheme or a path), in the manner of
    pytest-benchmark's storage URIs.
    """
    if not isinstance(catalog, str | os.PathLike):
        return catalog
    text = os.fspath(catalog)
    if text.startswith(("http://", "https://")):
        if not _SERVER_RE.fullmatch(text):
            raise DerivaMLConfigurationError(
                f"Catalog URL {text!r} is not of the form https://<host>/ermrest/catalog/<id>."
            )
        raise DerivaMLConfigurationError(
            f"Catalog {text!r} is a DERIVA server; this version of pytest-deriva records to the embedded "
            "store only. Name a folder (for example .deriva) instead."
        )
    if "://" in text:
        raise DerivaMLConfigurationError(
            f"Catalog location {text!r} has an unknown scheme; use a folder path or https://<host>/ermrest/catalog/<id>."
        )
    return EmbeddedCatalog(Path(text), create=create)
