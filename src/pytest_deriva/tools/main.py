"""``pytest-deriva``: one command for everything that is not running experiments.

    pytest-deriva catalog create https://<host>            a new catalog, set up for DerivaML
    pytest-deriva catalog init https://<host>/ermrest/catalog/<id> | FOLDER
                                                          add what DerivaML needs, idempotently
    pytest-deriva runs [--status S] [--parent RID] [--param lr=0.1] [--metric 'acc>0.9'] ...
                                                          recent executions and sweeps
    pytest-deriva show RID                                everything about one run
    pytest-deriva compare PARENT_RID | RID RID...  [--sort METRIC] [--asc]
                                                          parameters x metrics x status x duration
    pytest-deriva ui [--port N] [--no-browser]            the same in a browser (local, read-only)
    pytest-deriva reproduce RID                           run it again from its recorded commit (in a
                                                          temporary git worktree); metric and
                                                          environment differences
    pytest-deriva notebook run NOTEBOOK.ipynb [OVERRIDES...] [--multirun] [--kernel K]
                                                          a notebook as a tracked run (or a sweep)
    pytest-deriva push https://<host>/ermrest/catalog/<id> [RID ...] [--catalog FOLDER] [--include-running]
                                                          copy runs recorded offline to a server, once

``runs``, ``show`` and ``compare`` print a table, or ``--json`` / ``--csv``; they read the catalog
named by ``--catalog``, else ``DERIVA_CATALOG``, else ``.deriva`` at the project root.

Credentials for a server come as the ``deriva`` package finds them, or from ``--credential FILE``
(or ``DERIVA_CREDENTIAL_FILE`` / ``DERIVA_TOKEN``). Exit status 0 on success, 1 when the catalog
refused or could not be reached (the message says why and what to do), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_deriva.exceptions import DerivaMLException

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-deriva",
        description="Set up and look at the catalogs pytest-deriva records experiments in.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    catalog = commands.add_parser("catalog", help="create or set up a catalog")
    actions = catalog.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a new catalog on a DERIVA server and set it up")
    create.add_argument("host", metavar="https://HOST", help="the server, e.g. https://www.example.org")
    init = actions.add_parser(
        "init", help="add the deriva-ml schema, tables, terms and annotations a catalog lacks (never drops)"
    )
    init.add_argument(
        "location", metavar="LOCATION", help="https://HOST/ermrest/catalog/ID, or a folder for an embedded store"
    )
    for p in (create, init):
        p.add_argument("--credential", metavar="FILE", help="credential file for the server (deriva format)")

    runs = commands.add_parser("runs", help="list recent executions and sweeps")
    runs.add_argument("--workflow", metavar="RID", help="of this workflow")
    runs.add_argument("--type", dest="workflow_type", metavar="TYPE", help="of this workflow type, e.g. Training")
    runs.add_argument(
        "--status", action="append", metavar="STATUS", help="with this status (repeat for any of several)"
    )
    runs.add_argument("--parent", metavar="RID", help="the children of this sweep")
    runs.add_argument("--since", metavar="WHEN", help="made at or after, e.g. 2026-12-01 or 2026-12-01T10:30")
    runs.add_argument("--until", metavar="WHEN", help="made at or before")
    runs.add_argument(
        "--param", action="append", metavar="COND", help="NAME=VALUE, NAME=V1,V2 or NAME>VALUE (also >=, <, <=, !=)"
    )
    runs.add_argument("--metric", action="append", metavar="COND", help="as --param, on a metric, e.g. 'acc>=0.9'")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="the last N (default 20; 0 for all)")
    show = commands.add_parser("show", help="everything about one execution")
    show.add_argument("rid", metavar="RID")
    compare = commands.add_parser("compare", help="compare a sweep's children, or the runs named")
    compare.add_argument("rids", nargs="+", metavar="RID", help="a sweep's parent, or two or more runs")
    compare.add_argument("--sort", metavar="METRIC", help="order by this metric and mark the best run")
    order = compare.add_mutually_exclusive_group()
    order.add_argument("--desc", dest="descending", action="store_true", default=True, help="highest first (default)")
    order.add_argument("--asc", dest="descending", action="store_false", help="lowest first (e.g. a loss)")
    ui = commands.add_parser("ui", help="look at the runs in a web browser (a local, read-only viewer)")
    ui.add_argument(
        "--port", type=int, metavar="N", help="port on 127.0.0.1 (default 8765, or a free one if taken; 0: any free)"
    )
    ui.add_argument("--no-browser", dest="browser", action="store_false", help="print the URL, open no browser")
    again = commands.add_parser(
        "reproduce", help="run a recorded experiment again from its recorded commit and compare the two runs"
    )
    again.add_argument("rid", metavar="RID")
    notebook = commands.add_parser("notebook", help="run a notebook as a tracked execution")
    nb_actions = notebook.add_subparsers(dest="action", required=True, metavar="ACTION")
    from pytest_deriva.tools.notebook import add_arguments

    add_arguments(nb_actions.add_parser("run", help="execute a notebook (or --multirun a sweep of it) and record it"))
    push = commands.add_parser(
        "push", help="copy runs of an embedded catalog to a DERIVA server catalog (each run once)"
    )
    push.add_argument("url", metavar="https://HOST/ermrest/catalog/ID", help="the server catalog")
    push.add_argument(
        "rids", nargs="*", metavar="RID", help="these executions and their children (default: all not pushed)"
    )
    push.add_argument("--catalog", metavar="FOLDER", help="the embedded catalog (default as for runs)")
    push.add_argument("--credential", metavar="FILE", help="credential file for the server (deriva format)")
    push.add_argument(
        "--include-running", action="store_true", help="also runs not finished or with files not uploaded"
    )
    pin = commands.add_parser(
        "pin", help="keep a server dataset version (its bag) for runs recorded offline in an embedded catalog"
    )
    pin.add_argument("url", metavar="https://HOST/ermrest/catalog/ID", help="the server catalog")
    pin.add_argument("dataset", metavar="RID[@VERSION]", help="the server's dataset, at a version (default: current)")
    pin.add_argument("--catalog", metavar="FOLDER", help="the embedded catalog (default as for runs)")
    pin.add_argument("--credential", metavar="FILE", help="credential file for the server (deriva format)")
    for p in (runs, show, compare, ui, again):
        p.add_argument("--catalog", metavar="LOCATION", help="catalog folder or https://HOST/ermrest/catalog/ID")
        p.add_argument("--credential", metavar="FILE", help="credential file for the server (deriva format)")
    for p in (runs, show, compare):
        fmt = p.add_mutually_exclusive_group()
        fmt.add_argument("--json", dest="format", action="store_const", const="json", default="table")
        fmt.add_argument("--csv", dest="format", action="store_const", const="csv")
    return parser


def _look(args: argparse.Namespace) -> str:
    from pytest_deriva.tools import runs

    ml = runs.open_catalog(args.catalog, args.credential)
    try:
        if args.command == "show":
            return runs.show(ml, args.rid, args.format)
        if args.command == "compare":
            return runs.compare(ml, args.rids, args.format, sort=args.sort, descending=args.descending)
        return runs.runs(
            ml,
            args.format,
            limit=args.limit or None,
            workflow=args.workflow,
            workflow_type=args.workflow_type,
            status=args.status,
            parent=args.parent,
            since=args.since,
            until=args.until,
            params=runs.parse_conditions(args.param, "param"),
            metrics=runs.parse_conditions(args.metric, "metric"),
        )
    finally:
        ml.catalog.close()


def _init(location: str, credential: str | None) -> list[str]:
    from pytest_deriva.catalog import connect
    from pytest_deriva.catalog.setup import init_catalog

    catalog = connect(location, credential=credential)
    try:
        return init_catalog(catalog)
    finally:
        catalog.close()


def _ui(args: argparse.Namespace) -> int:
    try:
        from pytest_deriva.tools.viewer import serve
    except ImportError as e:
        print(
            f"pytest-deriva ui needs Flask and plotly ({e.name} is missing): pip install 'pytest-deriva[ui]'",
            file=sys.stderr,
        )
        return 1
    from pytest_deriva.tools import runs

    try:
        ml = runs.open_catalog(args.catalog, args.credential)
        try:
            serve(ml, args.port, open_browser=args.browser)
        finally:
            ml.catalog.close()
    except DerivaMLException as e:
        print(f"pytest-deriva ui: {e}", file=sys.stderr)
        return 1
    return 0


def _push(args: argparse.Namespace) -> None:
    from pytest_deriva.execution.push import push
    from pytest_deriva.tools.runs import catalog_location

    folder, _ = catalog_location(args.catalog)

    def progress(line: str) -> None:
        print(line, flush=True)

    result = push(
        folder,
        args.url,
        args.rids,
        include_running=args.include_running,
        credential=args.credential,
        progress=progress,
    )
    for line in result.lines(terms=False):  # the terms were said as they were added
        print(line)


def _pin(args: argparse.Namespace) -> None:
    from pytest_deriva.tools.pin import pin
    from pytest_deriva.tools.runs import catalog_location

    folder, _ = catalog_location(args.catalog)
    rid, _, version = args.dataset.partition("@")
    for line in pin(folder, args.url, rid, version or None, credential=args.credential).lines():
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["notebook", "run"]:  # overrides may come before and after options
        from pytest_deriva.tools.notebook import main as run_notebook

        return run_notebook(argv[2:], prog="pytest-deriva notebook run")
    args = _parser().parse_args(argv)
    if args.command == "ui":
        return _ui(args)
    if args.command in ("runs", "show", "compare", "reproduce", "push", "pin"):
        from pytest_deriva.tools.runs import UsageProblem

        try:
            if args.command == "reproduce":
                from pytest_deriva.tools.reproduce import run

                return run(args.rid, args.catalog, args.credential)
            if args.command == "push":
                _push(args)  # prints as it goes
            elif args.command == "pin":
                _pin(args)
            else:
                print(_look(args))
        except UsageProblem as e:
            print(f"pytest-deriva {args.command}: {e}", file=sys.stderr)
            return 2
        except DerivaMLException as e:
            print(f"pytest-deriva {args.command}: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        if args.action == "create":
            from pytest_deriva.catalog.server import create_catalog

            url = create_catalog(args.host, credential=args.credential)
            print(f"created catalog {url}")
            for line in _init(url, args.credential):
                print(f"  {line}")
            print(f"use it with: pytest --deriva-run --deriva-catalog {url}")
        else:
            done = _init(args.location, args.credential)
            print(f"catalog {args.location}:")
            for line in done or ["nothing to do: it has everything DerivaML needs"]:
                print(f"  {line}")
    except DerivaMLException as e:
        print(f"pytest-deriva: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
