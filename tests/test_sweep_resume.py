"""Finishing a recorded sweep: ``pytest --deriva-run --deriva-resume [PARENT_RID | last]``
(issue 12, item 2), on the embedded store, under xdist, and on a DERIVA server."""

from __future__ import annotations

import pytest

from _plugin_helpers import catalog, catalog_created, commit, job_of, make_project
from pytest_deriva import DerivaML
from pytest_deriva.resume import plan_resume

# Imported here, not first inside an inline pytest run: pytester takes the modules a run imported
# out again, and the classes of a second run would not be the first run's.
assert plan_resume

# Child 1 fails until a file "fixed" exists (untracked: the experiment file stays clean).
FLAKY = '''
import os

import pytest


@pytest.mark.parametrize("i", [0, 1, 2, 3])
def experiment_flaky(i, execution):
    """Flaky sweep"""
    execution.asset_file_path("Execution_Asset", f"out-{i}.txt").write_text(f"child {i}")
    assert i != 1 or os.path.exists("fixed"), "child 1 fails"
    return {"score": i / 10}
'''

OTHER = """
def experiment_other(execution):
    pass
"""


def attempts_by_sequence(ml: DerivaML, parent: str) -> dict[int, list[tuple[str, str, str]]]:
    """Sequence -> [(RID, status, description)] of every attempt, oldest first."""
    links = ml.catalog.select("deriva-ml", "Execution_Execution", {"Execution": parent})
    out: dict[int, list[tuple[str, str, str]]] = {}
    for link in links:
        child = ml.lookup_execution(link["Nested_Execution"])
        out.setdefault(link["Sequence"], []).append((child.rid, child.status.value, child.description or ""))
    for tries in out.values():
        tries.sort(key=lambda t: (len(t[0]), t[0]))
    return dict(sorted(out.items()))


def stopped_sweep(pytester: pytest.Pytester, *args: str) -> str:
    """Run FLAKY with -x (child 1 fails, 2 and 3 never run); the parent's RID."""
    result = pytester.runpytest("--deriva-run", "-x", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=1, failed=1)
    [line] = [line for line in result.outlines if line.startswith("sweep ")]
    return line.split()[1]


def check_resumed(ml: DerivaML, parent: str) -> None:
    tries = attempts_by_sequence(ml, parent)
    assert [len(t) for t in tries.values()] == [1, 2, 2, 2]
    assert tries[0][0][1] == "Completed"
    # The earlier attempts stay on record as they ended; the new ones name them.
    assert [t[0][1] for t in list(tries.values())[1:]] == ["Failed", "Aborted", "Aborted"]
    for seq in (1, 2, 3):
        (earlier, _, _), (_, status, description) = tries[seq]
        assert status == "Completed"
        assert job_of(description) == (seq, f"Flaky sweep (attempt 2; earlier: {earlier})")
    record = ml.lookup_execution(parent)
    assert (record.status.value, record.status_detail) == ("Completed", "4 of 4 completed")
    resumed = ml.lookup_execution(tries[1][1][0])
    assert resumed.parameters == {"i": 1}
    assert resumed.metrics == {"score": 0.1}


def test_resume_runs_only_what_did_not_complete_in_the_same_parent(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, {"experiment_flaky.py": FLAKY, "experiment_other.py": OTHER})
    parent = stopped_sweep(pytester, "experiment_flaky.py")
    (root / "fixed").write_text("")
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", "--deriva-resume")
    result.assert_outcomes(passed=3)  # experiment_other is not part of the sweep: not run
    result.stdout.fnmatch_lines(
        [f"deriva: resuming sweep {parent}: 3 children run again, 1 completed", f"sweep {parent}  *Completed: 4 of 4*"]
    )
    with catalog(root / ".deriva") as ml:
        check_resumed(ml, parent)
        assert len(ml.find_executions()) == 5 + 3  # parent, 4 children, 3 new attempts; nothing else

    # Nothing is left to do: nothing runs, nothing is recorded.
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", f"--deriva-resume={parent}")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([f"deriva: resuming sweep {parent}: all 4 children completed"])
    with catalog(root / ".deriva") as ml:
        assert len(ml.find_executions()) == 8


