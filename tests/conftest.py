"""Shared fixtures: a real git project in tmp_path with an embedded catalog inside it.

Nothing here mocks the catalog: every test talks to a real SQLite catalog and object store in
``<project>/.deriva`` and to a real git repository made with the ``git`` executable.
"""

from __future__ import annotations

import os
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


# -- the DERIVA server leg ------------------------------------------------------------------------
# Server tests run against the real ERMrest + Hatrac of ../shared/deriva-server when its env file
# has been sourced (DERIVA_TEST_URL set); otherwise they skip with one line saying so. Each test
# session works in a fresh catalog of its own, deleted when the session ends.

SERVER_SKIP = "no DERIVA server: source the deriva-server kit's env file (sets DERIVA_TEST_URL) to run the server leg"


class ServerKit:
    """The local test server: its host URL and the admin's and a plain user's credential files."""

    def __init__(self) -> None:
        self.url = os.environ["DERIVA_TEST_URL"].rstrip("/")
        self.host = self.url.split("://", 1)[1]
        self.credential = os.environ["DERIVA_TEST_CREDENTIAL_FILE"]
        self.plain_credential = os.environ.get("DERIVA_TEST_PLAIN_CREDENTIAL_FILE", "")
        self.plain_user = os.environ.get("DERIVA_TEST_PLAIN_USER", "tester")

    def new_catalog(self, init: bool = True) -> str:
        """A new catalog (set up for DerivaML unless ``init`` is False); its URL."""
        from pytest_deriva.catalog.server import ServerCatalog, create_catalog
        from pytest_deriva.catalog.setup import init_catalog

        url = create_catalog(self.url, credential=self.credential)
        if init:
            cat = ServerCatalog(url, credential=self.credential)
            init_catalog(cat)
            cat.close()
        return url

    def delete_catalog(self, url: str) -> None:
        from pytest_deriva.catalog.server import ServerCatalog

        ServerCatalog(url, credential=self.credential).delete_catalog()


@pytest.fixture(scope="session")
def deriva_server() -> ServerKit:
    """The local DERIVA server, or a skip when none is configured."""
    if not os.environ.get("DERIVA_TEST_URL") or not os.environ.get("DERIVA_TEST_CREDENTIAL_FILE"):
        pytest.skip(SERVER_SKIP)
    return ServerKit()


@pytest.fixture(scope="session")
def server_catalog_url(deriva_server: ServerKit) -> Iterator[str]:
    """A catalog of this test session's own on the server, set up for DerivaML, deleted afterwards."""
    url = deriva_server.new_catalog()
    yield url
    deriva_server.delete_catalog(url)


@pytest.fixture
def server_login(deriva_server: ServerKit, monkeypatch: pytest.MonkeyPatch) -> ServerKit:
    """The admin's credential where every client of this test finds it (DERIVA_CREDENTIAL_FILE)."""
    monkeypatch.setenv("DERIVA_CREDENTIAL_FILE", deriva_server.credential)
    return deriva_server


@pytest.fixture(params=["embedded", "server"])
def catalog_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's catalog is: an embedded folder, and the session's server catalog."""
    if request.param == "embedded":
        return str(tmp_path / "catalog")
    request.getfixturevalue("server_login")
    return str(request.getfixturevalue("server_catalog_url"))


@pytest.fixture
def any_ml(catalog_location: str, project: Path) -> Iterator[DerivaML]:
    """A DerivaML handle on the embedded store and on the server (parametrized), files in the project."""
    handle = DerivaML(catalog_location, working_dir=project / ".work")
    yield handle
    handle.catalog.close()
