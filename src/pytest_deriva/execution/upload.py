"""Upload progress reports."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UploadProgress"]


@dataclass(frozen=True)
class UploadProgress:
    """One progress report of ``upload_execution_outputs``: passed to ``progress_callback``."""

    file_name: str
    bytes_completed: int
    bytes_total: int
    percent_complete: float
    phase: str
    message: str
    files_completed: int = 0
    files_total: int = 0
