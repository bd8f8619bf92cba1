"""What an execution is configured with: ``ExecutionConfiguration``, ``AssetSpec``, ``AssetRID``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pytest_deriva._checked import CheckedModel
from pytest_deriva._rid import RID
from pytest_deriva.dataset.spec import DatasetSpec
from pytest_deriva.exceptions import DerivaMLInputError, DerivaMLValidationError
from pytest_deriva.execution.workflow import Workflow

__all__ = ["AssetRID", "AssetSpec", "ExecutionConfiguration"]


def _entries(value: Any, field: str, example: str) -> list[Any]:
    """The entries of a ``datasets``/``assets`` value: a list (or tuple, or Hydra ``ListConfig``).

    A lone string is refused rather than iterated: ``datasets='1-ABCD'`` would otherwise be six
    one-letter "RIDs". So is a lone mapping (its keys) and anything that is not a collection.
    """
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping | BaseModel) or not hasattr(value, "__iter__"):
        shown = DerivaMLInputError.shown(value)
        raise DerivaMLInputError(
            f"{field}={shown} ({type(value).__name__}) is not a list; give a list, for example "
            f"{field}=[{shown if isinstance(value, str) else example}]."
        )
    return list(value)


@dataclass
class AssetRID(str):
    """A RID string with a description. Deprecated: use :class:`AssetSpec`.

    >>> a = AssetRID("3RA", "Pretrained weights"); (str(a), a.description)
    ('3RA', 'Pretrained weights')
    """

    rid: str
    description: str = ""

    def __new__(cls, rid: str, description: str = "") -> AssetRID:
        obj = super().__new__(cls, rid)
        obj.description = description
        return obj


class AssetSpec(CheckedModel):
    """An input asset: its RID, role, and whether to cache the download by MD5 (``cache``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rid: RID
    asset_role: str = "Input"
    cache: bool = False

    @model_validator(mode="before")
    @classmethod
    def _check_bare_rid(cls, data: Any) -> Any:
        return {"rid": data} if isinstance(data, str) else data


class ExecutionConfiguration(CheckedModel):
    """Everything an execution is configured with: input datasets and assets, workflow, description.

    ``assets`` accepts plain RID strings, :class:`AssetRID`, :class:`AssetSpec`, dicts with
    ``rid``/``cache`` and Hydra ``DictConfig`` objects.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    datasets: list[DatasetSpec] = []
    assets: list[AssetSpec] = []
    workflow: Workflow | None = None
    description: str = ""
    argv: list[str] = Field(default_factory=lambda: list(sys.argv))
    config_choices: dict[str, str] = Field(default_factory=dict)

    @field_validator("datasets", mode="before")
    @classmethod
    def _validate_datasets(cls, value: Any) -> Any:
        entries = _entries(value, "datasets", "DatasetSpec(rid='1-ABCD', version='1.0.0')")
        return [dict(v) if isinstance(v, Mapping) and not isinstance(v, dict) else v for v in entries]

    @field_validator("assets", mode="before")
    @classmethod
    def validate_assets(cls, value: Any) -> Any:
        """Normalize asset entries to :class:`AssetSpec` objects."""
        result = []
        for v in _entries(value, "assets", "AssetSpec(rid='1-ABCD')"):
            if isinstance(v, AssetSpec):
                result.append(v)
            elif isinstance(v, AssetRID):
                result.append(AssetSpec(rid=v.rid))
            elif isinstance(v, str):
                result.append(AssetSpec(rid=v))
            elif isinstance(v, Mapping):  # dict, or an OmegaConf DictConfig from Hydra
                d = dict(v)
                if "rid" not in d:
                    raise DerivaMLValidationError(f"Asset entry {d!r} has no 'rid'; give {{'rid': '<RID>'}}.")
                result.append(AssetSpec(**d))
            elif hasattr(v, "rid"):
                result.append(AssetSpec(rid=v.rid, cache=getattr(v, "cache", False)))
            else:
                result.append(AssetSpec(rid=str(v)))
        return result

    @staticmethod
    def load_configuration(path: Path) -> ExecutionConfiguration:
        """Read an ``ExecutionConfiguration`` from a JSON file (such as an execution's ``configuration.json``).

        Raises:
            FileNotFoundError: If there is no such file.
            ValueError: If the file is not valid JSON.
            DerivaMLInputError: If it is not a configuration (a field of the wrong type or form).
        """
        with Path(path).open(encoding="utf-8") as fd:
            try:
                config = json.load(fd)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from e
        wf = config.get("workflow")
        if isinstance(wf, dict):
            # A recorded workflow already carries its URL and checksum: rebuild it without
            # looking at git again (the file may have changed since).
            config["workflow"] = Workflow.model_construct(**wf)
        return ExecutionConfiguration.model_validate(config)
