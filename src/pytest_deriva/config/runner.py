"""``run_model``: run a configured model as a tracked execution, alone or as one job of a sweep.

A project registers its configs in a hydra-zen store and runs them with ``deriva-run`` (or its
own ``zen(run_model).hydra_main(...)``)::

    from hydra_zen import builds, store
    from pytest_deriva.config import create_model_config

    store(builds(train, epochs=10, zen_partial=True), group="model_config", name="default_model")
    store(create_model_config(description="CIFAR-10 CNN"), name="deriva_model")

A single run records one execution: its configuration, ``config_choices`` (the option chosen
in each group), and the files of Hydra's output folder as ``Hydra_Config`` metadata
(``hydra-<run dir>-config.yaml``, ``-overrides.yaml``, ``-hydra.yaml``). Under ``--multirun``
each job is a child ``[Job N] <description>`` with ``Sequence`` = Hydra's job number, nested
under exactly one parent per sweep, also when a launcher (joblib, submitit) runs the jobs in
other processes; the parent is closed when the sweep ends (see :mod:`._sweep`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import threading
import traceback
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback

from pytest_deriva._secrets import REDACTED, is_secret, redact_text, secret_values
from pytest_deriva.config._sweep import SweepRecord
from pytest_deriva.config.deriva_ml_config import DerivaMLConfig
from pytest_deriva.config.loading import DEFAULT_DESCRIPTION, INJECTED, MODEL_GROUP, model_function, model_keywords
from pytest_deriva.exceptions import DerivaMLConfigurationError, DerivaMLException
from pytest_deriva.execution.configuration import ExecutionConfiguration
from pytest_deriva.execution.outcome import Outcome, end_run, metrics_of
from pytest_deriva.execution.workflow import Workflow

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn
    from omegaconf import DictConfig

    from pytest_deriva.ml import DerivaML

__all__ = [
    "CALLBACK_NAME",
    "DEFAULT_DESCRIPTION",
    "DerivaSweepCallback",
    "check_model_arguments",
    "check_sweep_values",
    "create_model_config",
    "reset_multirun_state",
    "run_model",
    "run_model_task",
]

#: The key of pytest-deriva's callback under ``hydra.callbacks``.
#: ``deriva-run`` names a file here; each run appends a line (its catalog, RID and Hydra folder)
#: so that the command can print what was recorded when Hydra returns.
RUN_LOG_ENV = "PYTEST_DERIVA_RUN_LOG"
CALLBACK_NAME = "pytest_deriva"
CALLBACK_TARGET = "pytest_deriva.config.runner.DerivaSweepCallback"
_logger = logging.getLogger("pytest_deriva")


# -- what Hydra says about the running job -----------------------------------------------------
@dataclass
class HydraRun:
    """The running Hydra job, as ``run_model`` needs it."""

    output_dir: Path | None
    choices: dict[str, str] = field(default_factory=dict)
    multirun: bool = False
    job_num: int = 0
    sweep_dir: Path | None = None


def hydra_run(choices: bool = True) -> HydraRun | None:
    """The Hydra job this code runs in, or ``None`` outside Hydra (``choices``: also read the
    option chosen in each config group)."""
    import sys

    if "hydra" not in sys.modules:
        return None
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    hc: Any = HydraConfig.get()
    out = OmegaConf.select(hc, "runtime.output_dir", default=None)
    output_dir = Path(out) if out else None
    chosen = (OmegaConf.select(hc, "runtime.choices") or {}).items() if choices else ()
    choices_ = {str(k): str(v) for k, v in chosen if v is not None}
    # A sweep job is one a launcher numbered: hydra.mode is not reliable (None under
    # hydra_zen.launch(multirun=True), MULTIRUN in a single run given hydra.mode=MULTIRUN).
    job_num = OmegaConf.select(hc, "job.num", default=None)
    run = HydraRun(output_dir=output_dir, choices=choices_, multirun=job_num is not None)
    if job_num is not None:
        run.job_num = int(job_num)
        # The job's folder is <sweep dir>/<subdir>; derive the sweep folder from the absolute
        # job folder, which holds even when the job changed its working directory.
        subdir = str(OmegaConf.select(hc, "sweep.subdir", default="") or "")
        depth = len([p for p in Path(subdir).parts if p not in ("", ".")])
        if output_dir is not None:
            run.sweep_dir = output_dir.parents[depth - 1] if depth else output_dir
        else:
            run.sweep_dir = Path(os.path.abspath(str(hc.sweep.dir)))
    return run


# -- per-process handles -------------------------------------------------------------------------
# Opening a catalog costs more than recording an execution, so each process keeps one handle
# per catalog for the jobs it runs (a cache, not state: reset_multirun_state() empties it).
_handles: dict[tuple[int, type[Any], str], DerivaML] = {}
_handles_lock = threading.Lock()
# Sweeps (by id) whose values this process has checked against the model's signature.
_checked_sweeps: set[tuple[str, int]] = set()


def _connect(config: DerivaMLConfig, ml_class: type[DerivaML] | None) -> DerivaML:
    from pytest_deriva.ml import DerivaML

    cls = ml_class or DerivaML
    try:
        ident = config.model_dump_json(exclude={"hydra_runtime_output_dir"})
    except Exception:
        ident = repr(config.model_dump(exclude={"hydra_runtime_output_dir"}))
    key = (os.getpid(), cls, f"{config.location}|{ident}")  # the default location follows cwd and env
    with _handles_lock:
        ml = _handles.get(key)
        if ml is None:
            ml = config.instantiate(cls)
            _handles[key] = ml
    out = config.hydra_runtime_output_dir
    ml.hydra_runtime_output_dir = Path(out) if out else None
    return ml


def _catalog_of(config: DerivaMLConfig) -> dict[str, Any]:
    """What the sweep file keeps to reopen the catalog from another process (the default
    location resolved here: another process may have another working directory)."""
    doc = config.model_dump(mode="json", exclude={"hydra_runtime_output_dir", "credential"})
    if not config.is_server:
        doc["catalog"] = config.location
    return doc


def _note_run(config: DerivaMLConfig, rid: str, output_dir: str | os.PathLike[str] | None) -> None:
    """Append the run to ``$PYTEST_DERIVA_RUN_LOG`` (one JSON line; lines of parallel jobs do not mix)."""
    log = os.environ.get(RUN_LOG_ENV)
    if not log:
        return
    line = json.dumps({"catalog": _catalog_of(config), "rid": rid, "dir": output_dir}, default=str) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def logged_runs(log: Path) -> list[tuple[DerivaML, list[str], list[str]]]:
    """The runs a ``deriva-run`` noted in ``log``: per catalog, its handle, the RIDs and Hydra folders."""
    by_catalog: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {}
    if log.is_file():
        for text in log.read_text().splitlines():
            entry = json.loads(text)
            key = json.dumps(entry["catalog"], sort_keys=True)
            _, rids, dirs = by_catalog.setdefault(key, (entry["catalog"], [], []))
            rids.append(entry["rid"])
            if entry.get("dir"):
                dirs.append(entry["dir"])
    return [(_reconnect(catalog), rids, dirs) for catalog, rids, dirs in by_catalog.values()]


def _reconnect(catalog: Mapping[str, Any]) -> DerivaML:
    return _connect(DerivaMLConfig(**{**catalog, "hydra_runtime_output_dir": None}), None)


def reset_multirun_state() -> None:
    """Forget this process's open catalog handles and sweep bookkeeping.

    Sweeps keep their state in Hydra's sweep folder, not in the process, so this is needed only
    to isolate test cases (or to let go of catalogs a long-lived process used).
    """
    with _handles_lock:
        handles = list(_handles.values())
        _handles.clear()
        _checked_sweeps.clear()
    for ml in handles:
        with contextlib.suppress(Exception):  # a catalog already gone has nothing to close
            ml.catalog.close()


# -- the sweep callback ------------------------------------------------------------------------
class DerivaSweepCallback(Callback):
    """Hydra callback that begins and ends each sweep's record (see :mod:`._sweep`).

    ``create_model_config`` puts it in the main config under ``hydra.callbacks.pytest_deriva``
    and ``deriva-run`` adds it to any main config. Hydra calls ``on_multirun_start`` and
    ``on_multirun_end`` in the launching process and ``on_job_end`` in each job's process.

    Args:
        sweep_log: A file to append each begun sweep's folder to (``deriva-run`` closes the
            sweeps listed there if Hydra stops before ``on_multirun_end``).
        description: The sweep's description, for its parent execution (``deriva-run`` passes
            a named multirun's); default: the main config's ``description``.
    """

    def __init__(self, sweep_log: str | None = None, description: str | None = None) -> None:
        self.sweep_log = sweep_log
        self.description = description

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        from pytest_deriva.config.multirun import count_sweep_jobs

        sweep_dir = Path(os.path.abspath(str(config.hydra.sweep.dir)))
        task = [str(t) for t in OmegaConf.select(config, "hydra.overrides.task", default=None) or []]
        expected: int | None = None
        if OmegaConf.select(config, "hydra.sweeper._target_", default="").endswith(".BasicSweeper"):
            params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
            expected = count_sweep_jobs([f"{k}={v}" for k, v in params.items()] + task)
        description = self.description or OmegaConf.select(config, "description", default=None)
        SweepRecord(sweep_dir).begin(str(description) if description else "", expected, _reconnect, task)
        if self.sweep_log:
            with Path(self.sweep_log).open("a") as f:
                f.write(f"{sweep_dir}\n")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        run = hydra_run(choices=False)  # Hydra sets the job's config before calling on_job_end
        if run is None or not run.multirun or run.sweep_dir is None:
            return
        SweepRecord(run.sweep_dir).job_finished(run.job_num, job_return.status == JobStatus.COMPLETED, _reconnect)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        SweepRecord(os.path.abspath(str(config.hydra.sweep.dir))).close(_reconnect)


def close_sweeps(sweep_log: Path) -> None:
    """Close every sweep listed in ``sweep_log`` that is still open (after Hydra stopped early)."""
    if not sweep_log.is_file():
        return
    for line in sweep_log.read_text().splitlines():
        if line.strip():
            try:
                SweepRecord(Path(line.strip())).close(_reconnect)
            except Exception as e:  # a sweep that cannot be closed must not hide why Hydra stopped
                _logger.warning("Could not close the sweep in %s: %s", line.strip(), e)


# -- checking a model config before anything is written ----------------------------------------
@functools.lru_cache(maxsize=256)
def _adapter(annotation: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True, coerce_numbers_to_str=True))
    except Exception:
        try:
            return TypeAdapter(annotation)  # models and dataclasses bring their own config
        except Exception:
            return None


def _plain(value: Any) -> Any:
    """OmegaConf containers as plain lists and dicts (what a model receives after conversion)."""
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


class _Signature:
    """A model function's parameters and their types, for checking values against them."""

    def __init__(self, model: Any) -> None:
        self.func = model_function(model)
        try:
            self.signature: inspect.Signature | None = inspect.signature(self.func)
        except (TypeError, ValueError):
            self.signature = None
        try:
            self.hints = typing.get_type_hints(self.func)
        except Exception:
            self.hints = {}

    def problem(self, name: str, value: Any) -> str | None:
        """What is wrong with ``name=value`` for this function, or ``None``."""
        if self.signature is None or name in INJECTED:
            return None
        param = self.signature.parameters.get(name)
        if param is None:
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self.signature.parameters.values()):
                return None
            known = ", ".join(p for p in self.signature.parameters if p not in INJECTED)
            return f"{name}: not a parameter of {self.func.__name__} (its parameters: {known})"
        annotation = self.hints.get(name, param.annotation)
        if annotation is inspect.Parameter.empty or annotation is Any or isinstance(annotation, str):
            return None
        if value is None and param.default is None:
            return None  # `x: Model = None`: None is the declared default
        try:
            adapter = _adapter(annotation)
        except TypeError:  # an unhashable annotation
            adapter = None
        if adapter is None:
            return None
        from pydantic import ValidationError

        try:
            adapter.validate_python(_plain(value))
        except ValidationError as e:
            reason = e.errors()[0].get("msg", str(e)) if e.errors() else str(e)
            shown = annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")
            if is_secret(name):  # the message is printed and may be logged: never the value
                got, reason = REDACTED, redact_text(reason, secret_values({name: value}), min_known=1)
            else:
                got = repr(value)
            return f"{name}: expects {shown}, got {got} ({type(value).__name__}): {reason}"
        return None

    def refuse(self, problems: list[str], what: str) -> DerivaMLConfigurationError:
        where = ""
        with contextlib.suppress(TypeError):
            where = f" ({inspect.getsourcefile(self.func)})"
        return DerivaMLConfigurationError(
            f"{what} of {getattr(self.func, '__qualname__', self.func)}{where} does not fit its signature; "
            "nothing was recorded:\n  - "
            + "\n  - ".join(problems)
            + "\nFix the value in the config or on the command line (e.g. model_config.<name>=<value>)."
        )


