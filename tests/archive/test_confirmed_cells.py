"""Cells are contested on confirmed scores when both sides have one, and selection prefers them."""

import random
import sqlite3

import pytest

from evosearch.archive.schema import SCHEMA_VERSION, migrate
from evosearch.archive.selection import select_parent
from evosearch.archive.store import Archive, CellEntry, beats
from evosearch.config import SelectionConfig
from evosearch.evaluate import EvalResult

CELL = [CellEntry(0, 3, [1, 0])]


@pytest.fixture
def archive(tmp_path):
    a = Archive(tmp_path / "a.db")
    a.campaign_id = a.create_campaign("c", "rule", {"x": 1}, {"evaluations": 0})
    yield a
    a.close()


def tell(archive: Archive, name: str, score: float, confirmed: float | None = None,
         cells: list[CellEntry] = CELL) -> tuple[int, bool]:
    program_id = archive.add_pending(archive.campaign_id, {"kind": "rule", "source": name, "sha": name,
                                                          "operator": "seed"})
    result = EvalResult(outcome="ok", stage="full", score=score, ci=[score - 0.1, score + 0.1], fingerprint=name)
    if confirmed is not None:
        result.confirmed = {"outcome": "ok", "score": confirmed, "seeds": 12}
    would = bool(archive.winning_cells(archive.campaign_id, cells, score,
                                       confirmed if confirmed is not None else None))
    entered = archive.record(archive.campaign_id, program_id, result, descriptors={}, cells=cells, state={})
    assert would == bool(entered)  # the read-only check agrees with what the transaction did
    return program_id, bool(entered)


def resident(archive: Archive) -> int:
    return int(archive.elites(archive.campaign_id)[0]["program_id"])


def test_two_confirmed_programs_compare_confirmed_scores_not_search_scores(archive):
    first, _ = tell(archive, "a", score=2.0, confirmed=1.2)
    _, entered = tell(archive, "lucky", score=2.5, confirmed=1.0)  # higher search score, lower on fresh seeds
    assert not entered and resident(archive) == first
    better, entered = tell(archive, "modest", score=1.5, confirmed=1.4)  # lower search score, better confirmed
    assert entered and resident(archive) == better


def test_a_mixed_contest_compares_the_measurement_both_sides_have(archive):
    first, _ = tell(archive, "a", score=2.0, confirmed=1.2)
    # an unconfirmed challenger is compared on search scores, never its search score against a confirmed one
    _, entered = tell(archive, "b", score=1.9)
    assert not entered
    second, entered = tell(archive, "c", score=2.1)
    assert entered and resident(archive) == second
    _, entered = tell(archive, "d", score=2.0, confirmed=5.0)  # confirmed, but the resident is not: search scores
    assert not entered and resident(archive) == second
    row = archive.elites(archive.campaign_id)[0]
    assert row["confirmed"] is None  # the cell says what it holds


def test_a_failed_confirmation_counts_as_none(archive):
    tell(archive, "a", score=2.0, confirmed=1.2)
    program_id = archive.add_pending(archive.campaign_id, {"kind": "rule", "source": "b", "sha": "b",
                                                          "operator": "seed"})
    result = EvalResult(outcome="ok", stage="full", score=2.4, ci=[2.3, 2.5], fingerprint="b")
    result.confirmed = {"outcome": "timeout", "error": "took too long", "seeds": 12}
    assert archive.record(archive.campaign_id, program_id, result, descriptors={}, cells=CELL, state={})
    assert archive.elites(archive.campaign_id)[0]["confirmed"] is None


def test_beats_is_the_rule_the_sql_applies():
    assert beats(1.0, 0.9, 2.0, 0.8) and not beats(3.0, 0.7, 2.0, 0.8)
    assert beats(2.1, None, 2.0, 0.8) and not beats(1.9, 5.0, 2.0, None)


def test_selection_and_migration_rank_elites_by_confirmed_score_where_measured(archive):
    lucky, _ = tell(archive, "lucky", score=3.0, confirmed=0.5, cells=[CellEntry(0, 1, [0, 1])])
    solid, _ = tell(archive, "solid", score=2.0, confirmed=1.8, cells=[CellEntry(0, 2, [0, 2])])
    plain, _ = tell(archive, "plain", score=1.0, cells=[CellEntry(0, 3, [0, 3])])
    order = [int(r["program_id"]) for r in archive.elites(archive.campaign_id, 0)]
    assert order == [solid, plain, lucky]  # 1.8 confirmed, 1.0 search, 0.5 confirmed
    # a tournament over every elite picks the best confirmed one, not the best search score
    parent = select_parent(archive, archive.campaign_id, 0, random.Random(0),
                           SelectionConfig(exploit_ratio=1.0, tournament_size=30))
    assert parent.program_id == solid
    moved = archive.migrate_elites(archive.campaign_id, 0, 1, 1, state={})
    assert moved == [solid]
    migrated = archive.elites(archive.campaign_id, 1)[0]
    assert (migrated["score"], migrated["confirmed"]) == (2.0, 1.8)  # a migrant keeps its confirmation
    assert archive.confirmed_elites(archive.campaign_id) == {(0, 1): 3.0, (0, 2): 2.0, (1, 2): 2.0}


def test_an_archive_from_before_confirmed_cells_opens_with_its_elites_unconfirmed(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    migrate(conn, target=4)
    conn.execute("INSERT INTO campaigns (name, kind, config, state, status, created, updated) "
                 "VALUES ('c', 'rule', '{}', '{}', 'running', 'now', 'now')")
    conn.execute("INSERT INTO programs (campaign_id, kind, source, sha, operator, status, created) "
                 "VALUES (1, 'rule', 'x', 'x', 'seed', 'done', 'now')")
    conn.execute("INSERT INTO cells VALUES (1, 0, 3, '[1, 0]', 1, 1.5, 'now')")
    conn.commit()
    conn.close()
    archive = Archive(path)
    try:
        row = archive.elites(1)[0]
        assert (row["score"], row["confirmed"]) == (1.5, None)
        assert archive.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert archive.conn.execute("SELECT confirmed FROM elites").fetchone()[0] is None
    finally:
        archive.close()
