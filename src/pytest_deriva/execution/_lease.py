"""Liveness records: which process owns an execution, and whether that process is still alive.

Every process that runs executions holds one lease per working directory: a file
``<working_dir>/leases/<pid>-<token>`` on which it keeps an exclusive ``flock`` for as long as it
lives. The kernel drops the lock when the process ends, however it ends (``SIGKILL`` and the
OOM killer included), so "the lease can be locked" means "its owner is gone": no guess by age,
and no confusion when a pid is reused. An execution's folder names its owner's lease in
``owner``; a run plan's record in ``plans/`` names the planner's.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = [
    "claim",
    "describe",
    "is_alive",
    "lease_dir",
    "own_lease",
    "own_names",
    "owner_of",
    "release",
    "release_parent",
]

_held: dict[Path, tuple[str, IO[str], int]] = {}  # leases folder -> (name, open file, pid)
_claimed: set[Path] = set()  # execution folders this process claimed and has not released
_guard = threading.Lock()


@atexit.register
def _drop_leases() -> None:
    """At a normal exit with nothing left unfinished, the lease files go (a missing lease reads as
    a stopped process, so one that is still named somewhere may go too; this saves the next
    start a look)."""
    if _claimed:
        return
    pid = os.getpid()
    for folder, (name, f, owner) in list(_held.items()):
        if owner == pid:
            (folder / name).unlink(missing_ok=True)
            f.close()


def lease_dir(working_dir: Path) -> Path:
    return Path(working_dir) / "leases"


def own_lease(working_dir: Path) -> str:
    """This process's lease in ``working_dir`` (taken on first use, held until the process ends)."""
    folder = lease_dir(working_dir)
    pid = os.getpid()
    with _guard:
        held = _held.get(folder)
        if held is not None and held[2] == pid:
            return held[0]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{pid}-{secrets.token_hex(4)}"
        f = (folder / name).open("a+", encoding="utf-8")
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no liveness; recovery is then by hand
            pass
        f.write(json.dumps({"pid": pid, "host": socket.gethostname(), "started": datetime.now(UTC).isoformat()}))
        f.flush()
        _held[folder] = (name, f, pid)
        return name


def own_names() -> set[str]:
    """The leases this process holds."""
    return _own_names()


def _own_names() -> set[str]:
    pid = os.getpid()
    return {name for name, _, p in _held.values() if p == pid}


def is_alive(working_dir: Path, name: str) -> bool:
    """Whether the process holding lease ``name`` is still running."""
    if name in _own_names():
        return True
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: assume alive, never take over a live run
        return True
    try:
        f = (lease_dir(working_dir) / name).open("r+", encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def describe(working_dir: Path, name: str) -> str:
    """``process 1234 on host`` for messages, from the lease's record."""
    try:
        info: dict[str, Any] = json.loads((lease_dir(working_dir) / name).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    pid = info.get("pid") or name.split("-", 1)[0]
    return f"process {pid}" + (f" on {info['host']}" if info.get("host") else "")


def claim(folder: Path, working_dir: Path) -> None:
    """Mark ``folder`` (an execution's) as owned by this process."""
    tmp = folder / f".owner.{os.getpid()}"
    tmp.write_text(own_lease(working_dir), encoding="utf-8")
    os.replace(tmp, folder / "owner")
    _claimed.add(folder)


def owner_of(folder: Path) -> str | None:
    try:
        return (folder / "owner").read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def release(folder: Path) -> None:
    """The execution is finished: nobody needs to recover it."""
    (folder / "owner").unlink(missing_ok=True)
    _claimed.discard(folder)


def release_parent(working_dir: Path, rid: str) -> None:
    """A sweep's parent got its final status from its children: it needs no recovery."""
    release(Path(working_dir) / "execution" / rid)
