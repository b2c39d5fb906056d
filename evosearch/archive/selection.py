"""Parent selection inside an island, and inspirations from other cells and islands.

Selection reads only the ``cells`` table (a few hundred rows however many programs exist),
then fetches the chosen programs, so it stays fast at 100k programs. With probability
``exploit_ratio`` the parent is a tournament winner among the island's elites (pressure
toward good programs); otherwise a uniformly random elite (pressure toward every niche).
"""

from __future__ import annotations

import random
import sqlite3

from evosearch.archive.store import Archive
from evosearch.config import SelectionConfig
from evosearch.propose.base import Parent


def as_parent(row: sqlite3.Row) -> Parent:
    return Parent(source=row["source"], program_id=int(row["id"]), score=row["score"], genome=row["genome"],
                  kind=row["kind"])


def merit(cell: sqlite3.Row) -> float:
    """An elite's worth for selection: its confirmed score when it has one, else its search score.

    The confirmed score is measured on fresh seeds and is not biased upward by the search's
    choice of the best; a tournament between a confirmed and an unconfirmed elite is then
    tilted toward the unconfirmed one, by the winner's curse, which is the safe side to err on
    for exploration.
    """
    return cell["confirmed"] if cell["confirmed"] is not None else cell["score"]


def select_parent(archive: Archive, campaign_id: int, island: int, rng: random.Random,
                  config: SelectionConfig) -> Parent | None:
    """A parent from ``island``'s elites; from any island's if this one is empty; None if the grid is empty."""
    elites = archive.elites(campaign_id, island) or archive.elites(campaign_id)
    if not elites:
        return None
    if rng.random() < config.exploit_ratio:
        contestants = [elites[rng.randrange(len(elites))] for _ in range(config.tournament_size)]
        chosen = max(contestants, key=merit)
    else:
        chosen = elites[rng.randrange(len(elites))]
    return as_parent(archive.program(int(chosen["program_id"])))


def select_inspirations(archive: Archive, campaign_id: int, island: int, parent: Parent | None,
                        rng: random.Random, count: int) -> list[Parent]:
    """Up to ``count`` elites of other cells: the best of other islands first, then random cells.

    They are what an LLM is shown beside its parent and the mates crossover draws from; other
    islands bring in what this island has not found.
    """
    if count <= 0:
        return []
    exclude = {parent.program_id} if parent else set()
    elites = archive.elites(campaign_id)
    chosen: list[int] = []
    best_elsewhere: dict[int, sqlite3.Row] = {}
    for row in elites:  # best first, so the first seen per island is its best
        if row["island"] != island and row["island"] not in best_elsewhere:
            best_elsewhere[row["island"]] = row
    for row in best_elsewhere.values():
        if row["program_id"] not in exclude and row["program_id"] not in chosen:
            chosen.append(int(row["program_id"]))
    rest = [int(r["program_id"]) for r in elites if r["program_id"] not in exclude]
    rng.shuffle(rest)
    for program_id in rest:
        if len(chosen) >= count:
            break
        if program_id not in chosen:
            chosen.append(program_id)
    return [as_parent(r) for r in archive.programs_by_id(chosen[:count])]
