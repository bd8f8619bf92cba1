"""``DatasetSpec``: which dataset, at which version, an execution reads."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from pytest_deriva._rid import RID

__all__ = ["DatasetSpec"]


class DatasetSpec(BaseModel):
    """A dataset input: its RID, the version to read (``None``: the current one) and whether to
    fetch its files (``materialize``)."""

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
        return None if v is None else str(v)
