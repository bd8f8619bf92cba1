"""Building blocks of a hydra-zen configured DerivaML project.

- :class:`BaseConfig`: the fields every DerivaML app config has (``deriva_ml``, ``datasets``,
  ``assets``, ``dry_run``, ``description``, ``config_choices``, ``script_config``).
- :class:`DescribedList` and :func:`with_description`: a list config value with a description.
- :class:`AssetSpecConfig`: a hydra-zen config of :class:`~pytest_deriva.AssetSpec`.
- :data:`DerivaBaseConfig`: ``builds(BaseConfig)`` with the standard defaults, stored as
  ``deriva_base``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra_zen import builds, hydrated_dataclass, store

from pytest_deriva.execution.configuration import AssetSpec

__all__ = [
    "AssetSpecConfig",
    "BaseConfig",
    "DerivaBaseConfig",
    "DescribedList",
    "base_defaults",
    "with_description",
]

#: The defaults list of a DerivaML app: one option of each standard config group.
base_defaults: list[Any] = [
    "_self_",
    {"deriva_ml": "default_deriva"},
    {"datasets": "default_dataset"},
    {"assets": "default_asset"},
    {"workflow": "default_workflow"},
    {"model_config": "default_model"},
]


@dataclass
class BaseConfig:
    """The configuration shared by scripts and notebooks; project configs inherit from it.

    Fields are typed ``Any`` because their runtime values (``DerivaMLConfig``, ``DatasetSpec``)
    are pydantic models, which OmegaConf structured configs cannot hold.

    Attributes:
        deriva_ml: The catalog to use (a :class:`~pytest_deriva.config.DerivaMLConfig` at run time).
        datasets: Input datasets (``list[DatasetSpec]`` at run time).
        assets: Input assets (RIDs or :class:`~pytest_deriva.AssetSpec`).
        dry_run: Run without writing to the catalog.
        description: What this run is.
        config_choices: The option chosen in each config group (``{"model_config": "quick"}``),
            filled in from Hydra by :func:`get_notebook_configuration` and ``run_model``.
        script_config: A callable run instead of the model (see ``run_model``).

    Example::

        @dataclass
        class MyConfig(BaseConfig):
            learning_rate: float = 0.001
            epochs: int = 10
    """

    deriva_ml: Any = None
    datasets: Any = None
    assets: Any = None
    dry_run: bool = False
    description: str = ""
    config_choices: dict[str, str] = field(default_factory=dict)
    script_config: Any = None


class DescribedList(list[Any]):
    """A list with a ``description``: config values (asset RIDs, dataset specs) that document
    themselves and are used exactly like a list.

    >>> d = DescribedList(["3WMG", "3XPA"], description="Model weights"); (d[0], len(d), d.description)
    ('3WMG', 2, 'Model weights')
    """

    def __init__(self, items: list[Any] | None = None, description: str = "") -> None:
        super().__init__(items or [])
        self.description = description

    def __repr__(self) -> str:
        if self.description:
            return f"DescribedList({list(self)!r}, description={self.description!r})"
        return f"DescribedList({list(self)!r})"


# hydra_convert="all": the items reach DescribedList as plain lists and dicts, not OmegaConf nodes.
_DescribedListConfig = builds(DescribedList, populate_full_signature=True, hydra_convert="all")


def with_description(items: list[Any], description: str) -> Any:
    """A hydra-zen config of ``items`` that instantiates to a :class:`DescribedList`.

    Example::

        store(group="assets")(with_description(["3WMG", "3XPA"], "Weights of two runs"), name="weights")
        store(group="datasets")(
            with_description([DatasetSpecConfig(rid="28CT", version="0.21.0")], "CIFAR-10, 10k images"),
            name="cifar10_complete",
        )

    For a model config built with ``builds()``, describe it with ``zen_meta={"description": ...}``.
    """
    return _DescribedListConfig(items=list(items), description=description)


@hydrated_dataclass(AssetSpec)
class AssetSpecConfig:
    """A hydra-zen config of :class:`~pytest_deriva.AssetSpec`, for assets that should be cached::

    store(group="assets")([AssetSpecConfig(rid="6-EPNR", cache=True)], name="cached_weights")
    """

    rid: str
    cache: bool = False


#: ``builds(BaseConfig)`` with :data:`base_defaults`, stored as ``deriva_base``: the parent of
#: configurations that need only the standard fields.
DerivaBaseConfig: Any = builds(BaseConfig, populate_full_signature=True, hydra_defaults=base_defaults)
store(DerivaBaseConfig, name="deriva_base")
