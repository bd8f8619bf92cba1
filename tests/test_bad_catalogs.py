"""Catalogs the store cannot use, and read-only catalogs (issue 9, item 3).

A folder the embedded store cannot use is refused with one line that names it and says what to
do, before anything is written in it: through ``DerivaML(...)`` and through ``pytest
--deriva-run`` (a usage error, never an INTERNALERROR). A read-only catalog opens for reading
(queries, lookups, bag downloads into a writable cache) and refuses every write with
``DerivaMLReadOnlyError`` naming the folder.

Tests run as root here, and root may write whatever the permission bits say; so the read-only
cases are tested three ways: ``read_only=True``; a catalog made read-only with ``chmod -R a-w``
(which the store honours also for root); and, where the tests run as root, a child process of
an unprivileged user for whom the permissions are real.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _plugin_helpers import catalog, executions, make_project
from conftest import subject_image_schema
from pytest_deriva import DatasetSpec, DerivaML, DerivaMLConfigurationError, DerivaMLReadOnlyError
from pytest_deriva import ExecutionConfiguration as Config
from pytest_deriva.catalog import EmbeddedCatalog

CATALOG_FILE = "catalog.sqlite"
SINGLE = """
def experiment_single(execution):
    execution.asset_file_path("Execution_Asset", "model.txt").write_text("weights")
"""


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a read-only catalog's work and cache folders go by default: not the real ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


# -- a real catalog, and what is in its folder ---------------------------------------------------
def record_something(ml: DerivaML, source: Path) -> dict[str, str]:
    """One finished execution with an output file, and a dataset version holding an image asset."""
    workflow = ml.create_workflow("train", "Training", source_path=source)
    with ml.create_execution(Config(workflow=workflow, description="before")) as exe:
        exe.asset_file_path("Execution_Asset", "model.bin").write_bytes(b"weights")
    exe.upload_execution_outputs()
    subject_image_schema(ml)
    [subject] = ml.insert_records("Subject", [{"Name": "ann", "Age": 30, "Diagnosis": "Healthy"}])
    obj = ml.catalog.objects.put_bytes(b"pixels", "Image", "img.png")
    [image] = ml.insert_records(
        "Image",
        [{"URL": obj.url, "Filename": "img.png", "Length": obj.length, "MD5": obj.md5, "Subject": subject["RID"]}],
    )
    dataset = ml.create_dataset("Training", description="one image")
    dataset.add_dataset_members({"Image": [image["RID"]]})
    version = ml.dataset_version(dataset.rid)
    return {"execution": exe.execution_rid, "dataset": dataset.rid, "version": str(version)}


@pytest.fixture
def good_catalog(project: Path) -> tuple[Path, dict[str, str]]:
    """A catalog folder with records in it, closed (as a finished run leaves it)."""
    folder = project / "catalog"
    ml = DerivaML(folder)
    made = record_something(ml, project / "train.py")
    ml.catalog.close()
    return folder, made


def folder_state(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``folder``: its mode and its content's hash (files)."""
    state: dict[str, tuple[int, str]] = {}
    for p in sorted(folder.rglob("*")):
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        state[str(p.relative_to(folder))] = (stat.S_IMODE(p.lstat().st_mode), digest)
    return state


# -- ways to break a catalog -----------------------------------------------------------------------
def random_bytes(folder: Path) -> None:
    db = folder / CATALOG_FILE
    db.write_bytes(random.Random(9).randbytes(db.stat().st_size))


def cut_in_half(folder: Path) -> None:
    db = folder / CATALOG_FILE
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def sql(statement: str) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        conn = sqlite3.connect(folder / CATALOG_FILE)
        conn.execute(statement)
        conn.commit()
        conn.close()

    return run


def another_programs_database(folder: Path) -> None:
    (folder / CATALOG_FILE).unlink()
    sql("CREATE TABLE notes (text TEXT)")(folder)


def database_lost(folder: Path) -> None:
    (folder / CATALOG_FILE).unlink()  # objects/ still holds the files its rows pointed at


