"""Sweeps that pytest stops: a real Ctrl-C (SIGINT to a pytest process) and ``-x``; what the
catalog and the summary say afterwards (issue 12, item 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from _plugin_helpers import catalog, make_project, outputs, parents_and_children

# Child 1 writes a file, says it started (the file "started"), then waits to be interrupted.
WAITS = '''
import pathlib
import time

import pytest


@pytest.mark.parametrize("i", [0, 1, 2, 3])
def experiment_waits(i, execution):
    """Long sweep"""
    execution.asset_file_path("Execution_Asset", f"part-{i}.txt").write_text(f"child {i}")
    if i == 1:
        pathlib.Path("started").write_text("")
        time.sleep(120)
'''


def _wait_for(path, proc, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_ctrl_c_mid_sweep_aborts_the_running_child_and_those_never_run(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, {"experiment_waits.py": WAITS})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--deriva-run", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(root / "started", proc)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    with catalog(root / ".deriva") as ml:
        [(parent_rid, links)] = parents_and_children(ml).items()
        kids = [ml.lookup_execution(link["Nested_Execution"]) for link in links]
        assert [k.status.value for k in kids] == ["Completed", "Aborted", "Aborted", "Aborted"], out
        # The running child keeps what it wrote; the reason says it was interrupted.
        assert "part-1.txt" in outputs(ml, kids[1].rid, "Execution_Asset")
        assert kids[1].status_detail == "Interrupted before the experiment finished; its output files are partial."
        for never in kids[2:]:
            assert never.status_detail.startswith("Not run: the session ended before it ran"), never.status_detail
        parent = ml.lookup_execution(parent_rid)
        assert (parent.status.value, parent.status_detail) == ("Aborted", "1 of 4 completed, 3 aborted")
    # The summary lists every child, those never run too.
    for kid in kids:
        assert kid.rid in out, out
    assert f"sweep {parent_rid}" in out
