"""The exception hierarchy of pytest-deriva (the ``DerivaMLException`` tree of DerivaML).

Every error the package raises on purpose is one of these, so ``except DerivaMLException``
catches them all. Messages name the offending value and say what to do instead.

    DerivaMLException
    ├── DerivaMLConfigurationError
    │   └── DerivaMLSchemaError
    ├── DerivaMLDataError
    │   ├── DerivaMLNotFoundError
    │   │   ├── DerivaMLDatasetNotFound
    │   │   ├── DerivaMLTableNotFound
    │   │   └── DerivaMLInvalidTerm
    │   ├── DerivaMLTableTypeError
    │   ├── DerivaMLValidationError
    │   │   └── DerivaMLInputError
    │   └── DerivaMLCycleError
    ├── DerivaMLExecutionError
    │   ├── DerivaMLWorkflowError
    │   │   └── DerivaMLDirtyWorkflowError
    │   ├── DerivaMLManifestError
    │   └── DerivaMLUploadError
    └── DerivaMLReadOnlyError
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DerivaMLConfigurationError",
    "DerivaMLCycleError",
    "DerivaMLDataError",
    "DerivaMLDatasetNotFound",
    "DerivaMLDirtyWorkflowError",
    "DerivaMLException",
    "DerivaMLExecutionError",
    "DerivaMLInputError",
    "DerivaMLInvalidTerm",
    "DerivaMLManifestError",
    "DerivaMLNotFoundError",
    "DerivaMLReadOnlyError",
    "DerivaMLSchemaError",
    "DerivaMLTableNotFound",
    "DerivaMLTableTypeError",
    "DerivaMLUploadError",
    "DerivaMLValidationError",
    "DerivaMLWorkflowError",
]


class DerivaMLException(Exception):
    """Base class of every error raised by pytest-deriva."""

    def __init__(self, msg: str = "") -> None:
        super().__init__(msg)
        self._msg = msg


class DerivaMLConfigurationError(DerivaMLException):
    """The catalog, working directory or other configuration is unusable."""


class DerivaMLSchemaError(DerivaMLConfigurationError):
    """The catalog model is missing something or cannot be changed as asked."""


class DerivaMLDataError(DerivaMLException):
    """Data access or validation failed."""


class DerivaMLNotFoundError(DerivaMLDataError):
    """An entity (row, table, term) does not exist."""


class DerivaMLDatasetNotFound(DerivaMLNotFoundError):
    """A dataset RID does not name a dataset."""

    def __init__(self, dataset_rid: str, msg: str = "Dataset not found") -> None:
        super().__init__(f"{msg}: {dataset_rid}")
        self.dataset_rid = dataset_rid


class DerivaMLTableNotFound(DerivaMLNotFoundError):
    """A table name does not exist in the catalog model."""

    def __init__(self, table_name: str, msg: str = "Table not found") -> None:
        super().__init__(f"{msg}: {table_name}")
        self.table_name = table_name


class DerivaMLInvalidTerm(DerivaMLNotFoundError):
    """A vocabulary term (name or synonym) does not exist."""

    def __init__(self, vocabulary: str, term: str, msg: str = "Term doesn't exist") -> None:
        super().__init__(f"Invalid term {term!r} in vocabulary {vocabulary}: {msg}.")
        self.vocabulary = vocabulary
        self.term = term


class DerivaMLTableTypeError(DerivaMLDataError):
    """A RID or table is not of the kind the operation needs."""

    def __init__(self, table_type: str, table: str, msg: str = "") -> None:
        super().__init__(f"Table {table} is not of type {table_type}.{' ' + msg if msg else ''}")
        self.table_type = table_type
        self.table = table


class DerivaMLValidationError(DerivaMLDataError):
    """Input failed validation (bad RID, bad file name, bad metadata)."""


class DerivaMLInputError(DerivaMLValidationError):
    """A value given to the public API has the wrong type or form (a number for a name, a string
    for a list); the message names the value and what is expected instead."""

    @classmethod
    def from_pydantic(cls, error: Any, model: str) -> DerivaMLInputError:
        """One short line for a pydantic ``ValidationError`` raised building ``model``, instead of
        its many lines and links: each problem as ``field = value: what is wrong`` (three at most)."""
        problems = error.errors(include_url=False)
        parts = []
        for problem in problems[:3]:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.get("loc", ())).lstrip(".")
            shown = cls.shown(problem.get("input"))
            if problem.get("type") == "string_pattern_mismatch" and where.rpartition(".")[2] == "rid":
                what = "is not a RID; RIDs look like '1-ABCD'"
            elif problem.get("type") == "missing":
                what = "is required"
                shown = ""
            else:
                what = str(problem.get("msg", "is not valid")).rstrip(".")
                what = what[0].lower() + what[1:] if what else what
            parts.append(f"{where or model}{' = ' + shown if shown else ''}: {what}")
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return cls(f"{model}: {'; '.join(parts)}{more}.")

    @staticmethod
    def shown(value: Any, limit: int = 60) -> str:
        """``repr(value)``, shortened in the middle when long, so that a message stays one line."""
        text = repr(value)
        if len(text) <= limit:
            return text
        return f"{text[: limit // 2]}...{text[-limit // 4 :]} ({len(str(value))} characters)"


class DerivaMLCycleError(DerivaMLDataError):
    """A relationship would form a cycle."""

    def __init__(self, cycle_nodes: list[str], msg: str = "Cycle detected") -> None:
        super().__init__(f"{msg}: {cycle_nodes}")
        self.cycle_nodes = cycle_nodes


class DerivaMLExecutionError(DerivaMLException):
    """Something in an execution's lifecycle failed."""


class DerivaMLWorkflowError(DerivaMLExecutionError):
    """The workflow cannot be identified (no git repository, no such file)."""


class DerivaMLDirtyWorkflowError(DerivaMLWorkflowError):
    """The workflow's own file has uncommitted changes."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"File {path} has uncommitted changes. Commit it before running, "
            "or allow it with allow_dirty=True (--deriva-allow-dirty, DERIVA_ML_ALLOW_DIRTY=true); "
            "the diff is then recorded with the execution."
        )
        self.path = path


class DerivaMLManifestError(DerivaMLExecutionError):
    """An execution's asset manifest cannot be read; the file is kept as it is."""


class DerivaMLUploadError(DerivaMLExecutionError):
    """One or more registered files failed to upload; they stay pending in the manifest."""


class DerivaMLReadOnlyError(DerivaMLException):
    """A write was attempted on a read-only resource (a snapshot, a bag)."""
