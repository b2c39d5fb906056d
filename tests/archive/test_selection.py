"""Parent selection and inspirations read the grid, not the whole table."""

import random
from collections import Counter

from test_store import add, result

from evosearch.archive.descriptors import Axis, Grid
from evosearch.archive.selection import select_inspirations, select_parent
from evosearch.archive.store import Archive, CellEntry
from evosearch.config import SelectionConfig


def filled(tmp_path):
    archive = Archive(tmp_path / "s.db")
    archive.campaign_id = archive.create_campaign("c", "rule", {}, {})
    ids = {}
    for i, score in enumerate((0.1, 0.2, 0.3, 0.9)):
        pid = add(archive, f"src{i}")
        archive.record(archive.campaign_id, pid, result(score), descriptors={}, cells=[CellEntry(0, i, [i])], state={})
        ids[score] = pid
    other = add(archive, "other-island")
    archive.record(archive.campaign_id, other, result(0.5), descriptors={}, cells=[CellEntry(1, 0, [0])], state={})
    ids["other"] = other
    return archive, ids


def test_exploitation_prefers_good_parents_and_exploration_reaches_every_niche(tmp_path):
    archive, ids = filled(tmp_path)
    rng = random.Random(0)
    greedy = Counter(select_parent(archive, archive.campaign_id, 0, rng, SelectionConfig(exploit_ratio=1.0,
                                                                                        tournament_size=3)).program_id
                     for _ in range(300))
    uniform = Counter(select_parent(archive, archive.campaign_id, 0, rng, SelectionConfig(exploit_ratio=0.0))
                      .program_id for _ in range(400))
    assert greedy.most_common(1)[0][0] == ids[0.9] and greedy[ids[0.9]] > 0.5 * 300
    assert set(uniform) == {ids[0.1], ids[0.2], ids[0.3], ids[0.9]}  # island 0 only, every cell
    assert min(uniform.values()) > 60


def test_an_empty_island_borrows_from_the_others(tmp_path):
    archive, ids = filled(tmp_path)
    parent = select_parent(archive, archive.campaign_id, 5, random.Random(1), SelectionConfig())
    assert parent is not None and parent.source


def test_inspirations_bring_the_best_of_other_islands_first(tmp_path):
    archive, ids = filled(tmp_path)
    parent = select_parent(archive, archive.campaign_id, 0, random.Random(2), SelectionConfig(exploit_ratio=1.0,
                                                                                              tournament_size=50))
    found = select_inspirations(archive, archive.campaign_id, 0, parent, random.Random(3), count=3)
    assert found[0].program_id == ids["other"]
    assert parent.program_id not in [p.program_id for p in found] and len(found) == 3


def test_grid_bins_clip_to_the_edges_and_index_row_major():
    grid = Grid((Axis("code_size", 0, 100, 4), Axis("learning_speed", 0, 1, 5)))
    assert grid.size == 20
    assert grid.coords({"code_size": -5, "learning_speed": 0.99}) == [0, 4]
    assert grid.coords({"code_size": 1000, "learning_speed": float("nan")}) == [3, 0]
    assert grid.index([2, 3]) == 13
