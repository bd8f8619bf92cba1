"""Layer 1, the catalog port: an ERMrest-shaped interface and its adapters.

- :mod:`~pytest_deriva.catalog.port`: the ``CatalogPort`` and ``ObjectStore`` protocols.
- :mod:`~pytest_deriva.catalog.embedded`: the embedded adapter (SQLite + file store).
- :mod:`~pytest_deriva.catalog.server`: the server adapter (ERMrest, through the ``deriva`` client),
  with :mod:`~pytest_deriva.catalog.hatrac` for its objects.
- :mod:`~pytest_deriva.catalog.setup`: ``catalog init``: the ``deriva-ml`` schema and terms, idempotently.
- :mod:`~pytest_deriva.catalog.schema`: the ``deriva-ml`` schema as ERMrest JSON.
- :mod:`~pytest_deriva.catalog.model`: a view of an ERMrest model document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_deriva.catalog._credentials import is_server_location, parse_server_url
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
    "is_server_location",
    "parse_server_url",
]


def connect(
    catalog: str | os.PathLike[str] | CatalogPort, *, create: bool = True, credential: Any = None
) -> CatalogPort:
    """Open a catalog by location: a folder (embedded store) or ``https://host/ermrest/catalog/N``.

    This is the one place that decides "folder or server", by the form of the location (a URL
    scheme or a path), in the manner of pytest-benchmark's storage URIs. ``credential`` is for a
    server (see :func:`pytest_deriva.catalog._credentials.load_credential`).
    """
    if not isinstance(catalog, str | os.PathLike):
        return catalog
    text = os.fspath(catalog)
    if not text.strip():
        raise DerivaMLConfigurationError(
            "The catalog location is empty; name a folder (for example .deriva) or https://<host>/ermrest/catalog/<id>."
        )
    if is_server_location(text):
        from pytest_deriva.catalog.server import ServerCatalog

        return ServerCatalog(text, credential=credential)
    if "://" in text:
        raise DerivaMLConfigurationError(
            f"Catalog location {text!r} has an unknown scheme; use a folder path or https://<host>/ermrest/catalog/<id>."
        )
    return EmbeddedCatalog(Path(text), create=create)
