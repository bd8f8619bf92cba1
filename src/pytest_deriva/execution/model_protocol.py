"""The ``DerivaMLModel`` protocol: what a model function looks like to ``run_model`` and pytest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_deriva.execution.execution import Execution
    from pytest_deriva.ml import DerivaML

__all__ = ["DerivaMLModel"]


@runtime_checkable
class DerivaMLModel(Protocol):
    """A callable that takes ``ml_instance`` and ``execution`` keywords plus its own parameters.

    Example::

        def my_model(epochs: int = 10, ml_instance: DerivaML = None, execution: Execution = None) -> None:
            path = execution.asset_file_path("Execution_Asset", "model.pt")
            ...

        isinstance(my_model, DerivaMLModel)  # True
    """

    def __call__(self, *args: Any, ml_instance: DerivaML, execution: Execution, **kwargs: Any) -> None: ...
