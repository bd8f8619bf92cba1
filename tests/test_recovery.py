"""Crash tests: what the catalog holds after a kill at each point of a run's life, and that the
next start makes it true.

Each test kills a real pytest process with SIGKILL (from inside an experiment, an xdist worker,
or at a named point of the lifecycle: ``pytest_deriva._faults``), then starts pytest again on the
same project and reads the records back from the embedded store. The rule every case checks:
no run says ``Completed`` unless it finished, nothing stays ``Running`` or ``Pending`` after a
recovery, every file a run registered and wrote is uploaded once, and nothing is left behind
(leases, plan records, temporary files).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from _plugin_helpers import catalog, executions, make_project, outputs, parents_and_children
from pytest_deriva import DerivaML, ExecutionConfiguration
from pytest_deriva._faults import POINTS
from pytest_deriva.execution.recovery import recover

# A 3-child sweep; the child named in KILL_AT (an environment variable) writes one file,
# registers another it never writes, and kills the whole process (or only its xdist worker).
SWEEP = """
import json
import os
import signal

import pytest


@pytest.mark.parametrize("i", [0, 1, 2])
def experiment_sweep(i, execution):
    execution.asset_file_path("Execution_Asset", f"written-{i}.txt").write_text(f"child {i}")
    if str(i) == os.environ.get("KILL_AT"):
        execution.asset_file_path("Execution_Asset", "model.pt")  # registered up front, never written
        os.kill(os.getpid(), signal.SIGKILL)
"""

OTHER = """
def experiment_other(execution):
    execution.asset_file_path("Execution_Asset", "other.txt").write_text("other")
