"""Helpers for the end-to-end tests of the pytest plugin (tests/test_plugin*.py).

Each test writes experiment files into ``pytester.path``, commits them in a real git repository,
runs pytest on them and reads the embedded catalog back with the public API.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_deriva import DerivaML

DURATION_RE = re.compile(r"^\d+\.0H \d+\.0min \d+(\.\d+)?sec$")
JOB_RE = re.compile(r"^\[Job (\d+)\] (.*)$")

# A 2x3 sweep (stacked parametrize) whose child a=2, b="y" fails, unless a file "fixed" exists.
GRID = '''
import os

import pytest


@pytest.mark.parametrize("a", [1, 2])
@pytest.mark.parametrize("b", ["x", "y", "z"])
def experiment_grid(a, b, ml_instance, execution):
    """Grid sweep"""
    execution.asset_file_path("Execution_Asset", f"out-{a}{b}.txt").write_text(f"{a}{b}")
    if (a, b) == (2, "y") and not os.path.exists("fixed"):
        raise ValueError(f"boom a={a} b={b}")
'''

# Hook implementations that append one line per call to hooks.log next to the conftest.
HOOKS_CONFTEST = """
import os

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hooks.log")


def _log(line):
    with open(LOG, "a") as f:
        f.write(line + "\\n")


def pytest_deriva_execution_created(item, execution):
    pending = len(execution.catalog.find_executions(status="Pending"))
    _log(f"created {item.name} {execution.execution_rid} {execution.status.value} pending={pending}")


def pytest_deriva_execution_finished(item, execution, report):
    outcome = report.outcome if report is not None else None
    _log(f"finished {item.name} {execution.execution_rid} {execution.status.value} {outcome}")


def pytest_deriva_sweep_finished(config, result):
    _log(f"sweep {result.parent_rid} {result.status.value} {result.detail} children={len(result.children)}")
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path) -> None:
    """Commit everything in ``repo`` (made a git repository on first use)."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "x")


def make_project(pytester: pytest.Pytester, files: Mapping[str, str], ini: str = "") -> Path:
    """Write ``files`` (dedented) and a pytest.ini into ``pytester.path`` and commit them."""
    (pytester.path / "pytest.ini").write_text("[pytest]\n" + textwrap.dedent(ini))
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    commit(pytester.path)
    return pytester.path


@contextmanager
def catalog(path: Path) -> Iterator[DerivaML]:
    """The embedded catalog at ``path`` (which must already exist), closed afterwards."""
    assert path.is_dir(), f"no catalog at {path}"
    ml = DerivaML(path)
    try:
        yield ml
    finally:
        ml.catalog.close()


def catalog_created(root: Path) -> Any:
    """Create the default catalog ``<root>/.deriva`` now; the context manager of :func:`catalog`."""
    DerivaML(root / ".deriva").catalog.close()
    return catalog(root / ".deriva")


def executions(ml: DerivaML) -> list[dict[str, Any]]:
    return ml.catalog.select("deriva-ml", "Execution", order_by=["RCT"])


def nesting(ml: DerivaML) -> list[dict[str, Any]]:
    return ml.catalog.select("deriva-ml", "Execution_Execution")


def parents_and_children(ml: DerivaML) -> dict[str, list[dict[str, Any]]]:
    """Parent RID -> its Execution_Execution rows, sorted by Sequence."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in nesting(ml):
        out.setdefault(row["Execution"], []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: r["Sequence"])
    return out


def outputs(ml: DerivaML, rid: str, table: str | None = None) -> dict[str, Any]:
    """File name -> Asset of the outputs of execution ``rid`` (of one asset table, if given)."""
    return {
        a.filename: a for a in ml.lookup_execution(rid).list_assets("Output") if table is None or a.asset_table == table
    }


def read_asset(ml: DerivaML, asset: Any, tmp: Path) -> str:
    return ml.catalog.objects.get(asset.url, tmp / asset.asset_rid / str(asset.filename)).read_text()


def collected_ids(pytester: pytest.Pytester, *args: str) -> list[str]:
    """Node ids as ``pytest --deriva-run --collect-only -q`` lists them (into a throwaway catalog)."""
    throwaway = pytester.path.parent / f"{pytester.path.name}-collect-catalog"
    result = pytester.runpytest("--deriva-run", "--collect-only", "-q", f"--deriva-catalog={throwaway}", *args)
    return [line for line in result.outlines if "::" in line]


def job_of(description: str) -> tuple[int, str]:
    """``[Job N] text`` -> (N, text): exactly the form catalog-model.md gives children."""
    m = JOB_RE.fullmatch(description)
    assert m, f"not a child description: {description!r}"
    return int(m.group(1)), m.group(2)


def grid_id(ml: DerivaML, rid: str, tmp: Path) -> str:
    """``x-1``: the pytest id of a GRID child, from the parameters recorded in its config.yaml."""
    meta = outputs(ml, rid, "Execution_Metadata")
    [name] = [n for n in meta if n.endswith("-config.yaml")]
    values = yaml.safe_load(read_asset(ml, meta[name], tmp / "grid"))
    return f"{values['b']}-{values['a']}"
