"""``Workflow``: the program an execution runs, pinned by git URL at a commit and checksum."""

from __future__ import annotations

import inspect
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    ConfigDict,
    PrivateAttr,
    field_validator,
    model_validator,
)

from pytest_deriva._checked import CheckedModel
from pytest_deriva._rid import RID
from pytest_deriva.enums import MLVocab
from pytest_deriva.exceptions import (
    DerivaMLDirtyWorkflowError,
    DerivaMLException,
    DerivaMLInputError,
    DerivaMLReadOnlyError,
    DerivaMLWorkflowError,
)
from pytest_deriva.execution._git import GitFileInfo, git_file_info, sanitize_remote

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML, VocabularyTerm

__all__ = ["Workflow", "code_changes", "recorded_commit", "workflow_type_names"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Frames from these places are never "the workflow" when finding the calling script.
_SKIP_PARTS = (
    "pydantic",
    "hydra",
    "hydra_zen",
    "omegaconf",
    "_pytest",
    "pluggy",
    "importlib",
    "runpy",
    # Launchers run jobs from their own files; installed packages are never the workflow either.
    "joblib",
    "loky",
    "submitit",
    "site-packages",
    "dist-packages",
)


_BLOB = re.compile(r"/blob/([0-9a-fA-F]{7,64}|HEAD)/(.+)$")


def recorded_commit(url: str | None) -> tuple[str, str] | None:
    """``(commit, path in the repository)`` of a workflow URL (``<remote>/blob/<sha>/<path>``)."""
    found = _BLOB.search(url or "")
    return (found.group(1), found.group(2)) if found else None


def code_changes(recorded: Workflow, current: Workflow) -> str | None:
    """How ``current``'s file differs from the code ``recorded`` ran: None when it is the same
    (same checksum), else a unified diff against the recorded commit, or a sentence saying why
    there is none."""
    if recorded.checksum and recorded.checksum == current.checksum:
        return None
    found = recorded_commit(recorded.url)
    if found is None or current.source_path is None:
        return f"(no diff: the recorded code is {recorded.url}, checksum {recorded.checksum}; now {current.checksum})"
    try:
        diff = git_file_info(current.source_path).diff_since(found[0])
    except DerivaMLException as e:
        return f"(no diff: {e})"
    return diff or f"(the file is as at commit {found[0]}, but its checksum was {recorded.checksum})"


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def workflow_type_names(value: object, what: str = "workflow_type") -> list[str]:
    """``value`` as a list of ``Workflow_Type`` names: one name, or a list of them.

    Checked here, at the public boundary (``Workflow``, ``create_workflow``, the ``deriva``
    marker), so that ``workflow_type=42`` says what is wrong instead of ``'int' object is not
    iterable`` and ``"Training"`` is never taken apart into letters.

    Raises:
        DerivaMLInputError: anything but a non-empty name or a non-empty list of them.
    """
    expected = "give a Workflow_Type term such as 'Training', or a list of them"
    if isinstance(value, str):
        names = [value]
    elif isinstance(value, bytes | Mapping) or not hasattr(value, "__iter__"):
        raise DerivaMLInputError(
            f"{what}={DerivaMLInputError.shown(value)} ({type(value).__name__}) is not a workflow type; {expected}."
        )
    else:
        names = list(value)
        if not names:
            raise DerivaMLInputError(f"{what} is an empty list; {expected}.")
    for name in names:
        if not isinstance(name, str):
            shown = DerivaMLInputError.shown(name)
            raise DerivaMLInputError(f"{what} holds {shown} ({type(name).__name__}), not a name; {expected}.")
        if not name.strip():
            raise DerivaMLInputError(f"{what} holds an empty name ({name!r}); {expected}.")
    return names


def _calling_script() -> Path:
    """The source file of the first frame outside this package and the frameworks around it."""
    for frame in inspect.stack(context=0)[1:]:
        filename = frame.filename
        if filename.startswith("<"):
            continue
        path = Path(filename).resolve()
        if path.is_relative_to(_PACKAGE_DIR) or any(part in _SKIP_PARTS for part in path.parts):
            continue
        return path
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__file__", None):
        return Path(main.__file__).resolve()  # type: ignore[arg-type]
    raise DerivaMLWorkflowError(
        "Cannot tell which file is the workflow (running interactively?). Pass source_path=<file> to "
        "create_workflow/Workflow, or set DERIVA_ML_WORKFLOW_URL and DERIVA_ML_WORKFLOW_CHECKSUM."
    )


class Workflow(CheckedModel):
    """A computational workflow: name, type(s), and where its code is.

    Built without ``url``, it identifies its source file (``source_path``, or else the calling
    script), and records the file's URL at its last commit and its ``git hash-object`` checksum.
    Only that file's own state decides whether it is dirty; a dirty file is an error unless
    ``allow_dirty`` (or ``DERIVA_ML_ALLOW_DIRTY=true``), and then the diff is recorded with each
    execution. Looked up from a catalog, its ``description`` and ``workflow_type`` are writable
    and write through.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    workflow_type: str | list[str]
    description: str | None = None
    url: str | None = None
    version: str | None = None
    rid: RID | None = None
    checksum: str | None = None
    is_notebook: bool = False
    git_root: Path | None = None
    allow_dirty: bool = False
    source_path: Path | None = None

    _ml_instance: DerivaML | None = PrivateAttr(default=None)
    _git: GitFileInfo | None = PrivateAttr(default=None)
    # (catalog, types) this object was last recorded with, so that add_workflow runs once per handle.
    _registered: tuple[str, tuple[str, ...]] | None = PrivateAttr(default=None)
    _logger: logging.Logger = PrivateAttr(default_factory=lambda: logging.getLogger("pytest_deriva"))

    @field_validator("workflow_type", mode="before")
    @classmethod
    def _normalize_workflow_type(cls, v: object) -> list[str]:
        return workflow_type_names(v)

    # -- catalog-bound attributes ------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        # pydantic keeps private attributes in a slot, not in __dict__ (nor before __init__ ends).
        private = getattr(self, "__pydantic_private__", None) or {}
        if private.get("_ml_instance") is not None:
            if name == "description":
                self._check_writable_catalog("update description")
                ml = private["_ml_instance"]
                ml.catalog.update(ml.ml_schema, "Workflow", [{"RID": self.rid, "Description": value}])
            elif name == "workflow_type":
                value = workflow_type_names(value)
                self._update_workflow_types_in_catalog(value)
        super().__setattr__(name, value)

    def _bound(self) -> DerivaML:
        ml = self._ml_instance
        if ml is None:
            raise DerivaMLException("This workflow is not bound to a catalog; use ml.lookup_workflow(rid).")
        return ml

    def _check_writable_catalog(self, operation: str) -> None:
        if self.rid is None:
            raise DerivaMLException(f"Cannot {operation}: the workflow is not registered in the catalog (no RID).")
        if getattr(self._bound(), "is_snapshot", False):
            raise DerivaMLReadOnlyError(f"Cannot {operation} on a read-only catalog snapshot; use a writable catalog.")

    @property
    def workflow_types(self) -> list[str]:
        """The workflow's types, read from the catalog when bound to one."""
        if self._ml_instance is None:
            return list(self.workflow_type)
        ml = self._ml_instance
        rows = ml.catalog.select(
            ml.ml_schema, "Workflow_Workflow_Type", {"Workflow": self.rid}, columns=["Workflow_Type"]
        )
        return [r["Workflow_Type"] for r in rows]

    def _term_name(self, workflow_type: str | VocabularyTerm) -> str:
        if isinstance(workflow_type, str):
            return self._bound().lookup_term(MLVocab.workflow_type, workflow_type).name
        return workflow_type.name

    def add_workflow_type(self, workflow_type: str | VocabularyTerm) -> None:
        """Add a ``Workflow_Type`` term to this (catalog-bound) workflow."""
        self._check_writable_catalog("add workflow_type")
        name = self._term_name(workflow_type)
        if name in self.workflow_types:
            return
        ml = self._bound()
        ml.catalog.insert(
            ml.ml_schema,
            "Workflow_Workflow_Type",
            [{"Workflow": self.rid, "Workflow_Type": name}],
            on_conflict_skip=True,
        )
        super().__setattr__("workflow_type", [*self.workflow_type, name])

    def add_workflow_types(self, workflow_types: str | VocabularyTerm | list[str | VocabularyTerm]) -> None:
        """Add one or more ``Workflow_Type`` terms."""
        for t in workflow_types if isinstance(workflow_types, list) else [workflow_types]:
            self.add_workflow_type(t)

    def remove_workflow_type(self, workflow_type: str | VocabularyTerm) -> None:
        """Remove a ``Workflow_Type`` term from this (catalog-bound) workflow."""
        self._check_writable_catalog("remove workflow_type")
        name = self._term_name(workflow_type)
        ml = self._bound()
        ml.catalog.delete(ml.ml_schema, "Workflow_Workflow_Type", {"Workflow": self.rid, "Workflow_Type": name})
        super().__setattr__("workflow_type", [t for t in self.workflow_type if t != name])

    def _update_workflow_types_in_catalog(self, new_types: list[str]) -> None:
        self._check_writable_catalog("update workflow_type")
        ml = self._bound()
        names = [ml.lookup_term(MLVocab.workflow_type, t).name for t in new_types]
        with ml.catalog.transaction():
            ml.catalog.delete(ml.ml_schema, "Workflow_Workflow_Type", {"Workflow": self.rid})
            if names:
                ml.catalog.insert(
                    ml.ml_schema, "Workflow_Workflow_Type", [{"Workflow": self.rid, "Workflow_Type": n} for n in names]
                )

    # -- identifying the code ----------------------------------------------------------------
    @model_validator(mode="after")
    def setup_url_checksum(self) -> Workflow:
        """Fill in URL, checksum, version and git root from the environment or from git."""
        if _truthy("DERIVA_MCP_IN_DOCKER"):
            self.version = self.version or os.environ.get("DERIVA_MCP_VERSION", "")
            self.checksum = (
                self.checksum
                or os.environ.get("DERIVA_MCP_IMAGE_DIGEST", "")
                or os.environ.get("DERIVA_MCP_GIT_COMMIT", "")
            )
            if not self.url:
                image = os.environ.get("DERIVA_MCP_IMAGE_NAME", "")
                digest = os.environ.get("DERIVA_MCP_IMAGE_DIGEST", "")
                self.url = f"{image}@{digest}" if image and digest else image or None
            return self
        if "DERIVA_ML_WORKFLOW_URL" in os.environ:
            # Sanitized like a git remote: credentials in the URL never reach the catalog.
            self.url = sanitize_remote(os.environ["DERIVA_ML_WORKFLOW_URL"], Path.cwd())
            self.checksum = os.environ.get("DERIVA_ML_WORKFLOW_CHECKSUM", "")
            notebook = os.environ.get("DERIVA_ML_NOTEBOOK_PATH")
            if notebook:
                root = Workflow._get_git_root(Path(notebook))
                self.git_root = Path(root) if root else None
            self.is_notebook = True
            return self
        if _truthy("DERIVA_ML_ALLOW_DIRTY") or _truthy("DERIVA_ML_DRY_RUN"):
            self.allow_dirty = True
        if not self.url:
            path = Path(self.source_path) if self.source_path else _calling_script()
            info = git_file_info(path)
            if info.is_dirty and not self.allow_dirty:
                raise DerivaMLDirtyWorkflowError(str(info.path))
            if info.is_dirty:
                self._logger.warning("Workflow file %s has uncommitted changes; its diff is recorded.", info.path)
            self.url, self.checksum, self.git_root = info.url, info.checksum, info.repo_root
            self.source_path = info.path
            self.is_notebook = info.path.suffix == ".ipynb"
            self._git = info
            self.version = self.version or info.version
        return self

    @property
    def is_dirty(self) -> bool:
        """Whether the workflow's file had uncommitted changes when the workflow was made."""
        return bool(self._git and self._git.is_dirty)

    def source_diff(self) -> str:
        """The uncommitted change of the workflow's file ('' when it is clean or not from git)."""
        return self._git.diff() if self._git is not None and self._git.is_dirty else ""

    @staticmethod
    def get_url_and_checksum(executable_path: Path, allow_dirty: bool = False) -> tuple[str, str]:
        """The URL of ``executable_path`` at its last commit and its ``git hash-object`` checksum.

        Raises:
            DerivaMLWorkflowError: If the file is not in a git repository.
            DerivaMLDirtyWorkflowError: If the file has uncommitted changes and not ``allow_dirty``.
        """
        info = git_file_info(executable_path)
        if info.is_dirty and not allow_dirty:
            raise DerivaMLDirtyWorkflowError(str(info.path))
        return info.url, info.checksum

    @staticmethod
    def _get_git_root(executable_path: Path) -> str | None:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],
                cwd=executable_path.parent if executable_path.is_file() else executable_path,
                capture_output=True,
                text=True,
                check=True,
            )
        except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
            return None
        return out.stdout.strip()

    @staticmethod
    def get_dynamic_version(root: str | os.PathLike[str] | None = None) -> str:
        """A version from git: ``git describe --tags --always --long``, or ``0.0.0`` without commits."""
        try:
            out = subprocess.run(
                ["git", "describe", "--tags", "--always", "--long"],
                cwd=os.fspath(root or Path.cwd()),
                capture_output=True,
                text=True,
                check=True,
            )
        except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
            return "0.0.0"
        text = out.stdout.strip()
        return text if "-g" in text else f"0.0.0+{text}"
