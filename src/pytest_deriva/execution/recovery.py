"""Recovery: finishing what processes that stopped (killed, crashed, powered off) left behind.

A process that runs an execution claims it in its liveness record (:mod:`._lease`); a process
that plans runs (a pytest session) records the plan in ``plans/``. When that process is gone,
:func:`recover` - run at every pytest and ``deriva-run`` start, at the end of a pytest-xdist
session (a killed worker), and by ``ml.recover()`` - makes the records true:

- an execution that was running is restored, the files it registered and wrote are uploaded,
  and it ends ``Aborted`` with the reason (one that had already ended keeps its outcome, and its
  files still pending are uploaded);
- planned runs that never started end ``Aborted`` ("not run");
- a sweep's parent gets its status and summary from its children;
- temporary files the embedded object store was writing are removed.

Nothing is uploaded twice (the manifest says what is uploaded) and nothing another live process
owns is touched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_deriva._locks import file_lock
from pytest_deriva.enums import Status
from pytest_deriva.exceptions import DerivaMLException
from pytest_deriva.execution import _lease, _paths

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["recover"]

_logger = logging.getLogger("pytest_deriva")
_TEMP_RE = re.compile(r"^\.incoming-(\d+)-")


def recover(ml: DerivaML) -> list[str]:
    """Close what stopped processes left unfinished in ``ml``'s working directory; what was done,
    one line per execution or sweep."""
    wd = Path(ml.working_dir)
    if not _lease.lease_dir(wd).is_dir():
        return []  # nothing has run here since leases exist: nothing to recover
    names = {f.name for f in _lease.lease_dir(wd).glob("*-*")}
    plans = wd / "plans"
    if not any(not _lease.is_alive(wd, n) for n in names) and not (plans.is_dir() and any(plans.iterdir())):
        return []  # every process that ran here is alive (the common case: a few cheap looks)
    done: list[str] = []
    started = time.time()
    with file_lock(_lease.lease_dir(wd) / ".recovery.lock"):  # one recovery at a time
        done += _recover_executions(ml, wd)
        done += _recover_plans(ml, wd)
        _remove_dead_leases(wd)
        own = _lease.own_names()
        alone = all(f.name in own or not _lease.is_alive(wd, f.name) for f in _lease.lease_dir(wd).glob("*-*"))
        if alone:
            # No other process works here: objects a stopped one stored and never recorded go.
            _remove_orphan_objects(ml, started)
    _remove_temp_files(ml)
    for line in done:
        _logger.warning("deriva recovery: %s", line)
    return done


def _recover_executions(ml: DerivaML, wd: Path) -> list[str]:
    done: list[str] = []
    for lease_file in sorted(_lease.lease_dir(wd).glob("*-*")):
        lease = lease_file.name
        if _lease.is_alive(wd, lease):
            continue
        who = _lease.describe(wd, lease)
        keep: list[str] = []
        for rid in _lease.claims_of(wd, lease):
            line, finished = _recover_execution(ml, rid, who)
            if not finished:
                keep.append(rid)
            if line:
                done.append(line)
        _paths.remove_spare(wd, lease)  # its spare execution folders (empty), if it was killed between runs
        _lease.forget(wd, lease, keep)
    return done


def _recover_execution(ml: DerivaML, rid: str, who: str) -> tuple[str, bool]:
    """Finish execution ``rid`` of the stopped process ``who``: what was done (``""``: nothing was
    needed), and whether it is finished (False: it could not be done now, and is tried again)."""
    from pytest_deriva.exceptions import DerivaMLNotFoundError
    from pytest_deriva.execution.configuration import ExecutionConfiguration
    from pytest_deriva.execution.execution import Execution

    try:
        record = ml.lookup_execution(rid)
    except DerivaMLNotFoundError:
        return "", True  # claimed in a transaction that the stop rolled back: there is no such run
    except DerivaMLException as e:
        return f"{rid}: not recovered ({type(e).__name__}: {e}); it is tried again next time", False
    try:
        before = record.status
        workflow = ml.lookup_workflow(record.workflow_rid) if record.workflow_rid else None
        if workflow is None:
            return f"{rid}: no workflow recorded; left {before.value}", True
        # Only what is needed to finish it: no inputs are downloaded again.
        config = ExecutionConfiguration(description=record.description or "")
        exe = Execution(config, ml, workflow=workflow, reload=rid)
        pending = len(exe._get_manifest().pending_assets())
        if before in (Status.completed, Status.failed, Status.aborted):
            if not pending:
                exe._release()
                return "", True  # it had ended and uploaded everything; only its release was not written
            exe.upload_execution_outputs()
        else:
            exe.end(
                Status.aborted,
                f"Did not finish: {who} running it stopped. What it registered and wrote was uploaded by a recovery.",
            )
        return f"{rid}: {before.value} -> {exe.status.value} ({pending} pending files; {who} had stopped)", True
    except DerivaMLException as e:
        return f"{rid}: not recovered ({type(e).__name__}: {e}); it is tried again next time", False


def _recover_plans(ml: DerivaML, wd: Path) -> list[str]:
    from pytest_deriva.execution.sweep import abort_never_run, close_sweep, record_dir

    done: list[str] = []
    folder = record_dir(wd)
    for record_file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(record_file.read_text())
        except (OSError, ValueError):
            continue  # being written (tmp + rename makes this rare): next time
        lease = str(doc.get("lease") or "")
        if _lease.is_alive(wd, lease):
            continue
        who = _lease.describe(wd, lease)
        try:
            never = abort_never_run(ml, list(doc.get("runs") or []), f"Not run: {who} running its session stopped.")
            if never:
                done.append(f"{len(never)} planned runs never started: Aborted ({', '.join(never[:10])})")
            for parent, info in (doc.get("sweeps") or {}).items():
                started = datetime.fromisoformat(info["started"]) if info.get("started") else None
                result = close_sweep(ml, parent, started)
                done.append(f"sweep {parent}: {result.status.value} ({result.detail})")
            record_file.unlink(missing_ok=True)
        except DerivaMLException as e:
            done.append(f"plan {record_file.name}: not recovered ({type(e).__name__}: {e}); tried again next time")
    return done


def _remove_dead_leases(wd: Path) -> None:
    """Lease files of stopped processes that claim nothing unfinished any more."""
    for f in _lease.lease_dir(wd).glob("*-*"):
        if not _lease.is_alive(wd, f.name) and not _lease.claims_of(wd, f.name):
            f.unlink(missing_ok=True)


def _remove_orphan_objects(ml: DerivaML, before: float) -> None:
    """Objects of the embedded store that no asset row names (stored by a process that was killed
    before it recorded them), written before ``before``. A server's Hatrac is shared by every
    catalog on the host, so nothing is removed there."""
    base = ml.catalog.local_path
    objects = base / "objects" if base is not None else None
    if objects is None or not objects.is_dir():
        return
    referenced: set[str] = set()
    for table in ml.model.asset_tables():
        rows = ml.catalog.select(table.schema.name, table.name, columns=["MD5"])
        referenced.update(str(r["MD5"]) for r in rows if r.get("MD5"))
    for f in objects.glob("??/*"):
        if f.name.startswith(".") or f.name in referenced:
            continue
        try:
            if f.stat().st_mtime < before:
                f.unlink()
                _logger.info("deriva recovery: removed %s, stored by a stopped process and never recorded", f)
        except FileNotFoundError:
            continue


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_temp_files(ml: DerivaML) -> None:
    """Half-written objects of stopped processes in the embedded object store (``.incoming-<pid>-...``)."""
    base = ml.catalog.local_path
    if base is None:
        return
    for folder in (base / "incoming", *(base / "objects").glob("??")):
        if not folder.is_dir():
            continue
        for f in folder.glob(".incoming-*"):
            m = _TEMP_RE.match(f.name)
            if m and int(m[1]) != os.getpid() and not _pid_alive(int(m[1])):
                f.unlink(missing_ok=True)