def test_resume_is_refused_when_the_code_changed_unless_allowed(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, {"experiment_flaky.py": FLAKY})
    parent = stopped_sweep(pytester)
    (root / "experiment_flaky.py").write_text(FLAKY.replace('"child 1 fails"', '"child 1 fails, again"'))
    commit(root)
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", "--deriva-resume", parent)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--deriva-resume {parent}: the code of sweep {parent} changed since it ran*--deriva-allow-changed*"
            "The change:",
            '-*assert i != 1 or os.path.exists("fixed"), "child 1 fails"',
            '+*assert i != 1 or os.path.exists("fixed"), "child 1 fails, again"',
        ]
    )
    with catalog(root / ".deriva") as ml:
        assert len(ml.find_executions()) == 5  # nothing recorded
    (root / "fixed").write_text("")
    result = pytester.runpytest(
        "--deriva-run", "-p", "no:randomly", "--deriva-resume", parent, "--deriva-allow-changed"
    )
    result.assert_outcomes(passed=3)
    with catalog(root / ".deriva") as ml:
        check_resumed(ml, parent)


def test_resume_refuses_what_is_not_a_sweep_or_not_collected(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, {"experiment_flaky.py": FLAKY, "experiment_other.py": OTHER})
    parent = stopped_sweep(pytester, "experiment_flaky.py")
    result = pytester.runpytest("--deriva-run", "experiment_other.py", "--deriva-resume", parent)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*sweep {parent} ('Flaky sweep', *) is not among the collected experiments*"])
    result = pytester.runpytest("--deriva-run", "--deriva-resume", "experiment_flaky.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*put paths before --deriva-resume*"])
    pytester.runpytest("--deriva-run", "experiment_other.py").assert_outcomes(passed=1)
    with catalog(root / ".deriva") as ml:
        [single] = [r for r in ml.find_executions() if r.description == "experiment_other"]
    result = pytester.runpytest("--deriva-run", "--deriva-resume", single.rid)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*execution {single.rid} ('experiment_other') is not a sweep*"])


def test_resume_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    root = make_project(pytester, {"experiment_flaky.py": FLAKY})
    parent = stopped_sweep(pytester)
    (root / "fixed").write_text("")
    result = pytester.runpytest_subprocess("--deriva-run", "-n", "2", "--deriva-resume", parent)
    result.assert_outcomes(passed=3)
    with catalog(root / ".deriva") as ml:
        check_resumed(ml, parent)
        child = attempts_by_sequence(ml, parent)[0][0][0]
    # Refused in the workers (they collect): the controller says why, with pytest's usage-error status.
    result = pytester.runpytest_subprocess("--deriva-run", "-n", "2", "--deriva-resume", child)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"ERROR: --deriva-resume {child}: execution {child} * is not a sweep*"])


def test_resume_on_a_server(pytester: pytest.Pytester, server_login, server_catalog_url) -> None:
    root = make_project(pytester, {"experiment_flaky.py": FLAKY})
    where = f"--deriva-catalog={server_catalog_url}"
    parent = stopped_sweep(pytester, where)
    (root / "fixed").write_text("")
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", where, "--deriva-resume", parent)
    result.assert_outcomes(passed=3)
    ml = DerivaML(server_catalog_url, working_dir=root / ".work")
    try:
        check_resumed(ml, parent)
    finally:
        ml.catalog.close()


def test_recorded_runs_are_found_by_their_parameters_as_one_by_one_comparison_finds_them() -> None:
    # The run cache of --deriva-skip-completed looks a sweep's runs up in an index of the recorded
    # runs (not each against every one): it finds what same_parameters finds, in the same order,
    # a hidden value (***) being the same as any, 1 the same as 1.0, lists and mappings by value,
    # and what cannot be a key by comparison.
    from pytest_deriva._secrets import REDACTED
    from pytest_deriva.resume import _ParameterIndex, same_parameters

    values = [1, 1.0, 2, "a", REDACTED, [1, 2], {"x": 1}, None, True, {1, 2}]  # a set: not a key
    runs = [{"lr": v} for v in values] + [{"lr": v, "n": w} for v in values for w in (1, REDACTED, [1])] + [{}]
    recorded = {f"R{i}": run for i, run in enumerate(runs)}
    order = sorted(recorded, reverse=True)
    index = _ParameterIndex(recorded, order)
    for now in [*runs, {"lr": 3}, {"n": 1}, {"lr": 1, "n": 2}]:
        expected = [rid for rid in order if same_parameters(recorded[rid], now, indexed=True)]
        assert index.same(now) == expected, now


