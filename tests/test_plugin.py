"""End-to-end tests of the pytest plugin: ``pytest --deriva-run`` on experiment files written into
``pytester.path`` (a real git repository), then the embedded catalog read back with the public API.
"""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import yaml

from _plugin_helpers import (
    DURATION_RE,
    GRID,
    HOOKS_CONFTEST,
    catalog,
    catalog_created,
    collected_ids,
    executions,
    git,
    grid_id,
    job_of,
    make_project,
    outputs,
    parents_and_children,
    read_asset,
)
from pytest_deriva import ExecutionConfiguration

SINGLE = '''
def experiment_single(ml_instance, execution):
    """One run"""
    execution.asset_file_path("Execution_Asset", "model.txt").write_text("weights")
'''


# -- 1. a single experiment --------------------------------------------------------------------
def test_single_experiment_records_one_completed_execution(pytester, tmp_path):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"deriva: catalog {root / '.deriva'} (embedded store, from default)",
            "*= deriva: recorded executions =*",
            "runs",
            "  execution  experiment  * description  status     duration  metrics  outputs",
            "  1-*  experiment_single.py::experiment_single  One run      Completed  * s *  -        1",
        ]
    )

    with catalog(root / ".deriva") as ml:
        [row] = executions(ml)
        assert row["Status"] == "Completed", row["Status_Detail"]
        assert DURATION_RE.match(row["Duration"]), row["Duration"]
        assert row["Description"] == "One run"
        assert parents_and_children(ml) == {}

        assert set(outputs(ml, row["RID"], "Execution_Asset")) == {"model.txt"}
        assert read_asset(ml, outputs(ml, row["RID"])["model.txt"], tmp_path) == "weights"

        wf = ml.lookup_workflow(row["Workflow"])
        assert wf.url.endswith("/experiment_single.py"), wf.url
        assert git(root, "rev-parse", "HEAD") in wf.url
        assert wf.checksum == git(root, "hash-object", "experiment_single.py")
        assert wf.workflow_type == ["Training"]

        meta = outputs(ml, row["RID"], "Execution_Metadata")
        config = [n for n in meta if n.startswith("hydra-") and n.endswith("-config.yaml")]
        overrides = [n for n in meta if n.startswith("hydra-") and n.endswith("-overrides.yaml")]
        assert len(config) == 1, sorted(meta)
        assert len(overrides) == 1, sorted(meta)
        assert "configuration.json" in meta
        assert "traceback.txt" not in meta
        assert "metrics.json" not in meta


# -- 2. a 2x3 sweep with one failing child -----------------------------------------------------
def test_sweep_records_one_parent_and_children_in_parameter_order(pytester, tmp_path):
    root = make_project(pytester, {"experiment_grid.py": GRID})
    order = [nodeid.split("[", 1)[1].rstrip("]") for nodeid in collected_ids(pytester)]
    assert len(order) == 6

    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=5, failed=1)

    with catalog(root / ".deriva") as ml:
        assert len(executions(ml)) == 7
        tree = parents_and_children(ml)
        assert len(tree) == 1, tree
        [(parent_rid, links)] = tree.items()
        assert [link["Sequence"] for link in links] == [0, 1, 2, 3, 4, 5]

        parent = ml.lookup_execution(parent_rid)
        assert parent.status.value == "Failed"
        assert parent.status_detail == "5 of 6 completed, 1 failed"
        assert parent.description == "Grid sweep"
        assert DURATION_RE.match(parent.duration_text or ""), parent.duration_text

        children = [ml.lookup_execution(link["Nested_Execution"]) for link in links]
        assert [c.rid for c in parent.list_nested_executions()] == [c.rid for c in children]
        statuses = [c.status.value for c in children]
        assert sorted(statuses) == ["Completed"] * 5 + ["Failed"]
        for seq, child in enumerate(children):
            job, text = job_of(child.description)
            assert (job, text) == (seq, "Grid sweep")
            assert grid_id(ml, child.rid, tmp_path) == order[seq], (seq, child.description, order)
            assert DURATION_RE.match(child.duration_text or ""), child.duration_text
            meta = outputs(ml, child.rid, "Execution_Metadata")
            [config] = [n for n in meta if n.endswith("-config.yaml")]
            b, a = order[seq].split("-")
            assert yaml.safe_load(read_asset(ml, meta[config], tmp_path)) == {"a": int(a), "b": b}
            [overrides] = [n for n in meta if n.endswith("-overrides.yaml")]
            recorded = yaml.safe_load(read_asset(ml, meta[overrides], tmp_path))
            assert sorted(o.replace('"', "") for o in recorded) == [f"a={a}", f"b={b}"], recorded
            assert len(outputs(ml, child.rid, "Execution_Asset")) == 1

        [failed] = [c for c in children if c.status.value == "Failed"]
        assert order[[c.rid for c in children].index(failed.rid)] == "y-2"
        assert "ValueError: boom a=2 b=y" in failed.status_detail
        meta = outputs(ml, failed.rid, "Execution_Metadata")
        assert "traceback.txt" in meta
        assert "boom a=2 b=y" in read_asset(ml, meta["traceback.txt"], tmp_path)
        for c in children:
            if c is not failed:
                assert "traceback.txt" not in outputs(ml, c.rid, "Execution_Metadata")

        lines = [f"sweep {parent_rid}  Grid sweep  Failed: 5 of 6 completed, 1 failed"]
        lines.append("*seq*execution*parameters*status*duration*metrics*outputs")
        lines += [f"*{seq}*{c.rid}*{c.status.value}*" for seq, c in enumerate(children)]
        result.stdout.fnmatch_lines(lines)


