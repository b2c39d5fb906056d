"""What the executor tests share (a plain module: test subfolders keep no conftest of their own)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from test_campaign import done_rows  # noqa: F401 (the executor tests' one place for it)


def events(db: Path, kind: str) -> list[dict]:
    conn = sqlite3.connect(db)
    found = [json.loads(r[0]) for r in conn.execute("SELECT data FROM events WHERE kind = ? ORDER BY id", (kind,))]
    conn.close()
    return found


def assert_nothing_lost_or_twice(db: Path, expected_evaluations: int) -> None:
    """Every program stored once with one result: counters agree, nothing pending, no result recorded twice."""
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    state = json.loads(conn.execute("SELECT state FROM campaigns").fetchone()[0])
    evaluated = conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'done' AND outcome != 'duplicate'")
    assert state["evaluations"] == evaluated.fetchone()[0] == expected_evaluations
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'pending'").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT sha) FROM programs").fetchone() in [(n, n) for n in
                                                                                            range(1000)]
    seqs = [r[0] for r in conn.execute("SELECT eval_seq FROM programs WHERE status = 'done' ORDER BY eval_seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    per_seed = conn.execute("SELECT COUNT(*), COUNT(DISTINCT program_id || task || seed) FROM evaluations").fetchone()
    assert per_seed[0] == per_seed[1]
    conn.close()


def open_files(pid: int) -> list[str]:
    """What process ``pid`` has open (its /proc fd links)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:
            continue
    return found
