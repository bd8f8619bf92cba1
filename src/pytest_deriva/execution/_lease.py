"""Liveness records: which process owns an execution, and whether that process is still alive.

Every process that runs executions holds one lease per working directory: a file
``<working_dir>/leases/<pid>-<token>`` on which it keeps an exclusive ``flock`` for as long as it
lives. The kernel drops the lock when the process ends, however it ends (``SIGKILL`` and the
OOM killer included), so "the lease can be locked" means "its owner is gone": no guess by age,
and no confusion when a pid is reused. A run plan's record in ``plans/`` names the planner's lease.

The lease file also says which executions its process runs: its first line describes the
process (JSON), and each later line claims (``+RID``) or releases (``-RID``) an execution. A
claim is one ``write`` to the file the process already holds open, in the file (the OS's page
cache) before the run starts, so it survives any crash of the process; no file is made per
execution. After a power loss every owner is dead, and a claim that did not reach the disk only
means nobody finishes that run's record: it stays as the crash left it, never says more.
"""

from __future__ import annotations

import atexit
import functools
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
    "claims_of",
    "describe",
    "forget",
    "is_alive",
    "lease_dir",
    "own_lease",
    "own_names",
    "release",
    "release_parent",
]

_held: dict[Path, tuple[str, IO[str], int]] = {}  # leases folder -> (name, open file, pid)
_claimed: set[tuple[Path, str]] = set()  # (leases folder, execution RID) claimed here and not released
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


@functools.lru_cache(maxsize=64)
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
        f.write("\n")
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
        head = (lease_dir(working_dir) / name).read_text(encoding="utf-8").split("\n", 1)[0]
        info: dict[str, Any] = json.loads(head or "{}")
    except (OSError, ValueError):
        info = {}
    pid = info.get("pid") or name.split("-", 1)[0]
    return f"process {pid}" + (f" on {info['host']}" if info.get("host") else "")


def _append(working_dir: Path, line: str) -> None:
    folder = lease_dir(working_dir)
    held = _held.get(folder)
    if held is None or held[2] != os.getpid():
        own_lease(working_dir)
        held = _held[folder]
    os.write(held[1].fileno(), line.encode())  # one write, O_APPEND: whole lines even between threads


def claim(working_dir: Path, rid: str) -> None:
    """Execution ``rid`` is run by this process: a recovery leaves it alone while the process lives."""
    _append(working_dir, f"+{rid}\n")
    _claimed.add((lease_dir(working_dir), rid))


def release(working_dir: Path, rid: str) -> None:
    """Execution ``rid`` is finished (outcome recorded, every file uploaded): nobody needs to recover it."""
    key = (lease_dir(working_dir), rid)
    if key in _claimed:
        _append(working_dir, f"-{rid}\n")
        _claimed.discard(key)


def release_parent(working_dir: Path, rid: str) -> None:
    """A sweep's parent got its final status from its children: it needs no recovery."""
    release(working_dir, rid)


def claims_of(working_dir: Path, name: str) -> list[str]:
    """The executions lease ``name`` claimed and did not release, in the order claimed."""
    try:
        lines = (lease_dir(working_dir) / name).read_text(encoding="utf-8").splitlines()[1:]
    except (FileNotFoundError, NotADirectoryError):
        return []
    open_claims: dict[str, None] = {}
    for line in lines:
        if line.startswith("+"):
            open_claims[line[1:].strip()] = None
        elif line.startswith("-"):
            open_claims.pop(line[1:].strip(), None)
    return [rid for rid in open_claims if rid]


def forget(working_dir: Path, name: str, keep: list[str]) -> None:
    """A recovery finished the claims of the stopped process ``name`` except ``keep``: its lease file
    goes, or is rewritten with only those (tried again next time)."""
    path = lease_dir(working_dir) / name
    if not keep:
        path.unlink(missing_ok=True)
        return
    try:
        head = path.read_text(encoding="utf-8").split("\n", 1)[0]
    except FileNotFoundError:
        return
    tmp = path.with_name(f".rewrite{os.getpid()}")  # no "-": not taken for a lease
    tmp.write_text(head + "\n" + "".join(f"+{rid}\n" for rid in keep), encoding="utf-8")
    os.replace(tmp, path)