def test_collect_only_writes_nothing(pytester):
    root = make_project(pytester, {"experiment_grid.py": GRID})
    result = pytester.runpytest("--deriva-run", "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["6 tests collected*"])
    with catalog_created(root) as ml:
        assert executions(ml) == [], [(r["Status"], r["Description"]) for r in executions(ml)]


def test_a_sweep_planned_in_chunks_is_one_sweep(pytester, monkeypatch):
    """The plan is recorded a few runs at a time (memory flat in a sweep's size): still one parent,
    every child planned under it at its sequence before the first runs."""
    import pytest_deriva.sweep

    monkeypatch.setattr(pytest_deriva.sweep, "_PLAN_CHUNK", 4)  # 6 children: chunks of 4 and 2
    root = make_project(pytester, {"experiment_grid.py": GRID, "conftest.py": HOOKS_CONFTEST})
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)
    created = [line for line in (root / "hooks.log").read_text().splitlines() if line.startswith("created")]
    assert [line.rsplit(" ", 1)[1] for line in created] == ["pending=6"] + [f"pending={n}" for n in range(5, 0, -1)]
    with catalog(root / ".deriva") as ml:
        assert len(executions(ml)) == 7
        [(parent_rid, links)] = parents_and_children(ml).items()
        assert [link["Sequence"] for link in links] == [0, 1, 2, 3, 4, 5]
        assert ml.lookup_execution(parent_rid).status_detail == "5 of 6 completed, 1 failed"
        assert [job_of(ml.lookup_execution(link["Nested_Execution"]).description)[0] for link in links] == list(
            range(6)
        )
    assert not list((root / ".deriva" / "work" / "plans").glob("*.json"))  # the plan's record is closed


# -- 4. -k selecting two children --------------------------------------------------------------
def test_k_selection_keeps_full_order_sequences(pytester, tmp_path):
    root = make_project(pytester, {"experiment_grid.py": GRID})
    order = [nodeid.split("[", 1)[1].rstrip("]") for nodeid in collected_ids(pytester)]
    result = pytester.runpytest("--deriva-run", "-k", "x-2 or z-1")
    result.assert_outcomes(passed=2, deselected=4)

    with catalog(root / ".deriva") as ml:
        assert len(executions(ml)) == 3
        [(parent_rid, links)] = parents_and_children(ml).items()
        expected = sorted([order.index("x-2"), order.index("z-1")])
        assert [link["Sequence"] for link in links] == expected
        for link in links:
            child = ml.lookup_execution(link["Nested_Execution"])
            job, _ = job_of(child.description)
            assert job == link["Sequence"]
            assert grid_id(ml, child.rid, tmp_path) == order[job]
            assert child.status.value == "Completed"
        parent = ml.lookup_execution(parent_rid)
        assert (parent.status.value, parent.status_detail) == ("Completed", "2 of 2 completed")


# -- 5. DerivaML-style functions -----------------------------------------------------------------
DERIVAML_STYLE = '''
import pytest


def experiment_b(lr=0.1, epochs=10, ml_instance=None, execution=None):
    """DerivaML style"""
    assert ml_instance is not None
    assert execution is not None
    execution.asset_file_path("Execution_Asset", "b.txt").write_text(f"lr={lr} epochs={epochs}")
    return {"lr": lr, "epochs": epochs}


@pytest.mark.parametrize("lr", [0.1, 0.2])
def experiment_c(lr=0.1, epochs=10, ml_instance=None, execution=None):
    """Swept DerivaML style"""
    return experiment_b(lr=lr, epochs=epochs, ml_instance=ml_instance, execution=execution)
'''