def check_model_arguments(model: Any) -> None:
    """Check the values a model config binds against the model function's signature.

    Hydra checks the types OmegaConf knows when it composes the config; this checks the rest
    (``Literal``, unions, containers of a type, classes) with pydantic, before ``run_model``
    writes anything.

    Raises:
        DerivaMLConfigurationError: listing each parameter with a value of the wrong type or
            that the function does not take.
    """
    sig = _Signature(model)
    problems = [p for name, value in model_keywords(model).items() if (p := sig.problem(name, value))]
    if problems:
        raise sig.refuse(problems, "The model config")


def check_sweep_values(model: Any, overrides: list[str]) -> None:
    """Check every value a sweep gives a model parameter (``model_config.<name>=v1,v2``), so
    that a sweep with one bad value is refused as a whole before its first job writes anything.

    Raises:
        DerivaMLConfigurationError: listing the values that do not fit.
    """
    from pytest_deriva.config.multirun import parse_overrides

    sig = _Signature(model)
    problems: list[str] = []
    for override in parse_overrides(overrides):
        key = override.key_or_group
        if override.package or not key.startswith(f"{MODEL_GROUP}.") or override.is_delete():
            continue
        name = key[len(MODEL_GROUP) + 1 :]
        if "." in name:
            continue
        if not override.is_sweep_override():
            values = [override.value()]
        elif override.is_discrete_sweep():
            values = list(override.sweep_iterator())
        else:
            continue
        problems += [p for v in values if (p := sig.problem(name, v))]
    if problems:
        raise sig.refuse(problems, "The sweep's values")


