"""Named points in the run lifecycle where the crash tests kill the process.

``PYTEST_DERIVA_CRASH_AT=<point>`` makes the process ``SIGKILL`` itself when it reaches that
point, so ``tests/test_recovery.py`` can show what the catalog holds after a kill at each one
and that a recovery makes it true. Unset (always, outside those tests) it costs one dictionary
look-up.
"""

from __future__ import annotations

import os
import signal

__all__ = ["DATA_PUSH_POINTS", "POINTS", "PUSH_POINTS", "crash_point"]

#: Every point, in lifecycle order.
POINTS = (
    "plan:rows",  # a run plan's Execution rows inserted, their metadata files not yet
    "plan:stored",  # the plan's metadata files stored, their rows not yet
    "run:started",  # an execution set Running
    "upload:stored",  # a run's files stored, their rows not yet
    "upload:recorded",  # a run's file rows recorded, its outcome not yet
)

#: The points of ``pytest-deriva push``, in the order a push passes them.
PUSH_POINTS = (
    "push:leased:Workflow",  # a workflow's RID leased on the server, not yet reserved in Push_Origin
    "push:reserved:Workflow",  # its RID reserved in Push_Origin, its row not inserted yet
    "push:inserted:Workflow",  # a workflow's row inserted on the server, the local mapping not written yet
    "push:leased:Execution",  # executions' RIDs leased, not yet reserved
    "push:reserved:Execution",  # their RIDs reserved, their rows not inserted yet
    "push:inserted:Execution",  # executions' rows inserted, the local mapping not written yet
    "push:stored",  # an asset table's files stored in Hatrac, their rows not inserted yet
    "push:linked",  # an execution's files, links and index rows on the server, not yet marked pushed
)

#: The points a push passes only for runs with datasets or features, in that order.
DATA_PUSH_POINTS = (
    "push:reserved:Dataset",  # a dataset's RID reserved, its row not inserted yet
    "push:inserted:Dataset",  # a dataset's row inserted, its types and versions not yet
    "push:rows",  # rows of a domain or feature table inserted, the local mapping not written yet
    "push:members",  # a version's members on the server, the version not recorded yet
)


def crash_point(name: str) -> None:
    """Die here, as a SIGKILL would, when the crash tests ask for ``name``."""
    if os.environ.get("PYTEST_DERIVA_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