def test_derivaml_style_function_with_defaults(pytester, tmp_path):
    root = make_project(pytester, {"experiment_style.py": DERIVAML_STYLE})
    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*experiment_style.py::experiment_b*Completed*lr=0.1 epochs=10*1"])

    with catalog(root / ".deriva") as ml:
        rows = executions(ml)
        assert len(rows) == 4
        assert {r["Status"] for r in rows} == {"Completed"}
        [(parent_rid, links)] = parents_and_children(ml).items()
        assert ml.lookup_execution(parent_rid).description == "Swept DerivaML style"
        children = [ml.lookup_execution(link["Nested_Execution"]) for link in links]
        assert [c.description for c in children] == ["[Job 0] Swept DerivaML style", "[Job 1] Swept DerivaML style"]
        for lr, child in zip([0.1, 0.2], children, strict=True):
            out = outputs(ml, child.rid)
            assert read_asset(ml, out["b.txt"], tmp_path) == f"lr={lr} epochs=10"
            assert json.loads(read_asset(ml, out["metrics.json"], tmp_path)) == {"lr": lr, "epochs": 10}

        # The same function is a plain Python function.
        spec = importlib.util.spec_from_file_location("experiment_style_plain", root / "experiment_style.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        workflow = ml.create_workflow("style", "Training", source_path=root / "experiment_style.py")
        exe = ml.create_execution(ExecutionConfiguration(description="by hand"), workflow=workflow)
        with exe:
            assert module.experiment_b(lr=0.5, epochs=2, ml_instance=ml, execution=exe) == {"lr": 0.5, "epochs": 2}
            assert module.experiment_c(lr=0.7, ml_instance=ml, execution=exe) == {"lr": 0.7, "epochs": 10}
        exe.upload_execution_outputs()
        by_hand = ml.lookup_execution(exe.execution_rid)
        assert by_hand.status.value == "Completed"
        assert read_asset(ml, outputs(ml, by_hand.rid)["b.txt"], tmp_path) == "lr=0.7 epochs=10"
        with pytest.raises(AssertionError):
            module.experiment_b(lr=0.5)  # no fixtures outside pytest: the function's own check


# -- 6. dry runs ---------------------------------------------------------------------------------
TWO = '''
import pytest


def experiment_kept(execution):
    """Kept"""
    execution.asset_file_path("Execution_Asset", "kept.txt").write_text("k")


@pytest.mark.deriva(dry_run=True)
def experiment_trial(execution):
    """Trial"""
    execution.asset_file_path("Execution_Asset", "trial.txt").write_text("t")
'''


def test_dry_run_writes_nothing(pytester, state):
    root = make_project(pytester, {"experiment_two.py": TWO, "experiment_grid.py": GRID})
    with catalog_created(root) as ml:
        before = state(ml)
    result = pytester.runpytest("--deriva-run", "--deriva-dry-run")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["deriva: catalog * (embedded store, from default), dry run: nothing is recorded"])
    with catalog(root / ".deriva") as ml:
        assert state(ml) == before
        assert executions(ml) == []


def test_dry_run_without_a_catalog_leaves_nothing_in_the_temporary_folder(pytester, tmp_path, monkeypatch):
    make_project(pytester, {"experiment_two.py": TWO})
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    result = pytester.runpytest_subprocess("--deriva-run", "--deriva-dry-run", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not (pytester.path / ".deriva").exists()  # no catalog made in the project
    assert [p.name for p in temp.iterdir() if p.name.startswith("deriva-dry-run")] == []


def test_dry_run_marker_records_only_the_other_experiment(pytester):
    root = make_project(pytester, {"experiment_two.py": TWO})
    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=2)
    with catalog(root / ".deriva") as ml:
        [row] = executions(ml)
        assert (row["Description"], row["Status"]) == ("Kept", "Completed")
        assert set(outputs(ml, row["RID"], "Execution_Asset")) == {"kept.txt"}
        assert [a.filename for a in ml.list_assets("Execution_Asset")] == ["kept.txt"]


