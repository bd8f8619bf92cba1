"""How a run ends: one function for every runner (the pytest plugin, ``run_model``, notebooks).

    outcome = Outcome.failed(exc, traceback=text)      # or completed(), aborted(reason), interrupted()
    end_run(execution, outcome)                        # traceback/metrics files, upload, final status

:func:`end_run` records what the outcome carries (``traceback.txt``, ``metrics.json``), uploads
every registered file, and writes the status, its detail and the Duration in the write that
follows the files (:meth:`Execution.end`), so a record never says more than is true.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_deriva.enums import Status
from pytest_deriva.exceptions import DerivaMLException
from pytest_deriva.execution._index import json_safe, write_metrics

if TYPE_CHECKING:
    from pytest_deriva.execution.execution import Execution
    from pytest_deriva.execution.manifest import AssetFilePath
    from pytest_deriva.execution.upload import UploadProgress

__all__ = ["Outcome", "end_run"]

COMPLETED_DETAIL = "Successfully end the execution."


@dataclass(frozen=True)
class Outcome:
    """What happened to a run: its final status and why, with what to keep of it."""

    status: Status
    detail: str
    traceback: str | None = None  # kept as Execution_Metadata traceback.txt
    metrics: Mapping[str, Any] | None = None  # kept as Execution_Metadata metrics.json

    @classmethod
    def completed(cls, metrics: Mapping[str, Any] | None = None) -> Outcome:
        return cls(Status.completed, COMPLETED_DETAIL, metrics=metrics)

    @classmethod
    def failed(
        cls, error: BaseException | str, traceback: str | None = None, metrics: Mapping[str, Any] | None = None
    ) -> Outcome:
        """Failed with ``error`` (an exception, or the message to record)."""
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return cls(Status.failed, detail, traceback=traceback, metrics=metrics)

    @classmethod
    def aborted(cls, reason: str, metrics: Mapping[str, Any] | None = None) -> Outcome:
        """Stopped, not failed: skipped, not run, a file never written, ..."""
        return cls(Status.aborted, reason, metrics=metrics)

    @classmethod
    def interrupted(cls, what: str = "KeyboardInterrupt") -> Outcome:
        return cls(Status.aborted, f"Interrupted: {what}")


#: What a run may return to have it recorded as its metrics (said when it returned something else).
METRICS_RETURNED = (
    "a number (recorded as the metric 'value') or a mapping of metrics (str -> number, text or nested mapping)"
)


def metrics_of(result: Any) -> dict[str, Any] | None:
    """What a run returned, as its metrics: a number is the metric ``value``, a mapping of names is
    kept as it is (nested mappings are indexed flattened, ``per_class.0``; values that are not
    numbers as text, NaN and infinities as null plus their text); None for None. Anything else
    raises ``TypeError`` (the caller says it was not recorded)."""
    if result is None:
        return None
    if isinstance(result, int | float) and not isinstance(result, bool):
        return {"value": result}
    if isinstance(result, Mapping) and all(isinstance(k, str) for k in result):
        return dict(result)
    raise TypeError(f"returned {type(result).__name__}; a run may return {METRICS_RETURNED}")


def end_run(
    execution: Execution,
    outcome: Outcome,
    *,
    progress_callback: Callable[[UploadProgress], None] | None = None,
    timeout: tuple[int, int] | None = None,
    chunk_size: int | None = None,
) -> dict[str, list[AssetFilePath]]:
    """End ``execution`` with ``outcome``: its traceback and metrics files, every registered file
    uploaded, then the final status. Returns the uploaded files by ``schema/table``.

    Raises:
        DerivaMLUploadError: a file did not upload; it stays pending (a ``Completed`` outcome is
            then recorded ``Failed`` with the reason) and a later restore uploads it.
    """
    index: Callable[[], None] | None = None
    if not execution.dry_run:
        if outcome.traceback:
            path = execution.asset_file_path("Execution_Metadata", "traceback.txt", asset_types="Execution_Metadata")
            path.write_text(outcome.traceback, encoding="utf-8")
        if outcome.metrics:
            path = execution.asset_file_path("Execution_Metadata", "metrics.json", asset_types="Execution_Metadata")
            # Valid JSON: NaN and infinities are null here; the index keeps their text.
            path.write_text(json.dumps(json_safe(dict(outcome.metrics)), default=str), encoding="utf-8")
            # Indexed in the transaction that records the run's files and status.
            index = functools.partial(_index_metrics, execution, dict(outcome.metrics))

    return execution.end(
        outcome.status,
        outcome.detail,
        progress_callback=progress_callback,
        timeout=timeout,
        chunk_size=chunk_size,
        also=index,
    )


def _index_metrics(execution: Execution, metrics: Mapping[str, Any]) -> None:
    try:
        write_metrics(execution.catalog, execution.execution_rid, metrics)
    except DerivaMLException as e:  # the file has them; the run still ends as it should
        logging.getLogger("pytest_deriva").warning(
            "Execution %s: metrics not indexed (%s); they are in metrics.json", execution.execution_rid, e
        )
