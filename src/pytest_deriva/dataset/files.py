"""``FileSpec``: a file to register in the ``File`` asset table without uploading it.

``execution.add_files(specs)`` records each file's URL, MD5 and length in ``File`` and makes a
dataset of them; the bytes stay where the URL says (a shared disk, an object store). A local
path becomes a ``file://`` URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_deriva.exceptions import DerivaMLValidationError

__all__ = ["FileSpec"]

_MD5_RE = re.compile(r"^[0-9a-f]{32}$")


class FileSpec(BaseModel):
    """A file by URL, with its MD5 (hex), length in bytes, description and ``Asset_Type`` terms.

    >>> FileSpec(url="https://example.org/a.txt", md5="0" * 32, length=3).filename
    'a.txt'
    """

    model_config = ConfigDict(frozen=True)

    url: str
    md5: str
    length: int = Field(ge=0)
    description: str | None = ""
    file_types: list[str] = Field(default_factory=list)

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> str:
        text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if not text.strip():
            raise DerivaMLValidationError("A FileSpec needs a URL or path; got an empty one.")
        scheme = urlsplit(text).scheme
        if not scheme or len(scheme) == 1:  # a path (one letter: a Windows drive)
            return Path(text).expanduser().absolute().as_uri()
        return text

    @field_validator("md5", mode="before")
    @classmethod
    def _md5(cls, value: Any) -> str:
        text = str(value).lower()
        if not _MD5_RE.match(text):
            raise DerivaMLValidationError(f"{value!r} is not an MD5 checksum: give 32 hexadecimal digits.")
        return text

    @field_validator("file_types", mode="before")
    @classmethod
    def _types(cls, value: Any) -> list[str]:
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)

    @property
    def filename(self) -> str:
        """The last part of the URL's path."""
        return unquote(urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1]) or self.url

    @classmethod
    def create_filespecs(
        cls, path: str | os.PathLike[str], description: str = "", file_types: list[str] | None = None
    ) -> Iterator[FileSpec]:
        """A spec for a file, or for every file under a folder (sorted), with MD5 and length computed."""
        from pytest_deriva.catalog.objectstore import md5_of

        root = Path(path)
        if not root.exists():
            raise DerivaMLValidationError(f"{root} does not exist; name a file or a folder of files.")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            md5, length = md5_of(f)
            yield cls(url=str(f), md5=md5, length=length, description=description, file_types=file_types or [])

    @staticmethod
    def read_filespec(path: str | os.PathLike[str]) -> Iterator[FileSpec]:
        """Specs from a JSON-lines file, one ``{"url", "md5", "length", ...}`` object a line."""
        with Path(path).open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield FileSpec.model_validate(json.loads(line))
                    except ValueError as e:
                        raise DerivaMLValidationError(f"{path}, line {number}: not a FileSpec ({e}).") from e
