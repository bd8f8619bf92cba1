"""An exclusive file lock between processes (POSIX ``flock``), reentrant within a process."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_lock"]

_held: set[tuple[Path, int]] = set()
_guard = threading.Lock()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    Taking it again in the same process does not wait: ``flock`` locks belong to an open file,
    so a second open would block on the first forever. Where there is no ``fcntl`` (Windows),
    the block runs unlocked and SQLite's own locking has to do.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    key = (Path(path), os.getpid())
    with _guard:
        reentered = key in _held
    if reentered:
        yield
        return
    with Path(path).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with _guard:
            _held.add(key)
        try:
            yield
        finally:
            with _guard:
                _held.discard(key)
            fcntl.flock(f, fcntl.LOCK_UN)