# -- the workflow --------------------------------------------------------------------------------
def model_source(model: Any) -> Path | None:
    """The source file of the model function a model config calls."""
    func = model_function(model)
    try:
        source = inspect.getsourcefile(func)
    except TypeError:
        return None
    if not source:
        return None
    path = Path(source).resolve()
    return path if path.is_file() and path.suffix == ".py" else None


def _runner_script() -> Path | None:
    import sys

    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return Path(file).resolve() if file else None


def _workflow_for(workflow: Any, model: Any) -> Workflow:
    """The workflow to record: the model's own file, not the script that launched Hydra.

    A workflow found from the calling script while Hydra composed the config points at the
    runner (``deriva_run.py``); upstream then recomputes it from the model function, and so
    does this. A workflow given with an explicit URL or another source file is kept.
    """
    source = model_source(model)
    if workflow is None:
        if source is None:
            raise DerivaMLConfigurationError(
                "No workflow in the config and the model function's file is unknown: "
                "add a `workflow` config (builds(Workflow, name=..., workflow_type=...))."
            )
        name = getattr(model_function(model), "__name__", source.stem)
        return Workflow(name=name, workflow_type="Training", source_path=source)
    if isinstance(workflow, Mapping):
        workflow = Workflow(**{str(k): v for k, v in workflow.items() if not str(k).startswith("_")})
    if not isinstance(workflow, Workflow):
        raise DerivaMLConfigurationError(
            "workflow must be a Workflow (builds(Workflow, name=..., workflow_type=...)), "
            f"not {type(workflow).__name__}."
        )
    found: Workflow = workflow
    runner = _runner_script()
    if (
        source is not None
        and found.source_path is not None
        and runner is not None
        and Path(found.source_path).resolve() == runner
        and runner != source
    ):
        found = Workflow(
            name=found.name,
            workflow_type=found.workflow_type,
            description=found.description,
            source_path=source,
            allow_dirty=found.allow_dirty,
        )
    return found


