"""The embedded store migrates (issue 10, item 6).

The previous format is format 2 as stores were written before they carried their version in
``PRAGMA user_version`` (0; the ``format`` row says ``pytest-deriva-embedded-2``). A store made so
before commit 8ad0729 also lacks what the catalog set-up has since: the ``WWW`` schema, the
catalog's Chaise annotations, asset tables' visible columns; and its ``Dataset_Version.Version``
and ``.Dataset`` are ``NOT NULL`` (in SQLite too). Such a store is made here two ways:

- :func:`to_previous_format`, always: a store the current code made, with records in it, written
  back to that layout with plain ``sqlite3``;
- the code of commit :data:`PREVIOUS` (the last before 8ad0729), where the repository has it:
  :func:`populate` run by that code in a subprocess. That test also shows the first way makes
  exactly what the previous code made, table for table and annotation for annotation.

Then the store is opened with today's code and must have what a store made today has, with its
records intact, a copy of it as it was beside it, and a line in the log saying where.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_deriva import DerivaML, DerivaMLConfigurationError
from pytest_deriva import ExecutionConfiguration as Config
from pytest_deriva.catalog import EmbeddedCatalog
from pytest_deriva.catalog.embedded import _catalog_lock
from pytest_deriva.catalog.model import ASSET_COLUMNS
from pytest_deriva.catalog.setup import init_catalog

CATALOG_FILE = "catalog.sqlite"
BACKUP = f"{CATALOG_FILE}.bak-v0"
#: The last commit before the catalog set-up became DerivaML 1.30's (8ad0729): its stores are the
#: previous format with everything the migration has to add.
PREVIOUS = "c644370"
REPO = Path(__file__).resolve().parent.parent
MIGRATED = re.compile(r"Migrated the catalog in (\S+) from format 2 without its version number .* kept in (\S+)\.$")


def populate(folder: str, source: str) -> dict[str, str]:
    """Records a project has: a finished run with an output file, a domain schema with an asset
    table, a dataset with a version. Only API the previous version has too: the old code runs this
    function's source (so it imports what it needs itself)."""
    from pytest_deriva import DerivaML, ExecutionConfiguration
    from pytest_deriva.catalog.schema import column

    ml = DerivaML(folder)
    workflow = ml.create_workflow("train", "Training", source_path=source)
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="before")) as exe:
        exe.asset_file_path("Execution_Asset", "model.bin").write_bytes(b"weights")
    exe.upload_execution_outputs()
    ml.create_vocabulary("Diagnosis")
    ml.add_term("Diagnosis", "Healthy", "Healthy subject")
    ml.create_table(
        "Subject",
        [column("Name", "text", nullok=False), column("Diagnosis", "text")],
        fkeys=[(["Diagnosis"], ml.default_schema, "Diagnosis", ["Name"])],
    )
    ml.create_asset("Image", referenced_tables=["Subject"])
    for t in ("Subject", "Image"):
        ml.add_dataset_element_type(t)
    [subject] = ml.insert_records("Subject", [{"Name": "ann", "Diagnosis": "Healthy"}])
    obj = ml.catalog.objects.put_bytes(b"pixels", "Image", "img.png")
    image = {"URL": obj.url, "Filename": "img.png", "Length": obj.length, "MD5": obj.md5, "Subject": subject["RID"]}
    [row] = ml.insert_records("Image", [image])
    dataset = ml.create_dataset("Training", description="one image")
    dataset.add_dataset_members({"Image": [row["RID"]]})
    made = {"execution": exe.execution_rid, "dataset": dataset.rid, "version": str(ml.dataset_version(dataset.rid))}
    ml.catalog.close()
    return made