def database_is_a_folder(folder: Path) -> None:
    (folder / CATALOG_FILE).unlink()
    (folder / CATALOG_FILE).mkdir()


BROKEN: list[tuple[str, Callable[[Path], None], str]] = [
    # (id, how the catalog is broken, what the one line must say)
    ("random bytes", random_bytes, r"is not an SQLite database.*Restore it from a backup"),
    ("cut in half", cut_in_half, r"is truncated \(\d+ of its \d+ bytes\).*Restore it from a backup"),
    (
        "newer format",
        sql("UPDATE _ermrest_meta SET value = 'pytest-deriva-embedded-3' WHERE key = 'format'"),
        r"made by a newer pytest-deriva \(catalog format 3; this version reads format 2\).*pip install -U",
    ),
    (
        "newer user_version",
        sql("PRAGMA user_version = 9"),
        r"made by a newer pytest-deriva \(catalog format 9.*pip install -U pytest-deriva",
    ),
    (
        "older format",
        sql("UPDATE _ermrest_meta SET value = 'pytest-deriva-embedded-1' WHERE key = 'format'"),
        r"made by an older pytest-deriva \(catalog format 1\).*Use the version that made it",
    ),
    (
        "unknown format",
        sql("UPDATE _ermrest_meta SET value = 'something else' WHERE key = 'format'"),
        r"unknown format 'something else'.*name another folder",
    ),
    ("another program's database", another_programs_database, r"database of another program \(tables notes\)"),
    ("database lost, objects kept", database_lost, r"has an object store \(objects/\) but no catalog\.sqlite.*Restore"),
    ("catalog.sqlite is a folder", database_is_a_folder, r"catalog\.sqlite is not a file.*Name another folder"),
]


@pytest.fixture(params=BROKEN, ids=[b[0] for b in BROKEN])
def broken(request: pytest.FixtureRequest, good_catalog: tuple[Path, dict[str, str]]) -> tuple[Path, str]:
    """A real catalog broken one way; (folder, the message's pattern)."""
    folder, _ = good_catalog
    _, breaker, pattern = request.param
    breaker(folder)
    return folder, pattern


def one_line(message: str, folder: Path) -> None:
    assert "\n" not in message, message
    assert str(folder) in message, message
    assert "Traceback" not in message


def test_a_catalog_the_store_cannot_use_is_one_line_and_left_alone(broken):
    folder, pattern = broken
    before = folder_state(folder)
    with pytest.raises(DerivaMLConfigurationError) as err:
        DerivaML(folder)
    one_line(str(err.value), folder)
    assert re.search(pattern, str(err.value)), str(err.value)
    assert folder_state(folder) == before  # not a byte written, no -wal, -shm or lock file made


def test_read_only_is_refused_the_same_way(broken):
    folder, pattern = broken
    before = folder_state(folder)
    with pytest.raises(DerivaMLConfigurationError) as err:
        DerivaML(folder, read_only=True)
    one_line(str(err.value), folder)
    if (folder / CATALOG_FILE).is_file():  # else: "no catalog.sqlite in it", as it never makes one
        assert re.search(pattern, str(err.value)), str(err.value)
    assert folder_state(folder) == before


@pytest.mark.parametrize(
    ("files", "pattern"),
    [
        ({"notes.txt": "mine"}, r"has files \(notes\.txt\) but no catalog\.sqlite\. Name an empty or new folder"),
        ({"src/main.py": "print()"}, r"has files \(src\) but no catalog\.sqlite"),
        ({".gitignore": "*\n", "report.pdf": "%PDF"}, r"has files \(report\.pdf\)"),
    ],
)
def test_a_folder_of_other_files_never_becomes_a_catalog(tmp_path, files, pattern):
    folder = tmp_path / "stuff"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    before = folder_state(folder)
    with pytest.raises(DerivaMLConfigurationError, match=pattern) as err:
        DerivaML(folder)
    one_line(str(err.value), folder)
    assert folder_state(folder) == before


