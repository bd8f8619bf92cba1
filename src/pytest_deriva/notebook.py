"""Notebooks as tracked runs: execute a notebook in a Jupyter kernel as one execution.

    pytest-deriva notebook run analysis.ipynb lr=0.1              # one run
    pytest-deriva notebook run analysis.ipynb --multirun lr=0.1,0.01   # a sweep: a parent, a child per job

The runner owns the run: it records the execution (the workflow is the notebook at its git commit,
checksummed without outputs), starts it, executes the notebook with nbclient in a kernel whose
environment carries the overrides (``DERIVA_ML_HYDRA_OVERRIDES``, read by ``run_notebook`` and
``get_notebook_configuration``), the workflow (``DERIVA_ML_WORKFLOW_URL``/``_CHECKSUM``/
``DERIVA_ML_NOTEBOOK_PATH``) and the execution (``PYTEST_DERIVA_NOTEBOOK_RUN``, so that
``run_notebook`` in the notebook returns a handle on it), and ends it with the executed notebook
as a ``Notebook_Output`` file: ``Completed``, or ``Failed`` with the failing cell and its traceback
(the partly executed notebook is still recorded). ``pytest --deriva-run`` runs ``experiment_*.ipynb``
files the same way (:mod:`pytest_deriva.session`).

nbclient, nbformat and ipykernel come with the ``notebooks`` extra.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_deriva.config.notebook import DEFAULT_NOTEBOOK_WORKFLOW_TYPE, OVERRIDES_ENV, RUNNER_ENV
from pytest_deriva.exceptions import DerivaMLConfigurationError, DerivaMLException
from pytest_deriva.execution.outcome import Outcome, end_run

if TYPE_CHECKING:
    from pytest_deriva.execution import Execution, ExecutionConfiguration, Workflow
    from pytest_deriva.execution.sweep import SweepResult
    from pytest_deriva.ml import DerivaML

__all__ = [
    "EXTRA_HINT",
    "NotebookCellError",
    "NotebookRun",
    "check_kernel",
    "execute_notebook",
    "job_overrides",
    "notebook_experiment",
    "notebook_workflow",
    "require_notebook_support",
    "run_notebook_file",
]

EXTRA_HINT = "pip install 'pytest-deriva[notebooks]'"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PREFIX = re.compile(r"^(\+\+|\+|~)")


class NotebookCellError(Exception):
    """A cell of an executed notebook raised: which one, and the kernel's traceback."""

    def __init__(self, detail: str, traceback: str) -> None:
        super().__init__(traceback)  # shown by pytest, and the run's Status_Detail there
        self.detail = detail
        self.traceback = traceback


def require_notebook_support() -> None:
    """Raise a clear error when the ``notebooks`` extra is not installed."""
    missing = []
    for module in ("nbclient", "nbformat", "ipykernel"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise DerivaMLConfigurationError(
            f"Running notebooks needs the notebooks extra ({', '.join(missing)} not installed): {EXTRA_HINT}"
        )


def _check_notebook(path: Path) -> Path:
    path = Path(path).expanduser().absolute()
    if path.suffix != ".ipynb":
        raise DerivaMLConfigurationError(f"{path} is not a notebook; give a .ipynb file.")
    if not path.is_file():
        raise DerivaMLConfigurationError(f"Notebook {path} does not exist; give the path of a .ipynb file.")
    return path


def notebook_workflow(
    ml: DerivaML, path: Path, workflow_type: str | list[str] = DEFAULT_NOTEBOOK_WORKFLOW_TYPE, allow_dirty: bool = False
) -> Workflow:
    """The notebook as a workflow: the file at its git commit, checksummed without outputs."""
    return ml.create_workflow(
        path.stem,
        workflow_type,
        description=f"Notebook {path.name}",
        source_path=path,
        allow_dirty=allow_dirty,
    )


def job_overrides(tokens: Sequence[str], params: Mapping[str, Any]) -> list[str]:
    """One job's overrides for Hydra: ``params`` (a sweep's combination) written back with the
    prefixes (``+``, ``++``) the command line gave each key."""
    from pytest_deriva.config._overrides import override_value

    prefixes = {}
    for token in tokens:
        key = token.split("=", 1)[0]
        match = _PREFIX.match(key)
        prefixes[key[match.end() :] if match else key] = match.group(1) if match else ""
    return [f"{prefixes.get(k, '')}{k}={override_value(v)}" for k, v in params.items()]


# -- executing ------------------------------------------------------------------------------------
def _kernel_manager(folder: Path, kernel: str | None) -> Any:
    """The kernel manager nbclient starts the kernel with.

    Without ``kernel``, a kernel of this Python (the venv's ipykernel), from a kernel spec written
    into ``folder``, not whatever ``python3`` the user's Jupyter finds first. Either way the kernel
    talks to this process through IPC sockets in ``folder``, not over TCP."""
    from jupyter_client.manager import KernelManager

    ipc = {"transport": "ipc", "ip": str(folder / "kernel")}
    if kernel:
        return KernelManager(kernel_name=kernel, **ipc)
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    write_kernel_spec(str(folder / "kernels" / "python3"))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs, **ipc)