# -- run_model -----------------------------------------------------------------------------------
_recovered: set[Path] = set()


def _recover_once(ml: DerivaML) -> None:
    """At a process's first run: finish what stopped processes left here (see ``execution.recovery``)."""
    from pytest_deriva.execution.recovery import recover

    if ml.working_dir in _recovered:
        return
    _recovered.add(ml.working_dir)
    try:
        lines = recover(ml)
    except DerivaMLException as e:
        _logger.error("Recovery of runs left unfinished failed (tried again next time): %s", e)
        return
    for line in lines:
        print(f"deriva: closed what a stopped process left unfinished: {line}")


def run_model(
    deriva_ml: Any,
    datasets: Any,
    assets: Any,
    description: str,
    workflow: Any,
    model_config: Any,
    dry_run: bool = False,
    ml_class: type[DerivaML] | None = None,
    upload_timeout: int = 600,
    upload_chunk_size: int = 50_000_000,
    script_config: Any = None,
) -> None:
    """Run a model as a tracked execution (the task function Hydra calls, through ``zen``).

    Args:
        deriva_ml: The catalog (a :class:`DerivaMLConfig`, a mapping of its fields, a location).
        datasets: Input datasets (``DatasetSpec`` or their configs).
        assets: Input assets (RIDs, ``AssetSpec``).
        description: The execution's description. Under ``--multirun`` it describes the sweep's
            parent and each child is ``[Job N] <description>``.
        workflow: The workflow (``builds(Workflow, ...)``); recorded as the model function's file.
        model_config: A ``builds(model, ..., zen_partial=True)`` config, instantiated: called with
            ``ml_instance=`` and ``execution=``.
        dry_run: Record nothing (RID ``0000``); the model is not called unless a
            ``script_config`` is given, which is called with ``execution=None``.
        ml_class: A ``DerivaML`` subclass for the handle (e.g. a domain class).
        upload_timeout: Seconds per upload chunk (server uploads).
        upload_chunk_size: Bytes per upload chunk (server uploads).
        script_config: A callable run instead of ``model_config``.

    Raises:
        DerivaMLConfigurationError: before anything is written, when the model config does not
            fit the model's signature, the catalog does not exist, or the workflow is unusable.
        Exception: what the model raised (its execution is then ``Failed``, its files uploaded).
    """
    run_callable = script_config if script_config is not None else model_config
    if run_callable is None or not callable(run_callable):
        raise DerivaMLConfigurationError(
            f"model_config must instantiate to a callable (builds(my_model, ..., zen_partial=True)); "
            f"got {type(run_callable).__name__}."
        )
    check_model_arguments(run_callable)
    config = DerivaMLConfig.coerce(deriva_ml)
    run = hydra_run()
    wf = _workflow_for(workflow, run_callable)
    ml = _connect(config, ml_class)
    if not dry_run:
        _recover_once(ml)
    if run is not None and run.output_dir is not None:
        ml.hydra_runtime_output_dir = run.output_dir
    multirun = run is not None and run.multirun
    description = description or ""
    job_description = f"[Job {run.job_num}] {description}" if multirun and run is not None else description
    exec_config = ExecutionConfiguration(
        datasets=list(datasets or []),
        assets=list(assets or []),
        description=job_description,
        config_choices=run.choices if run is not None else {},
        workflow=wf,
    )
    sweep: SweepRecord | None = None
    managed = True
    if multirun and run is not None and run.sweep_dir is not None and not dry_run:
        sweep = SweepRecord(run.sweep_dir)
        sweep_id, overrides = sweep.overrides()
        checked = (sweep_id, id(model_function(run_callable)))
        if overrides and checked not in _checked_sweeps:
            check_sweep_values(run_callable, overrides)
            _checked_sweeps.add(checked)
    # The child's inputs are checked (and it is recorded) before the parent exists: a refused
    # job leaves nothing behind.
    execution = ml.create_execution(exec_config, dry_run=dry_run)
    if not execution.dry_run:
        _note_run(config, execution.execution_rid, run.output_dir if run is not None else None)
    if sweep is not None and run is not None and not execution.dry_run:
        parent_rid, managed = sweep.parent_for(ml, wf, description, _catalog_of(config))
        if parent_rid is not None:
            sweep.add_child(ml, parent_rid, execution.execution_rid, run.job_num)
    elif sweep is not None:
        sweep = None  # a dry run (DERIVA_ML_DRY_RUN) records no sweep

    execution.execution_start()
    returned: Any = None
    try:
        if dry_run:
            if script_config is not None:
                script_config(ml_instance=ml, execution=None)
            else:
                _logger.info("Dry run: the model is not called.")
        else:
            returned = run_callable(ml_instance=ml, execution=execution)
    except BaseException as e:
        # The execution ends Failed (or Aborted); what the model registered still uploads. The
        # message and traceback go into the record without the values of the model's secret
        # parameters, which an exception may quote.
        secrets = secret_values(model_keywords(run_callable))
        message = redact_text(str(e), secrets)
        _logger.error("Execution %s failed: %s: %s", execution.execution_rid, type(e).__name__, message)
        if isinstance(e, KeyboardInterrupt):
            outcome = Outcome.interrupted(type(e).__name__)
        else:
            trace = redact_text("".join(traceback.format_exception(e)), secrets)
            outcome = Outcome.failed(f"{type(e).__name__}: {message}", traceback=trace)
        try:
            end_run(execution, outcome, timeout=(upload_timeout, upload_timeout), chunk_size=upload_chunk_size)
        except Exception as again:
            _logger.error("Execution %s: outputs did not upload: %s", execution.execution_rid, again)
        raise
    finally:
        if sweep is not None and not managed:
            sweep.refresh(ml)
    if not execution.dry_run:
        try:
            metrics = metrics_of(returned)
        except TypeError as e:
            _logger.warning("Execution %s %s; not recorded.", execution.execution_rid, e)
            metrics = None
        uploaded = end_run(
            execution,
            Outcome.completed(metrics),
            timeout=(upload_timeout, upload_timeout),
            chunk_size=upload_chunk_size,
        )
        if sweep is not None and not managed:
            sweep.refresh(ml)
        files = [f for paths in uploaded.values() for f in paths]
        if files:
            print(f"\nUploaded {len(files)} asset(s) to catalog:")
            for table, paths in uploaded.items():
                for f in paths:
                    print(f"  - {table}: {f.file_name}")


