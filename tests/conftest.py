"""Shared fixtures: a real git project in tmp_path with an embedded catalog inside it.

Nothing here mocks the catalog: every test talks to a real SQLite catalog and object store in
``<project>/.deriva`` and to a real git repository made with the ``git`` executable.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_deriva import DerivaML, Workflow

pytest_plugins = ["pytester"]

REMOTE = "https://example.org/org/proj.git"
REMOTE_URL = "https://example.org/org/proj"
TRAIN_PY = "import sys\n\n\ndef main():\n    print('training')\n\n\nif __name__ == '__main__':\n    main()\n"

_LEAKY_ENV = (
    "DERIVA_ML_ALLOW_DIRTY",
    "DERIVA_ML_DRY_RUN",
    "DERIVA_ML_WORKFLOW_URL",
    "DERIVA_ML_WORKFLOW_CHECKSUM",
    "DERIVA_ML_NOTEBOOK_PATH",
    "DERIVA_ML_SAVE_EXECUTION_RID",
    "DERIVA_ML_HYDRA_OVERRIDES",
    "DERIVA_MCP_IN_DOCKER",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
)


@pytest.fixture(autouse=True)
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolate git and pytest-deriva from the developer's configuration and environment."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.org")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.org")
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)


def run_git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its stdout, stripped."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(repo, *args)``: run git in a repository and return its stripped stdout."""
    return run_git


def make_project(root: Path, remote: str | None = REMOTE) -> Path:
    """A git repository at ``root`` with a committed ``train.py`` (and an ``origin`` remote)."""
    root.mkdir(parents=True, exist_ok=True)
    run_git(root, "init", "-q", "-b", "main")
    if remote:
        run_git(root, "remote", "add", "origin", remote)
    (root / "train.py").write_text(TRAIN_PY)
    (root / "README.md").write_text("# proj\n")
    run_git(root, "add", "train.py", "README.md")
    run_git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tmp git repo (origin https://example.org/org/proj.git) with a committed train.py."""
    return make_project(tmp_path / "proj")


@pytest.fixture
def ml(project: Path) -> Iterator[DerivaML]:
    """The embedded catalog inside the project."""
    handle = DerivaML(project / ".deriva")
    yield handle
    handle.catalog.close()


@pytest.fixture
def workflow(ml: DerivaML, project: Path) -> Workflow:
    return ml.create_workflow("train", "Training", source_path=project / "train.py")


def catalog_state(ml: DerivaML) -> dict[str, Any]:
    """Everything a write could change: row counts of every table, the stored objects, the snapshot."""
    model = ml.catalog.refresh_model()
    counts = {t.qualified_name: len(ml.catalog.select(t.schema.name, t.name, columns=["RID"])) for t in model.tables()}
    objects_dir = Path(ml.catalog.path) / "objects"  # type: ignore[attr-defined]
    objects = sorted(str(p.relative_to(objects_dir)) for p in objects_dir.rglob("*")) if objects_dir.exists() else []
    return {"counts": counts, "objects": objects, "snapshot": ml.catalog.snapshot()}


@pytest.fixture
def state() -> Callable[[DerivaML], dict[str, Any]]:
    """``state(ml)``: row counts of all tables, stored object files and the catalog snapshot id."""
    return catalog_state


def rows(
    ml: DerivaML, table: str, where: dict[str, Any] | None = None, schema: str = "deriva-ml"
) -> list[dict[str, Any]]:
    return ml.catalog.select(schema, table, where)


@pytest.fixture
def select() -> Callable[..., list[dict[str, Any]]]:
    """``select(ml, table, where=None, schema="deriva-ml")``: rows read back from the catalog."""
    return rows


def subject_image_schema(ml: Any) -> None:
    """Diagnosis vocabulary, Subject (typed columns, FK to it), Image asset table (FK to Subject),
    both dataset element types: the domain the dataset and bag tests share."""
    from pytest_deriva.catalog.schema import column

    ml.create_vocabulary("Diagnosis")
    for term in ("Healthy", "Sick"):
        ml.add_term("Diagnosis", term, f"{term} subject")
    ml.create_table(
        "Subject",
        [column("Name", "text", nullok=False), column("Age", "int4"), column("Diagnosis", "text")],
        fkeys=[(["Diagnosis"], ml.default_schema, "Diagnosis", ["Name"])],
    )
    ml.create_asset("Image", referenced_tables=["Subject"])
    for t in ("Subject", "Image"):
        ml.add_dataset_element_type(t)
