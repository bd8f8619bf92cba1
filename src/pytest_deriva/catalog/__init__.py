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
from pytest_deriva.exceptions import DerivaMLConfigurationError, DerivaMLInputError

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
    catalog: str | os.PathLike[str] | CatalogPort,
    *,
    create: bool = True,
    credential: Any = None,
    read_only: bool = False,
) -> CatalogPort:
    """Open a catalog by location: a folder (embedded store) or ``https://host/ermrest/catalog/N``.

    This is the one place that decides "folder or server", by the form of the location (a URL
    scheme or a path), in the manner of pytest-benchmark's storage URIs. ``credential`` is for a
    server (see :func:`pytest_deriva.catalog._credentials.load_credential`). ``read_only`` opens an
    embedded catalog for reading only (see :class:`EmbeddedCatalog`).

    Raises:
        DerivaMLInputError: ``catalog`` is neither a location nor a catalog object.
        DerivaMLConfigurationError: the location is empty, of an unknown scheme, or names a
            catalog that cannot be used; the message names it and says what to do.
    """
    if not isinstance(catalog, str | os.PathLike):
        if not isinstance(catalog, CatalogPort):
            raise DerivaMLInputError(
                f"Catalog {DerivaMLInputError.shown(catalog)} ({type(catalog).__name__}) is not a catalog location; "
                "give a folder path (for example '.deriva') or https://<host>/ermrest/catalog/<id>."
            )
        if read_only and not getattr(catalog, "read_only", False):
            raise DerivaMLConfigurationError(
                f"Catalog {catalog.uri} is open for writing; open it with read_only=True by its location instead."
            )
        return catalog
    text = os.fspath(catalog)
    if not isinstance(text, str):
        raise DerivaMLInputError(f"Catalog location {text!r} is bytes; give it as a str or Path.")
    if not text.strip():
        raise DerivaMLConfigurationError(
            "The catalog location is empty; name a folder (for example .deriva) or https://<host>/ermrest/catalog/<id>."
        )
    if is_server_location(text):
        if read_only:
            raise DerivaMLConfigurationError(
                f"read_only=True is for embedded catalogs, not {text}; on a server, log in as a user who may only read."
            )
        from pytest_deriva.catalog.server import ServerCatalog

        return ServerCatalog(text, credential=credential)
    if "://" in text:
        raise DerivaMLConfigurationError(
            f"Catalog location {text!r} has an unknown scheme; use a folder path or https://<host>/ermrest/catalog/<id>."
        )
    return EmbeddedCatalog(Path(text), create=create, read_only=read_only)