# -- 7. --lf -------------------------------------------------------------------------------------
def test_last_failed_reruns_only_the_failed_child_under_a_new_parent(pytester):
    root = make_project(pytester, {"experiment_grid.py": GRID})
    order = [nodeid.split("[", 1)[1].rstrip("]") for nodeid in collected_ids(pytester)]
    pytester.runpytest("--deriva-run").assert_outcomes(passed=5, failed=1)
    with catalog(root / ".deriva") as ml:
        [(first_parent, first_links)] = parents_and_children(ml).items()
        [failed_rid] = [
            link["Nested_Execution"]
            for link in first_links
            if ml.lookup_execution(link["Nested_Execution"]).status.value == "Failed"
        ]

    (root / "fixed").write_text("")  # untracked: the experiment file stays clean
    result = pytester.runpytest("--deriva-run", "--lf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure"])

    with catalog(root / ".deriva") as ml:
        assert len(executions(ml)) == 9
        tree = parents_and_children(ml)
        assert len(tree) == 2
        assert len(tree[first_parent]) == 6
        [new_parent] = set(tree) - {first_parent}
        [link] = tree[new_parent]
        assert link["Sequence"] == order.index("y-2")
        assert link["Nested_Execution"] not in {row["Nested_Execution"] for row in tree[first_parent]}
        rerun = ml.lookup_execution(link["Nested_Execution"])
        assert rerun.status.value == "Completed"
        assert job_of(rerun.description)[0] == order.index("y-2")
        assert ml.lookup_execution(failed_rid).status.value == "Failed"  # the old record is kept
        assert ml.lookup_execution(first_parent).status_detail == "5 of 6 completed, 1 failed"
        parent = ml.lookup_execution(new_parent)
        assert (parent.status.value, parent.status_detail) == ("Completed", "1 of 1 completed")


# -- 8. outcome mapping --------------------------------------------------------------------------
OUTCOMES = """
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


def experiment_skip(execution):
    pytest.skip("not today")


def experiment_setup_error_first(broken, execution):
    pass


def experiment_setup_error_after(execution, broken):
    pass


def experiment_metrics(execution):
    return {"acc": 0.9, "name": "svm"}


def experiment_untracked():
    return None


def experiment_returns_list(execution):
    return [1, 2]
"""


def test_outcomes_map_to_statuses(pytester):
    root = make_project(pytester, {"experiment_outcomes.py": OUTCOMES})
    result = pytester.runpytest("--deriva-run", "-rA")
    result.assert_outcomes(passed=3, skipped=1, errors=2)
    out = result.stdout.str()
    assert "PytestReturnNotNoneWarning" not in out
    result.stdout.fnmatch_lines_random(
        [
            "*experiment_metrics*Completed*acc=0.9 name=svm*",
            "*PytestDerivaWarning: experiment_untracked takes neither execution nor ml_instance; "
            "it is recorded as an execution anyway.",
            "*PytestDerivaWarning: *experiment_returns_list returned list*",
        ]
    )

    with catalog(root / ".deriva") as ml:
        by_desc = {r["Description"]: r for r in executions(ml)}
        assert len(by_desc) == 6, sorted(by_desc)
        skip = by_desc["experiment_skip"]
        assert skip["Status"] == "Aborted"
        assert "not today" in skip["Status_Detail"]
        for name in ("experiment_setup_error_first", "experiment_setup_error_after"):
            row = by_desc[name]
            assert row["Status"] == "Failed", (name, row["Status_Detail"])
            assert "setup" in row["Status_Detail"].lower(), row["Status_Detail"]
            assert "fixture broke" in row["Status_Detail"], row["Status_Detail"]
        metrics = by_desc["experiment_metrics"]
        assert metrics["Status"] == "Completed"
        meta = outputs(ml, metrics["RID"], "Execution_Metadata")
        assert "metrics.json" in meta
        assert json.loads(read_asset(ml, meta["metrics.json"], root / "tmp")) == {"acc": 0.9, "name": "svm"}
        assert by_desc["experiment_untracked"]["Status"] == "Completed"
        assert by_desc["experiment_returns_list"]["Status"] == "Completed"
        assert "metrics.json" not in outputs(ml, by_desc["experiment_returns_list"]["RID"])


INTERRUPTED = '''
import pytest


@pytest.mark.parametrize("n", [0, 1, 2])
def experiment_stop(n, execution):
    """Stopped sweep"""
    if n == 1:
        raise KeyboardInterrupt
'''


def test_keyboard_interrupt_aborts_the_running_child_and_those_never_run(pytester):
    root = make_project(pytester, {"experiment_stop.py": INTERRUPTED})
    recorder = pytester.inline_run("--deriva-run", no_reraise_ctrlc=True)
    assert recorder.ret == pytest.ExitCode.INTERRUPTED
    with catalog(root / ".deriva") as ml:
        [(parent_rid, links)] = parents_and_children(ml).items()
        # The interrupted child and the one that never ran both end Aborted, each with its reason;
        # nothing failed, so the parent is Aborted too.
        statuses = [ml.lookup_execution(link["Nested_Execution"]) for link in links]
        assert [s.status.value for s in statuses] == ["Completed", "Aborted", "Aborted"]
        assert statuses[2].status_detail.startswith("Not run: the session ended before it ran")
        parent = ml.lookup_execution(parent_rid)
        assert (parent.status.value, parent.status_detail) == ("Aborted", "1 of 3 completed, 2 aborted")


