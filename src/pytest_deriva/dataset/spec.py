"""``DatasetSpec``: which dataset, at which version, an execution reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ConfigDict, field_validator, model_validator

from pytest_deriva._checked import CheckedModel
from pytest_deriva._rid import RID
from pytest_deriva.dataset.version import DatasetVersion

__all__ = ["DatasetSpec"]


class DatasetSpec(CheckedModel):
    """A dataset input: its RID, the version to read (``None``: the current one) and whether to
    fetch its files (``materialize``).

    ``version`` accepts ``"1.2.0"``, a :class:`DatasetVersion`, a 3-tuple or a
    ``{"major", "minor", "patch"}`` dict and is kept as the text ``"1.2.0"``. A bad value is a
    :class:`~pytest_deriva.exceptions.DerivaMLInputError` naming the field and the value.

    >>> DatasetSpec(rid="1-ABCD", version=(1, 2, 0)).version
    '1.2.0'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rid: RID
    version: str | None = None
    materialize: bool = True
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _bare_rid(cls, data: Any) -> Any:
        return {"rid": data} if isinstance(data, str) else data

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, Mapping):  # also OmegaConf's DictConfig
            v = dict(v)
        elif isinstance(v, Sequence) and not isinstance(v, str):  # also OmegaConf's ListConfig
            v = list(v)
        elif not isinstance(v, DatasetVersion | str):
            v = str(v)
        return str(DatasetVersion.parse(v))

    @property
    def dataset_version(self) -> DatasetVersion | None:
        """The version as a :class:`DatasetVersion` (``None``: the current one)."""
        return None if self.version is None else DatasetVersion.parse(self.version)