# -- the task function of deriva-run ----------------------------------------------------------
_RUN_MODEL_FIELDS = ("deriva_ml", "datasets", "assets", "description", "dry_run", "ml_class")
_RUN_MODEL_OPTIONAL = ("upload_timeout", "upload_chunk_size")


@functools.lru_cache(maxsize=64)
def _target(path: str) -> Any:
    from hydra.utils import get_object

    try:
        return get_object(path)
    except Exception:
        return None


def _direct(spec: Any) -> tuple[type[Any], dict[str, Any]] | None:
    """``(class, kwargs)`` when a config is a plain call of one of our pydantic models
    (``DerivaMLConfig``, ``Workflow``): only ``_target_`` and plain values. Building it directly
    skips Hydra's instantiate, which costs more than the model's own validation, on every job."""
    if not isinstance(spec, dict) or not isinstance(spec.get("_target_"), str):
        return None
    cls = _target(spec["_target_"])
    if not (isinstance(cls, type) and issubclass(cls, DerivaMLConfig | Workflow)):
        return None
    kwargs = {k: v for k, v in spec.items() if k != "_target_"}
    nested = any(
        isinstance(v, dict) or (isinstance(v, list) and any(isinstance(i, dict | list) for i in v))
        for v in kwargs.values()
    )
    if nested or any(str(k).startswith("_") for k in kwargs):
        return None
    return cls, kwargs


