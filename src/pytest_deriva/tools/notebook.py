"""``pytest-deriva notebook run`` (and its upstream name ``deriva-ml-run-notebook``).

    pytest-deriva notebook run analysis.ipynb [OVERRIDES...] [--multirun] [--kernel K] [--catalog LOCATION]
    deriva-ml-run-notebook analysis.ipynb [OVERRIDES...] [--multirun] [--kernel K] [--catalog LOCATION]

Exit status 0 when every run completed, 1 when a run failed or the catalog refused, 2 for bad
arguments (a missing notebook, an override that does not parse, the notebooks extra missing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_deriva.exceptions import DerivaMLConfigurationError, DerivaMLDirtyWorkflowError, DerivaMLException

__all__ = ["add_arguments", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", metavar="NOTEBOOK.ipynb", help="the notebook to run")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="Hydra overrides for the notebook's run_notebook(...), e.g. lr=0.1 (with --multirun: lr=0.1,0.01)",
    )
    parser.add_argument("-m", "--multirun", action="store_true", help="a sweep: one child run per combination")
    parser.add_argument("--kernel", metavar="K", help="the Jupyter kernel to use (default: this Python's ipykernel)")
    parser.add_argument("--catalog", metavar="LOCATION", help="catalog folder or https://HOST/ermrest/catalog/ID")
    parser.add_argument("--credential", metavar="FILE", help="credential file for the server (deriva format)")
    parser.add_argument("--workflow-type", default="Analysis", metavar="TYPE", help="a Workflow_Type term")
    parser.add_argument("--description", metavar="TEXT", help="the execution's description")
    parser.add_argument("--allow-dirty", action="store_true", help="run a notebook with uncommitted changes")
    parser.add_argument("--timeout", type=int, metavar="SECONDS", help="stop a cell that runs longer")


def _refused(prog: str, error: DerivaMLException) -> int:
    """Say why, and the exit status: 2 for what the arguments can fix, 1 for the catalog's refusals."""
    hint = " Here: commit the notebook, or pass --allow-dirty." if isinstance(error, DerivaMLDirtyWorkflowError) else ""
    print(f"{prog}: {error}{hint}", file=sys.stderr)
    return 2 if isinstance(error, DerivaMLConfigurationError | DerivaMLDirtyWorkflowError) else 1


def run(args: argparse.Namespace, prog: str) -> int:
    from pytest_deriva.ml import DerivaML
    from pytest_deriva.notebook import require_notebook_support, run_notebook_file
    from pytest_deriva.tools.runs import UsageProblem, catalog_location

    try:
        require_notebook_support()
        location, _ = catalog_location(args.catalog)
    except UsageProblem as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except DerivaMLException as e:
        return _refused(prog, e)
    try:
        ml = DerivaML(location, credential=args.credential) if args.credential else DerivaML(location)
    except DerivaMLException as e:
        return _refused(prog, e)
    try:
        options = ("multirun", "kernel", "workflow_type", "description", "allow_dirty", "timeout")
        result = run_notebook_file(ml, args.notebook, args.overrides, **{k: getattr(args, k) for k in options})
    except DerivaMLException as e:
        return _refused(prog, e)
    finally:
        ml.catalog.close()
    if result.sweep is not None:
        s = result.sweep
        print(f"sweep {s.parent_rid} {s.status.value}: {s.detail}")
    for r in result.runs:
        where = f"  [{r['sequence']}] " if r["sequence"] is not None else ""
        print(f"{where}execution {r['rid']} {r['status']}: {r['detail']}  {' '.join(r['overrides'])}".rstrip())
    return 1 if result.failed else 0


def main(argv: Sequence[str] | None = None, prog: str = "deriva-ml-run-notebook") -> int:
    """``deriva-ml-run-notebook`` (the upstream name) and ``pytest-deriva notebook run``."""
    parser = argparse.ArgumentParser(prog=prog, description="Run a notebook as a tracked execution (pytest-deriva).")
    add_arguments(parser)
    return run(parser.parse_intermixed_args(argv), parser.prog)


if __name__ == "__main__":
    raise SystemExit(main())