def test_a_path_that_is_a_file(tmp_path):
    path = tmp_path / "catalog"
    path.write_bytes(b"I am a file")
    with pytest.raises(DerivaMLConfigurationError, match="is a file, not a catalog folder") as err:
        DerivaML(path)
    one_line(str(err.value), path)
    assert path.read_bytes() == b"I am a file"


def test_an_empty_database_file_is_a_catalog_being_made(tmp_path):
    """A ``catalog.sqlite`` of 0 bytes is what a creation stopped at its first step leaves: the
    next start finishes making it (and a read-only open, which cannot, says so)."""
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / CATALOG_FILE).touch()
    with pytest.raises(DerivaMLConfigurationError, match=r"is empty .* and read-only"):
        DerivaML(folder, read_only=True)
    ml = DerivaML(folder)
    assert ml.find_executions() == []
    ml.catalog.close()


def test_read_only_never_creates_a_catalog(tmp_path):
    with pytest.raises(DerivaMLConfigurationError, match="a read-only catalog is never created"):
        DerivaML(tmp_path / "new", read_only=True)
    assert not (tmp_path / "new").exists()


def test_corruption_found_after_opening_names_the_folder(good_catalog):
    """Pages that break after the catalog was opened are a clear error too, not a raw sqlite3 one."""
    folder, made = good_catalog
    ml = DerivaML(folder)
    ml.catalog.close()
    conn = sqlite3.connect(folder / CATALOG_FILE)
    root_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'deriva-ml:Execution'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with (folder / CATALOG_FILE).open("r+b") as f:  # scribble over the Execution table's first page
        f.seek((root_page - 1) * page_size)
        f.write(b"\xff" * page_size)
    ml = DerivaML(folder)  # the header, the format and the model are intact
    with pytest.raises(DerivaMLConfigurationError, match="corrupt") as err:
        ml.lookup_execution(made["execution"])
    one_line(str(err.value), folder)
    ml.catalog.close()


# -- the same catalogs under pytest ----------------------------------------------------------------
def assert_usage_error(result: pytest.RunResult, folder: Path, pattern: str) -> None:
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "INTERNALERROR" not in text, text
    assert "Traceback" not in text, text
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, text
    assert str(folder) in errors[0], errors[0]
    assert re.search(pattern, errors[0]), errors[0]


@pytest.mark.parametrize(("name", "breaker", "pattern"), BROKEN, ids=[b[0] for b in BROKEN])
def test_under_pytest_a_catalog_the_store_cannot_use_is_a_usage_error(pytester, name, breaker, pattern):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    folder = root / ".deriva"  # the default catalog: no option needed to reach it
    DerivaML(folder).catalog.close()
    breaker(folder)
    before = folder_state(folder)
    result = pytester.runpytest("--deriva-run")
    assert_usage_error(result, folder, pattern)
    assert folder_state(folder) == before