def _build(direct: tuple[type[Any], dict[str, Any]]) -> Any:
    from pydantic import ValidationError

    cls, kwargs = direct
    try:
        return cls(**kwargs)
    except ValidationError as e:
        raise DerivaMLConfigurationError(f"Invalid {cls.__name__} config {kwargs}: {e}") from None


def _instantiate(node: Any) -> Any:
    """Instantiate a config node; pytest-deriva's own errors come out as themselves, not
    wrapped in Hydra's ``InstantiationException``."""
    from hydra.errors import InstantiationException
    from hydra_zen import instantiate
    from omegaconf import OmegaConf

    if OmegaConf.is_dict(node):
        direct = _direct(OmegaConf.to_container(node, resolve=True))
        if direct is not None:
            return _build(direct)
    elif not OmegaConf.is_config(node) and not isinstance(node, dict):
        return node
    try:
        return instantiate(node)
    except InstantiationException as e:
        cause = e.__cause__
        while cause is not None and not isinstance(cause, DerivaMLException):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def _instantiate_workflow(node: Any, source: Path | None) -> Any:
    """Instantiate the workflow config with the model's file as its source, so that it is not
    looked for among the callers (which, under ``deriva-run``, are the console script)."""
    from omegaconf import OmegaConf

    if not OmegaConf.is_dict(node):
        return _instantiate(node)
    spec = OmegaConf.to_container(node, resolve=True)
    assert isinstance(spec, dict)
    target = spec.get("_target_")
    if source is not None and target and not spec.get("url") and not spec.get("source_path"):
        cls = _target(str(target))
        if isinstance(cls, type) and issubclass(cls, Workflow):
            spec["source_path"] = str(source)
    direct = _direct(spec)
    if direct is not None:
        return _build(direct)
    return _instantiate(spec)


