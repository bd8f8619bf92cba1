"""Root conftest: keeps the project's own catalog and the developer's environment out of tests."""

from __future__ import annotations

collect_ignore = ["examples", "benchmarks"]
