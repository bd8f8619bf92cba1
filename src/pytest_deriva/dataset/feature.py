"""Features: values an execution attaches to rows of a table, one table per feature.

A feature ``Digit_Label`` of table ``Image`` is the table ``Execution_Image_Digit_Label`` with
columns ``Execution``, ``Image`` (the row described), ``Feature_Name`` and value columns: terms
(foreign keys to a vocabulary's ``Name``), assets (foreign keys to an asset table's ``RID``) and
plain columns. :class:`FeatureRecord` classes are pydantic models made from such a table::

    feature = ml.create_feature("Image", "Digit_Label", terms=["Digit"])
    Label = feature.feature_record_class()
    exe.add_features([Label(Image=rid, Digit="7")])     # staged; written at upload
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from pytest_deriva._rid import RID
from pytest_deriva.catalog.model import SYSTEM_COLUMNS, Column, Model, Table
from pytest_deriva.exceptions import DerivaMLValidationError

if TYPE_CHECKING:
    from pytest_deriva.ml.deriva_ml import DerivaML

__all__ = ["Feature", "FeatureRecord", "feature_table_definition", "find_features"]

_FIXED_COLUMNS = frozenset({"Execution", "Feature_Name"})
_PY_TYPES: dict[str, Any] = {
    "text": str,
    "int2": int,
    "int4": int,
    "int8": int,
    "serial2": int,
    "serial4": int,
    "serial8": int,
    "float4": float,
    "float8": float,
    "numeric": float,
    "boolean": bool,
    "json": Any,
    "jsonb": Any,
    "array": list[Any],
}


class FeatureRecord(BaseModel):
    """One value of a feature. Subclasses are made by :meth:`Feature.feature_record_class`.

    ``Execution`` is set by ``execution.add_features``; ``Feature_Name`` defaults to the
    feature's name. Construction checks each value's type and each term against its vocabulary
    and raises :class:`~pytest_deriva.DerivaMLValidationError` (or ``DerivaMLInvalidTerm``)
    naming the column, the value and what it should be.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    Execution: RID | None = None
    Feature_Name: str
    feature: ClassVar[Feature | None] = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise DerivaMLValidationError(_explain(type(self), e)) from e

    @model_validator(mode="after")
    def _check_terms(self) -> FeatureRecord:
        feature = type(self).feature
        if feature is None:
            return self
        if self.Feature_Name != feature.feature_name:
            raise DerivaMLValidationError(
                f"Feature_Name {self.Feature_Name!r} does not match the feature {feature.feature_name!r}; leave it out."
            )
        for col in feature.term_columns:
            value = getattr(self, col.name)
            if value is not None:
                vocab = feature._referenced_table(col)
                # lookup_term raises DerivaMLInvalidTerm naming the vocabulary and its terms.
                setattr(self, col.name, feature._ml.lookup_term(vocab, str(value)).name)
        return self

    @classmethod
    def feature_columns(cls) -> set[Column]:
        """The value columns (terms, assets, plain)."""
        return set(cls._feature().feature_columns)

    @classmethod
    def asset_columns(cls) -> set[Column]:
        return set(cls._feature().asset_columns)

    @classmethod
    def term_columns(cls) -> set[Column]:
        return set(cls._feature().term_columns)

    @classmethod
    def value_columns(cls) -> set[Column]:
        return set(cls._feature().value_columns)

    @classmethod
    def _feature(cls) -> Feature:
        if cls.feature is None:
            raise DerivaMLValidationError(
                "FeatureRecord itself names no feature; make records with ml.feature_record_class(table, name)."
            )
        return cls.feature


def _explain(cls: type[FeatureRecord], e: ValidationError) -> str:
    feature = cls.feature
    what = f"feature {feature.feature_name!r} of {feature.target_table.name}" if feature else cls.__name__
    problems = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(record)"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(n for n in cls.model_fields if n != "Execution")
            problems.append(f"{loc} is not a column of it (columns: {allowed})")
        elif err["type"] == "missing":
            problems.append(f"{loc} is required")
        else:
            problems.append(f"{loc}={err.get('input')!r}: {err['msg']}")
    return f"Invalid value for {what}: {'; '.join(problems)}."


