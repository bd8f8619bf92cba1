"""What we take from libraries instead of writing it: file locks (flock; portalocker on Windows), file digests
(hashlib.file_digest), the installed distributions (importlib.metadata); and execution folders
made when missing, asked of the file system rather than of a cache that goes stale."""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pytest_deriva._locks import file_lock
from pytest_deriva.catalog.objectstore import md5_of
from pytest_deriva.execution import _paths, environment
from pytest_deriva.execution.environment import _installed_distributions

# -- file_lock -----------------------------------------------------------------------------------


def test_file_lock_is_reentrant_and_creates_its_file(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with file_lock(path), file_lock(path), file_lock(path):  # nested: no wait on itself
        assert path.is_file()


def test_file_lock_makes_other_threads_wait(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    entered = threading.Event()

    def other() -> None:
        with file_lock(path):
            entered.set()

    with file_lock(path):
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.2), "another thread entered while the lock was held"
    thread.join(5)
    assert entered.is_set()


HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_deriva._locks import file_lock

    with file_lock(Path(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def test_file_lock_makes_other_processes_wait(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        entered = threading.Event()

        def here() -> None:
            with file_lock(path):
                entered.set()

        thread = threading.Thread(target=here)
        thread.start()
        assert not entered.wait(0.3), "this process entered while another process held the lock"
        holder.stdin.write("\n")
        holder.stdin.flush()
        thread.join(10)
        assert entered.is_set()
    finally:
        holder.kill()
        holder.wait()


# -- md5_of --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 10_000, (1 << 18) + 7, 3 * (1 << 20) + 1])
def test_md5_of_gives_the_digest_and_the_length(tmp_path: Path, size: int) -> None:
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert md5_of(path) == (hashlib.md5(data, usedforsecurity=False).hexdigest(), size)


# -- the execution's folders ---------------------------------------------------------------------


def test_a_folder_removed_by_someone_else_is_made_again(tmp_path: Path) -> None:
    # A cache of folders made (the module-level _paths._known) went stale here: the second call
    # returned a folder that no longer existed and writing into it failed.
    first = _paths.asset_dir(tmp_path, "1-ABC", "Execution_Asset")
    feature = _paths.feature_value_path(tmp_path, "1-ABC", "ml", "Image", "Label")
    assert first.is_dir()
    assert feature.parent.is_dir()
    shutil.rmtree(tmp_path / "execution")
    again = _paths.asset_dir(tmp_path, "1-ABC", "Execution_Asset")
    assert again == first
    assert again.is_dir()
    (again / "model.pt").write_bytes(b"x")
    _paths.feature_value_path(tmp_path, "1-ABC", "ml", "Image", "Label").write_text("{}\n")
    _paths.table_csv_path(tmp_path, "1-ABC", "ml", "Image").write_text("RID\n")
    assert _paths.manifest_path(tmp_path, "1-ABC").parent.is_dir()


# -- installed distributions ---------------------------------------------------------------------


def _dist(folder: Path, name: str, version: str, info: str) -> None:
    folder.mkdir(parents=True)
    (folder / ("PKG-INFO" if info.endswith(".egg-info") else "METADATA")).write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )


def test_installed_distributions_as_the_import_system_finds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    # The name as the distribution spells it, not its folder's normalized form.
    _dist(first / "zz_shown_as_spelled-2.0.dist-info", "ZZ.Shown_As-Spelled", "2.0", ".dist-info")
    # A `setup.py develop` checkout: the .egg-info folder's name has no version.
    _dist(first / "zz_develop_checkout.egg-info", "zz-develop-checkout", "0.3.dev1", ".egg-info")
    # An egg's folder carries the Python version after the distribution's version.
    _dist(first / "zz_old_egg-1.4-py3.11.egg-info", "zz-old-egg", "1.4", ".egg-info")
    # Shadowed: the first on sys.path is the one imported, whatever its spelling.
    _dist(second / "ZZ.Shown_As_Spelled-1.0.dist-info", "zz-shown-as-spelled", "1.0", ".dist-info")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))

    found = {name: version for name, version in _installed_distributions().items() if name.lower().startswith("zz")}

    assert found == {"ZZ.Shown_As-Spelled": "2.0", "zz-develop-checkout": "0.3.dev1", "zz-old-egg": "1.4"}
    assert _installed_distributions()["pytest"] == __import__("pytest").__version__


def test_only_the_headers_of_a_distribution_name_and_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Headers are read up to the first blank line: a folded header before them, and a description
    # (the body) that quotes other headers after them, change nothing.
    site = tmp_path / "site"
    folded = site / "zz_folded-1.0.dist-info"
    folded.mkdir(parents=True)
    (folded / "METADATA").write_text(
        "Metadata-Version: 2.1\nSummary: a summary\n  Name: folded-into-summary\nname:  ZZ-Folded \n"
        "VERSION: 1.0\nName: zz-second-name\n\nName: zz-in-the-description\nVersion: 9.9\n"
    )
    # No blank line and no final newline: the headers end with the file.
    bare = site / "zz_bare-2.0.dist-info"
    bare.mkdir()
    (bare / "METADATA").write_text("Metadata-Version: 2.1\nVersion: 2.0\nName: zz-bare")
    monkeypatch.syspath_prepend(str(site))

    found = {name: version for name, version in _installed_distributions().items() if name.lower().startswith("zz")}

    assert found == {"ZZ-Folded": "1.0", "zz-bare": "2.0"}


def test_the_environment_snapshot_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # platform.processor() runs `uname -p` on Linux: a process per pytest run, for "x86_64".
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(platform, "_uname_cache", None, raising=False)  # uname's answer, kept by platform
    monkeypatch.setattr(environment, "_cached", None)
    env = environment.get_execution_environment()
    assert env["platform"]["processor"]
    assert env["packages"]["pytest"] == pytest.__version__