# -- 9. without --deriva-run ---------------------------------------------------------------------
ORDINARY = """
def test_ordinary():
    pass


def experiment_in_test_file(execution):
    raise AssertionError("never collected")
"""


def test_without_deriva_run_pytest_behaves_as_usual(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE, "test_ordinary.py": ORDINARY})
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "deriva:" not in result.stdout.str()
    assert not (root / ".deriva").exists()

    result = pytester.runpytest("experiment_single.py")  # named, but not an experiment run
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        [
            "deriva: experiment_single.py holds experiments; they run (and are recorded) with: "
            "pytest --deriva-run experiment_single.py"
        ]
    )
    assert not (root / ".deriva").exists()

    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*experiment_single.py::experiment_single*"])
    assert "test_ordinary" not in result.stdout.str()
    with catalog(root / ".deriva") as ml:
        assert [r["Description"] for r in executions(ml)] == ["One run"]


def test_file_named_on_command_line_is_collected(pytester):
    root = make_project(pytester, {"my_runs.py": SINGLE})
    pytester.runpytest("--deriva-run").assert_outcomes()
    pytester.runpytest("--deriva-run", "my_runs.py").assert_outcomes(passed=1)
    with catalog(root / ".deriva") as ml:
        assert [r["Status"] for r in executions(ml)] == ["Completed"]


def test_experiment_files_ini_patterns(pytester):
    make_project(
        pytester, {"runs_a.py": SINGLE, "experiment_single.py": SINGLE}, ini="deriva_experiment_files = runs_*.py\n"
    )
    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*runs_a.py::experiment_single*"])


def test_disabling_the_plugin(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    result = pytester.runpytest("-p", "no:deriva", "--deriva-run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --deriva-run*"])
    assert not (root / ".deriva").exists()


# -- 10. catalog selection and the header --------------------------------------------------------
def test_catalog_choice_option_beats_env_beats_ini(pytester, monkeypatch):
    root = make_project(pytester, {"experiment_single.py": SINGLE}, ini="deriva_catalog = from_ini\n")
    monkeypatch.setenv("DERIVA_CATALOG", str(root / "from_env"))

    result = pytester.runpytest("--deriva-run", f"--deriva-catalog={root / 'from_opt'}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"deriva: catalog {root / 'from_opt'} (embedded store, from --deriva-catalog)"])
    assert not (root / "from_env").exists()
    assert not (root / "from_ini").exists()

    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"deriva: catalog {root / 'from_env'} (embedded store, from DERIVA_CATALOG)"])
    assert not (root / "from_ini").exists()

    monkeypatch.delenv("DERIVA_CATALOG")
    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"deriva: catalog {root / 'from_ini'} (embedded store, from ini deriva_catalog)"])
    assert not (root / ".deriva").exists()

    for name in ("from_opt", "from_env", "from_ini"):
        with catalog(root / name) as ml:
            assert [r["Status"] for r in executions(ml)] == ["Completed"], name


