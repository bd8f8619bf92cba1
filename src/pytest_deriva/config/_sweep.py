"""The record of one Hydra sweep, shared by every process that runs its jobs.

Upstream keeps the multirun parent in a process global and finishes it at interpreter exit, so
a launcher that runs jobs in other processes (joblib, submitit) gets one parent per process and
parents that never finish. Here a sweep's state lives in a file in Hydra's sweep folder,
changed only under an inter-process lock: the first job to run creates the parent and writes
its RID there, every other job (in any process) links its child to that parent, and the sweep's
end (Hydra's ``on_multirun_end``, the last job, or ``deriva-run`` after an aborted sweep)
closes it with the children's summary and a ``Duration``.

Nothing is written to the catalog until a job has passed its configuration checks: a sweep
whose every job is refused leaves no parent behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva._locks import file_lock
from pytest_deriva.enums import Status
from pytest_deriva.execution.configuration import ExecutionConfiguration
from pytest_deriva.execution.sweep import close_sweep, link_children, start_parent

if TYPE_CHECKING:
    from pytest_deriva.execution.workflow import Workflow
    from pytest_deriva.ml import DerivaML

__all__ = ["STATE_DIR", "SweepRecord"]

STATE_DIR = ".pytest-deriva"
_logger = logging.getLogger("pytest_deriva")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SweepRecord:
    """The state of the sweep whose Hydra sweep folder is ``sweep_dir``.

    The state is a small JSON document (``<sweep_dir>/.pytest-deriva/sweep.json``)::

        {"id", "description", "expected", "overrides", "started", "managed", "parent_rid",
         "catalog", "children": {job number: child RID},
         "finished": {job number: "COMPLETED"|"FAILED"}, "closed", "multirun_stamp"}

    ``managed`` says that pytest-deriva's Hydra callback began the sweep (and will close it);
    without it (a hand-written ``hydra_main`` without the callback) each job refreshes the
    parent's summary instead.
    """

    def __init__(self, sweep_dir: str | os.PathLike[str]) -> None:
        self.sweep_dir = Path(os.path.abspath(sweep_dir))
        self.state_dir = self.sweep_dir / STATE_DIR
        self.path = self.state_dir / "sweep.json"

    # -- the file --------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.state_dir / "sweep.lock"):
            yield

    def read(self) -> dict[str, Any] | None:
        """The sweep's state, or ``None`` if no sweep was begun here."""
        try:
            doc: dict[str, Any] = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, self.path)

    def _multirun_stamp(self) -> int | None:
        try:
            return (self.sweep_dir / "multirun.yaml").stat().st_mtime_ns
        except OSError:
            return None

    def _new(self, description: str, expected: int | None, managed: bool) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "description": description,
            "expected": expected,
            "started": _now(),
            "managed": managed,
            "parent_rid": None,
            "catalog": None,
            "children": {},
            "finished": {},
            "closed": False,
            "multirun_stamp": self._multirun_stamp(),
        }

    # -- lifecycle -------------------------------------------------------------------------
    def begin(
        self,
        description: str,
        expected: int | None,
        connect: Callable[[dict[str, Any]], DerivaML],
        overrides: list[str] | None = None,
    ) -> None:
        """Start a sweep here (Hydra's ``on_multirun_start``): a fresh state, no parent yet.

        A sweep left open in the same folder (the folder reused after a crash) is closed first.
        """
        with self._locked():
            old = self.read()
            if old is not None and old.get("parent_rid") and not old.get("closed"):
                self._close(old, connect)
            doc = self._new(description, expected, managed=True)
            doc["overrides"] = list(overrides or [])
            self._write(doc)

    def overrides(self) -> tuple[str, list[str]]:
        """The sweep's id and task overrides (as begun by the callback); ``("", [])`` without."""
        doc = self.read()
        if doc is None or not doc.get("managed"):
            return "", []
        return str(doc.get("id", "")), list(doc.get("overrides") or [])

    def parent_for(
        self,
        ml: DerivaML,
        workflow: Workflow,
        description: str,
        catalog: dict[str, Any],
    ) -> tuple[str | None, bool]:
        """The RID of the sweep's parent execution, made now if this is the sweep's first job;
        and whether the sweep is managed by the callback.

        Returns ``(None, managed)`` when the parent lives in another catalog than ``ml``'s.
        """
        with self._locked():
            doc = self.read()
            # A closed sweep is over: a job finding one belongs to a new sweep in the same folder
            # (begun without the callback), as does a job whose multirun.yaml was rewritten.
            if (
                doc is None
                or doc.get("closed")
                or (not doc.get("managed") and doc.get("multirun_stamp") != self._multirun_stamp())
            ):
                # No callback began this sweep: each job keeps the parent's summary current.
                _logger.warning(
                    "Hydra multirun in %s without pytest-deriva's sweep callback: the parent execution is "
                    "updated after each job. Build the main config with create_model_config() or run "
                    "with deriva-run so that the sweep is closed when it ends.",
                    self.sweep_dir,
                )
                doc = self._new(description, None, managed=False)
            if doc.get("parent_rid") is None:
                doc["parent_rid"] = self._create_parent(ml, workflow, doc.get("description") or description)
                doc["catalog"] = catalog
                doc["catalog_uri"] = ml.catalog.uri
                doc["started"] = doc.get("started") or _now()
                self._write(doc)
            elif doc.get("catalog_uri") != ml.catalog.uri:
                _logger.warning(
                    "Job of sweep %s records to %s, its parent %s is in %s: the job is not nested under it.",
                    self.sweep_dir,
                    ml.catalog.uri,
                    doc["parent_rid"],
                    doc.get("catalog_uri"),
                )
                return None, bool(doc.get("managed"))
            return str(doc["parent_rid"]), bool(doc.get("managed"))

    def _create_parent(self, ml: DerivaML, workflow: Workflow, description: str) -> str:
        # The parent records the sweep's multirun.yaml as its Hydra_Config file, named
        # hydra-<sweep folder>-multirun.yaml like a run's files.
        record_dir: Path | None = None
        multirun = self.sweep_dir / "multirun.yaml"
        if multirun.is_file():
            record_dir = self.state_dir / self.sweep_dir.name
            record_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(multirun, record_dir / "multirun.yaml")
        previous = ml.hydra_runtime_output_dir
        ml.hydra_runtime_output_dir = record_dir
        try:
            parent = start_parent(ml, workflow, ExecutionConfiguration(description=description, workflow=workflow))
        finally:
            ml.hydra_runtime_output_dir = previous
        _logger.info("Sweep %s: parent execution %s", self.sweep_dir, parent.execution_rid)
        return parent.execution_rid

    def add_child(self, ml: DerivaML, parent_rid: str, child_rid: str, job_num: int) -> None:
        """Nest a job's execution under the parent, ``Sequence`` = Hydra's job number."""
        link_children(ml, parent_rid, [(child_rid, job_num)])
        with self._locked():
            doc = self.read()
            if doc is not None and doc.get("parent_rid") == parent_rid:
                doc["children"][str(job_num)] = child_rid
                self._write(doc)

    def job_finished(self, job_num: int, ok: bool, connect: Callable[[dict[str, Any]], DerivaML]) -> None:
        """Note a job's end (Hydra's ``on_job_end``, in the job's process); the last job closes the sweep."""
        with self._locked():
            doc = self.read()
            if doc is None or doc.get("closed"):
                return
            doc["finished"][str(job_num)] = "COMPLETED" if ok else "FAILED"
            expected = doc.get("expected")
            if doc.get("managed") and expected is not None and len(doc["finished"]) >= expected:
                self._close(doc, connect)
            self._write(doc)

    def refresh(self, ml: DerivaML) -> None:
        """Bring an unmanaged sweep's parent up to date with the children so far."""
        with self._locked():
            doc = self.read()
            if (
                doc is None
                or doc.get("managed")
                or not doc.get("parent_rid")
                or doc.get("catalog_uri") != ml.catalog.uri
            ):
                return
            self._update_parent(ml, doc)

    def close(self, connect: Callable[[dict[str, Any]], DerivaML]) -> None:
        """Close the sweep (``on_multirun_end``, or ``deriva-run`` after an aborted sweep); idempotent."""
        with self._locked():
            doc = self.read()
            if doc is None or doc.get("closed"):
                return
            self._close(doc, connect)
            self._write(doc)

    def _close(self, doc: dict[str, Any], connect: Callable[[dict[str, Any]], DerivaML]) -> None:
        doc["closed"] = True
        if not doc.get("parent_rid"):
            return  # no job got as far as recording: there is nothing to close
        self._update_parent(connect(doc["catalog"] or {}), doc)

    @staticmethod
    def _update_parent(ml: DerivaML, doc: dict[str, Any]) -> None:
        children = doc.get("children", {})
        finished = doc.get("finished", {})
        # Jobs that failed before recording anything, and jobs that never ran, count too.
        also = [Status.failed] * sum(1 for n, s in finished.items() if s == "FAILED" and n not in children)
        expected = doc.get("expected")
        if doc.get("closed") and expected is not None:
            also += [Status.aborted] * max(0, expected - len(set(finished) | set(children)))
        started = datetime.fromisoformat(doc["started"])
        close_sweep(ml, doc["parent_rid"], started, also, final=bool(doc.get("closed")))