def check_kernel(kernel: str | None) -> None:
    """A ``--kernel`` name must be a kernel Jupyter knows: checked before anything is written."""
    if not kernel:
        return
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    specs = KernelSpecManager()
    try:
        specs.get_kernel_spec(kernel)
    except NoSuchKernel:
        known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        raise DerivaMLConfigurationError(
            f"No Jupyter kernel named {kernel!r} (installed: {known}); leave --kernel out to use this Python."
        ) from None


def _failed_cell(nb: Any) -> int | None:
    """The index of the first code cell with an error output."""
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return None


def _redact_outputs(nb: Any, secrets: Sequence[str]) -> None:
    """Secret values (and ``token=...`` pairs) in what the cells printed become ``***``."""
    from pytest_deriva._secrets import redact_text

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, secrets)
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for key in ("text", "traceback", "evalue"):
                if key in out:
                    out[key] = clean(out[key])
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    out["data"][mime] = clean(value)


def execute_notebook(
    path: Path,
    output: Path,
    env: Mapping[str, str],
    kernel: str | None = None,
    timeout: int | None = None,
    secrets: Sequence[str] = (),
) -> None:
    """Execute the notebook at ``path`` into ``output`` (also when a cell fails: as far as it ran),
    the ``secrets`` (values) and secret ``name=value`` pairs in its outputs redacted.

    Raises:
        NotebookCellError: a cell raised, the kernel died or a cell timed out.
    """
    __tracebackhide__ = True
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="pytest-deriva-kernel-") as tmp:
        km = _kernel_manager(Path(tmp), kernel)
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        client.owns_km = True  # so that nbclient shuts the kernel and its channels down when done
        error: NotebookCellError | None = None
        try:
            client.execute(env=dict(env))
        except CellExecutionError as e:
            index = _failed_cell(nb)
            where = f"Cell {index}" if index is not None else "A cell"
            detail = f"{where} failed: {e.ename}: {e.evalue}"
            tb = _ANSI.sub("", str(e))
            error = NotebookCellError(detail, f"{detail}\n{tb}")
        except (CellTimeoutError, DeadKernelError) as e:
            detail = f"{type(e).__name__}: {_ANSI.sub('', str(e)).strip().splitlines()[0]}"
            error = NotebookCellError(detail, _ANSI.sub("", str(e)))
        except Exception as e:  # the kernel did not start
            client.owns_km = False  # nothing to shut down (nbclient would wait for it at exit)
            raise DerivaMLConfigurationError(f"Cannot execute {path.name}: {type(e).__name__}: {e}") from e
        finally:
            _redact_outputs(nb, secrets)
            output.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, output)  # type: ignore[no-untyped-call]
    if error is not None:
        raise error


def _kernel_env(execution: Execution, path: Path, overrides: Sequence[str]) -> dict[str, str]:
    ml = execution.catalog
    catalog = ml.catalog.local_path or f"https://{ml.catalog.hostname}/ermrest/catalog/{ml.catalog.catalog_id}"
    workflow = execution.configuration.workflow
    env = {
        **os.environ,
        OVERRIDES_ENV: json.dumps(list(overrides)),
        RUNNER_ENV: json.dumps(
            {"catalog": str(catalog), "working_dir": str(ml.working_dir), "execution_rid": execution.execution_rid}
        ),
        "DERIVA_ML_NOTEBOOK_PATH": str(path),
        # DerivaML() and DerivaMLConfig() in the notebook open the runner's catalog.
        "DERIVA_CATALOG": str(catalog),
    }
    if workflow is not None and workflow.url:
        env["DERIVA_ML_WORKFLOW_URL"] = workflow.url
        env["DERIVA_ML_WORKFLOW_CHECKSUM"] = workflow.checksum or ""
    if isinstance(ml.credential, str | os.PathLike):  # a file name, never the secret itself
        env["DERIVA_CREDENTIAL_FILE"] = os.fspath(ml.credential)
    if execution.dry_run:
        env.pop(RUNNER_ENV)
        env["DERIVA_ML_DRY_RUN"] = "true"
    return env


def run_in(
    execution: Execution,
    path: Path,
    overrides: Sequence[str] = (),
    kernel: str | None = None,
    timeout: int | None = None,
    secrets: Sequence[str] = (),
) -> None:
    """Execute the notebook as ``execution`` (started, not ended), and register the executed
    notebook as its ``Notebook_Output``; the files the notebook registered are picked up.

    Raises:
        NotebookCellError: a cell failed (the notebook as far as it ran is registered).
    """
    __tracebackhide__ = True
    with tempfile.TemporaryDirectory(prefix="pytest-deriva-notebook-") as tmp:
        done = Path(tmp) / path.name
        try:
            execute_notebook(path, done, _kernel_env(execution, path, overrides), kernel, timeout, secrets)
        finally:
            # Registered once the kernel is gone: what it registered (and uploaded) is read again first.
            execution.refresh_manifest()
            if done.is_file():
                output = execution.asset_file_path(
                    "Execution_Asset", f"{path.stem}_output.ipynb", asset_types=["Notebook_Output"]
                )
                shutil.move(done, output)


