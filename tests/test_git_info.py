"""Tests of pytest_deriva.execution._git against real git repositories (no mocks)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_deriva.exceptions import DerivaMLWorkflowError
from pytest_deriva.execution._git import (
    GitFileInfo,
    clear_cache,
    git_file_info,
    sanitize_remote,
)


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Isolate git from the user's configuration and start every test with an empty cache."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "a@b")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "a@b")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    clear_cache()
    yield
    clear_cache()


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout."""
    result = subprocess.run(
        ["git", "-c", "user.email=a@b", "-c", "user.name=t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def make_repo(root: Path) -> Path:
    """Create an empty repository at ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    return root


def commit_file(repo: Path, name: str, content: str, message: str = "c") -> Path:
    """Write, add and commit one file; return its path."""
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    git(repo, "add", "--", name)
    git(repo, "commit", "-q", "-m", message)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one committed file ``src/model.py`` and another ``other.py``."""
    r = make_repo(tmp_path / "repo")
    commit_file(r, "other.py", "x = 1\n")
    commit_file(r, "src/model.py", "print('hello')\n")
    return r


def test_clean_committed_file(repo: Path) -> None:
    path = repo / "src" / "model.py"
    info = git_file_info(path)
    sha = git(repo, "log", "-n", "1", "--pretty=format:%H", "--", "src/model.py").strip()

    assert isinstance(info, GitFileInfo)
    assert info.path == path.resolve()
    assert info.repo_root == repo.resolve()
    assert info.relpath == "src/model.py"
    assert info.commit == sha
    assert sha in info.url
    assert "src/model.py" in info.url
    assert info.url == f"{info.remote}/blob/{sha}/src/model.py"
    assert info.checksum == git(repo, "hash-object", "src/model.py").strip()
    assert info.is_dirty is False
    assert info.diff() == ""
    assert info.version.startswith("0.0.0+")
    assert not info.version.endswith("-dirty")


def test_commit_is_last_commit_touching_the_file(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    commit_file(repo, "other.py", "x = 2\n")  # a later commit not touching model.py
    info = git_file_info(repo / "src" / "model.py")
    assert info.commit == first
    assert info.commit != git(repo, "rev-parse", "HEAD").strip()


def test_tagged_version(repo: Path) -> None:
    git(repo, "tag", "v1.2.0")
    info = git_file_info(repo / "src" / "model.py")
    assert info.version.startswith("v1.2.0-0-g")


def test_modified_file_is_dirty_with_diff(repo: Path) -> None:
    path = repo / "src" / "model.py"
    path.write_text("print('hello')\nprint('changed line')\n")
    info = git_file_info(path)
    assert info.is_dirty is True
    assert info.version.endswith("-dirty")
    assert info.checksum == git(repo, "hash-object", "src/model.py").strip()
    diff = info.diff()
    assert "+print('changed line')" in diff
    assert "src/model.py" in diff


def test_staged_file_is_dirty(repo: Path) -> None:
    path = repo / "src" / "model.py"
    path.write_text("print('staged')\n")
    git(repo, "add", "src/model.py")
    info = git_file_info(path)
    assert info.is_dirty is True
    assert "+print('staged')" in info.diff()


def test_untracked_file_is_dirty_with_full_diff(repo: Path) -> None:
    path = repo / "new_script.py"
    path.write_text("print('brand new')\n")
    info = git_file_info(path)
    assert info.is_dirty is True
    assert info.commit == ""
    assert "/blob/HEAD/new_script.py" in info.url
    diff = info.diff()
    assert "+print('brand new')" in diff
    assert "new file" in diff


def test_ignored_file_is_dirty(repo: Path) -> None:
    commit_file(repo, ".gitignore", "scratch/\n")
    path = repo / "scratch" / "try.py"
    path.parent.mkdir()
    path.write_text("print('ignored')\n")
    info = git_file_info(path)
    assert info.is_dirty is True
    assert "+print('ignored')" in info.diff()


def test_other_modified_file_does_not_make_this_dirty(repo: Path) -> None:
    (repo / "other.py").write_text("x = 'modified elsewhere'\n")
    (repo / "untracked_elsewhere.py").write_text("y = 1\n")
    info = git_file_info(repo / "src" / "model.py")
    assert info.is_dirty is False
    assert info.diff() == ""
    assert not info.version.endswith("-dirty")


def test_remote_credentials_are_stripped(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://user:s3cret@example.org/org/repo.git")
    info = git_file_info(repo / "src" / "model.py")
    assert info.remote == "https://example.org/org/repo"
    assert "s3cret" not in info.url
    assert "user" not in info.url
    assert info.url.startswith("https://example.org/org/repo/blob/")


def test_scp_remote_is_converted(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "git@github.com:org/repo.git")
    info = git_file_info(repo / "src" / "model.py")
    assert info.remote == "https://github.com/org/repo"
    assert info.url == f"https://github.com/org/repo/blob/{info.commit}/src/model.py"


def test_no_remote_gives_file_url(repo: Path) -> None:
    info = git_file_info(repo / "src" / "model.py")
    assert info.remote == "file://" + repo.resolve().as_posix()
    assert info.url.startswith("file://")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://user:s3cret@example.org/org/repo.git",
            "https://example.org/org/repo",
        ),
        ("https://x-access-token:ghp_abc@github.com/o/r/", "https://github.com/o/r"),
        ("git@github.com:org/repo.git", "https://github.com/org/repo"),
        ("ssh://git@host.example/org/repo.git", "https://host.example/org/repo"),
        ("ssh://git@host.example:2222/org/repo.git", "https://host.example/org/repo"),
        ("git://host.example/org/repo.git", "https://host.example/org/repo"),
        (
            "https://host.example/org/repo?private_token=abc#frag",
            "https://host.example/org/repo",
        ),
        ("https://user:pa#ss@host.example/org/repo", "https://host.example/org/repo"),
        ("https://user:12/ss@host.example/org/repo", "https://host.example/org/repo"),
        ("http://host.example:8080/org/repo/", "http://host.example:8080/org/repo"),
        ("https://github.com/org/repo", "https://github.com/org/repo"),
    ],
)
def test_sanitize_remote(url: str, expected: str) -> None:
    assert sanitize_remote(url, Path("/srv/repo")) == expected


def test_sanitize_remote_local_and_empty() -> None:
    root = Path("/srv/work/repo")
    assert sanitize_remote("", root) == "file:///srv/work/repo"
    assert sanitize_remote("/srv/upstream.git", root) == "file:///srv/upstream.git"
    assert sanitize_remote("../upstream", root) == "file:///srv/work/upstream"


def test_file_outside_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Do not let git find a repository that happens to enclose the temporary directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.resolve()))
    outside = tmp_path / "loose" / "script.py"
    outside.parent.mkdir()
    outside.write_text("print(1)\n")
    with pytest.raises(DerivaMLWorkflowError) as excinfo:
        git_file_info(outside)
    message = str(excinfo.value)
    assert str(outside.resolve()) in message
    assert "git init" in message