class Feature:
    """A feature table and the roles of its columns.

    Attributes:
        feature_table: The ``Execution_<Target>_<Feature>`` table.
        target_table: The table whose rows the values describe.
        feature_name: The ``Feature_Name`` term.
        feature_columns, term_columns, asset_columns, value_columns: Value columns by role
            (``value_columns`` are the plain ones).
    """

    def __init__(self, ml: DerivaML, feature_table: Table, target_table: Table, feature_name: str) -> None:
        self._ml = ml
        self.feature_table = feature_table
        self.target_table = target_table
        self.feature_name = feature_name
        model = feature_table.schema.model
        self.feature_columns: list[Column] = [
            c
            for c in feature_table.columns.values()
            if c.name not in SYSTEM_COLUMNS | _FIXED_COLUMNS and c.name != target_table.name
        ]
        self.term_columns: list[Column] = []
        self.asset_columns: list[Column] = []
        for c in self.feature_columns:
            ref = _single_fkey_target(feature_table, c)
            if ref is not None and model.is_vocabulary(ref):
                self.term_columns.append(c)
            elif ref is not None and model.is_asset(ref):
                self.asset_columns.append(c)
        roles = {id(c) for c in self.term_columns + self.asset_columns}
        self.value_columns: list[Column] = [c for c in self.feature_columns if id(c) not in roles]
        self._record_class: type[FeatureRecord] | None = None

    def _referenced_table(self, col: Column) -> Table:
        ref = _single_fkey_target(self.feature_table, col)
        assert ref is not None
        return ref

    def feature_record_class(self) -> type[FeatureRecord]:
        """A pydantic :class:`FeatureRecord` subclass with a typed field per column.

        The target column is a required RID, terms are ``str`` (checked against the vocabulary),
        assets are ``str | Path`` (a file registered with ``asset_file_path`` in the execution that
        adds the value, or the RID of an existing asset), plain columns have their column's type.
        Nullable columns are optional.
        """
        if self._record_class is not None:
            return self._record_class
        asset_ids = {id(c) for c in self.asset_columns}
        fields: dict[str, Any] = {}
        for c in self.feature_columns:
            py: Any = str | Path if id(c) in asset_ids else _PY_TYPES.get(c.base_typename, str)
            fields[c.name] = (py | None, None) if c.nullok else (py, ...)
        fields["Feature_Name"] = (str, self.feature_name)
        fields[self.target_table.name] = (RID, ...)
        doc = f"A value of feature {self.feature_name} of table {self.target_table.name}: " + ", ".join(fields)
        model = create_model(
            f"{self.target_table.name}Feature{self.feature_name}",
            __base__=FeatureRecord,
            __doc__=doc,
            **fields,
        )
        cls = cast("type[FeatureRecord]", model)
        cls.feature = self
        self._record_class = cls
        return cls

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Feature):
            return NotImplemented
        return self.feature_table.qualified_name == other.feature_table.qualified_name

    def __hash__(self) -> int:
        return hash(self.feature_table.qualified_name)

    def __repr__(self) -> str:
        return (
            f"Feature(target_table={self.target_table.name}, feature_name={self.feature_name}, "
            f"feature_table={self.feature_table.name})"
        )


def _single_fkey_target(table: Table, col: Column) -> Table | None:
    for fk in table.foreign_keys:
        cols = fk.foreign_key_columns
        if len(cols) == 1 and cols[0].name == col.name:
            return fk.pk_table
    return None


def find_features(model: Model, ml_schema: str) -> list[tuple[Table, Table, str]]:
    """Every feature table in a model, as ``(feature table, target table, feature name)``.

    A feature table has ``Execution`` (-> Execution), ``Feature_Name`` (-> Feature_Name, its default
    the feature's name) and a column named like the target table referencing it; its name is
    ``Execution_<Target>_<Feature>``.
    """
    found = []
    for t in model.tables():
        if t.schema.name == ml_schema or not t.name.startswith("Execution_") or "Feature_Name" not in t.columns:
            continue
        name = t.columns["Feature_Name"].default
        fname = t.columns["Feature_Name"]
        ref = _single_fkey_target(t, fname)
        if not isinstance(name, str) or ref is None or ref.name != "Feature_Name" or not t.name.endswith(f"_{name}"):
            continue
        target_name = t.name[len("Execution_") : -len(name) - 1]
        target = _single_fkey_target(t, t.columns[target_name]) if target_name in t.columns else None
        if target is not None and target.name == target_name:
            found.append((t, target, name))
    return found


def feature_table_definition(
    target: Table,
    feature_name: str,
    ml_schema: str,
    terms: Iterable[Table],
    assets: Iterable[Table],
    metadata: Iterable[Mapping[str, Any] | Table],
    optional: Iterable[str],
    comment: str,
) -> dict[str, Any]:
    """The ERMrest document of a feature table (checked for clashing and unknown column names)."""
    from pytest_deriva.catalog import schema as ddl

    name = f"Execution_{target.name}_{feature_name}"
    columns = [
        ddl.column("Execution", "text", nullok=False),
        ddl.column(target.name, "text", nullok=False),
        ddl.column("Feature_Name", "text", nullok=False, default=feature_name),
    ]
    fkeys: list[tuple[list[str], str, str, list[str]]] = [
        (["Execution"], ml_schema, "Execution", ["RID"]),
        ([target.name], target.schema.name, target.name, ["RID"]),
        (["Feature_Name"], ml_schema, "Feature_Name", ["Name"]),
    ]
    value_columns: list[dict[str, Any]] = []
    for vocab in terms:
        value_columns.append(ddl.column(vocab.name, "text", nullok=False))
        fkeys.append(([vocab.name], vocab.schema.name, vocab.name, ["Name"]))
    for item in [*assets, *metadata]:
        if isinstance(item, Table):
            value_columns.append(ddl.column(item.name, "text", nullok=False))
            fkeys.append(([item.name], item.schema.name, item.name, ["RID"]))
        else:
            value_columns.append(dict(item))
    taken = {c["name"] for c in columns} | SYSTEM_COLUMNS
    for c in value_columns:
        if c["name"] in taken:
            raise DerivaMLValidationError(
                f"Feature {feature_name!r} of {target.name} would have two columns named {c['name']!r}; "
                "rename the metadata column (or do not list a table twice)."
            )
        taken.add(c["name"])
    optional = list(optional)
    value_names = [c["name"] for c in value_columns]
    unknown = [o for o in optional if o not in value_names]
    if unknown:
        raise DerivaMLValidationError(
            f"optional names {unknown} are not value columns of feature {feature_name!r}; "
            f"its value columns are {value_names or '(none)'}."
        )
    for c in value_columns:
        if c["name"] in optional:
            c["nullok"] = True
    return ddl.plain_table(
        name,
        columns + value_columns,
        keys=[("Execution", target.name, "Feature_Name")],
        fkeys=fkeys,
        comment=comment or f"Feature {feature_name} of {target.name}.",
    )