def test_catalog_path_that_is_not_a_catalog_is_a_usage_error(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    (root / "afile").write_text("not a catalog")
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine")
    for location in (root / "afile", root / "foreign"):
        result = pytester.runpytest("--deriva-run", f"--deriva-catalog={location}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
        result.stderr.fnmatch_lines([f"ERROR: *{location}*"])
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert (root / "afile").read_text() == "not a catalog"
    assert sorted(p.name for p in (root / "foreign").iterdir()) == ["notes.txt"]
    assert not (root / ".deriva").exists()


def test_unreachable_server_is_a_clear_usage_error(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    url = "https://127.0.0.1:9/ermrest/catalog/1"  # nothing listens on port 9
    result = pytester.runpytest("--deriva-run", f"--deriva-catalog={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert url in text
    assert "Cannot reach the DERIVA server 127.0.0.1:9" in text
    assert "Traceback" not in text
    assert not (root / ".deriva").exists()


# -- markers at module, class and function level; an asset input -----------------------------
MARKERS = """
import pytest

pytestmark = pytest.mark.deriva(workflow_type="Analysis", assets=["{asset}"])


def experiment_module_level(execution):
    \"\"\"From the docstring\"\"\"
    [path] = execution.asset_paths["Execution_Asset"]
    assert path.read_text() == "input data"


@pytest.mark.deriva(description="function level")
def experiment_function_level(execution):
    pass


@pytest.mark.deriva(description="class level")
class ExperimentGroup:
    def experiment_in_class(self, execution):
        pass

    @pytest.mark.deriva(description="method level")
    def experiment_method(self, execution):
        pass
"""


def test_markers_at_module_class_and_function_level(pytester):
    root = make_project(pytester, {"tool.py": "print('tool')\n"})
    with catalog_created(root) as ml:
        workflow = ml.create_workflow("tool", "Ingest", source_path=root / "tool.py")
        with ml.create_execution(ExecutionConfiguration(description="make input"), workflow=workflow) as exe:
            exe.asset_file_path("Execution_Asset", "input.txt").write_text("input data")
        exe.upload_execution_outputs()
        [asset] = ml.list_assets("Execution_Asset")
    make_project(pytester, {"experiment_markers.py": MARKERS.format(asset=asset.rid)})

    pytester.runpytest("--deriva-run").assert_outcomes(passed=4)
    with catalog(root / ".deriva") as ml:
        rows = {r["Description"]: r for r in executions(ml)[1:]}
        assert sorted(rows) == ["From the docstring", "class level", "function level", "method level"]
        assert {r["Status"] for r in rows.values()} == {"Completed"}

        for desc in rows:
            assert ml.lookup_workflow(rows[desc]["Workflow"]).workflow_type == ["Analysis"], desc
            inputs = ml.lookup_execution(rows[desc]["RID"]).list_assets("Input")
            assert [a.rid for a in inputs] == [asset.rid], desc


TWO_TYPES = """
import pytest


@pytest.mark.deriva(workflow_type="Analysis")
def experiment_analysis(execution):
    pass


@pytest.mark.deriva(workflow_type="Testing")
def experiment_testing(execution):
    pass
"""


def test_workflow_type_of_each_experiment_is_recorded_or_refused(pytester):
    """Two experiments of one file with different workflow types: both types must reach the
    catalog (or the conflict must be a collection error), never be silently dropped."""
    root = make_project(pytester, {"experiment_types.py": TWO_TYPES})
    result = pytester.runpytest("--deriva-run")
    if result.ret == pytest.ExitCode.INTERRUPTED:  # refused at collection: fine, if it says why
        result.stdout.fnmatch_lines(["*workflow_type*"])
        assert_nothing_recorded(root)
        return
    result.assert_outcomes(passed=2)
    expected = {"experiment_analysis": "Analysis", "experiment_testing": "Testing"}
    with catalog(root / ".deriva") as ml:
        rows = executions(ml)
        assert sorted(row["Description"] for row in rows) == sorted(expected)  # the loop below checks each
        for row in rows:
            types = ml.lookup_workflow(row["Workflow"]).workflow_type
            assert expected[row["Description"]] in types, (row["Description"], types)


# -- 11. bad input at collection -----------------------------------------------------------------
GOOD_SIBLING = {"experiment_good.py": SINGLE}


def run_bad(pytester, source, *args, extra=GOOD_SIBLING):
    root = make_project(pytester, {"experiment_bad.py": source, **extra})
    result = pytester.runpytest("--deriva-run", *args)
    return root, result


def assert_nothing_recorded(root):
    if (root / ".deriva").exists():
        with catalog(root / ".deriva") as ml:
            assert executions(ml) == [], [(r["Description"], r["Status"]) for r in executions(ml)]


def test_unknown_marker_keyword_is_a_collection_error(pytester):
    source = """
    import pytest

    @pytest.mark.deriva(descrption="x")
    def experiment_typo(execution):
        pass
    """
    root, result = run_bad(pytester, source, extra={})
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*ERROR collecting experiment_bad.py*", "*unknown @pytest.mark.deriva keyword 'descrption'*"]
    )
    assert_nothing_recorded(root)


def test_bad_input_in_one_file_records_nothing_for_the_others(pytester):
    source = """
    import pytest

    @pytest.mark.deriva(descrption="x")
    def experiment_typo(execution):
        pass
    """
    root, result = run_bad(pytester, source)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])
    assert_nothing_recorded(root)


def test_unknown_workflow_type_suggests_close_matches(pytester):
    source = """
    import pytest

    pytestmark = pytest.mark.deriva(workflow_type="Trainig")

    def experiment_x(execution):
        pass
    """
    root, result = run_bad(pytester, source, extra={})
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*experiment_bad.py::experiment_x*'Trainig'*did you mean 'Training'*"])
    assert_nothing_recorded(root)


@pytest.mark.parametrize("keyword", ["datasets", "assets"])
def test_missing_dataset_or_asset_rid_is_a_collection_error(pytester, keyword):
    source = f"""
    import pytest

    class ExperimentGroup:
        pytestmark = pytest.mark.deriva({keyword}=["1-ZZZZ"])

        def experiment_x(self, execution):
            pass
    """
    root, result = run_bad(pytester, source, extra={})
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", "*experiment_x*1-ZZZZ*"])
    assert "Traceback" not in result.stdout.str()
    assert_nothing_recorded(root)


def test_dirty_experiment_file(pytester, tmp_path):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    with (root / "experiment_single.py").open("a") as f:
        f.write("\n# an uncommitted change\n")

    result = pytester.runpytest("--deriva-run")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*experiment_single.py*"])
    assert "allow-dirty" in result.stdout.str() or "allow_dirty" in result.stdout.str()
    assert_nothing_recorded(root)

    result = pytester.runpytest("--deriva-run", "--deriva-allow-dirty")
    result.assert_outcomes(passed=1)
    with catalog(root / ".deriva") as ml:
        [row] = executions(ml)
        assert row["Status"] == "Completed"
        meta = outputs(ml, row["RID"], "Execution_Metadata")
        [patch] = [n for n in meta if n.startswith("workflow-diff-") and n.endswith(".patch")]
        assert "an uncommitted change" in read_asset(ml, meta[patch], tmp_path)


# -- 12. hooks -----------------------------------------------------------------------------------
def test_user_hooks_are_called(pytester):
    root = make_project(pytester, {"experiment_grid.py": GRID, "conftest.py": HOOKS_CONFTEST})
    pytester.runpytest("--deriva-run").assert_outcomes(passed=5, failed=1)
    lines = (root / "hooks.log").read_text().splitlines()
    created = [line for line in lines if line.startswith("created ")]
    finished = [line for line in lines if line.startswith("finished ")]
    sweeps = [line for line in lines if line.startswith("sweep ")]
    assert len(created) == len(finished) == 6
    assert created[0].endswith("Pending pending=6"), created[0]  # the whole plan exists before the first run
    assert sum(" Failed failed" in line for line in finished) == 1
    assert sum(" Completed passed" in line for line in finished) == 5
    with catalog(root / ".deriva") as ml:
        [parent_rid] = parents_and_children(ml)
    assert sweeps == [f"sweep {parent_rid} Failed 5 of 6 completed, 1 failed children=6"]


ML_CONFTEST = """
from pytest_deriva import DerivaML


class ConftestML(DerivaML):
    pass


def pytest_deriva_ml_instance(config, catalog):
    return ConftestML(catalog)
"""

CHECK_ML = """
def experiment_which(ml_instance, execution):
    assert type(ml_instance).__name__ == "{name}", type(ml_instance)
    assert execution.catalog is ml_instance
"""


def test_ml_instance_hook_supplies_the_handle(pytester):
    root = make_project(
        pytester, {"experiment_which.py": CHECK_ML.format(name="ConftestML"), "conftest.py": ML_CONFTEST}
    )
    pytester.runpytest("--deriva-run").assert_outcomes(passed=1)
    with catalog(root / ".deriva") as ml:
        assert [r["Status"] for r in executions(ml)] == ["Completed"]


# -- 13. --deriva-ml-class -----------------------------------------------------------------------
MYML = """
from pytest_deriva import DerivaML


class MyML(DerivaML):
    pass


class NotML:
    pass
"""


def test_ml_class_option(pytester):
    root = make_project(pytester, {"experiment_which.py": CHECK_ML.format(name="MyML"), "mymlmod.py": MYML})
    pytester.syspathinsert()
    pytester.runpytest("--deriva-run", "--deriva-ml-class=mymlmod:MyML").assert_outcomes(passed=1)
    with catalog(root / ".deriva") as ml:
        assert [r["Status"] for r in executions(ml)] == ["Completed"]

    for bad in ("nosuchmod:MyML", "mymlmod:Missing", "mymlmod:NotML", "mymlmod"):
        result = pytester.runpytest("--deriva-run", f"--deriva-ml-class={bad}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, bad
        result.stderr.fnmatch_lines([f"ERROR: --deriva-ml-class '{bad}'*"])
        assert "Traceback" not in result.stderr.str()


def test_ml_class_ini(pytester):
    make_project(
        pytester,
        {"experiment_which.py": CHECK_ML.format(name="MyML"), "mymlmod.py": MYML},
        ini="deriva_ml_class = mymlmod:MyML\n",
    )
    pytester.syspathinsert()
    pytester.runpytest("--deriva-run").assert_outcomes(passed=1)


# -- 14. upload failure --------------------------------------------------------------------------
UPLOAD = """
def experiment_upload(execution):
    path = execution.asset_file_path("Execution_Asset", "gone.txt")
    path.write_text("soon gone")
    path.unlink()
"""


def test_a_registered_file_never_written_aborts_the_run_and_the_others_upload(pytester):
    root = make_project(pytester, {"experiment_upload.py": UPLOAD})
    result = pytester.runpytest("--deriva-run")
    result.assert_outcomes(passed=1)
    with catalog(root / ".deriva") as ml:
        [row] = executions(ml)
        assert row["Status"] == "Aborted"
        assert "Registered but never written: Execution_Asset/gone.txt" in row["Status_Detail"]
        assert "gone.txt" not in outputs(ml, row["RID"])
        assert "configuration.json" in outputs(ml, row["RID"])


def test_execution_fixture_outside_an_experiment_fails_clearly(pytester):
    make_project(pytester, {"test_uses_it.py": "def test_x(execution):\n    pass\n"})
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*records experiment_* functions under `pytest --deriva-run`*"])


STOPS_EARLY = """
import pytest


@pytest.mark.parametrize("i", [0, 1, 2])
def experiment_stops(i, execution):
    assert i != 1, "child 1 fails"
"""


def test_stopping_early_aborts_the_children_never_run_and_the_summary_lists_them(pytester):
    root = make_project(pytester, {"experiment_stops.py": STOPS_EARLY})
    result = pytester.runpytest("--deriva-run", "-x", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    with catalog(root / ".deriva") as ml:
        [(parent_rid, links)] = parents_and_children(ml).items()
        never = ml.lookup_execution(links[2]["Nested_Execution"])
        assert never.status.value == "Aborted"
        assert never.status_detail.startswith("Not run: the session ended before it ran")
        assert ml.lookup_execution(parent_rid).status_detail == "1 of 3 completed, 1 failed, 1 aborted"
    # Every child is in the summary with its status, the one never run too.
    result.stdout.fnmatch_lines(
        [
            f"sweep {parent_rid}  *Failed: 1 of 3 completed, 1 failed, 1 aborted",
            "*seq*execution*status*",
            "*0*Completed*",
            "*1*Failed*",
            f"*2*{never.execution_rid}*Aborted: Not run: the session ended before it ran*",
        ]
    )


SUMMARY = '''
import time

import pytest


@pytest.mark.deriva(description="Marker description")
def experiment_slow(execution):
    time.sleep(1.3)
    return {"acc": 0.5}


@pytest.mark.parametrize("lr", [0.1, 0.2])
def experiment_lr(lr, execution):
    """Rate sweep"""
    if lr == 0.2:
        raise ValueError("diverged at " + "step " * 30)
    return lr
'''


@pytest.mark.parametrize("dry", [False, True])
def test_summary_reads_as_people_read_it(pytester, dry):
    """Durations as people read them, the reason of a failed run, the marker's description, a
    header for single runs, and a sweep grouped also in a dry run (where nothing has a RID)."""
    make_project(pytester, {"experiment_summary.py": SUMMARY})
    result = pytester.runpytest("--deriva-run", "-p", "no:randomly", *(["--deriva-dry-run"] if dry else []))
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    rid = r"-" if dry else r"1-\w+"
    sweep = r"sweep experiment_summary.py::experiment_lr \(dry run\)" if dry else r"sweep 1-\w+"
    assert re.search(rf"^{sweep}  Rate sweep(  Failed: 1 of 2 completed, 1 failed)?$", out, re.M), out
    assert re.search(rf"^  0 +{rid} +lr=0.1 +Completed +(<0.01|0\.\d\d) s +value=0.1 +0$", out, re.M), out
    # The reason, cut to a table's width (the record keeps all of it).
    assert re.search(rf"^  1 +{rid} +lr=0.2 +Failed: ValueError: diverged at (step )+st?e?\.\.\.  ", out, re.M)
    assert re.search(
        rf"^  {rid} +experiment_summary.py::experiment_slow +Marker description +Completed +1\.\d s +acc=0.5 +0$",
        out,
        re.M,
    ), out
    assert "runs" in out.splitlines()


def test_the_plugin_is_imported_without_assertion_rewriting(pytester):
    """pytest would rewrite the asserts of every module of the plugin and cache them in bytecode of
    its own: where none can be written, each run would compile them again."""
    make_project(
        pytester,
        {
            "experiment_loaders.py": """
                import sys


                def experiment_loaders(execution):
                    modules = list(sys.modules.items())
                    loaders = {name: type(getattr(m, "__loader__", None)).__name__ for name, m in modules}
                    rewritten = sorted(
                        name for name, loader in loaders.items()
                        if name.startswith("pytest_deriva") and loader == "AssertionRewritingHook"
                    )
                    # The package and what it imports first are read before the mark is taken off.
                    assert rewritten == ["pytest_deriva", "pytest_deriva._lazy"], rewritten
                    assert "pytest_deriva.sweep" in sys.modules
            """
        },
    )
    result = pytester.runpytest_subprocess("--deriva-run", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
