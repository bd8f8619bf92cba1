"""What the benchmarks share: a committed git repository to hold the workflow file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> None:
    """Run git in ``repo`` with a neutral identity and no user configuration."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


def committed_repo(repo: Path, files: dict[str, str]) -> Path:
    """Make ``repo`` a git repository with ``files`` (name -> text) committed."""
    repo.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", *files)
    git(repo, "commit", "-qm", "benchmark")
    return repo
