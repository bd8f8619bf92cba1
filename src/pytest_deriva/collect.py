"""Collection of experiments: ``experiment_*`` functions (and ``Experiment*`` classes) in
experiment files, with both signature styles working unchanged.

DerivaML model functions declare ``ml_instance=None, execution=None`` and give every
parameter a default; pytest treats arguments with defaults as non-fixtures and refuses to
parametrize them. The collector therefore hands pytest a *signature proxy*: the same
function, whose fixture arguments and parametrized arguments have no defaults. The proxy is
used only to compute fixtures and parameters; the call itself goes to the user's function
(``pytest_pyfunc_call`` in the plugin), with just the arguments it accepts.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pytest

__all__ = [
    "EXPERIMENT_CLASS_PREFIX",
    "EXPERIMENT_PREFIX",
    "FIXTURE_NAMES",
    "MARKER_KEYWORDS",
    "ExperimentClass",
    "ExperimentModule",
    "NotebookFile",
    "NotebookItem",
    "check_marker",
    "deriva_marker",
    "parametrized_names",
    "signature_proxy",
]

EXPERIMENT_PREFIX = "experiment_"
EXPERIMENT_CLASS_PREFIX = "Experiment"
FIXTURE_NAMES = ("ml_instance", "execution")


def deriva_marker(
    *,
    datasets: Sequence[Any] | None = None,
    assets: Sequence[Any] | None = None,
    workflow_type: str | Sequence[str] | None = None,
    description: str | None = None,
    dry_run: bool = False,
    config: str | None = None,
) -> None:
    """``@pytest.mark.deriva(...)``: the signature a marker's arguments are bound to (as
    pytest-django checks its markers), so that a misspelt keyword and a value of the wrong type
    fail the same clear way, at collection.

    Args:
        datasets: Input datasets: a list of RIDs, ``DatasetSpec`` objects or dicts.
        assets: Input assets: a list of RIDs, ``AssetSpec`` objects or dicts.
        workflow_type: A ``Workflow_Type`` term, or a list of them (default ``Training``).
        description: The execution's description (default: the docstring's first line).
        dry_run: Run without recording anything.
        config: The name of a hydra-zen config giving the experiment's parameters.
    """


MARKER_KEYWORDS = frozenset(inspect.signature(deriva_marker).parameters)


def _list_of(name: str, value: Any) -> None:
    from pytest_deriva.exceptions import DerivaMLInputError

    if value is None or (isinstance(value, Sequence) and not isinstance(value, str | bytes)):
        return
    shown = DerivaMLInputError.shown(value)
    example = shown if isinstance(value, str) else "'1-ABCD'"
    raise DerivaMLInputError(
        f"@pytest.mark.deriva({name}={shown}) takes a list, not a value of type {type(value).__name__}; "
        f"give a list, for example {name}=[{example}]."
    )


def _of_type(name: str, value: Any, kind: type, expected: str) -> None:
    from pytest_deriva.exceptions import DerivaMLInputError

    if value is not None and not isinstance(value, kind):
        raise DerivaMLInputError(
            f"@pytest.mark.deriva({name}={DerivaMLInputError.shown(value)}) takes {expected}, "
            f"not a value of type {type(value).__name__}."
        )


def check_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of one ``deriva`` marker, checked against :func:`deriva_marker`.

    Returns only the keywords given (the closest marker wins per keyword, so defaults are not
    filled in). Raises ``DerivaMLInputError`` naming the keyword, the value and what it takes.
    """
    from pytest_deriva.exceptions import DerivaMLInputError
    from pytest_deriva.execution.workflow import workflow_type_names

    if args:
        raise DerivaMLInputError(f"@pytest.mark.deriva takes keywords only, not {tuple(args)!r}.")
    unknown = sorted(set(kwargs) - MARKER_KEYWORDS)
    if unknown:
        raise DerivaMLInputError(
            f"unknown @pytest.mark.deriva keyword {', '.join(map(repr, unknown))}; "
            f"the keywords are {', '.join(sorted(MARKER_KEYWORDS))}."
        )
    _list_of("datasets", kwargs.get("datasets"))
    _list_of("assets", kwargs.get("assets"))
    if kwargs.get("workflow_type") is not None:
        workflow_type_names(kwargs["workflow_type"], "@pytest.mark.deriva workflow_type")
    _of_type("description", kwargs.get("description"), str, "a str")
    _of_type("dry_run", kwargs.get("dry_run"), bool, "True or False")
    _of_type("config", kwargs.get("config"), str, "the name of a config (a str)")
    return dict(kwargs)


