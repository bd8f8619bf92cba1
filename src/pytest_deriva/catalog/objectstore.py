"""A content-addressed file store: the embedded counterpart of Hatrac.

Objects live under ``objects/<md5[:2]>/<md5>``; a URL has the server's form
``/hatrac/<namespace>/<md5>.<filename>``, so rows recorded here read the same as on a server and
the MD5 in the URL finds the bytes. Writes go through a temporary file and an atomic rename,
so a crash never leaves a half-written object under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import stat
import threading
from pathlib import Path
from urllib.parse import quote, unquote

from pytest_deriva.catalog.port import StoredObject
from pytest_deriva.exceptions import (
    DerivaMLDataError,
    DerivaMLNotFoundError,
    DerivaMLReadOnlyError,
    DerivaMLValidationError,
)

__all__ = ["FileObjectStore", "copy_new_hashing", "md5_of", "object_url", "parse_object_url"]

_CHUNK = 1 << 20
_HASH_CHUNK = 1 << 16  # read into one buffer of this size (below malloc's mmap threshold)
_counter = itertools.count()
_URL_RE = re.compile(r"^/hatrac/(?P<ns>[^/]+)/(?P<md5>[0-9a-f]{32})\.(?P<name>[^/]+)$")


def md5_of(path: Path) -> tuple[str, int]:
    """The hex MD5 and length of a file (the length is what was hashed, not a second stat)."""
    # usedforsecurity=False: a content address, not a security check (allowed under FIPS).
    h = hashlib.md5(usedforsecurity=False)
    n = 0
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    fd = os.open(path, os.O_RDONLY)  # unbuffered: no fstat and no isatty look per file
    try:
        while got := os.readv(fd, [buf]):
            h.update(view[:got])
            n += got
            if got < _HASH_CHUNK:  # a short read of a regular file is its end
                break
    finally:
        os.close(fd)
    return h.hexdigest(), n


def _copy_hashing(src: Path, dst_dir: Path) -> tuple[Path, str, int]:
    """Copy ``src`` into a new temporary file in ``dst_dir``, hashing on the way."""
    h = hashlib.md5(usedforsecurity=False)
    n = 0
    tmp = dst_dir / f".incoming-{os.getpid()}-{threading.get_ident()}-{next(_counter)}"
    try:
        with src.open("rb") as fin, tmp.open("xb") as fout:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                fout.write(chunk)
                n += len(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, h.hexdigest(), n


def copy_new_hashing(src: str | Path, dest: str | Path, size_hint: int | None = None) -> tuple[str, int]:
    """Copy ``src`` into the new file ``dest`` (refused if it exists), reading it once: its MD5 and length.

    Plain ``os`` calls, no buffered file objects (no ``fstat``/``ioctl``/``lseek`` per file); with
    ``size_hint`` (the expected length) a small file takes one read and one write: a read of a
    regular file that returns less than it asked for has reached the end, so no second read to
    see the end. (Should the file be longer after all, the MD5 the caller checks differs.)
    ``dest`` is removed when the copy fails.
    """
    h = hashlib.md5(usedforsecurity=False)
    n = 0
    size = _CHUNK if size_hint is None else min(_CHUNK, max(size_hint, 0) + 1)
    fin = os.open(src, os.O_RDONLY)
    try:
        fout = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            while chunk := os.read(fin, size):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fout, view) :]
                n += len(chunk)
                if len(chunk) < size and size_hint is not None:
                    break  # the end of the file (see above)
                if len(chunk) == size:  # more than the hint said: read on in full chunks
                    size = _CHUNK
        except BaseException:
            os.close(fout)
            os.unlink(dest)
            raise
        os.close(fout)
    finally:
        os.close(fin)
    return h.hexdigest(), n


def object_url(namespace: str, md5: str, filename: str) -> str:
    """The URL an object gets: ``/hatrac/<namespace>/<md5>.<filename>``, quoted like Hatrac."""
    if not filename or "/" in filename or "\x00" in filename:
        raise DerivaMLValidationError(f"File name {filename!r} cannot be stored; use a plain file name.")
    return f"/hatrac/{quote(namespace, safe='')}/{md5}.{quote(filename, safe='')}"


def parse_object_url(url: str) -> tuple[str, str, str]:
    """Split an object URL into ``(namespace, md5, filename)``."""
    m = _URL_RE.fullmatch(url)
    if not m:
        raise DerivaMLNotFoundError(f"{url!r} is not an object URL of this store (/hatrac/<table>/<md5>.<name>).")
    return unquote(m["ns"]), m["md5"], unquote(m["name"])


class FileObjectStore:
    """Objects in a folder, addressed by MD5. A ``read_only`` store reads and refuses to store."""

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only
        self._objects = root / "objects"
        self._objects_str = str(self._objects)
        self._incoming = root / "incoming"
        self._dirs: set[Path] = set()  # folders known to exist, to save mkdir calls
        if not self._objects.exists() and not read_only:
            # All 256 buckets at once, when the store is made, rather than one by one on the hot path.
            for i in range(256):
                (self._objects / f"{i:02x}").mkdir(parents=True, exist_ok=True)
            self._incoming.mkdir(exist_ok=True)

    def _object_path(self, md5: str) -> Path:
        return self._objects / md5[:2] / md5

    def _object_file(self, md5: str) -> str:
        """:meth:`_object_path` as a string, for the paths of every run (pathlib costs ~10 us a join)."""
        return os.path.join(self._objects_str, md5[:2], md5)

    def _refuse_write(self, filename: str) -> None:
        if self.read_only:
            raise DerivaMLReadOnlyError(
                f"Cannot store {filename!r}: the catalog in {self.root} is read-only. "
                "Record in a writable catalog, or make this one writable."
            )

    def put(
        self, source: Path, namespace: str, filename: str, md5: str | None = None, *, take: bool = False
    ) -> StoredObject:
        self._refuse_write(filename)
        source = Path(source)
        try:
            before = os.lstat(source)
            is_file = stat.S_ISREG(before.st_mode) or (stat.S_ISLNK(before.st_mode) and source.is_file())
        except (FileNotFoundError, NotADirectoryError):
            is_file = False
        if not is_file:
            raise DerivaMLNotFoundError(f"Cannot store {source}: no such file.")
        if take and (stored := self._put_linked(source, before, namespace, filename, md5)) is not None:
            return stored
        self._ensure_dir(self._incoming)
        tmp, digest, length = _copy_hashing(source, self._incoming)
        if md5 is not None and md5 != digest:
            tmp.unlink(missing_ok=True)
            raise DerivaMLDataError(f"{source} changed while it was stored (MD5 {digest}, expected {md5}).")
        final = self._object_path(digest)
        if final.exists():
            tmp.unlink(missing_ok=True)
        else:
            self._ensure_dir(final.parent)
            os.replace(tmp, final)
        return StoredObject(object_url(namespace, digest, filename), digest, length)

    def _put_linked(
        self, source: Path, before: os.stat_result, namespace: str, filename: str, md5: str | None
    ) -> StoredObject | None:
        """Store ``source`` as a hard link rather than a copy (its caller removes it next, so the
        object store keeps the only name): one link instead of a new file and a copy of the bytes.
        None when it cannot: a symbolic link or a file with other names (someone may still write
        it), another file system, or a file that changed while it was hashed. ``before`` is its lstat."""
        if not stat.S_ISREG(before.st_mode) or before.st_nlink != 1:
            return None
        digest, length = md5_of(source)
        if md5 is not None and md5 != digest:
            raise DerivaMLDataError(f"{source} changed while it was stored (MD5 {digest}, expected {md5}).")
        final = self._object_file(digest)
        if not os.path.exists(final):
            try:
                self._link(source, final)
            except FileExistsError:
                pass  # stored meanwhile by another process: the same bytes
            except OSError:
                return None  # another file system, or no hard links here: copy
            else:
                after = os.stat(final)
                if (after.st_size, after.st_mtime_ns) != (length, before.st_mtime_ns):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(final)  # written while it was hashed: copy what it is now
                    return None
        return StoredObject(object_url(namespace, digest, filename), digest, length)

    def put_bytes(self, data: bytes, namespace: str, filename: str) -> StoredObject:
        """Store bytes held in memory (no source file needed)."""
        self._refuse_write(filename)
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        url = object_url(namespace, digest, filename)
        final = self._object_file(digest)
        if not os.path.exists(final):
            folder = os.path.dirname(final)
            tmp = os.path.join(folder, f".incoming-{os.getpid()}-{threading.get_ident()}-{next(_counter)}")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:  # the first object under this prefix
                self._ensure_dir(Path(folder))
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            os.close(fd)
            os.replace(tmp, final)
        return StoredObject(url, digest, len(data))

    def _link(self, source: Path, final: str) -> None:
        """Hard-link ``source`` as object ``final`` (its prefix folder made if missing)."""
        try:
            os.link(source, final)
        except FileNotFoundError:
            if not source.exists():
                raise
            self._ensure_dir(Path(os.path.dirname(final)))
            os.link(source, final)

    def _ensure_dir(self, folder: Path) -> None:
        if folder not in self._dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)

    def get(self, url: str, dest: Path) -> Path:
        _, md5, _ = parse_object_url(url)
        src = self._object_path(md5)
        if not src.is_file():
            raise DerivaMLNotFoundError(f"Object {url} is missing from the store at {self._objects}.")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp, digest, _ = _copy_hashing(src, dest.parent)
        if digest != md5:
            tmp.unlink(missing_ok=True)
            raise DerivaMLDataError(
                f"Object {url} fails its checksum (MD5 {digest}, expected {md5}); the stored file {src} is corrupt."
            )
        os.replace(tmp, dest)
        return dest

    def fetch_url(self, url: str) -> str:
        """``deriva-embedded://localhost/hatrac/...``: bagit wants a scheme and a host; bags made here
        resolve that scheme through this store (see :mod:`pytest_deriva.dataset._bdbag`)."""
        return f"deriva-embedded://localhost{url}"

    def exists(self, url: str) -> bool:
        try:
            _, md5, _ = parse_object_url(url)
        except DerivaMLNotFoundError:
            return False
        return self._object_path(md5).is_file()

    def copy_to(self, url: str, dest: str | Path, md5: str | None = None, size_hint: int | None = None) -> int:
        """Copy the object at ``url`` into the new file ``dest`` (its folder must exist), reading it
        once and checking its MD5 on the way against ``md5`` (by default the one in the URL); its length.

        The cheap form of :meth:`get` for a caller that writes into a folder of its own (a bag
        being made aside): no temporary file, no rename, no ``mkdir``. ``dest`` is removed if the
        check fails.
        """
        _, url_md5, _ = parse_object_url(url)
        src = os.path.join(self._objects, url_md5[:2], url_md5)  # _object_path, without pathlib's cost
        try:
            digest, length = copy_new_hashing(src, dest, size_hint)
        except FileNotFoundError:
            if not os.path.isfile(src):
                raise DerivaMLNotFoundError(f"Object {url} is missing from the store at {self._objects}.") from None
            raise
        expected = md5 or url_md5
        if digest != expected:
            os.unlink(dest)
            if digest != url_md5:
                raise DerivaMLDataError(
                    f"Object {url} fails its checksum (MD5 {digest}, expected {expected}); "
                    f"the stored file {src} is corrupt."
                )
            raise DerivaMLDataError(f"Object {url} has MD5 {digest}, not the {expected} it is recorded with.")
        return length