# -- what a store holds ---------------------------------------------------------------------------
def read(folder: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"{(folder / CATALOG_FILE).as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def layout(folder: Path, db: str = CATALOG_FILE) -> tuple[dict[str, Any], dict[str, str], int]:
    """The model document (the folder's path, which catalog annotations name, made neutral), the
    SQL of every table, index and trigger, and ``user_version``."""
    conn = sqlite3.connect(f"{(folder / db).as_uri()}?mode=ro", uri=True)
    try:
        text = conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'model'").fetchone()[0]
        sql = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    return json.loads(text.replace(json.dumps(str(folder))[1:-1], "FOLDER")), sql, version


def meta(folder: Path) -> dict[str, str]:
    return dict(read(folder, "SELECT key, value FROM _ermrest_meta"))


def dump(folder: Path) -> list[str]:
    conn = sqlite3.connect(f"{(folder / CATALOG_FILE).as_uri()}?mode=ro", uri=True)
    try:
        return [*conn.iterdump(), f"user_version {conn.execute('PRAGMA user_version').fetchone()[0]}"]
    finally:
        conn.close()


# -- a store of the previous format ---------------------------------------------------------------
def to_previous_format(folder: Path) -> None:
    """Write a store back to the layout of the previous format (see the module docstring), with
    plain sqlite3: what :mod:`pytest_deriva.catalog._migrations` has to undo, spelled out apart."""
    conn = sqlite3.connect(folder / CATALOG_FILE, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN IMMEDIATE")
    doc = json.loads(conn.execute("SELECT value FROM _ermrest_meta WHERE key = 'model'").fetchone()[0])
    del doc["annotations"]  # the catalog's Chaise annotations
    del doc["schemas"]["WWW"]
    for name in ("File", "Page"):
        conn.execute(f'DROP TABLE "WWW:{name}"')  # its history triggers go with it
    for schema in doc["schemas"].values():
        for table in schema["tables"].values():
            if {c["name"] for c in table["column_definitions"]} >= ASSET_COLUMNS:
                del table["annotations"]["tag:isrd.isi.edu,2016:visible-columns"]
    version_table = doc["schemas"]["deriva-ml"]["tables"]["Dataset_Version"]
    for c in version_table["column_definitions"]:
        if c["name"] in ("Version", "Dataset"):
            c["nullok"] = False
    name = "deriva-ml:Dataset_Version"
    [create] = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    triggers = [
        r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (name,))
    ]
    old = create
    for column in ("Version", "Dataset"):
        old = old.replace(f'"{column}" TEXT,', f'"{column}" TEXT NOT NULL,')
    assert old.count("NOT NULL") == 2, create
    # SQLite's way to change a column (renaming the old table instead would rename what refers to it)
    conn.execute(old.replace(f'"{name}"', '"previous"', 1))
    conn.execute(f'INSERT INTO "previous" SELECT * FROM "{name}"')
    conn.execute(f'DROP TABLE "{name}"')
    conn.execute(f'ALTER TABLE "previous" RENAME TO "{name}"')
    for sql in triggers:
        conn.execute(sql)
    conn.execute("UPDATE _ermrest_meta SET value = ? WHERE key = 'model'", (json.dumps(doc),))
    conn.execute("PRAGMA user_version = 0")
    conn.execute("COMMIT")
    conn.close()


@pytest.fixture
def stores(project: Path, tmp_path: Path) -> dict[str, Any]:
    """A store of the previous format with records in it ("folder", "made", "before": its layout),
    and what the current version makes of the same records ("today": the layout of a store made
    today, with what ``catalog init`` sets for the tables it now has)."""
    folder = tmp_path / "catalog"
    made = populate(str(folder), str(project / "train.py"))
    catalog = EmbeddedCatalog(folder)
    init_catalog(catalog)  # the navbar as of today's tables (a new store's lists the ones it began with)
    catalog.close()
    today = layout(folder)
    to_previous_format(folder)
    return {"folder": folder, "made": made, "before": layout(folder), "today": today}


def migrated_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "pytest_deriva" and r.getMessage().startswith("Migrated")
    ]


