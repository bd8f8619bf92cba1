"""An exclusive file lock between processes (``flock``; portalocker on Windows) and between threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["file_lock"]

# One re-entrant lock per path serializes the threads of this process; the file lock, taken by
# the first of them, serializes processes. (A second file lock from the same process would wait
# on the first forever: flock locks, which portalocker takes on POSIX, belong to an open file.)
_locks: dict[Path, threading.RLock] = {}
_depth: dict[Path, int] = {}
_guard = threading.Lock()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block; re-entrant.

    Between processes the lock is ``flock`` on POSIX and ``msvcrt.locking`` on Windows (through
    portalocker); it waits as long as another process holds it.
    """
    key = Path(path)
    with _guard:
        rlock = _locks.setdefault(key, threading.RLock())
    with rlock:
        depth = _depth.get(key, 0)
        _depth[key] = depth + 1
        try:
            if depth:
                yield
                return
            with key.open("a") as f:
                _lock(f)
                try:
                    yield
                finally:
                    _unlock(f)
        finally:
            _depth[key] -= 1


def _lock(f: IO[str]) -> None:
    """Take the exclusive lock of open file ``f``, waiting in the kernel for as long as it takes."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        # portalocker.lock() waits in the kernel; its Lock class would poll every 0.25 s and
        # give up after 5 s by default.
        import portalocker

        portalocker.lock(f, portalocker.LockFlags.EXCLUSIVE)
        return
    fcntl.flock(f, fcntl.LOCK_EX)


def _unlock(f: IO[str]) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import portalocker

        portalocker.unlock(f)
        return
    fcntl.flock(f, fcntl.LOCK_UN)
