"""``end_run``: the one way a run ends, for the plugin, ``run_model`` and the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_deriva import DerivaML, ExecutionConfiguration, Workflow
from pytest_deriva.exceptions import DerivaMLDataError, DerivaMLUploadError
from pytest_deriva.execution.outcome import Outcome, end_run


def started(ml: DerivaML, workflow: Workflow, description: str = "run") -> object:
    exe = ml.create_execution(ExecutionConfiguration(description=description), workflow=workflow)
    exe.execution_start()
    return exe


def files(ml: DerivaML, rid: str) -> dict[str, str]:
    """Output file name -> its text, as stored."""
    out = {}
    for asset in ml.lookup_execution(rid).list_assets(asset_role="Output"):
        if asset.filename in ("traceback.txt", "metrics.json", "model.txt"):
            out[asset.filename] = ml.catalog.objects.get(
                asset.url, Path(ml.working_dir) / "got" / asset.filename
            ).read_text()
    return out


@pytest.mark.parametrize(
    ("outcome", "status", "detail", "kept"),
    [
        (Outcome.completed({"acc": 0.9}), "Completed", "Successfully end the execution.", {"metrics.json"}),
        (
            Outcome.failed(ValueError("diverged"), traceback="Traceback ...\nValueError: diverged"),
            "Failed",
            "ValueError: diverged",
            {"traceback.txt"},
        ),
        (Outcome.aborted("Skipped: no GPU"), "Aborted", "Skipped: no GPU", set()),
        (Outcome.interrupted(), "Aborted", "Interrupted: KeyboardInterrupt", set()),
    ],
    ids=["completed", "failed", "aborted", "interrupted"],
)
def test_an_outcome_is_recorded_with_its_files(
    ml: DerivaML, workflow: Workflow, outcome: Outcome, status: str, detail: str, kept: set[str]
) -> None:
    exe = started(ml, workflow)
    exe.asset_file_path("Execution_Asset", "model.txt").write_text("weights")  # type: ignore[attr-defined]
    uploaded = end_run(exe, outcome)  # type: ignore[arg-type]
    record = ml.lookup_execution(exe.execution_rid)  # type: ignore[attr-defined]
    assert (record.status.value, record.status_detail) == (status, detail)
    assert record.duration_text
    assert record.duration_text.endswith("sec")
    stored = files(ml, record.execution_rid)
    assert set(stored) == {"model.txt", *kept}  # the run's own file uploads whatever the outcome
    if "metrics.json" in kept:
        assert json.loads(stored["metrics.json"]) == {"acc": 0.9}
    if "traceback.txt" in kept:
        assert stored["traceback.txt"].endswith("ValueError: diverged")
    assert "deriva-ml/Execution_Asset" in uploaded


@pytest.mark.parametrize(
    ("outcome", "detail"),
    [(Outcome.failed("ValueError: boom"), "ValueError: boom"), (Outcome.completed(), "Upload failed: ")],
    ids=["failed-keeps-its-outcome", "completed-becomes-failed"],
)
def test_a_file_that_does_not_upload_is_raised_and_stays_pending(
    ml: DerivaML, workflow: Workflow, outcome: Outcome, detail: str
) -> None:
    exe = started(ml, workflow)
    exe.asset_file_path("Execution_Asset", "model.txt").write_text("w")  # type: ignore[attr-defined]
    store = ml.catalog.objects
    real_put = store.put
    store.put = _refuse  # type: ignore[method-assign]
    with pytest.raises(DerivaMLUploadError, match=r"model\.txt"):
        end_run(exe, outcome)  # type: ignore[arg-type]
    record = ml.lookup_execution(exe.execution_rid)  # type: ignore[attr-defined]
    assert record.status.value == "Failed"
    assert (record.status_detail or "").startswith(detail)
    assert list(exe._get_manifest().pending_assets()) == ["Execution_Asset/model.txt"]  # type: ignore[attr-defined]
    store.put = real_put  # type: ignore[method-assign]
    ml.restore_execution(exe.execution_rid).upload_execution_outputs()  # type: ignore[attr-defined]
    assert "model.txt" in files(ml, exe.execution_rid)  # type: ignore[attr-defined]


def _refuse(*args: object, **kwargs: object) -> object:
    # What the object store says when it cannot take a file (an OSError would be retried for 35 s).
    raise DerivaMLDataError("the object store refused the file")
