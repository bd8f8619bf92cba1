"""Identify a workflow source file by git, for provenance records in a DERIVA catalog.

:func:`git_file_info` answers, for one file, where it lives (repository root, relative
path, sanitized remote URL), which commit last touched it, the git blob checksum of the
working-tree copy, and whether *this file* (not the rest of the repository) has
uncommitted changes. The answer is cached in-process and recomputed when the file, the
index or ``HEAD`` changes.

Remote URLs are sanitized by :func:`sanitize_remote` so that credentials embedded in a
remote (``https://user:token@host/...``) never reach the catalog.

This module runs ``git`` as a subprocess (never through a shell) and does not import
pytest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from pytest_deriva.exceptions import DerivaMLWorkflowError

__all__ = ["GitFileInfo", "clear_cache", "git_file_info", "sanitize_remote", "strip_notebook"]

_OVERRIDE_HINT = "or set DERIVA_ML_WORKFLOW_URL and DERIVA_ML_WORKFLOW_CHECKSUM"

# ``scheme://rest`` (https, ssh, git, file, ...).
_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)
# scp-like ``[user@]host:path``: a ``:`` before any ``/``. The greedy ``[^/]*@`` takes the
# *last* ``@`` so that an ``@`` inside a password cannot leak into the host.
_SCP_RE = re.compile(r"^(?:[^/]*@)?(?P<host>[^@:/]+):(?P<path>.*)$", re.DOTALL)
# A sane ``host[:port]`` (or ``[ipv6][:port]``) once userinfo has been removed.
_HOSTPORT_RE = re.compile(r"^(?:[A-Za-z0-9._~%\-]*|\[[0-9A-Fa-f:.]+\])(?::\d*)?$")
_PORT_RE = re.compile(r":\d*$")
_SSH_SCHEMES = frozenset({"ssh", "git", "git+ssh", "ssh+git"})
_HEX_RE = re.compile(r"[0-9a-f]{4,64}")

# (file stat, index stat, HEAD reflog stat, HEAD stat, config stat)
_Stamp = tuple[object, ...]

_cache: dict[Path, tuple[_Stamp, GitFileInfo]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class GitFileInfo:
    """What git says about one workflow source file.

    Attributes:
        path: Absolute, resolved path of the file.
        repo_root: Resolved top level of the working tree (``git rev-parse --show-toplevel``).
        relpath: Path of the file relative to ``repo_root``, with POSIX separators.
        remote: Sanitized URL of the ``origin`` remote (no credentials), or
            ``file://<repo_root>`` when there is no ``origin``.
        commit: SHA of the last commit that touched the file; ``""`` if it was never committed.
        checksum: ``git hash-object`` of the working-tree file; of a notebook (``.ipynb``),
            of the file without outputs (:func:`strip_notebook`).
        is_dirty: True if this file differs from ``HEAD`` (modified, staged, untracked,
            ignored or never committed). Other files of the repository do not matter; a
            notebook whose cells are those of ``HEAD`` (only outputs differ) is not dirty.
        version: ``git describe --tags --always --long`` of ``HEAD`` (``0.0.0+<short sha>``
            when there is no tag, ``0.0.0`` when there is no commit), with a ``-dirty``
            suffix when ``is_dirty``.
    """

    path: Path
    repo_root: Path
    relpath: str
    remote: str
    commit: str
    checksum: str
    is_dirty: bool
    version: str

    @property
    def url(self) -> str:
        """URL of the file at its last commit: ``{remote}/blob/{commit or 'HEAD'}/{relpath}``."""
        return f"{self.remote}/blob/{self.commit or 'HEAD'}/{self.relpath}"

    def diff(self) -> str:
        """Return the uncommitted change of this one file as a unified diff.

        For a tracked file this is ``git diff HEAD -- <file>``. For a file that is not in
        ``HEAD`` or the index (untracked or ignored), or in a repository with no commit,
        the whole file is shown as new (``git diff --no-index /dev/null <file>``).

        Returns:
            The diff text, or ``""`` when the file is clean (``is_dirty`` is False).

        Raises:
            DerivaMLWorkflowError: If git is not installed or the diff cannot be computed.
        """
        if not self.is_dirty:
            return ""
        git = _git_executable(self.path)
        status = _run(
            git,
            [
                "status",
                "--porcelain=v1",
                "--untracked-files=all",
                "--ignored",
                "--",
                self.relpath,
            ],
            self.repo_root,
        )
        code = status.stdout[:2]
        if code not in ("??", "!!"):
            tracked = _run(
                git,
                ["diff", "--no-color", "--no-ext-diff", "HEAD", "--", self.relpath],
                self.repo_root,
            )
            if tracked.returncode == 0:
                return tracked.stdout
            # Otherwise HEAD does not exist (no commit yet): show the file as new.
        new = _run(
            git,
            [
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-index",
                "--",
                os.devnull,
                self.relpath,
            ],
            self.repo_root,
        )
        if new.returncode not in (0, 1):
            raise DerivaMLWorkflowError(
                f"Cannot compute the diff of {self.path}: git diff failed: {new.stderr.strip()}"
            )
        return new.stdout

    def diff_since(self, commit: str) -> str:
        """This file now (as in the working tree) against ``commit``, as a unified diff ('' when
        the same).

        Raises:
            DerivaMLWorkflowError: If the repository does not have ``commit``.
        """
        done = _run(
            _git_executable(self.path),
            ["diff", "--no-color", "--no-ext-diff", commit, "--", self.relpath],
            self.repo_root,
        )
        if done.returncode != 0:
            raise DerivaMLWorkflowError(
                f"Cannot compare {self.path} with commit {commit}: {done.stderr.strip() or 'git diff failed'}."
            )
        return done.stdout


def clear_cache() -> None:
    """Forget every cached :class:`GitFileInfo`."""
    with _cache_lock:
        _cache.clear()


def sanitize_remote(url: str, repo_root: Path) -> str:
    """Turn a git remote URL into a credential-free browsable URL.

    * userinfo is removed (``https://user:token@host/x`` -> ``https://host/x``), as are
      any query string and fragment;
    * scp-style ``git@github.com:org/repo.git`` -> ``https://github.com/org/repo``;
    * ``ssh://``/``git://`` URLs -> ``https://host/path`` (the ssh port is dropped);
    * a trailing ``.git`` and trailing ``/`` are stripped;
    * a local path (absolute, or relative to ``repo_root``) becomes ``file://<path>``;
    * an empty URL (no remote) becomes ``file://<repo_root>``.

    Args:
        url: The remote URL as git reports it.
        repo_root: Root of the working tree; used for an empty URL and relative paths.

    Returns:
        The sanitized URL.
    """
    url = url.strip()
    if not url:
        return _file_url(repo_root)

    scheme_match = _SCHEME_RE.match(url)
    if scheme_match:
        scheme = scheme_match.group("scheme").lower()
        rest = scheme_match.group("rest")
        # RFC 3986: the authority ends at the first "/", "?" or "#".
        authority, _, path = rest.partition("/")
        authority = re.split(r"[?#]", authority, maxsplit=1)[0]
        hostport = authority.rpartition("@")[2]
        if ("@" in rest and "@" not in authority) or not _HOSTPORT_RE.match(hostport):
            # Malformed userinfo (e.g. an unescaped "/", "?" or "#" in a password): be
            # paranoid and drop everything up to the last "@" (an "@" in the path of a
            # credential-free URL is rare; leaking a password is worse).
            after = rest.rpartition("@")[2]
            authority, _, path = after.partition("/")
            hostport = re.split(r"[?#]", authority, maxsplit=1)[0]
        path = re.split(r"[?#]", path, maxsplit=1)[0]
        if scheme == "file":
            return "file://" + _strip_trailing_slash(f"{hostport}/{path}")
        if scheme in _SSH_SCHEMES:
            scheme = "https"
            hostport = _PORT_RE.sub("", hostport)
        return _strip_git_suffix(f"{scheme}://{hostport}/{path}")

    if "@" in url.partition(":")[2]:
        # An "@" after the first ":" of an scp-like URL: part of a malformed password, or a
        # rare path character. Keep only what follows the last "@".
        url = url.rpartition("@")[2]
    scp_match = _SCP_RE.match(url)
    if scp_match and len(scp_match.group("host")) > 1:  # "C:\\x" is a Windows path, not scp
        host = scp_match.group("host")
        path = scp_match.group("path").lstrip("/")
        return _strip_git_suffix(f"https://{host}/{path}")

    local = Path(url).expanduser()
    if not local.is_absolute():
        local = repo_root / local
    return _file_url(Path(os.path.normpath(local)))


def git_file_info(path: str | os.PathLike[str]) -> GitFileInfo:
    """Describe a file by git: repository, remote, last commit, checksum, dirtiness.

    Results are cached per resolved path and reused while the file (mtime, size, inode)
    and the repository's index, ``HEAD`` and config are unchanged.

    Args:
        path: The workflow source file.

    Returns:
        A :class:`GitFileInfo` for the file.

    Raises:
        DerivaMLWorkflowError: If the file does not exist or is a directory, if it is not
            inside a git working tree, or if git is not installed.
    """
    file = Path(os.fspath(path)).resolve()
    try:
        st = file.stat()
    except FileNotFoundError:
        raise DerivaMLWorkflowError(
            f"Workflow file {file} does not exist; pass the path of an existing, committed "
            f"source file, {_OVERRIDE_HINT}."
        ) from None
    except OSError as exc:
        raise DerivaMLWorkflowError(f"Cannot read workflow file {file}: {exc}") from exc
    if file.is_dir():
        raise DerivaMLWorkflowError(
            f"Workflow path {file} is a directory; pass the path of the source file itself, {_OVERRIDE_HINT}."
        )

    stamp = _stamp(file, st)
    with _cache_lock:
        hit = _cache.get(file)
    if hit is not None and hit[0] == stamp:
        return hit[1]

    info = _compute(file)
    with _cache_lock:
        _cache[file] = (stamp, info)
    return info


# --------------------------------------------------------------------------- internals


def _compute(file: Path) -> GitFileInfo:
    """Run git to build the :class:`GitFileInfo` of an existing regular file.

    The six questions are independent, so the six git processes run at once (in the file's
    folder, naming the file by its name there): the answer takes about one git start, not six.
    """
    git = _git_executable(file)
    here, name = file.parent, file.name
    notebook = file.suffix == ".ipynb"
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for args in (
            ["rev-parse", "--show-toplevel"],
            ["remote", "get-url", "origin"],
            ["log", "-n", "1", "--no-show-signature", "--pretty=format:%H", "--", name],
            ["hash-object", "--stdin"] if notebook else ["hash-object", "--", name],
            ["status", "--porcelain=v1", "--untracked-files=all", "--ignored", "--", name],
            ["describe", "--tags", "--always", "--long", "HEAD"],
        ):
            started.append(_start(git, args, here))
        top = _wait(*started[0])
        if top.returncode != 0 or not top.stdout.strip():
            detail = top.stderr.strip()
            extra = "" if "not a git repository" in detail.lower() or not detail else f" (git says: {detail})"
            raise DerivaMLWorkflowError(
                f"File {file} is not inside a git repository{extra}; run `git init` and commit it, {_OVERRIDE_HINT}."
            )
        repo_root = Path(top.stdout.strip()).resolve()
        try:
            relpath = file.relative_to(repo_root).as_posix()
        except ValueError:
            raise DerivaMLWorkflowError(
                f"File {file} is not inside the working tree of the git repository at {repo_root}; "
                f"move it into the repository and commit it, {_OVERRIDE_HINT}."
            ) from None
        # Outputs are not the code: a re-executed notebook is the same workflow (upstream: nbstripout).
        stripped = strip_notebook(file.read_bytes(), file) if notebook else None
        origin, log = _wait(*started[1]), _wait(*started[2])
        hashed = _wait(*started[3], stdin=stripped)
        status, described = _wait(*started[4]), _wait(*started[5])
    finally:
        for proc, _ in started:  # those not waited for (an error above): not left running
            if proc.returncode is None:
                proc.kill()
                proc.communicate()

    remote = sanitize_remote(origin.stdout if origin.returncode == 0 else "", repo_root)
    commit = log.stdout.strip() if log.returncode == 0 else ""

    if hashed.returncode != 0:
        raise DerivaMLWorkflowError(
            f"Cannot compute the git checksum of {file}: {hashed.stderr.strip()}; "
            f"check that the file is readable, {_OVERRIDE_HINT}."
        )
    checksum = hashed.stdout.strip()

    is_dirty = not commit or status.returncode != 0 or bool(status.stdout.strip())
    if is_dirty and notebook and commit and status.stdout[:2].strip() in ("M", "MM"):
        # A notebook saved with new outputs but the same cells is not a changed workflow.
        head = _run(git, ["show", f"HEAD:./{relpath}"], repo_root)
        is_dirty = head.returncode != 0 or strip_notebook(head.stdout.encode(), file) != stripped

    version = described.stdout.strip() if described.returncode == 0 else ""
    if not version:
        version = "0.0.0"
    elif _HEX_RE.fullmatch(version):  # --always without a tag gives just the short sha
        version = f"0.0.0+{version}"
    if is_dirty:
        version += "-dirty"

    return GitFileInfo(
        path=file,
        repo_root=repo_root,
        relpath=relpath,
        remote=remote,
        commit=commit,
        checksum=checksum,
        is_dirty=is_dirty,
        version=version,
    )


# What executing a notebook changes besides outputs (nbstripout's defaults, papermill's and
# nbclient's execution records, and the kernel's language_info, which names the Python version).
_VOLATILE_CELL_METADATA = ("collapsed", "scrolled", "execution", "ExecuteTime", "papermill")
_VOLATILE_NOTEBOOK_METADATA = ("signature", "widgets", "papermill", "language_info")


def strip_notebook(content: bytes, file: Path) -> bytes:
    """A notebook without outputs, execution counts and execution records: what its checksum is of.

    Raises:
        DerivaMLWorkflowError: the file is not a notebook (not JSON with a ``cells`` list).
    """
    try:
        nb = json.loads(content)
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells is not a list")
    except (ValueError, KeyError, TypeError) as e:
        raise DerivaMLWorkflowError(
            f"{file} is not a Jupyter notebook ({e}); give a .ipynb file saved by Jupyter, {_OVERRIDE_HINT}."
        ) from None
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata")
        if isinstance(meta, dict):
            for key in _VOLATILE_CELL_METADATA:
                meta.pop(key, None)
    meta = nb.get("metadata")
    if isinstance(meta, dict):
        for key in _VOLATILE_NOTEBOOK_METADATA:
            meta.pop(key, None)
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _git_executable(file: Path) -> str:
    """Return the path of the git executable, or raise if git is not installed."""
    git = shutil.which("git")
    if git is None:
        raise DerivaMLWorkflowError(
            f"git is needed to identify workflow file {file} but was not found on PATH; install git, {_OVERRIDE_HINT}."
        )
    return git


def _run(git: str, args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd`` without a shell, capturing text output (``stdin``: bytes to feed it)."""
    return _wait(*_start(git, args, cwd), stdin=stdin)


def _start(git: str, args: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``git args`` in ``cwd`` (no shell); :func:`_wait` collects it."""
    env = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",
        "LC_ALL": "C",
        # Paths are literal: a file named "model[1].py" or ":x.py" is not a pattern.
        "GIT_LITERAL_PATHSPECS": "1",
    }
    try:
        proc = subprocess.Popen(
            [git, *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise DerivaMLWorkflowError(f"Cannot run git in {cwd}: {exc}; install git, {_OVERRIDE_HINT}.") from exc
    return proc, cwd


def _wait(proc: subprocess.Popen[bytes], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Feed ``stdin`` to a git started in ``cwd`` (none: its input is closed) and wait for it; what
    it said, as text."""
    out, err = proc.communicate(stdin if stdin is not None else b"")
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    """Return (inode, mtime_ns, size) of ``path``, or None if it cannot be stat-ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _find_git_dir(start: Path) -> Path | None:
    """Find the git directory of the working tree containing ``start`` without running git."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        try:
            if dot_git.is_dir():
                return dot_git
            if dot_git.is_file():
                # Worktrees and submodules: ".git" is a file "gitdir: <path>".
                text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
                if text.startswith("gitdir:"):
                    target = Path(text[len("gitdir:") :].strip())
                    return target if target.is_absolute() else directory / target
                return None
        except OSError:
            return None
    return None


def _stamp(file: Path, st: os.stat_result) -> _Stamp:
    """Build the cache key of ``file``: its own stat plus index, HEAD and config stats.

    Git rewrites the index through a lock file and a rename, so its inode changes on every
    ``git add``/``git commit``; the ``HEAD`` reflog grows on every commit, checkout and
    reset; the config changes when the remote does.
    """
    git_dir = _find_git_dir(file.parent)
    own = (st.st_ino, st.st_mtime_ns, st.st_size)
    if git_dir is None:
        return (own,)
    return (
        own,
        _stat_key(git_dir / "index"),
        _stat_key(git_dir / "logs" / "HEAD"),
        _stat_key(git_dir / "HEAD"),
        _stat_key(git_dir / "config"),
    )


def _file_url(path: Path) -> str:
    """Return ``file://`` + the POSIX form of ``path``."""
    posix = path.as_posix()
    return "file://" + (posix if posix.startswith("/") else "/" + posix)


def _strip_trailing_slash(url: str) -> str:
    """Remove trailing ``/`` characters."""
    return url.rstrip("/")


def _strip_git_suffix(url: str) -> str:
    """Remove trailing ``/`` and one trailing ``.git``."""
    url = url.rstrip("/")
    url = url.removesuffix(".git")
    return url.rstrip("/")
