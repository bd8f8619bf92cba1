"""``CheckedModel``: a pydantic model whose validation errors are one line naming the value."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ModelWrapValidatorHandler, ValidationError, model_validator

from pytest_deriva.exceptions import DerivaMLInputError

__all__ = ["CheckedModel"]


class CheckedModel(BaseModel):
    """A model of the public API (``Workflow``, ``ExecutionConfiguration``, ``DatasetSpec``, ...):
    bad input raises :class:`DerivaMLInputError`, one line naming the field, the value and what is
    expected, not pydantic's page of text and links."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_line_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # A validator rather than __init__, so that hydra-zen still sees the fields as the signature.
        try:
            return handler(data)
        except ValidationError as e:
            raise DerivaMLInputError.from_pydantic(e, cls.__name__) from None
