"""Writing a dataset bag in one pass: payload, fetched files and manifests, every file hashed once.

The bag is a BagIt 0.97 bag in the form bdbag makes (``bagit.txt``, ``bag-info.txt`` with
``Payload-Oxum``, ``manifest-md5.txt``, ``fetch.txt``, ``tagmanifest-md5.txt``); the tests check
every bag written here with bdbag's own full validation. Written here rather than with
``bdbag_api.make_bag`` + ``resolve_fetch`` + ``validate_bag`` because those read the bag back
three times (each read resolves every listed path with ``realpath``: about 130 ``stat`` calls a
file) and hash every file twice; here the MD5 of each payload file is taken from the bytes as they
are written, and each fetched file is checked against its catalog MD5 while it is copied. Nothing
here imports bdbag (0.2 s): a bag that is made fresh never needs it.

Asset files are listed in ``fetch.txt``. An object of the embedded store has a URL of the form
``deriva-embedded://localhost/hatrac/<Table>/<md5>.<name>`` (bagit requires a scheme and a host);
fetching resolves that scheme through the catalog's object store, ``file://`` URLs of registered
files from the file system, and a server's ``https://`` URLs through the catalog's Hatrac store
(with its credential), which verifies the MD5 in the URL.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from pytest_deriva.catalog.objectstore import FileObjectStore, copy_new_hashing, md5_of
from pytest_deriva.catalog.port import ObjectStore
from pytest_deriva.exceptions import DerivaMLDataError, DerivaMLException

__all__ = ["EMBEDDED_SCHEME", "MATERIALIZED_MARKER", "BagWriter", "fetch_failure", "fetch_url"]

#: Beside a bag: it was materialized and every file validated.
MATERIALIZED_MARKER = ".materialized"

EMBEDDED_SCHEME = "deriva-embedded"
_EMBEDDED_PREFIX = f"{EMBEDDED_SCHEME}://localhost/"  # what FileObjectStore.fetch_url gives
BAGIT_VERSION = "0.97"  # what bdbag writes by default
#: The profile bdbag names in the bags it makes (its default ``bag_metadata``).
BDBAG_PROFILE_ID = "https://raw.githubusercontent.com/fair-research/bdbag/master/profiles/bdbag-profile.json"
_URL_MD5 = re.compile(r"/([0-9a-f]{32})\.[^/]+$")


def fetch_url(url: str, objects: ObjectStore) -> str:
    """The URL a bag's ``fetch.txt`` lists for an asset URL as the catalog records it."""
    if url.startswith("/"):
        return objects.fetch_url(url)
    parts = urlsplit(url)
    if parts.scheme == "file" and not parts.netloc:
        return urlunsplit(("file", "localhost", parts.path, "", ""))  # bagit wants a host
    return url


def fetch_failure(bag_dir: Path, errors: list[str]) -> DerivaMLDataError:
    listing = "; ".join(errors) or "see the log for the files bdbag could not fetch"
    return DerivaMLDataError(f"{len(errors) or 'Some'} files of bag {bag_dir} could not be fetched: {listing}")


# bagit's and bdbag's escaping of names in manifests and fetch.txt (bagit._encode_filename, bdbag.escape_uri).
def _manifest_name(name: str) -> str:
    return name.replace("\r", "%0D").replace("\n", "%0A")


def _fetch_name(name: str) -> str:
    return name.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def _one_line(value: str) -> str:
    return str(value).replace("\r", "").replace("\n", "")


def _fetch_url_escaped(url: str) -> str:
    return url.replace(" ", "%20").replace("\t", "%09")


@dataclass(frozen=True)
class _Remote:
    url: str
    length: int
    path: str  # under data/
    md5: str