def notebook_experiment(path: Path, kernel: str | None = None) -> Callable[..., None]:
    """The notebook as an experiment function for pytest (``experiment_*.ipynb``): it runs the
    notebook as the ``execution`` pytest-deriva gives it, and fails with the failing cell."""

    def experiment(execution: Execution) -> None:
        __tracebackhide__ = True
        run_in(execution, Path(path), (), kernel)

    experiment.__name__ = experiment.__qualname__ = Path(path).stem
    experiment.__doc__ = f"Notebook {Path(path).name}"
    return experiment


# -- the runner -----------------------------------------------------------------------------------
@dataclass
class NotebookRun:
    """What ``run_notebook_file`` recorded: each run's RID, status and detail, and the sweep's."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    sweep: SweepResult | None = None

    @property
    def failed(self) -> bool:
        return any(r["status"] != "Completed" for r in self.runs)


def _jobs(overrides: Sequence[str], multirun: bool, search_path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Each job's parameters, and the description of a named multirun (``+multirun=<name>``)."""
    from pytest_deriva.config.loading import load_configs
    from pytest_deriva.config.multirun import expand_multirun, parse_sweep

    named = None
    if any(o.lstrip("+").startswith("multirun=") for o in overrides):
        if str(search_path) not in sys.path:
            sys.path.insert(0, str(search_path))  # the notebook's configs package names the multirun
        load_configs("configs")
        _, spec = expand_multirun(overrides)
        named = spec.description if spec is not None else None
    jobs = parse_sweep(list(overrides))
    if not multirun and (len(jobs) > 1 or named is not None):
        raise DerivaMLConfigurationError(
            f"{' '.join(overrides)} is a sweep of {len(jobs)} job(s); add --multirun to run one child per job."
        )
    return jobs, named or None


def run_notebook_file(
    ml: DerivaML,
    notebook: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    *,
    multirun: bool = False,
    kernel: str | None = None,
    workflow_type: str | list[str] = DEFAULT_NOTEBOOK_WORKFLOW_TYPE,
    description: str | None = None,
    allow_dirty: bool = False,
    timeout: int | None = None,
    configuration: ExecutionConfiguration | None = None,
) -> NotebookRun:
    """Run a notebook as a tracked execution, or with ``multirun`` a sweep of them.

    Everything is checked (the notebook, the extra, the overrides, the workflow's git state)
    before anything is written. A failed cell does not raise: the run ends ``Failed``.
    """
    from pytest_deriva._secrets import redact_overrides, redact_text, secret_values
    from pytest_deriva.execution.configuration import ExecutionConfiguration
    from pytest_deriva.sweep import RunPlanner, RunSpec, new_plan_dir

    path = _check_notebook(Path(notebook))
    require_notebook_support()
    check_kernel(kernel)
    tokens = list(overrides)
    jobs, named = _jobs(tokens, multirun, path.parent)
    description = description or named
    workflow = notebook_workflow(ml, path, workflow_type, allow_dirty)
    config = configuration or ExecutionConfiguration(description=description or f"Notebook {path.name}")
    specs = [
        RunSpec(
            nodeid=f"{path}[{i}]",
            sweep_key=str(path),
            index=i,
            params=params,
            description=config.description,
            workflow=workflow,
            configuration=config,
            parametrized=multirun,
        )
        for i, params in enumerate(jobs)
    ]
    plan_dir = new_plan_dir()
    planner = RunPlanner(ml, plan_dir)
    result = NotebookRun()
    try:
        planned = planner.plan(specs)
        for spec in specs:
            exe = planner.execution_for(spec.nodeid)
            exe.execution_start()
            try:
                secrets = secret_values(spec.params)
                run_in(exe, path, job_overrides(tokens, spec.params), kernel, timeout, secrets)
                outcome = Outcome.completed()
            except NotebookCellError as e:
                # The failing cell and its traceback are the detail; an error may quote a secret.
                tb = redact_text(e.traceback, secrets)
                outcome = Outcome.failed(tb, traceback=tb)
            except KeyboardInterrupt:
                end_run(exe, Outcome.interrupted())
                raise
            except Exception as e:  # the kernel did not start, ...: the run says so, then the error
                end_run(exe, Outcome.failed(e))
                raise
            end_run(exe, outcome)
            run = planned[spec.nodeid]
            result.runs.append(
                {
                    "rid": exe.execution_rid,
                    "status": exe.status.value,
                    "detail": outcome.detail.splitlines()[0],
                    "parent": run.parent_rid,
                    "sequence": run.sequence,
                    "overrides": redact_overrides(job_overrides(tokens, spec.params)),
                }
            )
    finally:
        try:
            sweeps = planner.finish()
        except DerivaMLException:
            sweeps = []
        planner.cleanup()
    result.sweep = sweeps[0] if sweeps else None
    return result