def run_model_task(cfg: Any) -> None:
    """The Hydra task function ``deriva-run`` runs: :func:`run_model` with ``cfg``'s fields.

    Like ``zen(run_model)``, but it instantiates the model config first and gives the workflow
    the model function's file, and the catalog before anything that could write.
    """
    from omegaconf import OmegaConf

    def field(name: str, default: Any = None) -> Any:
        return OmegaConf.select(cfg, name, default=default) if name in cfg else default

    kwargs: dict[str, Any] = {name: _instantiate(field(name)) for name in _RUN_MODEL_FIELDS}
    kwargs["deriva_ml"] = DerivaMLConfig.coerce(kwargs["deriva_ml"])  # checks the catalog first
    model = _instantiate(field("model_config"))
    script = _instantiate(field("script_config"))
    kwargs["workflow"] = _instantiate_workflow(field("workflow"), model_source(script or model))
    for name in _RUN_MODEL_OPTIONAL:
        if name in cfg:
            kwargs[name] = _instantiate(field(name))
    kwargs["dry_run"] = bool(kwargs["dry_run"])
    run_model(model_config=model, script_config=script, **kwargs)


# -- create_model_config -------------------------------------------------------------------------
def callback_node(sweep_log: str | None = None) -> dict[str, Any]:
    """The ``hydra.callbacks`` entry of pytest-deriva's sweep callback."""
    node: dict[str, Any] = {"_target_": CALLBACK_TARGET}
    if sweep_log is not None:
        node["sweep_log"] = sweep_log
    return {CALLBACK_NAME: node}


def create_model_config(
    ml_class: type[DerivaML] | None = None,
    description: str = DEFAULT_DESCRIPTION,
    hydra_defaults: list[Any] | None = None,
) -> Any:
    """The main config of a DerivaML app: ``builds(run_model)`` with the standard defaults.

    Store it as the app's main config (``deriva-run`` looks for ``deriva_model``)::

        store(create_model_config(), name="deriva_model")
        store(create_model_config(EyeAI, description="EyeAI analysis"), name="eyeai_model")

    Args:
        ml_class: A ``DerivaML`` subclass for the handle (bound with ``functools.partial``).
        description: The default description of the executions.
        hydra_defaults: The defaults list; by default one option of each group: ``deriva_ml:
            default_deriva``, ``datasets: default_dataset``, ``assets: default_asset``,
            ``workflow: default_workflow``, ``model_config: default_model``.

    The config also installs pytest-deriva's Hydra callback (``hydra.callbacks.pytest_deriva``),
    which gives a sweep one parent execution and closes it when the sweep ends.
    """
    from hydra_zen import builds, make_config

    from pytest_deriva.config.base import base_defaults

    defaults = list(hydra_defaults) if hydra_defaults is not None else list(base_defaults)
    target: Any = functools.partial(run_model, ml_class=ml_class) if ml_class is not None else run_model
    main = builds(target, description=description, populate_full_signature=True, hydra_defaults=defaults)
    return make_config(hydra={"callbacks": callback_node()}, bases=(main,))