class BagWriter:
    """A bag made in the new folder ``bag_dir``: add payload files and remote files, optionally
    fetch the remote ones, then :meth:`finish` writes the manifests and tag files.

    Payload paths are relative to ``data/`` with ``/`` separators. The folder is meant to be made
    aside and renamed into place by the caller, so files are written under their final names.
    """

    def __init__(self, bag_dir: Path) -> None:
        self.bag_dir = bag_dir
        bag_dir.joinpath("data").mkdir(parents=True)
        # Paths as strings: this runs once per file, and pathlib's parsing costs more than the copy.
        self._data = os.path.join(bag_dir, "data")
        self._dirs: set[str] = {self._data}
        self._local: dict[str, tuple[str, int]] = {}
        self._remote: list[_Remote] = []

    def _folder(self, folder: str) -> None:
        if folder not in self._dirs:
            try:
                os.mkdir(folder)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:
                pass
            self._dirs.add(folder)

    def add_file(self, path: str, data: bytes) -> None:
        """A payload file with these bytes (its MD5 taken from them)."""
        dest = f"{self._data}/{path}"
        self._folder(os.path.dirname(dest))
        with open(dest, "xb") as f:
            f.write(data)
        self._local[path] = (hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data))

    def add_remote(self, url: str, length: int, path: str, md5: str) -> None:
        """A payload file listed in ``fetch.txt`` (fetched by :meth:`fetch`)."""
        self._remote.append(_Remote(url, int(length), path, md5.lower()))  # bagit compares in lower case

    def fetch(self, objects: ObjectStore, shown_dir: Path) -> list[str]:
        """Fetch every remote file, each checked against its MD5 as it is written; one message
        per file that failed (named under ``shown_dir``, where the bag will be), which is left out."""
        errors: list[str] = []
        for f in self._remote:
            dest = f"{self._data}/{f.path}"
            self._folder(os.path.dirname(dest))
            try:
                _fetch_one(f, dest, objects)
            except (OSError, DerivaMLException) as e:
                if os.path.lexists(dest):
                    os.unlink(dest)
                errors.append(f"{shown_dir / 'data' / f.path} from {f.url}: {e}")
        return errors

    def finish(self, metadata: Mapping[str, str]) -> None:
        """Write ``manifest-md5.txt``, ``fetch.txt``, ``bagit.txt``, ``bag-info.txt`` and ``tagmanifest-md5.txt``."""
        from pytest_deriva import __version__

        remote = sorted(self._remote, key=lambda r: r.path)
        manifest = [f"{md5}  {_manifest_name('data/' + p)}\n" for p, (md5, _) in sorted(self._local.items())]
        manifest += [f"{r.md5}  {_manifest_name('data/' + r.path)}\n" for r in remote]
        total = sum(n for _, n in self._local.values()) + sum(r.length for r in remote)
        now = datetime.datetime.now().astimezone()
        info = {
            "BagIt-Profile-Identifier": BDBAG_PROFILE_ID,
            "Bagging-Date": now.strftime("%Y-%m-%d"),
            "Bagging-Time": now.strftime("%H:%M:%S %Z"),
            "Bag-Software-Agent": f"pytest-deriva {__version__}",
            **metadata,
            "Payload-Oxum": f"{total}.{len(manifest)}",
        }
        tags = {
            "bagit.txt": f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n",
            # bdbag drops line breaks from values, so that each stays on its line
            "bag-info.txt": "".join(f"{k}: {_one_line(v)}\n" for k, v in sorted(info.items())),
            "manifest-md5.txt": "".join(manifest),
        }
        if remote:
            tags["fetch.txt"] = "".join(
                f"{_fetch_url_escaped(r.url)}\t{r.length}\t{_fetch_name('data/' + r.path)}\n" for r in remote
            )
        lines = []
        for name, text in tags.items():
            data = text.encode("utf-8")
            (self.bag_dir / name).write_bytes(data)
            lines.append(f"{hashlib.md5(data, usedforsecurity=False).hexdigest()} {name}\n")
        (self.bag_dir / "tagmanifest-md5.txt").write_text("".join(lines), encoding="utf-8")


def _fetch_one(f: _Remote, dest: str, objects: ObjectStore) -> None:
    """Write one remote file to the new file ``dest``, its bytes checked once against ``f.md5``."""
    if f.url.startswith(_EMBEDDED_PREFIX) and isinstance(objects, FileObjectStore):
        # The embedded store reads the object once, checking the MD5 as it copies.
        objects.copy_to(f.url[len(_EMBEDDED_PREFIX) - 1 :], dest, f.md5, f.length)
        return
    parts = urlsplit(f.url)
    if parts.scheme == "file":
        got, _ = copy_new_hashing(Path(url2pathname(unquote(parts.path))), Path(dest), f.length)
    else:
        # Another store (a server's Hatrac): it checks the file against the MD5 its URL carries.
        objects.get(parts.path if parts.scheme == EMBEDDED_SCHEME else f.url, Path(dest))
        m = _URL_MD5.search(parts.path.rsplit(":", 1)[0])  # a versioned URL names the same bytes
        if m and m[1] == f.md5:
            return
        got, _ = md5_of(Path(dest))
    if got != f.md5:
        os.unlink(dest)
        raise DerivaMLDataError(f"{f.url} fails its checksum (MD5 {got}, expected {f.md5}).")
