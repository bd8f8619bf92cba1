"""Named points in the run lifecycle where the crash tests kill the process.

``PYTEST_DERIVA_CRASH_AT=<point>`` makes the process ``SIGKILL`` itself when it reaches that
point, so ``tests/test_recovery.py`` can show what the catalog holds after a kill at each one
and that a recovery makes it true. Unset (always, outside those tests) it costs one dictionary
look-up.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crash_point"]

#: Every point, in lifecycle order.
POINTS = (
    "plan:rows",  # a run plan's Execution rows inserted, their metadata files not yet
    "plan:stored",  # the plan's metadata files stored, their rows not yet
    "run:started",  # an execution set Running
    "upload:stored",  # a run's files stored, their rows not yet
    "upload:recorded",  # a run's file rows recorded, its outcome not yet
)


def crash_point(name: str) -> None:
    """Die here, as a SIGKILL would, when the crash tests ask for ``name``."""
    if os.environ.get("PYTEST_DERIVA_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