def test_missing_file(repo: Path) -> None:
    missing = repo / "nope.py"
    with pytest.raises(DerivaMLWorkflowError) as excinfo:
        git_file_info(missing)
    assert str(missing.resolve()) in str(excinfo.value)


def test_directory_is_rejected(repo: Path) -> None:
    with pytest.raises(DerivaMLWorkflowError) as excinfo:
        git_file_info(repo / "src")
    assert "directory" in str(excinfo.value)


def test_git_not_installed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-such-bin"))
    with pytest.raises(DerivaMLWorkflowError) as excinfo:
        git_file_info(repo / "src" / "model.py")
    assert "git" in str(excinfo.value)
    assert "model.py" in str(excinfo.value)


@pytest.mark.parametrize("name", ["my model.v2.py", "weird [1] name.py", ":colon start.py", "-dash start.py"])
def test_awkward_file_names(repo: Path, name: str) -> None:
    path = commit_file(repo, f"dir with space/{name}", "a = 1\n")
    info = git_file_info(str(path))
    assert info.relpath == f"dir with space/{name}"
    assert info.is_dirty is False
    assert info.commit == git(repo, "rev-parse", "HEAD").strip()
    assert info.checksum == git(repo, "hash-object", "--", f"dir with space/{name}").strip()
    path.write_text("a = 2\n")
    clear_cache()
    changed = git_file_info(path)
    assert changed.is_dirty is True
    assert "+a = 2" in changed.diff()


def test_cache_hit_and_invalidation_on_modify_and_commit(repo: Path) -> None:
    path = repo / "src" / "model.py"
    first = git_file_info(path)
    assert git_file_info(path) is first  # cached

    path.write_text("print('hello')\nprint('more')\n")  # new size and mtime
    modified = git_file_info(path)
    assert modified is not first
    assert modified.is_dirty is True
    assert modified.checksum != first.checksum

    git(repo, "add", "src/model.py")
    staged = git_file_info(path)
    assert staged.is_dirty is True

    git(repo, "commit", "-q", "-m", "more")  # only the index / HEAD change now
    committed = git_file_info(path)
    assert committed.is_dirty is False
    assert committed.commit == git(repo, "rev-parse", "HEAD").strip()
    assert committed.commit != first.commit


def test_clear_cache(repo: Path) -> None:
    path = repo / "src" / "model.py"
    first = git_file_info(path)
    clear_cache()
    again = git_file_info(path)
    assert again is not first
    assert again == first


def test_repo_without_commits(tmp_path: Path) -> None:
    r = make_repo(tmp_path / "fresh")
    path = r / "train.py"
    path.write_text("print('first')\n")
    info = git_file_info(path)
    assert info.version.startswith("0.0.0")
    assert info.is_dirty is True
    assert info.commit == ""
    assert "+print('first')" in info.diff()

    git(r, "add", "train.py")  # staged in a repository with no HEAD
    clear_cache()
    staged = git_file_info(path)
    assert staged.is_dirty is True
    assert staged.version.startswith("0.0.0")
    assert "+print('first')" in staged.diff()


def test_relative_path_argument(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "src")
    info = git_file_info("model.py")
    assert info.path == (repo / "src" / "model.py").resolve()
    assert info.relpath == "src/model.py"