# -- the tests ------------------------------------------------------------------------------------
def test_a_store_of_the_previous_format_is_migrated_when_opened(stores, project, caplog):
    folder, made = stores["folder"], stores["made"]
    assert stores["before"] != stores["today"]
    assert stores["before"][2] == 0
    history = read(folder, "SELECT count(*) FROM _ermrest_history")
    ml = DerivaML(folder)  # which sets the package's logger to WARNING: the line is a warning
    assert ml.catalog.format_version == 2
    assert layout(folder) == stores["today"]  # tables, triggers, model and annotations as made today
    assert read(folder, "SELECT count(*) FROM _ermrest_history") == history  # rebuilding recorded no change
    # the copy: the store as it was, one file, named in the log
    assert layout(folder, BACKUP) == stores["before"]
    assert sorted(p.name for p in folder.glob(f"{BACKUP}*")) == [BACKUP]  # no -wal or -shm of its own
    [line] = migrated_lines(caplog)
    said = MIGRATED.fullmatch(line)
    assert said, line
    assert said[1] == str(folder)
    assert said[2] == str(folder / BACKUP)
    assert "made deriva-ml:Dataset_Version Version and Dataset nullable" in line
    assert "created schema WWW" in line
    # what was recorded before reads as it did
    record = ml.lookup_execution(made["execution"])
    assert record.status.value == "Completed"
    assert [a.filename for a in record.list_assets("Output") if a.asset_table == "Execution_Asset"] == ["model.bin"]
    assert str(ml.dataset_version(made["dataset"])) == made["version"]
    # and new runs record, datasets get versions, the old version still pins its members
    workflow = ml.create_workflow("evaluate", "Training", source_path=project / "train.py")
    with ml.create_execution(Config(workflow=workflow, description="after")) as exe:
        exe.asset_file_path("Execution_Asset", "score.txt").write_text("0.9")
    exe.upload_execution_outputs()
    assert ml.lookup_execution(exe.execution_rid).status.value == "Completed"
    [image] = ml.list_dataset_members(made["dataset"])["Image"]
    obj = ml.catalog.objects.put_bytes(b"more pixels", "Image", "img2.png")
    [second] = ml.insert_records(
        "Image",
        [{"URL": obj.url, "Filename": "img2.png", "Length": obj.length, "MD5": obj.md5, "Subject": image["Subject"]}],
    )
    ml.add_dataset_members(made["dataset"], {"Image": [second["RID"]]})
    assert len(ml.list_dataset_members(made["dataset"])["Image"]) == 2
    assert [r["RID"] for r in ml.list_dataset_members(made["dataset"], version=made["version"])["Image"]] == [
        image["RID"]
    ]
    ml.catalog.close()


def test_a_migrated_store_is_opened_as_any_other(stores, caplog):
    folder = stores["folder"]
    DerivaML(folder).catalog.close()
    before = (meta(folder), layout(folder))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pytest_deriva"):
        ml = DerivaML(folder)
    ml.catalog.close()
    assert (meta(folder), layout(folder)) == before  # not even the model's version moved
    assert migrated_lines(caplog) == []
    assert "meanwhile" not in caplog.text
    assert sorted(p.name for p in folder.glob(f"{CATALOG_FILE}.bak*")) == [BACKUP]


def test_a_failed_migration_leaves_the_store_as_it_was_and_names_the_copy(stores):
    """A table ``WWW:Page`` the model does not know (left by a hand repair, say) stops the step
    that adds the WWW schema, after Dataset_Version was rebuilt: all of it is rolled back."""
    folder = stores["folder"]
    conn = sqlite3.connect(folder / CATALOG_FILE)
    conn.execute('CREATE TABLE "WWW:Page" (note TEXT)')
    conn.commit()
    conn.close()
    before = dump(folder)
    with pytest.raises(DerivaMLConfigurationError) as err:
        DerivaML(folder)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"Could not migrate the catalog in {folder} from format 2 without its version number to format 2: "
    ), message
    assert '"WWW:Page" already exists' in message
    assert message.endswith(
        f"It was left as it was (a copy made before is {folder / BACKUP}); "
        "use the version that made it, or report this."
    )
    assert dump(folder) == before
    assert layout(folder, BACKUP)[2] == 0
    # put right, it migrates; the first copy is kept, the new one beside it
    conn = sqlite3.connect(folder / CATALOG_FILE)
    conn.execute('DROP TABLE "WWW:Page"')
    conn.commit()
    conn.close()
    DerivaML(folder).catalog.close()
    assert layout(folder) == stores["today"]
    assert sorted(p.name for p in folder.glob(f"{CATALOG_FILE}.bak*")) == [BACKUP, f"{BACKUP}-copy2"]


