"""File names from users: plain names that stay inside their folder, checked before any file is made."""

from __future__ import annotations

from pathlib import Path

from pytest_deriva.exceptions import DerivaMLInputError, DerivaMLValidationError

__all__ = ["NAME_MAX", "check_length", "checked_file_name"]

#: The longest file name, in bytes, that the usual file systems take (ext4, XFS, APFS, NTFS in
#: UTF-16 units); a longer one fails only when the file is made, as a bare ``OSError``.
NAME_MAX = 255


def check_length(name: str, what: str) -> None:
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > NAME_MAX:
        raise DerivaMLValidationError(
            f"{what} {DerivaMLInputError.shown(name)} is {size} bytes long; a file name can have at most "
            f"{NAME_MAX}. Give a shorter name."
        )


def checked_file_name(name: object, what: str = "file name") -> str:
    """Return ``name`` if it is a plain file name that stays inside its folder, else raise.

    Several dots and spaces are fine (``my model.v2.pt``); separators, ``..``, absolute paths,
    NUL bytes and names longer than :data:`NAME_MAX` bytes are not: a registered file never
    escapes its execution's folder, and a name is refused before any file is made.
    """
    if not isinstance(name, str):
        raise DerivaMLInputError(
            f"{what} {DerivaMLInputError.shown(name)} ({type(name).__name__}) is not a file name; give a plain "
            "file name as a string, for example 'model.pt'."
        )
    if not name:
        raise DerivaMLValidationError(f"{what} is empty (''); give a plain file name, for example 'model.pt'.")
    if name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or Path(name).is_absolute():
        raise DerivaMLValidationError(
            f"{what} {name!r} is not a plain file name; it must not contain '/', '\\\\', be '..' or be absolute. "
            "Give just the name, for example 'model.pt'."
        )
    check_length(name, what)
    return name