"""

FINAL = {"Completed", "Failed", "Aborted"}


def statuses(ml: DerivaML) -> dict[str, tuple[str, str]]:
    return {r["RID"]: (r["Status"], r["Status_Detail"] or "") for r in executions(ml)}


def nothing_left_behind(root: Path) -> None:
    work = root / ".deriva" / "work"
    assert not [p for p in (work / "plans").glob("*")] if (work / "plans").exists() else True
    owners = list((work / "execution").glob("*/owner")) if (work / "execution").exists() else []
    assert owners == [], owners
    assert [p.name for p in (work / "leases").glob("*-*")] == [] if (work / "leases").exists() else True
    store = root / ".deriva"
    assert not list(store.glob("incoming/.incoming-*")) + list(store.glob("objects/*/.incoming-*"))
    with catalog(store) as ml:  # every stored object is a recorded file: no orphans
        referenced = {
            r["MD5"] for t in ml.model.asset_tables() for r in ml.catalog.select(t.schema.name, t.name, columns=["MD5"])
        }
    assert {f.name for f in store.glob("objects/??/*")} <= referenced


def run_again(pytester: pytest.Pytester) -> pytest.RunResult:
    """A later session on the same project (another experiment): its start recovers."""
    result = pytester.runpytest_subprocess("--deriva-run", "-p", "no:randomly", "experiment_other.py")
    result.assert_outcomes(passed=1)
    return result


def test_pytest_killed_mid_sweep(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(pytester, {"experiment_sweep.py": SWEEP, "experiment_other.py": OTHER})
    monkeypatch.setenv("KILL_AT", "1")
    killed = pytester.runpytest_subprocess("--deriva-run", "-p", "no:randomly", "experiment_sweep.py")
    assert killed.ret == -signal.SIGKILL
    with catalog(root / ".deriva") as ml:
        [(parent, links)] = parents_and_children(ml).items()
        children = [link["Nested_Execution"] for link in links]
        before = statuses(ml)
        # What a kill leaves: the parent and the killed child Running, the next child Pending.
        assert [before[c][0] for c in children] == ["Completed", "Running", "Pending"]
        assert before[parent][0] == "Running"

    monkeypatch.delenv("KILL_AT")
    result = run_again(pytester)
    result.stdout.fnmatch_lines(["deriva: closed what a stopped process left unfinished:"])
    with catalog(root / ".deriva") as ml:
        after = statuses(ml)
        assert after[children[0]][0] == "Completed"
        assert after[children[1]][0] == "Aborted"
        assert after[children[1]][1].startswith("Did not finish: process ")
        assert after[children[2]][0] == "Aborted"
        assert after[children[2]][1].startswith("Not run: process ")
        assert after[parent] == ("Aborted", "1 of 3 completed, 2 aborted")
        # The killed child's written file was uploaded, once; the file it never wrote was not.
        files = outputs(ml, children[1], "Execution_Asset")
        assert set(files) == {"written-1.txt"}
        links = ml.catalog.select("deriva-ml", "Execution_Asset_Execution", {"Execution": children[1]})
        assert len(links) == 1
        assert {s for s, _ in after.values()} <= FINAL
    nothing_left_behind(root)
    # A third start finds nothing to do.
    again = run_again(pytester)
    assert "closed what a stopped process" not in again.stdout.str()


def test_an_xdist_worker_killed_mid_sweep(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    root = make_project(pytester, {"experiment_sweep.py": SWEEP, "experiment_other.py": OTHER})
    monkeypatch.setenv("KILL_AT", "1")
    result = pytester.runpytest_subprocess("--deriva-run", "-n", "2", "-p", "no:randomly", "experiment_sweep.py")
    # xdist reports the crashed worker's experiment as failed and goes on with a new worker.
    result.assert_outcomes(passed=2, failed=1)
    with catalog(root / ".deriva") as ml:
        [(parent, links)] = parents_and_children(ml).items()
        children = {link["Sequence"]: link["Nested_Execution"] for link in links}
        after = statuses(ml)
        # The controller closed the killed worker's run before closing the sweep.
        assert after[children[1]][0] == "Aborted"
        assert after[children[1]][1].startswith("Did not finish: process ")
        assert set(outputs(ml, children[1], "Execution_Asset")) == {"written-1.txt"}
        assert after[children[0]][0] == after[children[2]][0] == "Completed"
        assert after[parent] == ("Aborted", "2 of 3 completed, 1 aborted")
    nothing_left_behind(root)


def written_files(root: Path) -> dict[str, set[str]]:
    """Files runs registered and wrote that are still in their folders (so not yet uploaded)."""
    found: dict[str, set[str]] = {}
    for f in (root / ".deriva" / "work" / "execution").glob("*/assets/Execution_Asset/written-*"):
        found.setdefault(f.parent.parent.parent.name, set()).add(f.name)
    return found


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_each_point_of_the_lifecycle(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    root = make_project(pytester, {"experiment_sweep.py": SWEEP, "experiment_other.py": OTHER})
    monkeypatch.setenv("PYTEST_DERIVA_CRASH_AT", point)
    killed = pytester.runpytest_subprocess("--deriva-run", "-p", "no:randomly", "experiment_sweep.py")
    assert killed.ret == -signal.SIGKILL
    left = written_files(root)
    monkeypatch.delenv("PYTEST_DERIVA_CRASH_AT")
    run_again(pytester)
    with catalog(root / ".deriva") as ml:
        after = statuses(ml)
        assert {s for s, _ in after.values()} <= FINAL, after  # nothing Running or Pending
        other = {r["RID"] for r in executions(ml) if "other" in (r["Description"] or "").lower()}
        assert other, executions(ml)
        # The sweep was killed before it finished: none of its runs says Completed.
        assert all(status != "Completed" for rid, (status, _) in after.items() if rid not in other), after
        for rid, names in left.items():  # what was written and not uploaded is uploaded now, once
            assert set(outputs(ml, rid, "Execution_Asset")) == names
            links = ml.catalog.select("deriva-ml", "Execution_Asset_Execution", {"Execution": rid})
            assert len(links) == len(names)
    nothing_left_behind(root)


def test_a_run_killed_inside_create_execution_is_never_completed(project: Path) -> None:
    """Through the API: killed after the rows, before their metadata; a restore ends them Aborted."""
    code = f"""