def test_read_only_it_is_read_as_it_is(stores, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # a read-only catalog's work folders
    folder, made = stores["folder"], stores["made"]
    before = dump(folder)
    ml = DerivaML(folder, read_only=True)
    assert ml.catalog.format_version == 0
    assert ml.lookup_execution(made["execution"]).status.value == "Completed"
    assert "WWW" not in ml.model.schemas
    ml.catalog.close()
    assert dump(folder) == before
    assert not list(folder.glob(f"{CATALOG_FILE}.bak*"))


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ("PRAGMA user_version = 3", r"made by a newer pytest-deriva \(catalog format 3; this version reads format 2\)"),
        (
            "UPDATE _ermrest_meta SET value = 'pytest-deriva-embedded-1' WHERE key = 'format'",
            r"made by an older pytest-deriva \(catalog format 1\); this version reads format 2 and cannot migrate it",
        ),
    ],
    ids=["newer", "format 1"],
)
def test_a_store_it_cannot_migrate_is_refused_and_left_alone(stores, change, pattern):
    folder = stores["folder"]
    conn = sqlite3.connect(folder / CATALOG_FILE)
    conn.execute(change)
    conn.commit()
    conn.close()
    before = dump(folder)
    with pytest.raises(DerivaMLConfigurationError, match=pattern) as err:
        DerivaML(folder)
    assert "\n" not in str(err.value)
    assert dump(folder) == before
    assert not list(folder.glob(f"{CATALOG_FILE}.bak*"))


OPEN = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, format="%(message)s")
from pytest_deriva.catalog import EmbeddedCatalog
catalog = EmbeddedCatalog(sys.argv[1])
print(catalog.format_version)
catalog.close()
"""


def waiting_for(lock: Path, pids: set[int]) -> set[int]:
    """Which of ``pids`` wait for the lock on ``lock`` (Linux's /proc/locks: "N: -> FLOCK ... pid dev:inode ...")."""
    inode = str(lock.stat().st_ino)
    waiting = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "->" and int(fields[5]) in pids and fields[6].rsplit(":", 1)[-1] == inode:
            waiting.add(int(fields[5]))
    return waiting


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs Linux's /proc/locks to see who waits for a lock")
def test_two_processes_opening_it_at_once_migrate_it_once(stores):
    """Both processes see the previous format, then wait for the catalog's lock (held here until
    both do): the first to get it migrates, the other finds it migrated."""
    folder = stores["folder"]
    with _catalog_lock(folder):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while waiting_for(folder / ".lock", {p.pid for p in procs}) != {p.pid for p in procs}:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the processes never waited for the catalog's lock"
            time.sleep(0.05)
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["2", "2"]
    logs = sorted(err for _, err in outputs)
    assert sum("Migrated the catalog" in err for err in logs) == 1, logs
    assert sum("migrated meanwhile by another process" in err for err in logs) == 1, logs
    assert sorted(p.name for p in folder.glob(f"{CATALOG_FILE}.bak*")) == [BACKUP]
    assert layout(folder) == stores["today"]


def previous_code(tmp_path: Path) -> Path:
    """The ``src`` folder of commit :data:`PREVIOUS`, from this repository's history."""
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"commit {PREVIOUS} (the previous format's code) is not in this clone's history")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS, "src"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp_path / PREVIOUS, filter="data")
    return tmp_path / PREVIOUS / "src"


def test_a_store_made_by_the_previous_code_is_migrated(stores, project, tmp_path):
    """The previous version's own code makes a store: it is what :func:`to_previous_format` makes
    of today's, and today's code migrates it to what it makes itself."""
    src = previous_code(tmp_path)
    folder = tmp_path / "made-by-previous"
    script = textwrap.dedent(inspect.getsource(populate)) + "\nimport sys\npopulate(sys.argv[1], sys.argv[2])\n"
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(project / "train.py")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    model, sql, version = layout(folder)
    assert version == 0
    assert meta(folder)["format"] == "pytest-deriva-embedded-2"
    assert (model, sql) == stores["before"][:2]
    DerivaML(folder).catalog.close()
    assert layout(folder)[:2] == stores["today"][:2]
    assert (folder / BACKUP).is_file()
