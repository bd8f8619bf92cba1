"""``pytest-deriva reproduce RID`` (issue 12, item 4): a recorded run made again from its
recorded commit, in a temporary git worktree, while the project has moved on."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from _plugin_helpers import catalog, commit, git, make_project

SCORED = '''
import pytest

FACTOR = 10


@pytest.mark.parametrize("i", [1, 2])
def experiment_scored(i, execution):
    """Scored sweep"""
    execution.asset_file_path("Execution_Asset", f"model-{i}.txt").write_text(str(i * FACTOR))
    return {"score": i * FACTOR}
'''


def reproduce(root, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_deriva.tools.main", "reproduce", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def test_reproduce_runs_the_recorded_commit_from_a_later_one(pytester: pytest.Pytester, monkeypatch) -> None:
    root = make_project(pytester, {"experiment_scored.py": SCORED})
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # in the environment snapshot's allow-list
    pytester.runpytest_subprocess("--deriva-run", "-p", "no:randomly").assert_outcomes(passed=2)
    with catalog(root / ".deriva") as ml:
        [original] = [r for r in ml.find_executions() if r.description == "[Job 1] Scored sweep"]
        assert original.metrics == {"score": 20}
    # The project moves on: another factor, committed. The reproduction still runs the old code.
    (root / "experiment_scored.py").write_text(SCORED.replace("FACTOR = 10", "FACTOR = 100"))
    commit(root)

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    done = reproduce(root, original.rid)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"reproducing {original.rid} ([Job 1] Scored sweep): experiment_scored.py at commit" in out
    with catalog(root / ".deriva") as ml:
        [again] = [r for r in ml.find_executions() if r.description == f"Reproduces {original.rid}: Scored sweep"]
        assert again.status.value == "Completed"
        assert again.parameters == {"i": 2}
        assert again.metrics == {"score": 20}  # the recorded commit's code, not the project's now
        assert again.parent is None
        assert again.workflow.checksum == original.workflow.checksum
    assert f"recorded {again.rid}: Completed" in out
    assert re.search(rf"metric +{original.rid} +{again.rid} +difference\n +score +20(\.0)? +20(\.0)? +\+0\n", out), out
    # (pytester's subprocess also set PYTHONPATH for the first run: a real difference, listed too)
    assert re.search(r"environment: \d+ differences\n", out), out
    assert "\n  environment.OMP_NUM_THREADS: 1 -> 2\n" in out, out
    # The temporary worktree is gone.
    assert len(git(root, "worktree", "list").splitlines()) == 1


def test_reproduce_refuses_a_commit_the_repository_does_not_have(pytester: pytest.Pytester, tmp_path) -> None:
    root = make_project(pytester, {"experiment_scored.py": SCORED})
    pytester.runpytest_subprocess("--deriva-run", "-p", "no:randomly").assert_outcomes(passed=2)
    with catalog(root / ".deriva") as ml:
        [original] = [r for r in ml.find_executions() if r.description == "[Job 0] Scored sweep"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git(elsewhere, "init", "-q")
    git(elsewhere, "commit", "-q", "--allow-empty", "-m", "other")
    done = reproduce(elsewhere, original.rid, "--catalog", str(root / ".deriva"))
    assert done.returncode == 2
    assert "does not have commit" in done.stderr
