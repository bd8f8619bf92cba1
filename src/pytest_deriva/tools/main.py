"""``pytest-deriva``: one command for everything that is not running experiments.

    pytest-deriva catalog create https://<host>            a new catalog, set up for DerivaML
    pytest-deriva catalog init https://<host>/ermrest/catalog/<id> | FOLDER
                                                          add what DerivaML needs, idempotently

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
    return parser


def _init(location: str, credential: str | None) -> list[str]:
    from pytest_deriva.catalog import connect
    from pytest_deriva.catalog.setup import init_catalog

    catalog = connect(location, credential=credential)
    try:
        return init_catalog(catalog)
    finally:
        catalog.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