class ExperimentModule(pytest.Module):
    """A module collected for its ``experiment_*`` functions and ``Experiment*`` classes."""

    def funcnamefilter(self, name: str) -> bool:
        return name.startswith(EXPERIMENT_PREFIX)

    def classnamefilter(self, name: str) -> bool:
        return name.startswith(EXPERIMENT_CLASS_PREFIX)


class NotebookItem(pytest.Function):
    """The run of an experiment notebook; reported as the notebook, not as a Python function."""

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class NotebookFile(pytest.File):
    """An experiment notebook (``experiment_*.ipynb``): one experiment, run in a Jupyter kernel.

    ``describe(collector, name, func, items)`` (the session's) makes the items' run specs."""

    describe: Callable[[pytest.Collector, str, Callable[..., Any], list[pytest.Item]], None] | None = None

    def collect(self) -> Iterable[pytest.Item]:
        from pytest_deriva.notebook import notebook_experiment

        func = notebook_experiment(self.path)
        items: list[pytest.Item] = [NotebookItem.from_parent(self, name=self.path.stem, callobj=func)]
        if self.describe is not None:
            self.describe(self, self.path.stem, func, items)
        return items


class ExperimentClass(pytest.Class):
    """A class of experiments: its ``experiment_*`` methods are collected."""

    def funcnamefilter(self, name: str) -> bool:
        return name.startswith(EXPERIMENT_PREFIX)


def parametrized_names(marks: Iterable[pytest.Mark]) -> set[str]:
    """Argument names that ``parametrize`` marks give values to."""
    names: set[str] = set()
    for mark in marks:
        if mark.name != "parametrize" or not mark.args:
            continue
        argnames = mark.args[0]
        if isinstance(argnames, str):
            names.update(a.strip() for a in argnames.split(",") if a.strip())
        else:
            names.update(str(a) for a in argnames)
    return names


def signature_proxy(
    func: Callable[..., Any],
    parametrized: set[str],
    is_method: bool,
    defaults: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """A stand-in for ``func`` whose signature asks pytest for what the experiment needs.

    Fixture and parametrized arguments lose their defaults; other defaulted arguments keep
    them (pytest leaves those alone), and arguments in ``defaults`` (values from a named config)
    get those as defaults; ``execution`` is always asked for, so that every experiment is tracked,
    including one that does not take it.
    """
    sig = inspect.signature(func)
    params: list[inspect.Parameter] = []
    for i, p in enumerate(sig.parameters.values()):
        if is_method and i == 0:
            params.append(p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD, default=inspect.Parameter.empty))
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if p.name in parametrized or p.name in FIXTURE_NAMES:
            p = p.replace(default=inspect.Parameter.empty)
        elif defaults and p.name in defaults:
            p = p.replace(default=defaults[p.name])  # given by a named config: not a fixture
        params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    if "execution" not in sig.parameters:
        params.append(inspect.Parameter("execution", inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(func)
    def proxy(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - pytest never calls it
        return func(*args, **kwargs)

    proxy.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return proxy


def accepted_kwargs(func: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``func`` accepts (all of them if it takes ``**kwargs``)."""
    sig = inspect.signature(func)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in sig.parameters}
