"""The ``bdbag`` side of dataset bags: making, fetching from the object store, validating.

Kept apart from the bag reader because importing ``bdbag`` costs about 0.2 s; only downloads
and validation need it.

Asset files are listed in ``fetch.txt``. An object of the embedded store has a URL of the form
``deriva-embedded://localhost/hatrac/<Table>/<md5>.<name>`` (bagit requires a scheme and a host);
materializing hands that scheme, and ``file://`` URLs of registered files, to
:class:`ObjectStoreFetchTransport` through bdbag's own fetch configuration
(``fetch_config.<scheme>.handler``), so bdbag resolves the fetch list without any network.
A server's ``https://`` object URLs go to the same handler, which fetches them through the
catalog's Hatrac store with its credential. bdbag's configuration and
keychain are files in the cache folder, never in the user's home.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from bdbag import bdbag_api, bdbagit
from bdbag.bdbag_config import DEFAULT_CONFIG
from bdbag.fetch.transports.base_transport import BaseFetchTransport

from pytest_deriva.catalog.port import ObjectStore
from pytest_deriva.exceptions import DerivaMLDataError, DerivaMLException

__all__ = [
    "EMBEDDED_SCHEME",
    "MATERIALIZED_MARKER",
    "ObjectStoreFetchTransport",
    "fetch_url",
    "make_bag",
    "materialize_bag",
    "validate_bag",
]

#: Beside a bag: it was materialized and every file validated.
MATERIALIZED_MARKER = ".materialized"

EMBEDDED_SCHEME = "deriva-embedded"
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


def fetch_url(url: str, objects: ObjectStore) -> str:
    """The URL a bag's ``fetch.txt`` lists for an asset URL as the catalog records it."""
    parts = urlsplit(url)
    if not parts.scheme and url.startswith("/"):
        return objects.fetch_url(url)
    if parts.scheme == "file" and not parts.netloc:
        return urlunsplit(("file", "localhost", parts.path, "", ""))  # bagit wants a host
    return url


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


def make_bag(
    bag_dir: Path, cache_dir: Path, metadata: Mapping[str, str], remote_files: Sequence[Mapping[str, Any]]
) -> None:
    """Turn the folder ``bag_dir`` (its files become the payload) into a bag with ``fetch.txt``.

    Manifests are MD5: the checksum the object store keeps for every file, so a file listed in
    ``fetch.txt`` is checked without reading it when the bag is made.
    """
    config_file, _ = _config_files(cache_dir)
    manifest = None
    if remote_files:
        manifest = bag_dir.parent / "remote-files.json"
        manifest.write_text(json.dumps(list(remote_files)))
    try:
        with _CWD_LOCK:
            bdbag_api.make_bag(
                str(bag_dir),
                algs=["md5"],
                metadata=dict(metadata),
                remote_file_manifest=str(manifest) if manifest else None,
                config_file=config_file,
            )
    finally:
        if manifest is not None:
            manifest.unlink(missing_ok=True)


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


def validate_structure(bag_dir: Path) -> None:
    """Check a bag whose files are not fetched yet: its manifests, ``fetch.txt`` and local files agree."""
    try:
        with _CWD_LOCK:
            bdbag_api.validate_bag_structure(str(bag_dir), skip_remote=True)
    except (bdbagit.BagValidationError, bdbagit.BagError) as e:
        raise _failure(bag_dir, e) from e


def materialize_bag(bag_dir: Path, cache_dir: Path, objects: ObjectStore) -> None:
    """Fetch every file in ``fetch.txt`` (from the object store), then validate the whole bag.

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
        listing = "; ".join(errors) or "see the log for the files bdbag could not fetch"
        raise DerivaMLDataError(f"{len(errors) or 'Some'} files of bag {bag_dir} could not be fetched: {listing}")
    validate_bag(bag_dir, cache_dir, fast=False)
