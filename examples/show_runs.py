"""Print what the catalog recorded: the latest sweep (parent and children) with their files.

python examples/show_runs.py            # the embedded catalog in .deriva/ at the project root
python examples/show_runs.py RID        # one execution and its children
"""

from __future__ import annotations

import sys

from pytest_deriva import DerivaML


def show(ml: DerivaML, rid: str) -> None:
    """Print an execution and its children as the catalog records them."""
    record = ml.lookup_execution(rid)
    wf = record.workflow
    print(f"Catalog:   {ml.catalog.uri}")
    print(f"Workflow:  {wf.rid if wf else '-'}  {wf.url if wf else ''}")
    print(f"Execution: {record.rid}  {record.status.value}  {record.duration}  {record.description!r}")
    print(f"           {record.status_detail}")
    for child in record.list_nested_executions():
        print(f"  child {child.rid}  {child.status.value}  {child.duration}  {child.description!r}")
        for asset in child.list_assets(asset_role="Output"):
            print(
                f"    {asset.asset_table}/{asset.filename:<42} {asset.length:>8} B"
                f"  md5 {asset.md5}  {asset.asset_types}"
            )


def latest_parent(ml: DerivaML) -> str | None:
    """The most recent execution that has children."""
    for record in reversed(ml.find_executions()):
        if record.is_parent():
            return record.execution_rid
    return None


def main(argv: list[str]) -> int:
    ml = DerivaML()
    rid = argv[0] if argv else latest_parent(ml)
    if rid is None:
        print(f"No sweep recorded yet in {ml.catalog.uri}.")
        return 1
    show(ml, rid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
