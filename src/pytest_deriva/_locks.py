"""An exclusive file lock between processes (POSIX ``flock``) and between threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_lock"]

# One re-entrant lock per path serializes the threads of this process; the flock, taken by the
# first of them, serializes processes. (A second flock from the same process would wait on the
# first forever: flock locks belong to an open file.)
_locks: dict[Path, threading.RLock] = {}
_depth: dict[Path, int] = {}
_guard = threading.Lock()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block; re-entrant.

    Where there is no ``fcntl`` (Windows) only the threads of this process are serialized and
    SQLite's own locking has to do between processes.
    """
    key = Path(path)
    with _guard:
        rlock = _locks.setdefault(key, threading.RLock())
    with rlock:
        first = _depth.get(key, 0) == 0
        _depth[key] = _depth.get(key, 0) + 1
        try:
            if not first:
                yield
                return
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows
                yield
                return
            with key.open("a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        finally:
            _depth[key] -= 1
