"""Opening for browsing never writes: other files are refused unchanged, a locked archive is named as such."""

import hashlib
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from evosearch.archive import opening
from evosearch.archive.opening import ArchiveLocked
from evosearch.archive.schema import SCHEMA_VERSION, NotAnArchive, SchemaError, migrate
from evosearch.archive.store import Archive


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_beside(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


def unrelated_sqlite(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def archive_path(tmp_path) -> Path:
    path = tmp_path / "a.db"
    archive = Archive(path)
    archive.create_campaign("c", "rule", {}, {})
    archive.close()
    return path


@pytest.mark.parametrize("make, what", [
    (lambda p: p.write_bytes(b""), "the database is empty"),
    (unrelated_sqlite, "another program's SQLite database (tables: notes)"),
    (lambda p: p.write_text("not a database at all\n" * 50), "not an SQLite database"),
])
def test_a_file_that_is_not_an_archive_is_refused_and_left_byte_identical(tmp_path, make, what):
    path = tmp_path / "x.db"
    make(path)
    before, around = digest(path), files_beside(path)
    with pytest.raises(NotAnArchive, match="is not an evosearch archive") as err:
        Archive(path, readonly=True)
    assert what in str(err.value) and str(path) in str(err.value)
    assert isinstance(err.value, SchemaError)  # what the CLI already turns into one "Error:" line
    assert digest(path) == before and files_beside(path) == around  # no WAL switch, no -wal or -journal left


def test_a_missing_file_is_not_created_by_a_read_only_open(tmp_path):
    with pytest.raises(NotAnArchive, match="no such file"):
        Archive(tmp_path / "missing" / "a.db", readonly=True)
    assert not (tmp_path / "missing").exists()


def test_a_campaign_refuses_another_programs_database_too(tmp_path):
    path = unrelated_sqlite(tmp_path / "notes.db")
    before = digest(path)
    with pytest.raises(NotAnArchive, match="another program's SQLite database"):
        Archive(path)
    assert digest(path) == before


def test_an_empty_file_still_becomes_an_archive_when_opened_for_writing(tmp_path):
    path = tmp_path / "new.db"
    path.write_bytes(b"")
    with closing(Archive(path)) as archive:
        assert archive.campaigns() == [] and archive.migrated_from == 0


def test_a_read_only_archive_reads_and_refuses_writes(archive_path):
    archive = Archive(archive_path, readonly=True)
    try:
        assert archive.readonly and [r["name"] for r in archive.campaigns()] == ["c"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            archive.create_campaign("d", "rule", {}, {})
    finally:
        archive.close()


def test_a_newer_archive_is_refused_read_only_too(archive_path):
    conn = sqlite3.connect(archive_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer than this evosearch"):
        Archive(archive_path, readonly=True)


def test_an_older_archive_that_cannot_be_upgraded_says_so(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.close()

    def read_only_medium(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(opening, "_open_writable", read_only_medium)  # root writes through chmod; fake the medium
    with pytest.raises(SchemaError, match="version 1, older than this evosearch .* cannot be upgraded here"):
        Archive(path, readonly=True)


@pytest.mark.parametrize("readonly", [True, False])
def test_a_locked_archive_says_another_process_holds_it_and_that_we_wait(archive_path, readonly):
    holder = sqlite3.connect(archive_path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")  # held until closed, readers included (as a crashed tool can)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE campaigns SET status = 'running'")
    told: list[tuple[float, str]] = []
    start = time.monotonic()
    try:
        with pytest.raises(ArchiveLocked, match="locked by another process") as err:
            Archive(archive_path, readonly=readonly, timeout=0.5,
                    on_wait=lambda line: told.append((time.monotonic() - start, line)))
    finally:
        holder.close()
    assert isinstance(err.value, sqlite3.OperationalError)  # what the CLI already catches
    assert "still locked after 0.5 s" in str(err.value)
    assert len(told) == 1 and "waiting up to 0.5 s" in told[0][1] and told[0][0] < 0.5  # said before the wait
    Archive(archive_path, readonly=readonly).close()  # free again once the holder is gone

