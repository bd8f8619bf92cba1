"""The ``DerivaMLModel`` protocol: what a model function looks like to ``run_model`` and pytest."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Protocol, _ProtocolMeta, runtime_checkable

if TYPE_CHECKING:
    from pytest_deriva.execution.execution import Execution
    from pytest_deriva.ml import DerivaML

__all__ = ["DerivaMLModel"]

#: The keywords ``run_model`` and the pytest plugin pass to every model function.
_INJECTED = ("ml_instance", "execution")
_BY_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _accepts_injected(obj: object) -> bool:
    """Whether ``obj`` can be called with ``ml_instance=`` and ``execution=`` keywords."""
    if not callable(obj):
        return False
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: nothing says they take the keywords
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return True
    by_keyword = {p.name for p in parameters if p.kind in _BY_KEYWORD}
    return all(name in by_keyword for name in _INJECTED)


# ``_ProtocolMeta`` is the metaclass of every Protocol (typeshed declares it); a protocol's own
# metaclass must derive from it.
class _ModelMeta(_ProtocolMeta):
    # A runtime-checkable protocol only checks that ``__call__`` exists, so upstream's
    # ``isinstance(f, DerivaMLModel)`` is true for every callable (issue 10, item 8). The
    # protocol's point is the two injected keywords, so the check looks at the signature.
    def __instancecheck__(cls, instance: Any) -> bool:
        if cls is DerivaMLModel:
            return _accepts_injected(instance)
        return super().__instancecheck__(instance)


@runtime_checkable
class DerivaMLModel(Protocol, metaclass=_ModelMeta):
    """A callable that takes ``ml_instance`` and ``execution`` keywords plus its own parameters.

    ``isinstance(f, DerivaMLModel)`` is true when ``f`` can be called with those two keywords:
    it names both as parameters that can be passed by keyword, or takes ``**kwargs``.

    Example::

        def my_model(epochs: int = 10, ml_instance: DerivaML = None, execution: Execution = None) -> None:
            path = execution.asset_file_path("Execution_Asset", "model.pt")
            ...

        isinstance(my_model, DerivaMLModel)  # True
        isinstance(lambda epochs: None, DerivaMLModel)  # False: run_model could not call it
    """

    def __call__(self, *args: Any, ml_instance: DerivaML, execution: Execution, **kwargs: Any) -> None: ...