import json
import os
from pytest_deriva import DerivaML, ExecutionConfiguration
from pytest_deriva.execution.execution import Execution
ml = DerivaML({str(project / ".deriva")!r})
wf = ml.create_workflow("train", "Training", source_path={str(project / "train.py")!r})
os.environ["PYTEST_DERIVA_CRASH_AT"] = "plan:rows"
Execution.record_planned(ml, wf, [(ExecutionConfiguration(description="half made"), {{}})])
"""
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    ml = DerivaML(project / ".deriva")
    [row] = [r for r in executions(ml) if r["Description"] == "half made"]
    assert row["Status"] == "Created"
    restored = ml.restore_execution(row["RID"])
    restored.upload_execution_outputs()
    assert ml.lookup_execution(row["RID"]).status.value == "Aborted"


def test_a_half_written_object_of_a_killed_process_is_removed(project: Path) -> None:
    ml = DerivaML(project / ".deriva")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(description="x"), workflow=wf)
    # What a kill inside the object store's put leaves: a temporary file named for its process.
    dead = _dead_pid()
    tmp = project / ".deriva" / "incoming" / f".incoming-{dead}-1-0"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_bytes(b"half")
    (project / ".deriva" / "work" / "leases" / f"{dead}-deadbeef").write_text("{}")  # its lease
    assert ml.recover() == []  # no run was left unfinished
    assert not tmp.exists()
    exe.upload_execution_outputs()


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_live_process_runs_are_never_touched(project: Path) -> None:
    ml = DerivaML(project / ".deriva")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(description="live"), workflow=wf)
    exe.execution_start()
    assert recover(ml) == []  # this process holds the lease: its Running run is left alone
    assert ml.lookup_execution(exe.execution_rid).status.value == "Running"
    exe.execution_stop()
    exe.upload_execution_outputs()


def test_deriva_run_killed_is_recovered_by_the_next_deriva_run(project: Path, ml: DerivaML) -> None:
    from test_cli import DERIVA_RUN, TIMEOUT
    from test_config_project import subprocess_env, write_project

    write_project(project)
    command = [str(DERIVA_RUN)] if DERIVA_RUN.exists() else [sys.executable, "-m", "pytest_deriva.cli"]
    args = [*command, "--config-dir", "configs", "model_config=fast"]

    def deriva_run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=project, capture_output=True, text=True, timeout=TIMEOUT, env={**subprocess_env(), **env}
        )

    killed = deriva_run(PYTEST_DERIVA_CRASH_AT="run:started")
    assert killed.returncode == -signal.SIGKILL
    [first] = executions(ml)
    assert first["Status"] == "Running"

    done = deriva_run()
    assert done.returncode == 0, done.stderr
    assert f"deriva: closed what a stopped process left unfinished: {first['RID']}: Running -> Aborted" in done.stdout
    after = statuses(ml)
    assert after[first["RID"]][0] == "Aborted"
    assert sorted(s for s, _ in after.values()) == ["Aborted", "Completed"]


def test_a_claim_of_a_run_that_was_never_committed_is_dropped(project: Path) -> None:
    """A process killed inside the transaction that records a new run has claimed a RID that the
    rollback took away: the recovery finds no such run, says nothing, and the lease goes."""
    ml = DerivaML(project / ".deriva")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    live = ml.create_execution(ExecutionConfiguration(description="live"), workflow=wf)
    dead = _dead_pid()
    lease = project / ".deriva" / "work" / "leases" / f"{dead}-deadbeef"
    lease.write_text(json.dumps({"pid": dead}) + "\n+1-ZZZZ\n")
    assert ml.recover() == []
    assert not lease.exists()
    assert ml.lookup_execution(live.execution_rid).status.value == "Pending"  # a live run is left alone
    live.upload_execution_outputs()


def test_the_spare_folders_of_a_killed_process_go_with_its_lease(project: Path) -> None:
    """A process killed between two runs leaves its spare execution folders (empty) behind; the
    recovery removes them with its lease, and never a spare that holds a file."""
    ml = DerivaML(project / ".deriva")
    runs = ml.working_dir / "execution"
    dead, kept = _dead_pid(), _dead_pid()
    leases = project / ".deriva" / "work" / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    for pid in (dead, kept):
        (leases / f"{pid}-deadbeef").write_text(json.dumps({"pid": pid}) + "\n")
        (runs / f".spare-{pid}-deadbeef" / "assets" / "Execution_Asset").mkdir(parents=True)
        (runs / f".spare-{pid}-deadbeef" / "asset-manifest.jsonl").write_bytes(b"")
    (runs / f".spare-{kept}-deadbeef" / "assets" / "Execution_Asset" / "stray.bin").write_bytes(b"x")
    assert ml.recover() == []
    assert sorted(p.name for p in runs.iterdir()) == [f".spare-{kept}-deadbeef"]
    assert not (leases / f"{dead}-deadbeef").exists()
