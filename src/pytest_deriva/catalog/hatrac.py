"""The server's object store: Hatrac, through the ``deriva`` client's ``HatracStore``.

Objects live at ``/hatrac/<AssetTable>/<md5>.<filename>`` (the same URLs the embedded store
gives), so an object already on the server, from this run or any other, is not stored twice: a
small one goes up with ``If-None-Match: *`` (one request, stored or found), a large one only after
a ``HEAD`` finds it missing. Hatrac checks the ``Content-MD5`` of every ``PUT`` against the bytes it
received, and a download is checked against the MD5 in its URL. Files larger than
:data:`CHUNKED_ABOVE` go up in chunks (Hatrac's upload jobs), with progress logged as they go.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pytest_deriva.catalog._credentials import ServerLocation
from pytest_deriva.catalog.objectstore import md5_of, object_url, parse_object_url
from pytest_deriva.catalog.port import StoredObject
from pytest_deriva.exceptions import DerivaMLDataError, DerivaMLException, DerivaMLNotFoundError

__all__ = ["CHUNKED_ABOVE", "HatracObjectStore"]

#: Files larger than this are uploaded in chunks.
CHUNKED_ABOVE = 32 * 1024 * 1024
_CHUNK_SIZE = 16 * 1024 * 1024
_logger = logging.getLogger("pytest_deriva")


def _b64(md5_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()


class HatracObjectStore:
    """Files in Hatrac, by URL, verified by MD5."""

    def __init__(
        self,
        location: ServerLocation,
        credential: dict[str, Any] | None,
        *,
        counter: Any,
        errors: Any,
        session_config: dict[str, Any],
        tune: Callable[[Any], None],
    ) -> None:
        """``counter``, ``errors``, ``session_config`` and ``tune`` (which bounds the session's
        retries) are the catalog adapter's, so both speak to the server alike."""
        from deriva.core import HatracStore

        self._location = location
        self._store = HatracStore(location.scheme, location.host, credentials=credential, session_config=session_config)
        counter.attach(self._store._session)
        tune(self._store._session)
        self._errors = errors
        self._known: set[str] = set()  # URLs known to hold their object: no HEAD again
        self._lock = threading.Lock()

    def fetch_url(self, url: str) -> str:
        """The absolute URL of an object, for a bag's ``fetch.txt``."""
        return f"{self._location.scheme}://{self._location.host}{url}"

    def _head_matches(self, url: str, md5: str) -> bool:
        import requests

        if url in self._known:
            return True
        try:
            r = self._store._session.head(self._store.get_server_uri() + url)
        except requests.exceptions.RequestException as e:
            raise self._errors.translate(e, f"looking up {url}") from None
        if r.status_code == 200 and r.headers.get("content-md5") == _b64(md5):
            with self._lock:
                self._known.add(url)
            return True
        if r.status_code in (401, 403):
            raise self._errors.translate(requests.HTTPError(response=r), f"looking up {url}")
        return False

    def _upload(self, url: str, data: Any, md5: str, length: int, filename: str, *, if_absent: bool = False) -> bool:
        """PUT the object; with ``if_absent`` only where nothing is at ``url`` yet (``If-None-Match: *``).

        Returns False when ``if_absent`` found something there (Hatrac's 412), else True.
        """
        import requests

        disposition = f"filename*=UTF-8''{quote(filename, safe='')}"
        condition = {"If-None-Match": "*"} if if_absent else {}
        try:
            if length > CHUNKED_ABOVE and isinstance(data, str):

                def progress(**kwargs: Any) -> bool:
                    if "progress" in kwargs:
                        _logger.info("%s: %s", filename, kwargs["progress"])
                    return True

                self._store.put_loc(
                    url,
                    data,
                    md5=_b64(md5),
                    chunked=True,
                    chunk_size=_CHUNK_SIZE,
                    create_parents=True,
                    content_disposition=disposition,
                    callback=progress,
                    force=True,
                )
            elif length == 0:
                # requests sends an empty file object chunked, without the Content-Length Apache wants.
                r = self._store._session.put(
                    self._store.get_server_uri() + url + "?parents=true",
                    data=b"",
                    headers={"Content-MD5": _b64(md5), "Content-Disposition": disposition, **condition},
                )
                r.raise_for_status()
            else:
                self._store.put_obj(
                    url,
                    data,
                    headers=condition,
                    md5=_b64(md5),
                    parents=True,
                    content_disposition=disposition,
                    force=True,
                )
        except requests.exceptions.RequestException as e:
            code = getattr(getattr(e, "response", None), "status_code", None)
            if if_absent and code == 412:
                return False
            if code in (400, 409, 412) and "md5" in str(e).lower():
                raise DerivaMLDataError(
                    f"Hatrac refused {filename}: its checksum did not match what arrived (MD5 {md5}). The file "
                    "changed while it was uploaded; upload it again."
                ) from None
            raise self._errors.translate(e, f"uploading {filename} to {url}") from None
        with self._lock:
            self._known.add(url)
        return True

    def _send(self, url: str, data: Any, md5: str, length: int, filename: str) -> None:
        """Make sure ``url`` holds the object.

        One request: a small object goes up with ``If-None-Match: *`` (Hatrac answers 412 when the
        name, which carries the MD5, is taken). A large one is looked up first (``HEAD``, checking
        its ``Content-MD5``), to send its bytes only when needed.
        """
        if url in self._known:
            return
        if length > CHUNKED_ABOVE:
            if not self._head_matches(url, md5):
                self._upload(url, data, md5, length, filename)
            return
        if not self._upload(url, data, md5, length, filename, if_absent=True):
            # Something is there already. Its name carries its MD5, and Hatrac checked the
            # Content-MD5 when it was stored; every download checks it again.
            with self._lock:
                self._known.add(url)

    def put(
        self, source: Path, namespace: str, filename: str, md5: str | None = None, *, take: bool = False
    ) -> StoredObject:
        source = Path(source)
        if not source.is_file():
            raise DerivaMLNotFoundError(f"Cannot store {source}: no such file.")
        digest, length = md5_of(source)
        if md5 is not None and md5 != digest:
            raise DerivaMLDataError(f"{source} changed while it was stored (MD5 {digest}, expected {md5}).")
        url = object_url(namespace, digest, filename)
        self._send(url, str(source), digest, length, filename)
        return StoredObject(url, digest, length)

    def put_bytes(self, data: bytes, namespace: str, filename: str) -> StoredObject:
        import hashlib

        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        url = object_url(namespace, digest, filename)
        self._send(url, io.BytesIO(data), digest, len(data), filename)
        return StoredObject(url, digest, len(data))

    def get(self, url: str, dest: Path) -> Path:
        import requests

        path = urlsplit(url).path if "://" in url else url
        path = path.rsplit(":", 1)[0] if ":" in path else path  # a versioned URL names the same bytes
        _, md5, _ = parse_object_url(path)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{threading.get_ident()}.part")
        try:
            self._store.get_obj(path, destfilename=str(tmp))
            got, _ = md5_of(tmp)
            if got != md5:
                raise DerivaMLDataError(f"Object {url} fails its checksum (MD5 {got}, expected {md5}).")
            os.replace(tmp, dest)
        except requests.exceptions.RequestException as e:
            code = getattr(getattr(e, "response", None), "status_code", None)
            if code == 404:
                raise DerivaMLNotFoundError(f"Object {url} is missing from {self._location.host}.") from None
            raise self._errors.translate(e, f"downloading {url}") from None
        except DerivaMLException:
            raise
        except Exception as e:  # deriva's HatracHashMismatch and I/O errors
            raise DerivaMLDataError(f"Downloading {url} failed: {e}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def exists(self, url: str) -> bool:
        import requests

        try:
            parse_object_url(url)
        except DerivaMLNotFoundError:
            return False
        try:
            r = self._store._session.head(self._store.get_server_uri() + url)
        except requests.exceptions.RequestException as e:
            raise self._errors.translate(e, f"looking up {url}") from None
        return bool(r.status_code == 200)

    def close(self) -> None:
        self._store._close_session()
