"""Opening an archive file: read-only for browsing, writable for a campaign, and refusing other files.

Browsing must leave every file as it found it: a user who points ``evosearch status`` at the
wrong file (an empty one, another program's SQLite database) gets a clear refusal, not a file
with evosearch's tables written into it and switched to WAL. A read-only opening therefore
uses SQLite's ``mode=ro`` URI, so SQLite itself refuses any write, and checks that the file is
an evosearch archive before anything reads it. A writable opening refuses another program's
database too: only an empty file or an evosearch archive becomes (or stays) one.

A file another process holds locked makes SQLite wait; the caller learns that it is waiting
(``on_wait``) before the wait, and :class:`ArchiveLocked` says who holds it if the wait ends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from evosearch.archive.schema import SCHEMA_VERSION, NotAnArchive, SchemaError, migrate, user_version

#: Tables every version of the schema has: a file without them is not an evosearch archive.
CORE_TABLES = frozenset({"campaigns", "programs"})
#: How long the first try waits before the caller is told that another process holds the file.
FIRST_TRY_S = 0.25

T = TypeVar("T")


class ArchiveLocked(sqlite3.OperationalError):
    """Another process holds the archive locked for longer than we were willing to wait.

    A ``sqlite3.OperationalError`` (SQLite's "database is locked"), so callers that handle
    SQLite errors keep handling it, with a message that says what is going on.
    """


def connect(path: Path, *, readonly: bool, timeout: float = 30.0,
            on_wait: Callable[[str], None] | None = None) -> tuple[sqlite3.Connection, int]:
    """An autocommit connection to the evosearch archive at ``path`` and the schema version it was at.

    ``readonly``: the file is opened with ``mode=ro`` and must already be an archive; an older
    one is first brought up to date on its own short writable connection (as every earlier
    evosearch did on opening it): the only write a browser makes, and only to an archive.
    Otherwise the file is created if need be, switched to WAL, and migrated.
    Raises :class:`NotAnArchive`, :class:`SchemaError` (a newer archive) or :class:`ArchiveLocked`.
    """
    if not readonly:
        return _open_writable(path, timeout, on_wait)
    conn = _connection(path, readonly=True)
    try:
        version = _patiently(path, timeout, on_wait, lambda seconds: _archive_version(conn, path, seconds))
        if version < SCHEMA_VERSION:
            conn.close()
            _upgrade(path, version, timeout, on_wait)
            conn = _connection(path, readonly=True)
        _set_busy_timeout(conn, timeout)
    except BaseException:
        conn.close()
        raise
    return conn, version


def _upgrade(path: Path, version: int, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    """Bring an older archive to the current schema, or say why it cannot be read here.

    Without the upgrade, reads of what later migrations added (``llm_calls``, ``task_results``)
    would fail midway with "no such table"; a file that cannot be written fails here instead.
    """
    try:
        _open_writable(path, timeout, on_wait)[0].close()
    except ArchiveLocked:
        raise
    except sqlite3.OperationalError as err:
        raise SchemaError(f"{path} has archive schema version {version}, older than this evosearch "
                          f"({SCHEMA_VERSION}), and cannot be upgraded here ({err}): open it once where it "
                          "can be written") from err


def _open_writable(path: Path, timeout: float, on_wait: Callable[[str], None] | None) -> tuple[sqlite3.Connection, int]:
    """A writable connection to an empty file or an archive, in WAL mode and migrated to the current schema."""
    conn = _connection(path, readonly=False)

    def prepare(seconds: float) -> int:
        _set_busy_timeout(conn, seconds)
        _check_archive(conn, path, allow_empty=True)
        conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for the campaign, nor it for them
        version = migrate(conn)
        # A writer that is up to date may not need a lock yet, and would then meet another
        # process's at its first write, waiting there in silence: take the write lock once now,
        # so a held file is reported (and waited for) here.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return version

    try:
        version = _patiently(path, timeout, on_wait, prepare)
        _set_busy_timeout(conn, timeout)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across process kills
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn, version


def _connection(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A bare autocommit connection (explicit BEGINs) that returns ``sqlite3.Row``s."""
    target, uri = str(path), False
    if readonly and target != ":memory:":
        if not Path(path).is_file():
            raise NotAnArchive(f"{path} is not an evosearch archive: there is no such file")
        target, uri = f"{Path(path).resolve().as_uri()}?mode=ro", True
    try:
        conn = sqlite3.connect(target, uri=uri, isolation_level=None)
    except sqlite3.OperationalError as err:  # a directory that cannot be read, say
        raise NotAnArchive(f"{path} is not an evosearch archive: cannot open it ({err})") from err
    conn.row_factory = sqlite3.Row
    return conn


def _set_busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    """How long the connection's statements wait for another process's lock before failing."""
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def _archive_version(conn: sqlite3.Connection, path: Path, seconds: float) -> int:
    """The schema version of the archive on ``conn``, after checking that it is one."""
    _set_busy_timeout(conn, seconds)
    _check_archive(conn, path, allow_empty=False)
    return user_version(conn)


def _check_archive(conn: sqlite3.Connection, path: Path, *, allow_empty: bool) -> None:
    """Raise :class:`NotAnArchive` unless the database is an evosearch archive (or, if allowed, empty).

    An archive records its schema version in ``user_version`` and has :data:`CORE_TABLES`; a
    database with tables but no version, or without those tables, belongs to another program.
    """
    try:
        version = user_version(conn)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        if _is_locked(err):
            raise
        raise NotAnArchive(f"{path} is not an evosearch archive: not an SQLite database ({err})") from err
    if version > SCHEMA_VERSION and CORE_TABLES <= tables:
        raise SchemaError(f"{path} has archive schema version {version}, newer than this evosearch "
                          f"({SCHEMA_VERSION}): upgrade evosearch to open it")
    if not tables and version == 0:
        if allow_empty:
            return
        raise NotAnArchive(f"{path} is not an evosearch archive: the database is empty (a campaign creates an "
                           "archive: evosearch run)")
    if version == 0 or not CORE_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise NotAnArchive(f"{path} is not an evosearch archive: it is another program's SQLite database "
                           f"(tables: {shown or 'none'})")


def _patiently(path: Path, timeout: float, on_wait: Callable[[str], None] | None,
               step: Callable[[float], T]) -> T:
    """Run ``step(seconds)``; if another process holds the file, say so through ``on_wait``, then wait.

    ``step`` gets how long its statements may wait for a lock. SQLite waits in silence, so a
    first try waits only :data:`FIRST_TRY_S`: a free file costs nothing, and a held one is
    reported before the long wait (up to ``timeout``), not after it. The steps given here
    are safe to repeat: a migration step is one transaction, and re-reads the version.
    """
    try:
        return step(min(FIRST_TRY_S, timeout))
    except sqlite3.OperationalError as err:
        if not _is_locked(err):
            raise
    if on_wait is not None:
        on_wait(f"{path} is locked by another process; waiting up to {timeout:g} s for it")
    try:
        return step(timeout)
    except sqlite3.OperationalError as err:
        if not _is_locked(err):
            raise
        raise ArchiveLocked(f"{path} is locked by another process (a campaign, or another program writing to it): "
                            f"still locked after {timeout:g} s; try again when it is done") from err


def _is_locked(err: sqlite3.Error) -> bool:
    """SQLite's SQLITE_BUSY / SQLITE_LOCKED, told by message (``sqlite_errorcode`` needs Python 3.11)."""
    return "locked" in str(err) or "busy" in str(err)


__all__ = ["ArchiveLocked", "CORE_TABLES", "connect"]
