"""One ``pytest --deriva-run`` session: its catalog, run plan, and the hooks that record runs.

:class:`DerivaSession` is registered by the plugin (:mod:`pytest_deriva.plugin`) only in
``--deriva-run`` mode. It maps pytest's collection and outcomes onto the execution layer:
experiments are collected (:mod:`pytest_deriva.collect`), planned as runs and sweeps
(:mod:`pytest_deriva.sweep`), started, and ended with their outcome
(:func:`pytest_deriva.execution.outcome.end_run`); the summary is :mod:`pytest_deriva.report`.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import pkgutil
import warnings
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_deriva.collect import (
    EXPERIMENT_CLASS_PREFIX,
    EXPERIMENT_PREFIX,
    FIXTURE_NAMES,
    ExperimentClass,
    ExperimentModule,
    NotebookFile,
    accepted_kwargs,
    check_marker,
    parametrized_names,
    signature_proxy,
)

if TYPE_CHECKING:
    from pytest_deriva.execution import Execution
    from pytest_deriva.execution.outcome import Outcome
    from pytest_deriva.execution.sweep import SweepResult
    from pytest_deriva.ml import DerivaML
    from pytest_deriva.sweep import PlannedRun, RunPlanner, RunSpec

__all__ = [
    "DEFAULT_EXPERIMENT_FILES",
    "DEFAULT_WORKFLOW_TYPE",
    "DerivaSession",
    "PytestDerivaWarning",
    "XdistHooks",
    "catalog_choice",
    "make_ml_instance",
]

DEFAULT_EXPERIMENT_FILES = ["experiment_*.py", "*_experiment.py", "*_experiments.py"]
DEFAULT_WORKFLOW_TYPE = "Training"
_LARGE_UPLOAD = 50 * 2**20  # bytes; uploads of larger files are reported as they finish


class PytestDerivaWarning(pytest.PytestWarning):
    """A warning from pytest-deriva."""


@dataclass(slots=True)  # one per collected run, kept by pytest to the end: no __dict__ each
class _Experiment:
    """What collection learned about one experiment item."""

    spec: RunSpec
    takes: frozenset[str]
    run: PlannedRun | None = None
    result: Any = None
    reports: dict[str, pytest.TestReport] = field(default_factory=dict)
    execution: Execution | None = None
    configured: dict[str, Any] = field(default_factory=dict)
    requests_at_start: int = 0


SESSION_KEY = pytest.StashKey["DerivaSession"]()
EXPERIMENT_KEY = pytest.StashKey[_Experiment]()


def catalog_choice(config: pytest.Config) -> tuple[str, str]:
    """The catalog location and where the choice came from: option > environment > ini > default."""
    option = config.getoption("deriva_catalog")
    if option is not None:
        if not str(option).strip():  # --deriva-catalog= (say, an unset shell variable) is not the default
            raise pytest.UsageError(
                "--deriva-catalog is empty; name a catalog folder or https://<host>/ermrest/catalog/<id>, "
                "or leave the option out for the default (.deriva at the rootdir)."
            )
        return str(option), "--deriva-catalog"
    if os.environ.get("DERIVA_CATALOG"):
        return os.environ["DERIVA_CATALOG"], "DERIVA_CATALOG"
    ini = config.getini("deriva_catalog")
    if ini:
        value = Path(str(ini))
        return str(value if value.is_absolute() else config.rootpath / value), "ini deriva_catalog"
    return str(config.rootpath / ".deriva"), "default"


_DRY_RUN_CATALOG_PREFIX = "deriva-dry-run-catalog-"


def make_ml_instance(config: pytest.Config) -> DerivaML:
    catalog, _ = catalog_choice(config)
    if config.getoption("deriva_dry_run", False) and "://" not in catalog:
        from pytest_deriva.catalog import is_embedded_catalog

        if not is_embedded_catalog(Path(catalog)) and not Path(catalog).is_file():
            # A dry run writes nothing in the project, not even a new catalog: use a throwaway one.
            import tempfile

            catalog = str(Path(tempfile.mkdtemp(prefix=_DRY_RUN_CATALOG_PREFIX)) / "catalog")
    supplied = config.hook.pytest_deriva_ml_instance(config=config, catalog=catalog)
    if supplied is not None:
        return supplied  # type: ignore[no-any-return]
    spec = config.getoption("deriva_ml_class") or config.getini("deriva_ml_class")
    from pytest_deriva.exceptions import DerivaMLException
    from pytest_deriva.ml import DerivaML

    cls: type[DerivaML] = DerivaML
    if spec:
        module_name, _, class_name = str(spec).partition(":")
        if not module_name or not class_name:  # resolve_name would guess where a dotted module ends
            raise pytest.UsageError(f"--deriva-ml-class {spec!r}: give it as module:Class (e.g. my_project.ml:EyeAI).")
        try:
            cls = pkgutil.resolve_name(str(spec))
        except (ImportError, AttributeError, ValueError) as e:
            raise pytest.UsageError(f"--deriva-ml-class {spec!r}: cannot import it ({e}); give module:Class.") from e
        if not (isinstance(cls, type) and issubclass(cls, DerivaML)):
            raise pytest.UsageError(f"--deriva-ml-class {spec!r} is not a subclass of DerivaML.")
    credential = config.getoption("deriva_credential", None)
    if credential is not None and not str(credential).strip():
        raise pytest.UsageError("--deriva-credential is empty; name a credential file or leave the option out.")
    try:
        return cls(catalog, credential=credential) if credential else cls(catalog)
    except DerivaMLException as e:
        raise pytest.UsageError(f"pytest-deriva cannot use catalog {catalog!r}: {e}") from e


# -- the session in --deriva-run mode ----------------------------------------------------------
class DerivaSession:
    """State and hooks of one ``--deriva-run`` session (registered only in that mode)."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_deriva._secrets import configure

        self.config = config
        # The project's secret names, for every record of the session (restored at unconfigure).
        self._secrets_before = configure(config.getini("deriva_secret_names"), config.getini("deriva_not_secret"))
        self.catalog, self.catalog_source = catalog_choice(config)
        self.dry_run = bool(config.getoption("deriva_dry_run"))
        self.allow_dirty = bool(config.getoption("deriva_allow_dirty"))
        self.patterns = [str(p) for p in config.getini("deriva_experiment_files")]
        self.is_worker = hasattr(config, "workerinput")
        self._ml: DerivaML | None = None
        self._planner: RunPlanner | None = None
        self._workflows: dict[tuple[Path, tuple[str, ...]], Any] = {}
        self._sweep: list[dict[str, Any]] | None = None
        self._sweep_taken: set[str] = set()  # the --deriva-sweep names some collected experiment takes
        self.resume_target = self._resume_target()
        self._resumed: dict[str, Any] = {}  # node id -> Resumed, with --deriva-resume
        self._refused = False  # collection was refused: nothing may be planned
        self._session: pytest.Session | None = None
        self.rows: list[dict[str, Any]] = []
        self.sweep_results: list[SweepResult] = []
        self.recovered: list[str] = []
        self.push_url = _push_url(config, self.catalog, self.dry_run)
        self.pushed: list[str] = []  # what the push at the end said, for the summary
        if self.is_worker:
            self.plan_dir = Path(config.workerinput["deriva_plan_dir"])  # type: ignore[attr-defined]
        else:
            from pytest_deriva.sweep import new_plan_dir

            self.plan_dir = new_plan_dir()

    def _resume_target(self) -> str | None:
        target = self.config.getoption("deriva_resume", None)
        if target is None:
            return None
        from pytest_deriva._rid import validate_rid
        from pytest_deriva.exceptions import DerivaMLException

        if target != "last":
            try:
                validate_rid(str(target))
            except DerivaMLException as e:
                raise pytest.UsageError(
                    f"--deriva-resume {target!r} is neither a sweep's parent RID nor 'last' ({e}); "
                    "put paths before --deriva-resume, or write --deriva-resume=last."
                ) from e
        return str(target)

    @property
    def ml(self) -> DerivaML:
        if self._ml is None:
            self._ml = make_ml_instance(self.config)
        return self._ml

    @property
    def planner(self) -> RunPlanner:
        if self._planner is None:
            from pytest_deriva.sweep import RunPlanner

            self._planner = RunPlanner(self.ml, self.plan_dir, dry_run=self.dry_run, lease=self.lease)
        return self._planner

    @property
    def lease(self) -> str | None:
        """The liveness record of the session's owner: the controller's under xdist."""
        if self.is_worker:
            return self.config.workerinput.get("deriva_lease")  # type: ignore[attr-defined, no-any-return]
        if self.dry_run:
            return None
        from pytest_deriva.execution._lease import own_lease

        return own_lease(self.ml.working_dir)

    def _recover(self) -> None:
        """Close what stopped processes left unfinished here (a killed session, a killed worker)."""
        if self.is_worker or self.dry_run or self.config.option.collectonly:
            return
        from pytest_deriva.exceptions import DerivaMLException
        from pytest_deriva.execution.recovery import recover

        try:
            lines = recover(self.ml)
        except DerivaMLException as e:
            lines = [f"recovery failed, tried again next time: {e}"]
        self.recovered += lines
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and lines:
            reporter.write_line("deriva: closed what a stopped process left unfinished:")
            for line in lines:
                reporter.write_line(f"  {line}")

    # -- reporting where we record ------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        kind = "DERIVA server" if self.catalog.startswith(("http://", "https://")) else "embedded store"
        mode = ", dry run: nothing is recorded" if self.dry_run else ""
        return [f"deriva: catalog {self.catalog} ({kind}, from {self.catalog_source}){mode}"]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session = session
        _ = self.sweep  # a --deriva-sweep that does not parse is a usage error now
        if not self.is_worker:
            _ = self.ml  # a bad catalog is a usage error now, before anything runs
            self._recover()

    # -- collection ---------------------------------------------------------------------------
    def _is_experiment_file(self, path: Path) -> bool:
        return path.suffix == ".py" and any(fnmatch.fnmatch(path.name, p) for p in self.patterns)

    def _is_experiment_notebook(self, path: Path) -> bool:
        """Notebooks named like experiment files (``experiment_*.ipynb``), or named on the command line."""
        if path.suffix != ".ipynb":
            return False
        patterns = [p.removesuffix(".py") + ".ipynb" for p in self.patterns if p.endswith(".py")]
        return any(fnmatch.fnmatch(path.name, p) for p in patterns) or self._is_initpath(path)

    def _is_initpath(self, path: Path) -> bool:
        return self._session is not None and self._session.isinitpath(path)

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if collection_path.is_dir() or collection_path.name == "conftest.py":
            return None
        if self._is_experiment_file(collection_path) or self._is_initpath(collection_path):
            return None
        if self._is_experiment_notebook(collection_path):
            return None
        return True  # ordinary tests do not run in --deriva-run mode

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.suffix == ".py" and (self._is_experiment_file(file_path) or self._is_initpath(file_path)):
            return ExperimentModule.from_parent(parent, path=file_path)
        if self._is_experiment_notebook(file_path):
            notebook = NotebookFile.from_parent(parent, path=file_path)
            notebook.describe = self._describe_notebook
            return notebook
        return None

    def _describe_notebook(self, collector: pytest.Collector, name: str, func: Any, items: list[pytest.Item]) -> None:
        from pytest_deriva.config.notebook import DEFAULT_NOTEBOOK_WORKFLOW_TYPE
        from pytest_deriva.exceptions import DerivaMLException
        from pytest_deriva.notebook import require_notebook_support

        try:
            require_notebook_support()
        except DerivaMLException as e:
            pytest.fail(f"{collector.nodeid}: {e}", pytrace=False)
        options = {"workflow_type": DEFAULT_NOTEBOOK_WORKFLOW_TYPE, **self._options(collector, name, func)}
        self._describe(collector, name, func, items, options, {})

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Module | pytest.Class, name: str, obj: object
    ) -> list[pytest.Item] | pytest.Collector | None:
        if not isinstance(collector, ExperimentModule | ExperimentClass):
            return None
        if isinstance(obj, type):
            if name.startswith(EXPERIMENT_CLASS_PREFIX):
                return ExperimentClass.from_parent(collector, name=name, obj=obj)
            return None
        if not name.startswith(EXPERIMENT_PREFIX) or not callable(obj) or not _is_function(obj):
            return None
        func = getattr(obj, "__func__", obj)
        marks = [*getattr(func, "pytestmark", []), *collector.iter_markers("parametrize")]
        options = self._options(collector, name, func)
        takes = set(inspect.signature(func).parameters)
        configured = self._config_parameters(collector, name, options, takes)
        swept = self._swept_names(collector, name, takes, parametrized_names(marks))
        proxy = signature_proxy(
            func, parametrized_names(marks) | swept, isinstance(collector, ExperimentClass), configured
        )
        # pytest has no public way for a collector to make the (parametrized) Function items of an
        # object: its own Module and Class call _genfunctions, as do plugins such as pytest-bdd.
        items: list[pytest.Item] = list(collector._genfunctions(name, proxy))
        self._describe(collector, name, func, items, options, configured)
        return items

    def _options(self, collector: pytest.Collector, name: str, func: Any) -> dict[str, Any]:
        """The ``deriva`` marker's keywords, checked; the closest marker wins per keyword."""
        marks = [*collector.iter_markers("deriva")][::-1] + [
            m for m in getattr(func, "pytestmark", []) if m.name == "deriva"
        ]
        from pytest_deriva.exceptions import DerivaMLException

        options: dict[str, Any] = {}
        for mark in marks:
            try:
                options.update(check_marker(mark.args, mark.kwargs))  # keywords and their types
            except DerivaMLException as e:
                pytest.fail(f"{collector.nodeid}::{name}: {e}", pytrace=False)
        return options

    @property
    def config_package(self) -> str | None:
        value = self.config.getini("deriva_config_package")
        return str(value) if value else None

    def _config_parameters(
        self, collector: pytest.Collector, name: str, options: Mapping[str, Any], takes: set[str]
    ) -> dict[str, Any]:
        """Parameter values from ``config="<name>"`` (a hydra-zen config), for the ones the function takes."""
        if not options.get("config"):
            return {}
        from pytest_deriva.config import experiment_parameters
        from pytest_deriva.exceptions import DerivaMLException

        try:
            values = experiment_parameters(str(options["config"]), self.config_package)
        except DerivaMLException as e:
            pytest.fail(f"{collector.nodeid}::{name}: config={options['config']!r}: {e}", pytrace=False)
        return {k: v for k, v in values.items() if k in takes and k not in FIXTURE_NAMES}

    @property
    def sweep(self) -> list[dict[str, Any]]:
        """The --deriva-sweep combinations, keyed by argument name (``model_config.lr`` -> ``lr``)."""
        if self._sweep is None:
            overrides = list(self.config.getoption("deriva_sweep") or [])
            self._sweep = []
            if overrides:
                from pytest_deriva.config import parse_sweep
                from pytest_deriva.exceptions import DerivaMLException

                try:
                    combos = parse_sweep(overrides, config_package=self.config_package)
                except DerivaMLException as e:
                    raise pytest.UsageError(f"--deriva-sweep: {e}") from e
                except Exception as e:  # whatever Hydra raises, the cause is the user's input
                    raise pytest.UsageError(f"--deriva-sweep {overrides!r} cannot be read: {e}") from e
                self._sweep = [{k.rsplit(".", 1)[-1]: v for k, v in c.items()} for c in combos]
        return self._sweep

    def _swept_names(self, collector: pytest.Collector, name: str, takes: set[str], parametrized: set[str]) -> set[str]:
        """The --deriva-sweep parameters this experiment takes (it is swept over those only)."""
        if not self.sweep:
            return set()
        names = set(self.sweep[0]) & takes
        self._sweep_taken |= names
        twice = sorted(names & parametrized)
        if twice:
            pytest.fail(
                f"{collector.nodeid}::{name}: {', '.join(map(repr, twice))} is both parametrized and given by "
                "--deriva-sweep; use one of them.",
                pytrace=False,
            )
        return names

    def pytest_make_parametrize_id(self, config: pytest.Config, val: object, argname: str) -> str | None:
        from pytest_deriva._secrets import REDACTED, is_secret

        # A secret's value is not shown in test ids: not in the terminal, the summary, the cache.
        return REDACTED if is_secret(argname) else None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if not self.sweep or not isinstance(metafunc.definition.parent, ExperimentModule | ExperimentClass):
            return
        from pytest_deriva._secrets import REDACTED, is_secret

        # Only the swept parameters this experiment takes (an experiment taking none is left as it
        # is); with its own parametrize marks this makes the product.
        takes = inspect.signature(metafunc.function).parameters
        names = [n for n in self.sweep[0] if n in takes]
        if not names:
            return
        values = list(dict.fromkeys(tuple(combo[n] for n in names) for combo in self.sweep))
        shown = [[REDACTED if is_secret(n) else str(v) for n, v in zip(names, row, strict=True)] for row in values]
        ids = ["-".join(row) for row in shown]
        metafunc.parametrize(names, values, ids=ids)

    def _describe(
        self,
        collector: pytest.Collector,
        name: str,
        func: Any,
        items: list[pytest.Item],
        options: Mapping[str, Any],
        configured: Mapping[str, Any],
    ) -> None:
        """Build each item's RunSpec from the marker, checked now, before anything is written."""
        from pytest_deriva.exceptions import DerivaMLException
        from pytest_deriva.sweep import RunSpec

        doc = (inspect.getdoc(func) or "").strip().splitlines()
        description = str(options.get("description") or (doc[0] if doc else name))
        takes = frozenset(inspect.signature(func).parameters)
        if not takes & set(FIXTURE_NAMES):
            path, lineno = _location(func)
            warnings.warn_explicit(
                PytestDerivaWarning(
                    f"{name} takes neither execution nor ml_instance; it is recorded as an execution anyway."
                ),
                category=None,
                filename=path,
                lineno=lineno,
            )
        try:
            workflow = self._workflow(Path(str(collector.path)), options.get("workflow_type", DEFAULT_WORKFLOW_TYPE))
            configuration = self._configuration(options)
        except DerivaMLException as e:
            pytest.fail(f"{collector.nodeid}::{name}: {e}", pytrace=False)
        parametrized = any(getattr(i, "callspec", None) is not None for i in items)
        shared = dict(configured)  # the same for every run of the function (never changed)
        keys: dict[str, str] = {}  # one sweep key string per sweep, not one per run
        for index, item in enumerate(items):
            callspec = getattr(item, "callspec", None)
            params = {**configured, **(callspec.params if callspec is not None else {})}
            key = item.nodeid.split("[", 1)[0]
            spec = RunSpec(
                nodeid=item.nodeid,
                sweep_key=keys.setdefault(key, key),
                index=index,
                params=params,
                description=description,
                workflow=workflow,
                configuration=configuration,
                parametrized=parametrized,
                dry_run=bool(options.get("dry_run", False)),
            )
            item.stash[EXPERIMENT_KEY] = _Experiment(spec, takes, configured=shared)

    def _workflow(self, path: Path, workflow_type: str | list[str]) -> Any:
        types = tuple([workflow_type] if isinstance(workflow_type, str) else workflow_type)
        key = (path, types)
        if key not in self._workflows:
            names = [self.ml.lookup_term("Workflow_Type", t).name for t in types]
            self._workflows[key] = self.ml.create_workflow(
                path.stem,
                names,
                description=f"Experiments in {path.name}",
                source_path=path,
                allow_dirty=self.allow_dirty,
            )
        return self._workflows[key]

    def _configuration(self, options: Mapping[str, Any]) -> Any:
        from pytest_deriva.execution import ExecutionConfiguration

        config = ExecutionConfiguration(
            datasets=list(options.get("datasets") or []),
            assets=list(options.get("assets") or []),
            description=str(options.get("description") or ""),
        )
        for d in config.datasets:
            self.ml.validate_dataset_spec(d)  # the RID is a dataset and the version exists
        for a in config.assets:
            self.ml.lookup_asset(a.rid)
        return config

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        ordinary = [i for i in items if EXPERIMENT_KEY not in i.stash]
        if ordinary:
            config.hook.pytest_deselected(items=ordinary)
            items[:] = [i for i in items if EXPERIMENT_KEY in i.stash]
        if self._session is not None and self._session.testsfailed:
            return
        if self.resume_target is not None:
            self._select_resumed(config, items)
        if config.getoption("deriva_reproduce"):
            self._select_reproduced(config, items)

    def _select_reproduced(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Keep only the run that recorded --deriva-reproduce RID, recorded as a new single run naming it."""
        import dataclasses

        from pytest_deriva.exceptions import DerivaMLException
        from pytest_deriva.resume import REPRODUCES, find_reproduced

        rid = str(config.getoption("deriva_reproduce"))
        try:
            spec = find_reproduced(self.ml, rid, [i.stash[EXPERIMENT_KEY].spec for i in items])
        except DerivaMLException as e:
            self._refused = True
            raise pytest.UsageError(str(e)) from e
        [item] = [i for i in items if i.nodeid == spec.nodeid]
        item.stash[EXPERIMENT_KEY].spec = dataclasses.replace(
            spec,
            description=REPRODUCES.format(rid=rid, description=spec.description),
            parametrized=False,
            sweep_key=spec.nodeid,
        )
        others = [i for i in items if i is not item]
        if others:
            config.hook.pytest_deselected(items=others)
            items[:] = [item]

    def _select_resumed(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Keep only the runs that finish the sweep named by --deriva-resume (found once per session:
        the first process under xdist, the others read what it found)."""
        import json
        from dataclasses import asdict

        from pytest_deriva._locks import file_lock
        from pytest_deriva.exceptions import DerivaMLException
        from pytest_deriva.resume import plan_resume
        from pytest_deriva.sweep import Resumed

        saved = self.plan_dir / "resume.json"
        try:
            with file_lock(self.plan_dir / "resume.lock"):
                if saved.exists():
                    doc = json.loads(saved.read_text())
                else:
                    found = plan_resume(
                        self.ml,
                        str(self.resume_target),
                        [i.stash[EXPERIMENT_KEY].spec for i in items],
                        allow_changed=bool(config.getoption("deriva_allow_changed")),
                    )
                    doc = {"runs": {k: asdict(v) for k, v in found.runs.items()}, "message": found.message}
                    saved.write_text(json.dumps(doc))
        except DerivaMLException as e:
            if not self.is_worker:
                self._refused = True
                raise pytest.UsageError(str(e)) from e
            doc = {"error": str(e)}  # a worker's usage error would be an xdist crash: the controller says it
            saved.write_text(json.dumps(doc))
        if "error" in doc:
            self._refused = True
            config.hook.pytest_deselected(items=list(items))
            items[:] = []
            return
        self._resumed = {k: Resumed(**v) for k, v in doc["runs"].items()}
        others = [i for i in items if i.nodeid not in self._resumed]
        if others:
            config.hook.pytest_deselected(items=others)
            items[:] = [i for i in items if i.nodeid in self._resumed]
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and not self.is_worker:
            reporter.write_line(f"deriva: resuming {doc['message']}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        experiments = [i for i in session.items if EXPERIMENT_KEY in i.stash]
        untaken = sorted(set(self.sweep[0]) - self._sweep_taken) if self.sweep else []
        if untaken and not session.testsfailed:  # a collection error may be why: that one is shown
            raise pytest.UsageError(
                f"--deriva-sweep sets {', '.join(map(repr, untaken))}, which no collected experiment takes; "
                "check the name, or name the files of the experiments that take it."
            )
        if not experiments or self._refused or self._writes_nothing(session):
            return
        from pytest_deriva.exceptions import DerivaMLException

        completed = None
        if self.config.getoption("deriva_skip_completed") and self.resume_target is None:
            from pytest_deriva.resume import find_completed

            def completed(specs: list[RunSpec]) -> Mapping[str, tuple[str, dict[str, Any]]]:
                return find_completed(self.ml, specs)

        try:
            planned = self.planner.plan(
                (i.stash[EXPERIMENT_KEY].spec for i in experiments), resume=self._resumed, completed=completed
            )
        except DerivaMLException as e:
            raise pytest.UsageError(f"pytest-deriva could not record the run plan: {e}") from e
        for item in experiments:
            run = item.stash[EXPERIMENT_KEY].run = planned[item.nodeid]
            if run.reused is not None:
                shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.reused.items())
                reason = f"completed before as {run.execution_rid} ({shown or 'no metrics'})"
                item.add_marker(pytest.mark.skip(reason=reason))

    # -- running ------------------------------------------------------------------------------
    def start(self, item: pytest.Item, experiment: _Experiment) -> Execution:
        exe = self.planner.execution_for(item.nodeid)
        experiment.execution = exe
        experiment.requests_at_start = self.ml.catalog.request_count
        item.config.hook.pytest_deriva_execution_created(item=item, execution=exe)
        exe.execution_start()
        return exe

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        experiment = pyfuncitem.stash.get(EXPERIMENT_KEY, None)
        if experiment is None:
            return None
        funcargs = pyfuncitem.funcargs
        args = {**experiment.configured}  # values from config=..., unless pytest gives the argument
        args.update({name: funcargs[name] for name in experiment.takes if name in funcargs})
        experiment.result = pyfuncitem.obj(**accepted_kwargs(pyfuncitem.obj, args))
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        experiment = item.stash.get(EXPERIMENT_KEY, None)
        if experiment is not None:
            experiment.reports[report.when] = report
            if report.when == "setup" and not report.passed and experiment.execution is None:
                self._close_unstarted(item, experiment, report)
        return report

    def _close_unstarted(self, item: pytest.Item, experiment: _Experiment, report: pytest.TestReport) -> None:
        """The experiment never started (skipped, or a fixture before ours failed)."""
        from pytest_deriva.enums import Status

        status, detail = (
            (Status.aborted, f"Skipped: {_skip_reason(report)}")
            if report.skipped
            else (Status.failed, f"Error in setup: {_crash_message(report)}")
        )
        rid = experiment.run.execution_rid if experiment.run else None
        if experiment.run is not None and experiment.run.reused is not None:  # done before: that run is shown
            self._property(item, experiment, rid, "Completed (earlier run)", experiment.run.reused, 0)
            return
        if rid and not self.dry_run:
            from pytest_deriva._secrets import redact_text, secret_values

            detail = redact_text(detail, secret_values(experiment.spec.params))
            self.ml.lookup_execution(rid).update_status(status, detail)
        self._property(item, experiment, rid, status.value, None, 0, detail)

    def _outcome(self, item: pytest.Item, experiment: _Experiment) -> Outcome:
        """pytest's reports of an experiment as the outcome of its run (secrets taken out)."""
        from pytest_deriva._secrets import redact_text, secret_values
        from pytest_deriva.execution.outcome import Outcome

        secrets = secret_values(experiment.spec.params)
        call, setup = experiment.reports.get("call"), experiment.reports.get("setup")
        metrics = _metrics(experiment.result, item)
        if call is None and setup is not None and setup.failed:
            return Outcome.failed(redact_text(f"Error in setup: {_crash_message(setup)}", secrets), metrics=metrics)
        if call is None:
            # Its registered files upload all the same: what it wrote is kept, marked partial here.
            return Outcome.aborted(
                "Interrupted before the experiment finished; its output files are partial.", metrics=metrics
            )
        if call.passed:
            return Outcome.completed(metrics)
        if call.skipped:
            return Outcome.aborted(redact_text(f"Skipped: {_skip_reason(call)}", secrets), metrics=metrics)
        return Outcome.failed(
            redact_text(_crash_message(call), secrets),  # an error may quote a secret
            traceback=redact_text(call.longreprtext, secrets),
            metrics=metrics,
        )

    def finish(self, item: pytest.Item, experiment: _Experiment) -> None:
        from pytest_deriva.execution.outcome import end_run

        exe = experiment.execution
        assert exe is not None
        outcome = self._outcome(item, experiment)
        outputs = 0
        try:
            uploaded = end_run(exe, outcome, progress_callback=self._progress)
            outputs = sum(len(v) for k, v in uploaded.items() if not k.endswith("/Execution_Metadata"))
        finally:
            metrics = dict(outcome.metrics) if outcome.metrics else None
            self._property(item, experiment, exe.execution_rid, exe.status.value, metrics, outputs, exe.status_detail)
            report = experiment.reports.get("call")
            item.config.hook.pytest_deriva_execution_finished(item=item, execution=exe, report=report)
            # pytest keeps every item to the end of the session: let go of what a finished run held.
            experiment.execution, experiment.result, experiment.reports = None, None, {}

    def _progress(self, progress: Any) -> None:
        """Show uploads of large files (the others are too quick to be worth a line)."""
        if progress.bytes_total < _LARGE_UPLOAD:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and not self.is_worker:
            reporter.write_line(
                f"deriva: uploaded {progress.file_name} ({progress.bytes_total / 2**20:.0f} MiB), "
                f"file {progress.files_completed} of {progress.files_total}"
            )

    def _property(
        self,
        item: pytest.Item,
        experiment: _Experiment,
        rid: str | None,
        status: str,
        metrics: dict[str, Any] | None,
        outputs: int,
        detail: str | None = None,
    ) -> None:
        from pytest_deriva._secrets import is_secret, redact_nodeid, redact_text

        params = experiment.spec.params
        run = experiment.run
        exe = experiment.execution
        in_sweep = run is not None and run.sequence is not None
        item.user_properties.append(
            (
                "deriva",
                {
                    "nodeid": redact_nodeid(item.nodeid, params),
                    "rid": None if self.dry_run else rid,
                    "status": status,
                    "detail": detail,
                    "parent": run.parent_rid if run else None,
                    # A dry run's sweep has no parent RID: its children are grouped by the sweep.
                    "sweep": run.sweep_key if run is not None and in_sweep and self.dry_run else None,
                    "sequence": run.sequence if run else None,
                    "params": {k: "***" if is_secret(k) else redact_text(repr(v)) for k, v in params.items()},
                    "description": experiment.spec.description,
                    "duration": _duration_of(exe),
                    "metrics": metrics or {},
                    "outputs": outputs,
                    "requests": self.ml.catalog.request_count - experiment.requests_at_start if exe else 0,
                },
            )
        )

    # -- after the run (controller) -----------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == "deriva" and isinstance(value, dict):
                self.rows.append(value)

    def _writes_nothing(self, session: pytest.Session) -> bool:
        """Collecting only, or collection failed: nothing runs, so nothing may be recorded."""
        if self.config.option.collectonly:
            return True
        return session.testsfailed > 0 and not self.config.option.continue_on_collection_errors

    @pytest.hookimpl(trylast=True)  # after pytest's own, which tears down an interrupted experiment
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        resumed = self.plan_dir / "resume.json"
        if self.resume_target is not None and resumed.exists():
            import json

            refused = json.loads(resumed.read_text()).get("error")
            if refused:
                # Refused in the xdist workers, which collect: said here, with pytest's usage-error status.
                self.config.get_terminal_writer().line(f"ERROR: {refused}", red=True)
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
                return
        if self.dry_run or self.config.option.collectonly:
            return
        if not (self.plan_dir / "plan.json").exists():
            return
        if self.config.pluginmanager.has_plugin("dsession"):
            # Runs of a killed xdist worker, before their sweep is closed. Without workers this
            # process ran every run and ended each one; the look at start-up found the rest.
            self._recover()
        self.sweep_results = self.planner.finish()
        for result in self.sweep_results:
            self.config.hook.pytest_deriva_sweep_finished(config=self.config, result=result)
        if self.push_url and not self.is_worker:
            self._push(session)

    def _push(self, session: pytest.Session) -> None:
        """Copy the session's runs (its sweeps with their children, its single runs) to the server."""
        from pytest_deriva.exceptions import DerivaMLException
        from pytest_deriva.execution.push import push

        assert self.push_url is not None
        rids = [*(r.parent_rid for r in self.sweep_results), *(r["rid"] for r in self.rows if r.get("rid"))]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        say = (lambda line: reporter.write_line(f"deriva: {line}")) if reporter is not None else (lambda _: None)
        try:
            result = push(
                self.catalog,
                self.push_url,
                list(dict.fromkeys(rids)),
                credential=self.config.getoption("deriva_credential", None),
                progress=say,
            )
            self.pushed = result.lines()
        except DerivaMLException as e:
            # The runs are safe in the store; the push is repeated with the command. The session fails.
            self.pushed = [f"not pushed: {e}", f"push them later with: pytest-deriva push {self.push_url}"]
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.rows:
            return
        from pytest_deriva.report import summary_lines

        terminalreporter.write_sep("=", "deriva: recorded executions")
        catalog = self.ml.catalog
        lines = summary_lines(
            self.rows,
            self.sweep_results,
            self.catalog,
            self.dry_run,
            link=None if self.dry_run else lambda rid: catalog.web_url("deriva-ml:Execution", rid),
            verbose=bool(self.config.getoption("deriva_verbose")),
        )
        for line in lines:
            terminalreporter.write_line(line)
        if self.config.getoption("deriva_verbose") and catalog.request_count:
            terminalreporter.write_line(f"requests to {catalog.hostname} from this process: {catalog.request_count}")
        if self.pushed:
            terminalreporter.write_sep("=", f"deriva: pushed to {self.push_url}")
            for line in self.pushed:
                terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        from pytest_deriva._secrets import restore_policy

        restore_policy(self._secrets_before)
        self._remove_dry_run_catalog()
        if not self.is_worker and self._planner is not None:
            self._planner.cleanup()
        elif not self.is_worker:
            import shutil

            shutil.rmtree(self.plan_dir, ignore_errors=True)

    def _remove_dry_run_catalog(self) -> None:
        """The throwaway catalog of a dry run (made in the temporary folder) goes with the session."""
        local = self._ml.catalog.local_path if self._ml is not None else None
        if self.dry_run and local is not None and Path(local).parent.name.startswith(_DRY_RUN_CATALOG_PREFIX):
            import shutil

            self._ml.catalog.close()  # type: ignore[union-attr]
            shutil.rmtree(Path(local).parent, ignore_errors=True)


class XdistHooks:
    """Controller side under pytest-xdist: every worker plans into the same folder."""

    def __init__(self, session: DerivaSession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["deriva_plan_dir"] = str(self.session.plan_dir)
        node.workerinput["deriva_lease"] = self.session.lease


# -- helpers -----------------------------------------------------------------------------------
def _push_url(config: pytest.Config, catalog: str, dry_run: bool) -> str | None:
    """``--deriva-push``, checked: a server catalog, and a session that records on the embedded store."""
    url = config.getoption("deriva_push", None)
    if url is None:
        return None
    from pytest_deriva.catalog import is_server_location

    if not is_server_location(str(url)):
        raise pytest.UsageError(
            f"--deriva-push {url!r} is not a server catalog; give https://<host>/ermrest/catalog/<id>."
        )
    if is_server_location(catalog):
        raise pytest.UsageError(
            f"--deriva-push copies runs from the embedded store, but this session records on {catalog} already; "
            "leave out one of --deriva-push and --deriva-catalog."
        )
    if dry_run:
        raise pytest.UsageError("--deriva-push with --deriva-dry-run: a dry run records nothing to push.")
    return str(url)


def _is_function(obj: object) -> bool:
    func = getattr(obj, "__func__", obj)
    return inspect.isfunction(func) or inspect.isfunction(getattr(func, "__wrapped__", None))


def _location(func: Any) -> tuple[str, int]:
    code = getattr(func, "__code__", None)
    if code is None:
        return "<unknown>", 0
    return code.co_filename, code.co_firstlineno


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return report.longreprtext.strip().splitlines()[-1] if report.longreprtext else "failed"


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return "skipped"


def _metrics(result: Any, item: pytest.Item) -> dict[str, Any] | None:
    from pytest_deriva.execution.outcome import METRICS_RETURNED, metrics_of

    try:
        return metrics_of(result)
    except TypeError:
        warnings.warn(
            PytestDerivaWarning(
                f"{item.nodeid} returned {type(result).__name__}; an experiment may return {METRICS_RETURNED}, "
                "which is recorded. This value was not."
            ),
            stacklevel=1,
        )
        return None


def _duration_of(exe: Execution | None) -> float | None:
    """Seconds the run took (so far), or None if it never started."""
    if exe is None or exe.start_time is None:
        return None
    end = exe.stop_time or exe.start_time
    return (end - exe.start_time).total_seconds()