def test_under_pytest_a_folder_of_other_files_is_a_usage_error(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    folder = root / "results"
    folder.mkdir()
    (folder / "table.csv").write_text("a,b\n")
    result = pytester.runpytest("--deriva-run", f"--deriva-catalog={folder}")
    assert_usage_error(result, folder, r"has files \(table\.csv\) but no catalog\.sqlite")
    assert sorted(p.name for p in folder.iterdir()) == ["table.csv"]


def test_under_pytest_an_empty_catalog_option_is_a_usage_error_not_the_default(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    result = pytester.runpytest("--deriva-run", "--deriva-catalog=")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    result.stderr.fnmatch_lines(["ERROR: --deriva-catalog is empty*"])
    assert "INTERNALERROR" not in text
    assert not (root / ".deriva").exists()  # the default was not used


# -- read-only catalogs ----------------------------------------------------------------------------
def make_read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(stat.S_IMODE(p.lstat().st_mode) & ~0o222)


def make_writable(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(stat.S_IMODE(p.lstat().st_mode) | 0o200)


@pytest.fixture
def chmodded(good_catalog: tuple[Path, dict[str, str]]) -> Iterator[tuple[Path, dict[str, str]]]:
    """The catalog after ``chmod -R a-w`` (writable again afterwards, so that it can be removed)."""
    folder, made = good_catalog
    make_read_only(folder)
    yield folder, made
    make_writable(folder)


def reads_work(ml: DerivaML, made: dict[str, str]) -> None:
    record = ml.lookup_execution(made["execution"])
    assert record.status.value == "Completed"
    assert [a.filename for a in record.list_assets("Output") if a.asset_table == "Execution_Asset"] == ["model.bin"]
    assert [e.execution_rid for e in ml.find_executions()] == [made["execution"]]
    assert ml.lookup_term("Workflow_Type", "Training").name == "Training"
    bag = ml.download_dataset_bag(DatasetSpec(rid=made["dataset"], version=made["version"]))
    assert bag.path.is_relative_to(ml.cache_dir)
    assert [p.read_bytes() for p in bag.path.rglob("img.png")] == [b"pixels"]


def writes_are_refused(ml: DerivaML, folder: Path, source: Path) -> None:
    workflow = ml.create_workflow("train", "Training", source_path=source)  # made in memory: fine
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("create_execution", lambda: ml.create_execution(Config(workflow=workflow, description="after"))),
        ("add_term", lambda: ml.add_term("Workflow_Type", "Inference", "a new term")),
        ("create_dataset", lambda: ml.create_dataset("Training", description="new")),
        ("create_vocabulary", lambda: ml.create_vocabulary("Color")),
        ("object store", lambda: ml.catalog.objects.put_bytes(b"x", "Execution_Asset", "x.bin")),
    ]
    for what, attempt in attempts:
        with pytest.raises(DerivaMLReadOnlyError) as err:
            attempt()
        one_line(str(err.value), folder)
        assert "read-only" in str(err.value), what


def counts(folder: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{(folder / CATALOG_FILE).as_uri()}?mode=ro&immutable=1", uri=True)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    conn.close()
    return out


def test_read_only_option_reads_and_refuses_writes(good_catalog, project, cache_home):
    folder, made = good_catalog
    before = folder_state(folder)
    rows = counts(folder)
    ml = DerivaML(folder, read_only=True)
    assert ml.read_only
    assert ml.catalog.read_only_reason == "opened with read_only=True"
    assert not ml.working_dir.is_relative_to(folder)  # its work and cache are elsewhere, by default
    assert ml.cache_dir.is_relative_to(cache_home / "pytest-deriva")
    reads_work(ml, made)
    writes_are_refused(ml, folder, project / "train.py")
    ml.catalog.close()
    assert folder_state(folder) == before  # the database as it was, and no -wal or -shm left over
    assert counts(folder) == rows


def test_a_catalog_without_write_permission_opens_read_only_and_is_not_touched(chmodded, project, tmp_path):
    folder, made = chmodded
    before = folder_state(folder)
    ml = DerivaML(folder, cache_dir=tmp_path / "cache", working_dir=tmp_path / "work")
    assert ml.read_only
    assert ml.catalog.read_only_reason == "its folder is not writable"
    reads_work(ml, made)
    writes_are_refused(ml, folder, project / "train.py")
    ml.catalog.close()
    assert folder_state(folder) == before  # no -wal, -shm or lock file: nothing at all


def test_only_the_database_without_write_permission(good_catalog):
    folder, made = good_catalog
    db = folder / CATALOG_FILE
    db.chmod(0o444)
    try:
        ml = DerivaML(folder)
        assert ml.catalog.read_only_reason == "catalog.sqlite is not writable"
        assert ml.lookup_execution(made["execution"]).status.value == "Completed"
        with pytest.raises(DerivaMLReadOnlyError, match=re.escape(str(folder))):
            ml.add_term("Workflow_Type", "Inference", "a new term")
        ml.catalog.close()
    finally:
        db.chmod(0o644)


def test_read_only_snapshot_of_a_live_catalog_sees_its_changes(good_catalog, project, tmp_path):
    """read_only=True on a catalog another handle is writing: it reads through SQLite's locks
    (not as an immutable file), so it sees what was committed after it opened."""
    folder, _ = good_catalog
    writer = DerivaML(folder)
    reader = DerivaML(folder, read_only=True, working_dir=tmp_path / "w", cache_dir=tmp_path / "c")
    assert len(reader.find_executions()) == 1
    workflow = writer.create_workflow("train", "Training", source_path=project / "train.py")
    writer.create_execution(Config(workflow=workflow, description="while reading"))
    assert len(reader.find_executions()) == 2
    reader.catalog.close()
    writer.catalog.close()


def test_read_only_under_pytest_is_one_clear_line(pytester):
    root = make_project(pytester, {"experiment_single.py": SINGLE})
    folder = root / ".deriva"
    DerivaML(folder).catalog.close()
    make_read_only(folder)
    try:
        before = folder_state(folder)
        result = pytester.runpytest("--deriva-run")
        assert_usage_error(result, folder, r"is read-only \(its folder is not writable\)")
        assert folder_state(folder) == before
    finally:
        make_writable(folder)
    with catalog(folder) as ml:
        assert executions(ml) == []


def test_embedded_catalog_read_only_flags(good_catalog):
    folder, _ = good_catalog
    writable = EmbeddedCatalog(folder)
    assert not writable.read_only
    assert writable.read_only_reason is None
    writable.close()
    reading = EmbeddedCatalog(folder, read_only=True)
    assert reading.read_only
    assert reading.objects.read_only
    reading.close()


# -- in a process for which the permissions are real ------------------------------------------------
READER = """
import json, sys
from pytest_deriva import DatasetSpec, DerivaML, DerivaMLReadOnlyError

folder, cache, execution, dataset, version = sys.argv[1:]
ml = DerivaML(folder, working_dir=cache + "/work", cache_dir=cache + "/cache")
out = {
    "read_only": ml.read_only,
    "reason": ml.catalog.read_only_reason,
    "status": ml.lookup_execution(execution).status.value,
    "executions": [e.execution_rid for e in ml.find_executions()],
}
bag = ml.download_dataset_bag(DatasetSpec(rid=dataset, version=version))
out["bag"] = sorted(p.read_text() for p in bag.path.rglob("img.png"))
try:
    ml.add_term("Workflow_Type", "Inference", "a new term")
except DerivaMLReadOnlyError as e:
    out["write"] = str(e)
print(json.dumps(out))
"""


def without_root_privileges() -> list[str]:
    """A command prefix under which the file permissions hold: as root, the same user without the
    capabilities that let root read and write past them (so the files stay reachable)."""
    if not hasattr(os, "getuid"):
        pytest.skip("POSIX permissions")
    if os.getuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def test_a_process_that_may_not_write_reads_the_catalog(chmodded, tmp_path):
    folder, made = chmodded
    before = folder_state(folder)
    done = subprocess.run(
        [*without_root_privileges(), sys.executable, "-c", READER, str(folder), str(tmp_path), *made.values()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["read_only"] is True
    assert out["reason"] == "its folder is not writable"
    assert out["status"] == "Completed"
    assert out["executions"] == [made["execution"]]
    assert out["bag"] == ["pixels"]
    assert str(folder) in out["write"]
    assert folder_state(folder) == before


def test_a_process_that_may_not_write_creates_no_catalog(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    script = "import sys\nfrom pytest_deriva import DerivaML\nDerivaML(sys.argv[1])"
    try:
        done = subprocess.run(
            [*without_root_privileges(), sys.executable, "-c", script, str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"pytest_deriva.exceptions.DerivaMLConfigurationError: Cannot create a catalog in {folder}: "
        "the folder is not writable. Name a folder you can write to."
    )
    assert list(folder.iterdir()) == []
