"""The pytest plugin (entry point ``deriva``): options, the marker, the fixtures.

With ``--deriva-run`` it registers a :class:`~pytest_deriva.session.DerivaSession`, which holds
the session's state and the hooks that record runs (collection in :mod:`pytest_deriva.collect`,
run plans and sweeps in :mod:`pytest_deriva.sweep`, a run's end in
:mod:`pytest_deriva.execution.outcome`). Without it only the options, the marker and the
fixtures exist, and pytest behaves as if the plugin were absent; nothing heavy is imported.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_deriva.session import (
    DEFAULT_EXPERIMENT_FILES,
    EXPERIMENT_KEY,
    SESSION_KEY,
    DerivaSession,
    PytestDerivaWarning,
    XdistHooks,
    make_ml_instance,
)

if TYPE_CHECKING:
    from pytest_deriva.execution import Execution
    from pytest_deriva.ml import DerivaML

__all__ = ["PytestDerivaWarning"]


# -- always present: options, marker, hooks, fixtures -------------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_deriva import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deriva", "pytest-deriva: experiments as tracked executions in a DERIVA catalog")
    group.addoption(
        "--deriva-run",
        action="store_true",
        default=False,
        help="Collect experiment_* functions from experiment files and record each as an execution "
        "(ordinary tests are not run).",
    )
    group.addoption(
        "--deriva-catalog",
        default=None,
        metavar="LOCATION",
        help="Catalog to record in: a folder for the embedded store or https://host/ermrest/catalog/N "
        "(env DERIVA_CATALOG, ini deriva_catalog; default .deriva at the rootdir).",
    )
    group.addoption("--deriva-dry-run", action="store_true", default=False, help="Run experiments but record nothing.")
    group.addoption(
        "--deriva-allow-dirty",
        action="store_true",
        default=False,
        help="Run experiment files with uncommitted changes; their diff is recorded with each execution.",
    )
    group.addoption(
        "--deriva-sweep",
        nargs="+",
        action="extend",
        default=[],
        metavar="OVERRIDE",
        help="Sweep the experiments that take these parameters over these values, in Hydra's override grammar "
        "(e.g. --deriva-sweep 'lr=0.1,0.01' 'epochs=5,10' or '+multirun=<name>'); others run as they are. "
        "Put paths before it.",
    )
    group.addoption(
        "--deriva-resume",
        nargs="?",
        const="last",
        default=None,
        metavar="PARENT_RID|last",
        help="Run again only the children of a recorded sweep that did not complete (default: the last "
        "sweep), in the same parent. Put paths before it.",
    )
    group.addoption(
        "--deriva-allow-changed",
        action="store_true",
        default=False,
        help="With --deriva-resume: resume a sweep although its experiment file changed since it ran.",
    )
    group.addoption(
        "--deriva-skip-completed",
        action="store_true",
        default=False,
        help="Do not run an experiment again that this catalog completed with the same code (its file at the "
        "same checksum), parameters and input versions; show that run's RID and metrics instead.",
    )
    group.addoption(
        "--deriva-reproduce",
        default=None,
        metavar="RID",
        help="Run only the experiment run that recorded execution RID, with its parameters, as a new execution "
        "naming it (what `pytest-deriva reproduce RID` runs, in a worktree at the recorded commit).",
    )
    group.addoption(
        "--deriva-credential",
        default=None,
        metavar="FILE",
        help="Credential file (deriva format) for a DERIVA server (env DERIVA_CREDENTIAL_FILE; default: the "
        "deriva package's ~/.deriva/credential.json).",
    )
    group.addoption(
        "--deriva-push",
        default=None,
        metavar="URL",
        help="At the end, copy the session's runs from the embedded store to this server catalog "
        "(https://host/ermrest/catalog/N), as 'pytest-deriva push URL' does.",
    )
    group.addoption(
        "--deriva-verbose",
        action="store_true",
        default=False,
        help="Show the catalog's network requests per execution and in all in the summary.",
    )
    group.addoption(
        "--deriva-ml-class",
        default=None,
        metavar="MODULE:CLASS",
        help="DerivaML subclass for the ml_instance fixture (ini deriva_ml_class).",
    )
    parser.addini("deriva_catalog", "Catalog to record in (see --deriva-catalog).", default=None)
    parser.addini(
        "deriva_experiment_files",
        "Glob patterns of experiment files.",
        type="args",
        default=DEFAULT_EXPERIMENT_FILES,
    )
    parser.addini("deriva_ml_class", "DerivaML subclass for ml_instance, as module:Class.", default=None)
    parser.addini(
        "deriva_config_package",
        "hydra-zen config package (e.g. configs) for @pytest.mark.deriva(config=...) and +multirun= names.",
        default=None,
    )
    parser.addini(
        "deriva_secret_names",
        "More parameter names whose values are secret, never recorded (comma-separated; env DERIVA_SECRET_NAMES).",
        default="",
    )
    parser.addini(
        "deriva_not_secret",
        "Parameter names that are not secret although they look it (comma-separated; env DERIVA_NOT_SECRET).",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deriva(datasets=[...], assets=[...], workflow_type='Training', description='...', dry_run=False, "
        "config='<hydra-zen config name>'): "
        "how pytest-deriva records this experiment.",
    )
    if config.getoption("deriva_run"):
        session = DerivaSession(config)
        config.stash[SESSION_KEY] = session
        config.pluginmanager.register(session, "deriva-session")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(session), "deriva-xdist")


def pytest_report_collectionfinish(config: pytest.Config, start_path: Path, items: list[pytest.Item]) -> str | None:
    """``pytest experiments/`` without ``--deriva-run`` collects nothing there: say why, in one line."""
    if items or config.getoption("deriva_run"):
        return None
    patterns = [str(p) for p in config.getini("deriva_experiment_files")]
    here = config.invocation_params.dir
    given = config.args if config.args_source == pytest.Config.ArgsSource.ARGS else []
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        found = _experiment_file(path if path.is_absolute() else here / path, patterns)
        if found is not None:
            shown = found.relative_to(here) if found.is_relative_to(here) else found
            again = " ".join(["pytest --deriva-run", *given])
            return f"deriva: {shown} holds experiments; they run (and are recorded) with: {again}"
    return None


def _experiment_file(path: Path, patterns: list[str]) -> Path | None:
    """``path`` if it is an experiment file, else the first one under the folder ``path`` (not in hidden folders)."""
    if path.is_file():
        return path if any(fnmatch.fnmatch(path.name, p) for p in patterns) else None
    if not path.is_dir():
        return None
    for pattern in patterns:
        for found in sorted(path.rglob(pattern)):
            if not any(part.startswith(".") for part in found.relative_to(path).parts):
                return found
    return None


@pytest.fixture(scope="session")
def ml_instance(pytestconfig: pytest.Config) -> DerivaML:
    """The ``DerivaML`` handle of the configured catalog (``--deriva-catalog``)."""
    session = pytestconfig.stash.get(SESSION_KEY, None)
    if session is not None:
        return session.ml
    return make_ml_instance(pytestconfig)


@pytest.fixture
def execution(request: pytest.FixtureRequest) -> Iterator[Execution]:
    """The ``Execution`` of the running experiment: started before the call, then stopped,
    uploaded and given its final status from the outcome."""
    session = request.config.stash.get(SESSION_KEY, None)
    experiment = request.node.stash.get(EXPERIMENT_KEY, None)
    if session is None or experiment is None:
        pytest.fail(
            "The execution fixture records experiment_* functions under `pytest --deriva-run`; "
            f"{request.node.nodeid} is not one.",
            pytrace=False,
        )
    request.getfixturevalue("ml_instance")  # the session handle, set up (and torn down) by pytest
    exe = session.start(request.node, experiment)
    yield exe
    session.finish(request.node, experiment)
