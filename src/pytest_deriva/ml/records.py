"""Small value types the ``DerivaML`` handle returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from pytest_deriva.catalog.model import Table

__all__ = ["Asset", "ResolveRidResult", "VocabularyTerm"]


class VocabularyTerm(BaseModel):
    """A term of a controlled vocabulary."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    description: str = ""
    synonyms: list[str] = []
    id: str | None = None
    uri: str | None = None
    rid: str | None = None

    @classmethod
    def _from_row(cls, row: dict[str, Any]) -> VocabularyTerm:
        return cls(
            name=row["Name"],
            description=row.get("Description") or "",
            synonyms=list(row.get("Synonyms") or []),
            id=row.get("ID"),
            uri=row.get("URI"),
            rid=row.get("RID"),
        )


@dataclass(frozen=True)
class ResolveRidResult:
    """Where a RID lives: its table (a model :class:`Table`, with ``.name`` and ``.schema.name``)."""

    rid: str
    table: Table

    @property
    def schema(self) -> str:
        return self.table.schema.name

    @property
    def table_name(self) -> str:
        return self.table.name


@dataclass
class Asset:
    """A row of an asset table: the file's name, URL, size and checksum, and its types."""

    asset_rid: str
    asset_table: str
    filename: str | None
    url: str
    length: int
    md5: str
    description: str | None = None
    asset_types: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    schema: str = ""

    @property
    def rid(self) -> str:
        return self.asset_rid
