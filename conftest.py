"""Root conftest: the test suite lives in tests/; examples and benchmarks are not tests."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # examples/ holds experiments for `pytest --deriva-run examples/experiments`; plain pytest
    # runs of the suite must not pick up its files, nor the benchmarks'.
    if config.getoption("deriva_run", default=False):
        return None
    if collection_path.parent == _HERE and collection_path.name in ("examples", "benchmarks"):
        return True
    return None
