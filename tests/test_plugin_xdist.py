"""The plugin under pytest-xdist: one parent per sweep (made by the controller's plan), children
recorded by the workers, the summary and sweep_finished once, in the controller."""

from __future__ import annotations

import pytest

from _plugin_helpers import (
    DURATION_RE,
    GRID,
    HOOKS_CONFTEST,
    catalog,
    collected_ids,
    executions,
    grid_id,
    job_of,
    make_project,
    outputs,
    parents_and_children,
)

pytest.importorskip("xdist")


@pytest.mark.parametrize("workers", ["2", "4"])
def test_sweep_under_xdist_has_one_parent_and_the_same_children(pytester, workers, tmp_path):
    root = make_project(pytester, {"experiment_grid.py": GRID, "conftest.py": HOOKS_CONFTEST})
    order = [nodeid.split("[", 1)[1].rstrip("]") for nodeid in collected_ids(pytester)]
    (root / "hooks.log").unlink(
        missing_ok=True
    )  # --collect-only calls hooks too (see test_collect_only_writes_nothing)

    result = pytester.runpytest_subprocess("--deriva-run", "-n", workers)
    result.assert_outcomes(passed=5, failed=1)
    out = result.stdout.str()
    assert out.count("deriva: recorded executions") == 1, out
    assert out.count("Failed: 5 of 6 completed, 1 failed") == 1, out

    with catalog(root / ".deriva") as ml:
        assert len(executions(ml)) == 7
        tree = parents_and_children(ml)
        assert len(tree) == 1, tree
        [(parent_rid, links)] = tree.items()
        assert [link["Sequence"] for link in links] == [0, 1, 2, 3, 4, 5]
        parent = ml.lookup_execution(parent_rid)
        assert (parent.status.value, parent.status_detail) == ("Failed", "5 of 6 completed, 1 failed")
        assert DURATION_RE.match(parent.duration_text or ""), parent.duration_text
        for seq, link in enumerate(links):
            child = ml.lookup_execution(link["Nested_Execution"])
            job, text = job_of(child.description)
            assert (job, text, grid_id(ml, child.rid, tmp_path)) == (seq, "Grid sweep", order[seq])
            expected = "Failed" if order[seq] == "y-2" else "Completed"
            assert child.status.value == expected, (seq, child.status_detail)
            assert DURATION_RE.match(child.duration_text or ""), child.duration_text
            names = set(outputs(ml, child.rid))
            assert f"out-{order[seq].split('-')[1]}{order[seq].split('-')[0]}.txt" in names
            assert ("traceback.txt" in names) == (expected == "Failed")

    result.stdout.fnmatch_lines([f"sweep {parent_rid}  Grid sweep  Failed: 5 of 6 completed, 1 failed"])
    lines = (root / "hooks.log").read_text().splitlines()
    assert sum(line.startswith("created ") for line in lines) == 6
    assert sum(line.startswith("finished ") for line in lines) == 6
    assert [line for line in lines if line.startswith("sweep ")] == [
        f"sweep {parent_rid} Failed 5 of 6 completed, 1 failed children=6"
    ]
    assert all(line.split()[3] == "Pending" for line in lines if line.startswith("created "))