# -- --deriva-skip-completed (issue 12, item 3) ---------------------------------------------------
def test_skip_completed_reuses_runs_done_with_the_same_code_and_parameters(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, {"experiment_flaky.py": FLAKY, "experiment_other.py": OTHER})
    first = pytester.runpytest("--deriva-run", "-p", "no:randomly")
    first.assert_outcomes(passed=4, failed=1)
    with catalog(root / ".deriva") as ml:
        [old_parent] = [r.rid for r in ml.find_executions() if r.description == "Flaky sweep"]
        old = {seq: tries[0][0] for seq, tries in attempts_by_sequence(ml, old_parent).items()}
        [other] = [r.rid for r in ml.find_executions() if r.description == "experiment_other"]

    (root / "fixed").write_text("")
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", "--deriva-skip-completed", "-rs")
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines_random(
        [
            f"SKIPPED*experiment_flaky.py:*completed before as {old[0]} (score=0)",
            f"SKIPPED*experiment_flaky.py:*completed before as {old[3]} (score=0.3)",
            f"SKIPPED*experiment_other.py:*completed before as {other} (no metrics)",
        ]
    )
    with catalog(root / ".deriva") as ml:
        runs = ml.find_executions()
        assert len(runs) == 6 + 2  # the first session's, then a new parent and the one new run
        [new_parent] = [r.rid for r in runs if r.description == "Flaky sweep" and r.rid != old_parent]
        tries = attempts_by_sequence(ml, new_parent)
        # The earlier runs are the new sweep's children at their Sequence; only child 1 ran again.
        assert {seq: t[0][0] for seq, t in tries.items() if seq != 1} == {0: old[0], 2: old[2], 3: old[3]}
        assert tries[1][0][0] != old[1]
        assert tries[1][0][1] == "Completed"
        record = ml.lookup_execution(new_parent)
        assert (record.status.value, record.status_detail) == ("Completed", "4 of 4 completed")
        assert ml.lookup_execution(old_parent).status_detail == "3 of 4 completed, 1 failed"

    # After a change to the experiment's code, nothing counts as done: everything runs again.
    (root / "experiment_flaky.py").write_text(FLAKY + "\n# changed\n")
    commit(root)
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", "--deriva-skip-completed")
    result.assert_outcomes(passed=4, skipped=1)  # experiment_other did not change


def test_skip_completed_on_a_server(pytester: pytest.Pytester, server_login, server_catalog_url) -> None:
    """The run cache reads the server's run index: a second session skips every completed run
    and nests the earlier runs under its new parent. (The catalog is shared with other tests:
    only the runs this test made are looked at.)"""
    root = make_project(pytester, {"experiment_flaky.py": FLAKY})
    (root / "fixed").write_text("")
    where = f"--deriva-catalog={server_catalog_url}"
    ml = DerivaML(server_catalog_url, working_dir=root / ".work")
    try:
        before = {r.rid for r in ml.find_executions()}
        pytester.runpytest("--deriva-run", "-p", "no:randomly", where).assert_outcomes(passed=4)
        made = [r for r in ml.find_executions() if r.rid not in before]
        [first] = [r.rid for r in made if r.description == "Flaky sweep"]
        assert len(made) == 1 + 4
        result = pytester.runpytest("--deriva-run", "-p", "no:randomly", where, "--deriva-skip-completed", "-rs")
        result.assert_outcomes(skipped=4)
        made = [r for r in ml.find_executions() if r.rid not in before]
        assert len(made) == 2 + 4  # a second parent; the four runs made once
        [second] = [r.rid for r in made if r.description == "Flaky sweep" and r.rid != first]
        old, new = attempts_by_sequence(ml, first), attempts_by_sequence(ml, second)
        assert {seq: t[0][0] for seq, t in new.items()} == {seq: t[0][0] for seq, t in old.items()}
        assert ml.lookup_execution(second).status_detail == "4 of 4 completed"
    finally:
        ml.catalog.close()


READS = """
import os

import pytest


@pytest.mark.deriva(datasets=[{"rid": os.environ["DS"], "version": os.environ["DS_VERSION"]}])
def experiment_reads(execution):
    return {"n": 1}
"""


def test_skip_completed_runs_again_with_another_input_version(pytester, monkeypatch) -> None:
    root = make_project(pytester, {"experiment_reads.py": READS})
    with catalog_created(root) as ml:
        dataset = ml.create_dataset("Testing", description="inputs", version="1.0.0")
        dataset.increment_dataset_version("minor")
    monkeypatch.setenv("DS", dataset.dataset_rid)
    monkeypatch.setenv("DS_VERSION", "1.0.0")
    pytester.runpytest("--deriva-run").assert_outcomes(passed=1)
    pytester.runpytest("--deriva-run", "--deriva-skip-completed").assert_outcomes(skipped=1)
    monkeypatch.setenv("DS_VERSION", "1.1.0")
    pytester.runpytest("--deriva-run", "--deriva-skip-completed").assert_outcomes(passed=1)
    pytester.runpytest("--deriva-run", "--deriva-skip-completed").assert_outcomes(skipped=1)
