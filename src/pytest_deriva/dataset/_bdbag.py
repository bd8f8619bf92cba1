"""The ``bdbag`` side of dataset bags: materializing a bag already in the cache, validating.

Kept apart because importing ``bdbag`` costs about 0.2 s; a bag that is made fresh never needs it
(:mod:`pytest_deriva.dataset._bagwriter` writes it, fetching and checking its files once). bdbag
materializes a bag that is in the cache without some of its files (downloaded with
``materialize=False``, or a fetch or a validation failed), and validates bags
(:meth:`DatasetBag.validate`).

bdbag resolves ``fetch.txt`` through its own fetch configuration (``fetch_config.<scheme>.handler``):
the ``deriva-embedded`` scheme of the embedded store, ``file://`` URLs of registered files and a
server's ``https://`` URLs all go to :class:`ObjectStoreFetchTransport`, which fetches through the
catalog's object store (a server's Hatrac store holds the credential), so nothing goes around it.
bdbag's configuration and keychain are files in the cache folder, never in the user's home.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from bdbag import bdbag_api, bdbagit
from bdbag.bdbag_config import DEFAULT_CONFIG
from bdbag.fetch.transports.base_transport import BaseFetchTransport

from pytest_deriva.catalog.port import ObjectStore
from pytest_deriva.dataset._bagwriter import EMBEDDED_SCHEME, MATERIALIZED_MARKER, fetch_failure
from pytest_deriva.exceptions import DerivaMLDataError, DerivaMLException

__all__ = [
    "EMBEDDED_SCHEME",
    "MATERIALIZED_MARKER",
    "ObjectStoreFetchTransport",
    "materialize_bag",
    "validate_bag",
]

_HANDLER = f"{__name__}.ObjectStoreFetchTransport"
_CONFIG_VERSION = "2"  # bump when the configuration written below changes
# bagit changes the working directory while it makes or validates a bag (os.chdir, process-wide):
# one bag operation at a time in a process.
_CWD_LOCK = threading.RLock()


class ObjectStoreFetchTransport(BaseFetchTransport):  # type: ignore[misc]
    """A bdbag fetch handler that copies files from the catalog's object store (or a local path).

    bdbag passes the keyword arguments of ``resolve_fetch`` through: ``deriva_objects`` is the
    object store, ``deriva_errors`` a list that collects one message per file that failed.
    """

    def fetch(self, url: str, output_path: str, **kwargs: Any) -> str | None:
        errors: list[str] = kwargs.get("deriva_errors", [])
        store: ObjectStore | None = kwargs.get("deriva_objects")
        parts = urlsplit(url)
        dest = Path(output_path)
        try:
            if parts.scheme == "file":
                src = Path(url2pathname(unquote(parts.path)))
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(f".{dest.name}.part")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
            else:
                if store is None:
                    raise DerivaMLDataError("no object store to fetch from")
                # The catalog's own object store, with its credential; it verifies the MD5 in the URL.
                store.get(parts.path if parts.scheme == EMBEDDED_SCHEME else url, dest)
        except (OSError, DerivaMLException) as e:
            errors.append(f"{dest} from {url}: {e}")
            return None
        return output_path

    def cleanup(self) -> None:
        """Nothing to release."""


def config_folder(cache_dir: Path | None) -> Path:
    """Where bdbag's configuration and keychain live: ``<cache_dir>/bdbag``, or a temporary folder."""
    if cache_dir is None:
        return Path(tempfile.gettempdir()) / f"pytest-deriva-bdbag-{getpass.getuser()}"
    return cache_dir / "bdbag"


def _config_files(cache_dir: Path | None) -> tuple[str, str]:
    """bdbag's configuration and keychain for this cache (written once)."""
    folder = config_folder(cache_dir)
    config_file = folder / f"bdbag-{_CONFIG_VERSION}.json"
    keychain_file = folder / "keychain.json"
    if not config_file.exists() or not keychain_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(DEFAULT_CONFIG)
        config["bag_config"]["bag_algorithms"] = ["md5"]
        # https too: a server's objects are fetched through its Hatrac store, which holds the
        # credential (bdbag's keychain would need it written to a file).
        for scheme in (EMBEDDED_SCHEME, "file", "https", "http"):
            config["fetch_config"][scheme] = {"handler": _HANDLER}
        for path, doc in ((config_file, config), (keychain_file, [])):
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(doc, indent=2))
            os.replace(tmp, path)
    return str(config_file), str(keychain_file)


def _failure(bag_dir: Path, e: Exception) -> DerivaMLDataError:

    details = getattr(e, "details", None) or []
    listing = "; ".join(str(d) for d in details) or str(e)
    # Fetched files that fail their checksum are removed and the bag is marked not materialized, so
    # that the next download with materialize=True fetches them anew.
    bad = [bag_dir / str(d.path) for d in details if getattr(d, "path", None)]
    removed = [p for p in bad if "asset" in p.relative_to(bag_dir).parts and p.is_file()]
    for path in removed:
        path.unlink()
    if removed:
        (bag_dir.parent / MATERIALIZED_MARKER).unlink(missing_ok=True)
        listing += (
            f". The {len(removed)} fetched file(s) that failed were removed; download the dataset again "
            "with materialize=True to fetch them anew"
        )
    return DerivaMLDataError(f"The bag {bag_dir} fails validation: {listing}.")


def validate_bag(bag_dir: Path, cache_dir: Path | None, fast: bool = False) -> None:
    """Validate with bdbag: every payload file present and matching its checksum (``fast``: sizes only)."""
    config_file, _ = _config_files(cache_dir)
    try:
        with _CWD_LOCK:
            bdbag_api.validate_bag(str(bag_dir), fast=fast, config_file=config_file)
    except (bdbagit.BagValidationError, bdbagit.BagError) as e:
        raise _failure(bag_dir, e) from e


def materialize_bag(bag_dir: Path, cache_dir: Path, objects: ObjectStore) -> None:
    """Fetch the files of ``fetch.txt`` that are missing (from the object store), then validate the whole bag.

    Raises:
        DerivaMLDataError: naming each file that could not be fetched or fails its checksum.
    """
    config_file, keychain_file = _config_files(cache_dir)
    errors: list[str] = []
    # With no file fetched yet, skip bdbag's check of which files are present (a third of the time).
    fresh = not (bag_dir / "data" / "asset").exists()
    try:
        ok = bdbag_api.resolve_fetch(
            str(bag_dir),
            force=fresh,
            keychain_file=keychain_file,
            config_file=config_file,
            deriva_objects=objects,
            deriva_errors=errors,
        )
    except (bdbagit.BagError, RuntimeError) as e:
        raise DerivaMLDataError(f"Cannot fetch the files of bag {bag_dir}: {e}") from e
    if errors or not ok:
        raise fetch_failure(bag_dir, errors)
    validate_bag(bag_dir, cache_dir, fast=False)
