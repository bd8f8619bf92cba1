"""Loading a project's config package and reading the hydra-zen store.

- :func:`load_configs` imports every module of a ``configs`` package (each registers configs
  with the hydra-zen store as it is imported), ``experiments`` last.
- :func:`config_groups` lists the store: group -> option names.
- :func:`resolve_experiment` / :func:`experiment_parameters` compose a named experiment (or
  model config) with Hydra and return the model function's keyword arguments, for
  ``@pytest.mark.deriva(config="cifar10_quick")``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import pkgutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_deriva.exceptions import DerivaMLConfigurationError

__all__ = [
    "ResolvedExperiment",
    "config_groups",
    "experiment_parameters",
    "load_configs",
    "model_function",
    "model_keywords",
    "resolve_experiment",
]

#: Config groups a DerivaML app has; ``experiment`` configs select options of the others.
EXPERIMENT_GROUP = "experiment"
#: The description of a run whose configuration gives none (as upstream).
DEFAULT_DESCRIPTION = "Model execution"
MODEL_GROUP = "model_config"
DEFAULT_CONFIG_NAME = "deriva_model"
#: Keyword arguments ``run_model`` passes to the model itself: never configuration.
INJECTED = frozenset({"ml_instance", "execution"})


def load_configs(package_name: str = "configs") -> list[str]:
    """Import every module of the config package ``package_name``, recursing into subpackages.

    Each module registers its configurations (hydra-zen ``store(...)``, ``multirun_config``,
    ``notebook_config``) as it is imported. Modules load in name order, then subpackages, and a
    module called ``experiments`` last, because experiments refer to the other groups' options.

    Returns:
        The names of the modules loaded, sorted; ``[]`` if there is no such package.

    Raises:
        ImportError: a config module (or the package's own ``__init__``) fails to import; only
            a package that does not exist at all gives ``[]``.
    """
    try:
        package = importlib.import_module(package_name)
    except ModuleNotFoundError as e:
        # Only the package itself missing is "no configs"; a config module importing something
        # that is not installed is an error to show, not to hide (upstream hides it).
        if e.name is not None and (package_name == e.name or package_name.startswith(e.name + ".")):
            return []
        raise
    paths = list(getattr(package, "__path__", []))
    if not paths:
        return [package_name]
    modules: list[str] = []
    subpackages: list[str] = []
    for info in pkgutil.iter_modules(paths):
        (subpackages if info.ispkg else modules).append(info.name)
    modules.sort()
    last = [m for m in modules if m == "experiments"]
    loaded: list[str] = []
    for name in [m for m in modules if m != "experiments"]:
        importlib.import_module(f"{package_name}.{name}")
        loaded.append(f"{package_name}.{name}")
    for name in sorted(subpackages):
        loaded += load_configs(f"{package_name}.{name}")
    for name in last:
        importlib.import_module(f"{package_name}.{name}")
        loaded.append(f"{package_name}.{name}")
    return sorted(loaded)


def config_groups() -> dict[str, list[str]]:
    """The hydra-zen store as ``{group: [option, ...]}``; top-level configs under ``""``."""
    from hydra_zen import store

    groups: dict[str, list[str]] = {}
    for entry in store:
        names = groups.setdefault(entry["group"] or "", [])
        if entry["name"] not in names:
            names.append(entry["name"])
    return {g: sorted(n) for g, n in sorted(groups.items())}


def model_function(model: Any) -> Any:
    """The function a model config calls (through ``functools.partial`` layers)."""
    while isinstance(model, functools.partial):
        model = model.func
    return model


def model_keywords(model: Any) -> dict[str, Any]:
    """The keyword arguments bound in a model config (a ``functools.partial``), innermost first."""
    layers: list[functools.partial[Any]] = []
    while isinstance(model, functools.partial):
        layers.append(model)
        model = model.func
    kwargs: dict[str, Any] = {}
    for layer in reversed(layers):
        kwargs.update(layer.keywords)
    return kwargs


@dataclass
class ResolvedExperiment:
    """A named experiment or model config, composed by Hydra and instantiated.

    Attributes:
        name: The name asked for.
        group: ``experiment`` or ``model_config``: where the name was found.
        parameters: The model function's keyword arguments (``ml_instance``/``execution`` left out).
        model: The model function.
        description: The experiment's description (else the model config's ``zen_meta`` one).
        datasets: The ``datasets`` the experiment selects, instantiated.
        assets: The ``assets`` the experiment selects, instantiated.
        config_choices: The option chosen in each config group.
        overrides: The Hydra overrides that select it (``+experiment=...`` or ``model_config=...``).
    """

    name: str
    group: str
    parameters: dict[str, Any]
    model: Any
    description: str = ""
    datasets: list[Any] = field(default_factory=list)
    assets: list[Any] = field(default_factory=list)
    config_choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)


def _unknown(name: str, groups: dict[str, list[str]]) -> DerivaMLConfigurationError:
    known = groups.get(EXPERIMENT_GROUP, []) + groups.get(MODEL_GROUP, [])
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return DerivaMLConfigurationError(
        f"No experiment or model config named {name!r}.{hint} "
        f"Experiments: {', '.join(groups.get(EXPERIMENT_GROUP, [])) or '(none)'}; "
        f"model configs: {', '.join(groups.get(MODEL_GROUP, [])) or '(none)'}. "
        "Register them in the config package (configs/experiments.py, configs/<model>.py) and load it."
    )


def _compose(config_name: str, overrides: list[str]) -> Any:
    from hydra import compose, initialize
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    try:
        if GlobalHydra.instance().is_initialized():  # inside a running Hydra app
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        with initialize(version_base="1.3", config_path=None):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except HydraException as e:
        raise DerivaMLConfigurationError(f"Cannot compose {config_name!r} with {overrides}: {e}") from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def resolve_experiment(
    name: str,
    config_package: str | None = None,
    *,
    config_name: str = DEFAULT_CONFIG_NAME,
    overrides: Sequence[str] = (),
) -> ResolvedExperiment:
    """Compose the experiment (``experiment`` group) or model config (``model_config`` group)
    called ``name`` and instantiate what it selects.

    With a main config ``config_name`` in the store (as ``create_model_config`` makes it),
    Hydra composes it with ``+experiment=<name>`` (or ``model_config=<name>``) and ``overrides``,
    so an experiment's overrides of the model config apply. Without one, a model config is
    read from the store as it is.

    Raises:
        DerivaMLConfigurationError: no such name (listing the experiments and model configs),
            or Hydra cannot compose it.
    """
    from hydra_zen import instantiate, store
    from omegaconf import OmegaConf

    if config_package is not None:
        load_configs(config_package)
    groups = config_groups()
    if name in groups.get(EXPERIMENT_GROUP, []):
        group, selection = EXPERIMENT_GROUP, [f"+{EXPERIMENT_GROUP}={name}"]
    elif name in groups.get(MODEL_GROUP, []):
        group, selection = MODEL_GROUP, [f"{MODEL_GROUP}={name}"]
    else:
        raise _unknown(name, groups)

    has_main = config_name in groups.get("", [])
    if has_main:
        store.add_to_hydra_store(overwrite_ok=True)
        cfg = _compose(config_name, [*selection, *overrides])
        choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if v is not None and not k.startswith("hydra/")}
        node = cfg.get(MODEL_GROUP)
        if node is None:
            raise DerivaMLConfigurationError(f"Config {config_name!r} with {selection[0]} has no {MODEL_GROUP}.")
        model = instantiate(node, _convert_="all")
        description = str(cfg.get("description") or "")
        datasets = _as_list(instantiate(cfg.datasets, _convert_="all")) if cfg.get("datasets") is not None else []
        assets = _as_list(instantiate(cfg.assets, _convert_="all")) if cfg.get("assets") is not None else []
    elif group == MODEL_GROUP:
        node = OmegaConf.structured(store[MODEL_GROUP][(MODEL_GROUP, name)])
        model = instantiate(node, _convert_="all")
        description, datasets, assets, choices = "", [], [], {MODEL_GROUP: name}
    else:
        raise DerivaMLConfigurationError(
            f"Experiment {name!r} selects options of the main config, but there is no main config "
            f"{config_name!r} in the store: register create_model_config() as {config_name!r}."
        )
    if group == MODEL_GROUP or not description or description == _default_description():
        meta = OmegaConf.select(node, "description", default=None)
        description = str(meta) if meta else description
    if not callable(model):
        raise DerivaMLConfigurationError(
            f"{MODEL_GROUP} {name!r} does not instantiate to a callable (got {type(model).__name__}); "
            "build it with builds(my_model, ..., zen_partial=True)."
        )
    parameters = {k: v for k, v in model_keywords(model).items() if k not in INJECTED}
    return ResolvedExperiment(
        name=name,
        group=group,
        parameters=parameters,
        model=model_function(model),
        description=description,
        datasets=datasets,
        assets=assets,
        config_choices=choices,
        overrides=selection,
    )


def _default_description() -> str:
    return DEFAULT_DESCRIPTION


def experiment_parameters(name: str, config_package: str | None = None) -> dict[str, Any]:
    """The parameters of the experiment or model config ``name``, as the model function's
    keyword arguments (``{"epochs": 3, "learning_rate": 0.001}``).

    ``config_package`` (e.g. ``"configs"``) is loaded first with :func:`load_configs`. This is
    what ``@pytest.mark.deriva(config="cifar10_quick")`` runs an experiment with.

    Raises:
        DerivaMLConfigurationError: see :func:`resolve_experiment`.
    """
    return resolve_experiment(name, config_package).parameters
