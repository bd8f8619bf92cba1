"""Several processes recording into one embedded catalog at once lose nothing."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from pytest_deriva import DerivaML

RECORDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_deriva import DerivaML, ExecutionConfiguration

    project, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # imports done: open the catalog and record, all at once
    ml = DerivaML(project / ".deriva")
    wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
    rids = []
    for i in range(count):
        desc = f"{tag}-{i}"
        with ml.create_execution(ExecutionConfiguration(workflow=wf, description=desc)) as exe:
            exe.asset_file_path("Execution_Asset", f"{desc}.bin").write_bytes(f"content of {desc}".encode())
        exe.upload_execution_outputs()
        rids.append(exe.execution_rid)
    print(" ".join(rids), flush=True)
    """
)


def run_together(project: Path, count: int, tags: list[str]) -> dict[str, list[str]]:
    """Start one recorder per tag, release them at once; the RIDs each reports, by tag."""
    procs = {
        tag: subprocess.Popen(
            [sys.executable, "-c", RECORDER, str(project), tag, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    }
    try:
        for tag, p in procs.items():
            line = p.stdout.readline()
            if line.strip() != "ready":
                _, err = p.communicate(timeout=60)
                raise AssertionError(f"recorder {tag} failed to start (exit {p.returncode}):\n{err}")
        for p in procs.values():
            p.stdin.write("go\n")
            p.stdin.flush()
        results = {}
        for tag, p in procs.items():
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, (tag, err)
            results[tag] = out.split()
        return results
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def check_recorded(ml: DerivaML, results: dict[str, list[str]], descriptions: dict[str, list[str]]) -> None:
    """Every process's executions are there, completed, each with its one output file; nothing else."""
    expected = {d for ds in descriptions.values() for d in ds}
    executions = ml.catalog.select("deriva-ml", "Execution")
    assert len(executions) == len(expected)
    assert {r["Description"] for r in executions} == expected
    assert {r["Status"] for r in executions} == {"Completed"}
    assert all(re.match(r"^\d+\.0H \d+\.0min \d+(\.\d+)?sec$", r["Duration"]) for r in executions)
    rids = [r["RID"] for r in executions]
    assert len(set(rids)) == len(rids)
    assert sorted(rid for tag_rids in results.values() for rid in tag_rids) == sorted(rids)
    by_rid = {r["RID"]: r["Description"] for r in executions}
    for tag, tag_rids in results.items():
        assert [by_rid[r] for r in tag_rids] == descriptions[tag]

    assets = {a.filename: a for a in ml.list_assets("Execution_Asset")}
    assert set(assets) == {f"{d}.bin" for d in expected}
    for d in expected:
        assert assets[f"{d}.bin"].md5 == hashlib.md5(f"content of {d}".encode()).hexdigest()
    links = ml.catalog.select("deriva-ml", "Execution_Asset_Execution")
    assert len(links) == len(expected)
    file_of = {a.rid: name for name, a in assets.items()}
    for link in links:
        assert link["Asset_Role"] == "Output"
        assert file_of[link["Execution_Asset"]] == f"{by_rid[link['Execution']]}.bin"
    # one workflow for everyone: deduplicated across processes
    assert len(ml.catalog.select("deriva-ml", "Workflow")) == 1
    all_rids = [r["RID"] for t in ml.model.tables() for r in ml.catalog.select(t.schema.name, t.name, columns=["RID"])]
    assert len(all_rids) == len(set(all_rids))


def test_two_processes_record_into_one_catalog_and_lose_nothing(project, ml):
    results = run_together(project, 25, ["p0", "p1"])
    check_recorded(ml, results, {tag: [f"{tag}-{i}" for i in range(25)] for tag in ("p0", "p1")})


OPENER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_deriva import DerivaML, ExecutionConfiguration

    project, tag = Path(sys.argv[1]), sys.argv[2]
    print("ready", flush=True)
    for line in sys.stdin:  # one round per line: the new catalog folder to open, at once with the others
        try:
            ml = DerivaML(Path(line.strip()))
            wf = ml.create_workflow("train", "Training", source_path=project / "train.py")
            with ml.create_execution(ExecutionConfiguration(workflow=wf, description=tag)) as exe:
                exe.asset_file_path("Execution_Asset", f"{tag}.bin").write_bytes(f"content of {tag}".encode())
            exe.upload_execution_outputs()
            ml.catalog.close()
            print("ok", exe.execution_rid, flush=True)
        except Exception as e:
            print("error", type(e).__name__, str(e).replace("\\n", " "), flush=True)
    """
)


def test_two_processes_create_a_new_catalog_at_once(project, tmp_path):
    procs = {
        tag: subprocess.Popen(
            [sys.executable, "-c", OPENER, str(project), tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    }
    answers: dict[Path, dict[str, str]] = {}
    try:
        for p in procs.values():
            assert p.stdout.readline().strip() == "ready", p.communicate(timeout=60)[1]
        for k in range(5):  # several rounds: the race is between opening and creating
            catalog = tmp_path / f"new-catalog-{k}"
            for p in procs.values():
                p.stdin.write(f"{catalog}\n")
                p.stdin.flush()
            answers[catalog] = {tag: p.stdout.readline().strip() for tag, p in procs.items()}
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait(timeout=60)

    failures = {str(c): a for c, a in answers.items() if any(not v.startswith("ok ") for v in a.values())}
    assert not failures, failures
    for catalog, by_tag in answers.items():
        ml = DerivaML(catalog)
        try:
            check_recorded(ml, {tag: [v.split()[1]] for tag, v in by_tag.items()}, {"a": ["a"], "b": ["b"]})
        finally:
            ml.catalog.close()
