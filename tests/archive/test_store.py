"""The SQLite store: elites, atomic records, migrations, and what is never stored."""

import json
import math
import sqlite3

import pytest

from evosearch.archive.schema import SCHEMA_VERSION, SchemaError, migrate, user_version
from evosearch.archive.store import Archive, CellEntry
from evosearch.evaluate import EvalResult, TaskResult


def result(score: float | None, outcome: str = "ok", fingerprint: str = "f") -> EvalResult:
    task = TaskResult(env_id="CartPole-v1", returns=[100.0, 120.0], normalized=[0.4, 0.5], mean_return=110.0,
                      normalized_mean=0.45, ci=[0.4, 0.5], curve_steps=[512, 1024], curves=[[10.0, 20.0], [12.0, 22.0]],
                      auc_per_seed=[0.1, 0.2], auc=0.15, train_wall_s=1.0)
    return EvalResult(outcome=outcome, stage="full" if outcome == "ok" else "smoke", score=score,
                      ci=[score - 0.1, score + 0.1] if score is not None and math.isfinite(score) else None,
                      fingerprint=fingerprint, tasks={"CartPole-v1": task} if outcome == "ok" else {})


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "a.db")
    a.campaign_id = a.create_campaign("c", "rule", {"x": 1}, {"evaluations": 0})
    yield a
    a.close()


def add(archive, source: str) -> int:
    return archive.add_pending(archive.campaign_id, {"kind": "rule", "source": source, "sha": source,
                                                      "operator": "seed"})


def cell(archive) -> dict:
    row = archive.elites(archive.campaign_id)[0]
    return {"program_id": row["program_id"], "score": row["score"]}


def test_a_cell_keeps_the_better_program(archive):
    entry = [CellEntry(0, 3, [0, 3])]
    first, worse, better, equal = (add(archive, s) for s in "abcd")
    assert archive.record(archive.campaign_id, first, result(0.5), descriptors={}, cells=entry, state={}) == entry
    assert archive.record(archive.campaign_id, worse, result(0.4), descriptors={}, cells=entry, state={}) == []
    assert cell(archive) == {"program_id": first, "score": 0.5}
    assert archive.winning_cells(archive.campaign_id, entry, 0.7) == entry
    assert archive.record(archive.campaign_id, better, result(0.7), descriptors={}, cells=entry, state={}) == entry
    assert archive.record(archive.campaign_id, equal, result(0.7), descriptors={}, cells=entry, state={}) == []
    assert cell(archive) == {"program_id": better, "score": 0.7}


def test_failed_and_nan_results_never_enter_and_nan_is_never_stored(archive):
    entry = [CellEntry(0, 0, [0])]
    failed, nan = add(archive, "a"), add(archive, "b")
    archive.record(archive.campaign_id, failed, result(None, "candidate_error"), descriptors={}, cells=entry, state={})
    archive.record(archive.campaign_id, nan, result(float("nan")), descriptors={"code_size": float("nan")},
                   cells=entry, state={"x": float("inf")})
    assert archive.elites(archive.campaign_id) == []
    row = archive.program(nan)
    assert row["score"] is None and json.loads(row["descriptors"]) == {"code_size": None}
    assert archive.conn.execute("SELECT COUNT(*) FROM programs WHERE score != score").fetchone()[0] == 0


def test_record_is_atomic_and_refuses_a_second_record(archive):
    pid = add(archive, "a")
    archive.record(archive.campaign_id, pid, result(0.5), descriptors={}, cells=[CellEntry(0, 0, [0])],
                   state={"evaluations": 1})
    rows = archive.evaluations(pid)
    assert [(r["task"], r["seed"], r["mean_return"]) for r in rows] == [("CartPole-v1", 0, 100.0),
                                                                          ("CartPole-v1", 1, 120.0)]
    with pytest.raises(RuntimeError, match="not pending"):
        archive.record(archive.campaign_id, pid, result(0.9), descriptors={}, cells=[CellEntry(0, 0, [0])],
                       state={"evaluations": 2})
    assert len(archive.evaluations(pid)) == 2  # the failed second record rolled back whole
    assert json.loads(archive.campaign("c")["state"]) == {"evaluations": 1}
    assert cell(archive)["score"] == 0.5


def test_the_same_source_is_stored_once(archive):
    add(archive, "a")
    with pytest.raises(sqlite3.IntegrityError):
        add(archive, "a")


def test_wal_and_foreign_keys_are_on(archive):
    assert archive.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert archive.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        archive.add_pending(archive.campaign_id, {"kind": "rule", "source": "x", "sha": "x", "operator": "ast.constant",
                                                  "parent_id": 9999})


def test_an_older_database_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)  # a database written by the first schema
    conn.execute("INSERT INTO campaigns (name, kind, config, created, updated) VALUES ('old', 'rule', '{}', 't', 't')")
    conn.execute("INSERT INTO programs (campaign_id, kind, source, sha, operator, created, status, outcome, score)"
                 " VALUES (1, 'rule', 'src', 'sha', 'seed', 't', 'done', 'ok', 0.8)")
    conn.close()
    archive = Archive(path)
    assert archive.migrated_from == 1 and user_version(archive.conn) == SCHEMA_VERSION
    assert archive.program(1)["score"] == 0.8
    names = {r[0] for r in archive.conn.execute("SELECT name FROM sqlite_master")}
    assert {"elites", "outcomes", "programs_campaign_score"} <= names
    assert archive.integrity() == "ok"
    archive.close()


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "new.db"
    Archive(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer"):
        Archive(path)


def test_island_migration_moves_the_best_to_the_next_island(archive):
    ids = [add(archive, s) for s in "abc"]
    for pid, score, c in zip(ids, (0.9, 0.5, 0.1), (0, 1, 2), strict=True):
        archive.record(archive.campaign_id, pid, result(score), descriptors={}, cells=[CellEntry(0, c, [c])], state={})
    weak = add(archive, "d")
    archive.record(archive.campaign_id, weak, result(0.95), descriptors={}, cells=[CellEntry(1, 1, [1])], state={})
    moved = archive.migrate_elites(archive.campaign_id, 0, 1, 2, state={"m": 1})
    assert moved == [ids[0]]  # cell 1 of island 1 already holds a better program
    island1 = {r["cell"]: r["program_id"] for r in archive.elites(archive.campaign_id, 1)}
    assert island1 == {0: ids[0], 1: weak}
    stats = archive.qd_stats(archive.campaign_id, grid_size=4, qd_offset=0.0)
    assert stats["cells"] == 3 and stats["coverage"] == 0.75
    assert stats["qd_score"] == pytest.approx(0.9 + 0.95 + 0.1) and stats["best"] == 0.95


@pytest.mark.parametrize("query", [
    "SELECT status, outcome, COUNT(*) FROM programs WHERE campaign_id = 1 GROUP BY status, outcome",
    "SELECT COALESCE(MAX(eval_seq), 0) + 1 FROM programs WHERE campaign_id = 1",
    "SELECT id FROM programs WHERE campaign_id = 1 AND outcome = 'ok' ORDER BY score DESC, id LIMIT 5",
    "SELECT * FROM cells WHERE campaign_id = 1 AND island = 0 ORDER BY score DESC",
])
def test_hot_queries_use_an_index_not_a_table_scan(archive, query):
    # Each runs once per evaluation or per progress tick; a scan costs ~250 ms at 100k programs
    # (bench/search_overhead.py).
    plan = " ".join(str(tuple(r)[-1]) for r in archive.conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "SCAN programs" not in plan and "SCAN cells" not in plan, plan
