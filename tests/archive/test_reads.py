"""The archive's read queries (``evosearch.archive.reads``): lineage walks, per-campaign listings, snapshots."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from evosearch.archive.descriptors import Axis, grid_from_config
from evosearch.archive.store import Archive
from evosearch.config import DescriptorConfig


@pytest.fixture
def archive(tmp_path):
    """Two campaigns; in the first, seeds 1 and 2 and the children 1 -> 3 -> {4, 5}, 3 -> 6, with 4 made with mate 2."""
    a = Archive(tmp_path / "r.db")
    cid = a.create_campaign("c", "rule", {"archive": {"islands": 1}}, {})
    a.create_campaign("other", "rule", {}, {})
    for parents in ([], [], [1], [3, 2], [3], [3]):
        n = len(a.conn.execute("SELECT id FROM programs").fetchall()) + 1
        a.add_pending(cid, {"kind": "rule", "source": f"# {n}", "sha": f"sha{n}",
                            "operator": "x" if parents else "seed", "parent_id": parents[0] if parents else None,
                            "parent_ids": parents})
    scores = {1: 1.0, 2: 0.5, 3: 1.5, 4: 1.5, 5: None, 6: 0.2}
    for seq, pid in enumerate([2, 1, 3, 6, 4, 5], 1):  # recorded out of id order
        a.conn.execute("UPDATE programs SET status = 'done', outcome = ?, score = ?, eval_seq = ? WHERE id = ?",
                       ("ok" if scores[pid] is not None else "train_error", scores[pid], seq, pid))
    yield a
    a.close()


def ids(rows) -> list[int]:
    return [int(r["id"]) for r in rows]


def test_ancestors_root_first_and_where_they_stop(archive):
    walk = archive.ancestors(4)
    assert ids(walk.rows) == [1, 3, 4] and not walk.truncated
    assert "source" not in walk.rows[0].keys()  # a lineage never loads sources
    assert ids(archive.ancestors(1).rows) == [1] and not archive.ancestors(1).truncated
    cut = archive.ancestors(4, max_depth=1)
    assert ids(cut.rows) == [3, 4] and cut.truncated
    assert archive.ancestors(99) == ([], False)
    archive.conn.execute("UPDATE programs SET parent_id = 4 WHERE id = 1")  # damage: a cycle 1 -> 3 -> 4 -> 1
    cycle = archive.ancestors(4)
    assert ids(cycle.rows) == [1, 3, 4] and cycle.truncated
    archive.conn.execute("PRAGMA foreign_keys = OFF")
    archive.conn.execute("UPDATE programs SET parent_id = 77 WHERE id = 1")  # a dangling parent
    assert ids(archive.ancestors(3).rows) == [1, 3] and archive.ancestors(3).truncated


def test_descendants_breadth_first_within_limits(archive):
    walk = archive.descendants(1, max_depth=10, max_nodes=10)
    assert ids(walk.rows) == [3, 4, 5, 6] and not walk.truncated
    assert [int(r["parent_id"]) for r in walk.rows] == [1, 3, 3, 3]
    assert ids(archive.children(3)) == [4, 5, 6]
    one_level = archive.descendants(1, max_depth=1, max_nodes=10)
    assert ids(one_level.rows) == [3] and one_level.truncated
    assert ids(archive.descendants(1, max_depth=10, max_nodes=2).rows) == [3, 4]
    assert archive.descendants(1, max_depth=10, max_nodes=2).truncated
    assert archive.descendants(6, max_depth=10, max_nodes=10) == ([], False)
    assert archive.descendants(1, max_depth=10, max_nodes=10, skip=[3]) == ([], False)


def test_campaign_listings(archive):
    assert archive.campaign_by_id(2)["name"] == "other" and archive.campaign_by_id(9) is None
    assert ids(archive.programs_of(1)) == [1, 2, 3, 4, 5, 6] and archive.programs_of(2) == []
    assert ids(archive.results_in_order(1)) == [2, 1, 3, 6, 4, 5]
    outcomes = {int(r["id"]): r for r in archive.program_outcomes(1)}
    assert outcomes[1]["parent_score"] is None and outcomes[3]["parent_score"] == 1.0
    assert outcomes[4]["parent_score"] == 1.5 and outcomes[5]["outcome"] == "train_error"
    assert archive.best_program_id(1) == 3  # 3 and 4 tie: the older one
    assert archive.best_program_id(2) is None


def test_cells_and_elites(archive):
    for island, cell, pid, score in ((1, 0, 3, 1.5), (0, 2, 6, 0.2), (0, 0, 3, 1.5)):
        archive.conn.execute("INSERT INTO cells (campaign_id, island, cell, coords, program_id, score, updated) "
                             "VALUES (1, ?, ?, '[0]', ?, ?, '')", (island, cell, pid, score))
    assert [(r["island"], r["cell"]) for r in archive.cells(1)] == [(0, 0), (0, 2), (1, 0)]
    assert archive.elite_ids(1) == {3, 6} and archive.elite_ids(2) == set()


def test_learning_curves_and_llm_usage(archive):
    for pid, task, seed, held_out, curve in ((3, "B", 0, 0, [1, 2]), (3, "A", 1, 0, [3]), (3, "A", 0, 0, [4]),
                                             (3, "H", 0, 1, [5]), (1, "A", 0, 0, None)):
        archive.conn.execute("INSERT INTO evaluations (program_id, task, seed, held_out, mean_return, normalized, "
                             "curve) VALUES (?, ?, ?, ?, 0, 0, ?)", (pid, task, seed, held_out,
                                                                    json.dumps(curve) if curve else None))
    rows = [(r["program_id"], r["task"], r["held_out"], json.loads(r["curve"])) for r in archive.learning_curves(1)]
    assert rows == [(3, "A", 0, [4]), (3, "A", 0, [3]), (3, "B", 0, [1, 2]), (3, "H", 1, [5])]
    call = {"conversation": 1, "base_url": "u", "messages": [], "cost": 0.5, "prompt_tokens": 10,
            "completion_tokens": 2}
    archive.add_llm_calls(1, [{**call, "model": "b", "attempt": 1, "status": "ok"},
                              {**call, "model": "a", "attempt": 1, "status": "edit_error"}], {})
    assert archive.llm_usage(1) == [
        {"model": "a", "calls": 1, "ok": 0, "programs": 0, "prompt_tokens": 10, "completion_tokens": 2, "cost": 0.5},
        {"model": "b", "calls": 1, "ok": 1, "programs": 0, "prompt_tokens": 10, "completion_tokens": 2, "cost": 0.5}]
    assert archive.llm_usage(2) == []


def test_snapshot_and_change_marks(archive, tmp_path):
    before = archive.change_marks()
    assert archive.change_marks() == before
    writer = sqlite3.connect(tmp_path / "r.db", isolation_level=None, timeout=30.0)
    with archive.snapshot():
        assert len(archive.programs_of(1)) == 6
        writer.execute("INSERT INTO events (campaign_id, time, kind, evaluations) VALUES (1, 't', 'progress', 6)")
        assert archive.events(1) == [] and archive.change_marks() == before  # the snapshot does not move
    writer.close()
    assert len(archive.events(1)) == 1 and archive.change_marks() != before


def test_source_known_from_another_thread(archive):
    answers = {}

    def ask() -> None:  # the archive's own connection would raise here: it belongs to the main thread
        answers["known"] = archive.source_known(1, "sha3")
        answers["other campaign"] = archive.source_known(2, "sha3")
        answers["unknown"] = archive.source_known(1, "nope")

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    assert answers == {"known": True, "other campaign": False, "unknown": False}
    assert archive.has_source(1, "sha3")


def test_grid_from_config_takes_parsed_and_stored_descriptors():
    parsed = grid_from_config([DescriptorConfig("code_size", 20, 200, 6), DescriptorConfig("learning_speed", 0, 1)])
    stored = grid_from_config(json.loads(json.dumps([{"name": "code_size", "min": 20, "max": 200, "bins": 6},
                                                     {"name": "learning_speed", "min": 0.0, "max": 1.0, "bins": 5}])))
    assert parsed == stored
    assert parsed.axes[0] == Axis("code_size", 20.0, 200.0, 6) and parsed.size == 30
    assert grid_from_config([]).axes == ()
