"""Hooks pytest-deriva calls, for plugins and ``conftest.py`` files to implement.

Registered with ``pytest_addhooks``; implement them like any pytest hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_deriva.execution import Execution
    from pytest_deriva.execution.sweep import SweepResult
    from pytest_deriva.ml import DerivaML


@pytest.hookspec(firstresult=True)
def pytest_deriva_ml_instance(config: pytest.Config, catalog: str) -> DerivaML | None:
    """Supply the ``ml_instance`` handle for the session (the first non-None answer wins).

    ``catalog`` is the location the options chose. Example, in ``conftest.py``::

        def pytest_deriva_ml_instance(config, catalog):
            from my_project import EyeAI          # a DerivaML subclass
            return EyeAI(catalog, domain_schema="eye-ai")
    """


def pytest_deriva_execution_created(item: pytest.Item, execution: Execution) -> None:
    """An experiment's execution is about to start (status ``Running`` next).

    Example::

        def pytest_deriva_execution_created(item, execution):
            print(f"{item.nodeid} records as {execution.execution_rid}")
    """


def pytest_deriva_execution_finished(item: pytest.Item, execution: Execution, report: pytest.TestReport | None) -> None:
    """An experiment's execution has its final status and its outputs are uploaded.

    ``report`` is the report of the call phase (None if the call never ran). Example::

        def pytest_deriva_execution_finished(item, execution, report):
            if report is not None and report.failed:
                notify(f"{execution.execution_rid} failed")
    """


def pytest_deriva_sweep_finished(config: pytest.Config, result: SweepResult) -> None:
    """A sweep's parent is closed: ``result.status``, ``result.detail`` and its children.

    Called once per sweep, in the controlling process (also under pytest-xdist). Example::

        def pytest_deriva_sweep_finished(config, result):
            print(result.parent_rid, result.detail)   # "3 of 4 completed, 1 failed"
    """
