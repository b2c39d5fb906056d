"""What the archive browsers show: diffs, lineages, progress and operator statistics, the MAP-Elites grid.

Pure functions over an open :class:`~evosearch.archive.store.Archive` that return JSON-ready
dicts and lists (no NaN, no rows, no rendering), so the terminal commands (``evosearch archive
diff|lineage|stats|heatmap``) and a web report show the same numbers from the same code. A
request the archive cannot answer (an unknown id or campaign, a diff of a seed against its
missing parent) raises :class:`BrowseError`, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
import sqlite3
from typing import TYPE_CHECKING, Any

from evosearch.archive.descriptors import Axis, Grid, grid_from_config
from evosearch.metagrad.constants import changed_constants
from evosearch.program import evolve_block

if TYPE_CHECKING:
    from evosearch.archive.store import Archive

# Lineage walks stop here: a chain of parents deeper than this is cut (and says so), and the
# descendant subtree holds at most this many programs, so a 100k-program archive stays browsable.
MAX_DEPTH = 100
MAX_NODES = 1000


class BrowseError(ValueError):
    """A question the archive cannot answer: unknown program or campaign, nothing to compare with."""


# -- campaigns and grids ---------------------------------------------------------------------------


def pick_campaign(archive: Archive, name: str | None = None) -> sqlite3.Row:
    """The campaign called ``name``, or the only one in the file; several without a name is ambiguous."""
    if name is not None:
        row = archive.campaign(name)
        if row is None:
            raise BrowseError(f"no campaign {name!r} in {archive.path}")
        return row
    rows = archive.campaigns()
    if not rows:
        raise BrowseError(f"no campaign in {archive.path}")
    if len(rows) > 1:
        names = ", ".join(r["name"] for r in rows)
        raise BrowseError(f"several campaigns in {archive.path} ({names}): name one with --campaign")
    return rows[0]


def grid_of(config: dict) -> Grid:
    """The grid a campaign's stored config describes (the same one its run used to place programs)."""
    return grid_from_config(config["archive"]["descriptors"])


def _campaign_row(archive: Archive, campaign_id: int) -> sqlite3.Row:
    row = archive.campaign_by_id(campaign_id)
    if row is None:
        raise BrowseError(f"no campaign with id {campaign_id} in {archive.path}")
    return row


def _num(value: float) -> str:
    return f"{value:.3g}"


def bin_labels(axis: Axis) -> list[str]:
    """Human labels of an axis' bins; the edge bins also hold the values beyond the range, hence < and ≥."""
    if axis.bins == 1:
        return ["all"]
    edges = [axis.low + (axis.high - axis.low) * k / axis.bins for k in range(axis.bins + 1)]
    labels = [f"{_num(edges[k])}–{_num(edges[k + 1])}" for k in range(axis.bins)]
    labels[0] = f"<{_num(edges[1])}"
    labels[-1] = f"≥{_num(edges[-2])}"
    return labels


def axes_info(grid: Grid) -> list[dict[str, Any]]:
    return [{"name": a.name, "min": a.low, "max": a.high, "bins": a.bins, "labels": bin_labels(a)}
            for a in grid.axes]


# -- programs and diffs ----------------------------------------------------------------------------


def program(archive: Archive, program_id: int) -> sqlite3.Row:
    row = archive.program(program_id)
    if row is None:
        raise BrowseError(f"no program {program_id} in {archive.path}")
    return row


def _block_lines(source: str) -> tuple[list[str], int]:
    """The EVOLVE-BLOCK's lines and the file line number its first line has (the whole source if no block)."""
    lines = source.splitlines(keepends=True)
    span = evolve_block(source)
    if span is None:
        return lines, 1
    return lines[span[0]:span[1]], span[0] + 1


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _shift_hunks(lines: list[str], a_offset: int, b_offset: int) -> list[str]:
    """Renumber hunk headers of a diff of excerpts so they point at the lines of the whole files."""
    def shift(m: re.Match) -> str:
        return (f"@@ -{int(m[1]) + a_offset}{m[2] or ''} +{int(m[3]) + b_offset}{m[4] or ''} @@")

    return [_HUNK.sub(shift, line) if line.startswith("@@") else line for line in lines]


def diff(archive: Archive, program_id: int, other: int | None = None, *, context: int = 3,
         block: bool = False) -> dict[str, Any]:
    """A unified diff between two programs' sources.

    With ``other`` the diff reads from ``program_id`` to ``other`` (like ``git diff A B``);
    without it, from the program's parent to the program (like ``git show``), which is what
    the operator changed. ``block`` limits it to the EVOLVE-BLOCKs, keeping the files' line
    numbers; operator children never differ outside the block, so it matters only between
    unrelated programs. ``constants`` lists the tunable constants whose value changed (what
    ``evosearch metatune`` or a constant operator did, readable without scanning the diff);
    ``[]`` when none did or the two programs' constants do not line up.
    """
    row = program(archive, program_id)
    if other is None:
        if row["parent_id"] is None:
            what = "a seed" if row["operator"] == "seed" else f"made by {row['operator']} from nothing"
            raise BrowseError(f"program {program_id} has no parent ({what}): name another program to compare with")
        a_row, b_row = program(archive, int(row["parent_id"])), row
    else:
        a_row, b_row = row, program(archive, other)
    if block:
        (a_lines, a_start), (b_lines, b_start) = _block_lines(a_row["source"]), _block_lines(b_row["source"])
    else:
        a_lines, a_start = a_row["source"].splitlines(keepends=True), 1
        b_lines, b_start = b_row["source"].splitlines(keepends=True), 1
    lines = [line if line.endswith("\n") else line + "\n" for line in difflib.unified_diff(
        a_lines, b_lines, f"program {a_row['id']}", f"program {b_row['id']}", n=context)]
    lines = _shift_hunks(lines, a_start - 1, b_start - 1)
    return {"a": int(a_row["id"]), "b": int(b_row["id"]), "diff": "".join(lines),
            "a_score": a_row["score"], "b_score": b_row["score"], "a_operator": a_row["operator"],
            "b_operator": b_row["operator"], "a_note": a_row["note"] or "", "b_note": b_row["note"] or "",
            "constants": [{"name": name, "before": before, "after": after}
                          for name, before, after in changed_constants(a_row["source"], b_row["source"])]}


# -- lineage -----------------------------------------------------------------------------------------

def _node(row: sqlite3.Row, parent_score: float | None) -> dict[str, Any]:
    parents = json.loads(row["parent_ids"] or "[]")
    score = row["score"]
    delta = score - parent_score if score is not None and parent_score is not None else None
    return {"id": int(row["id"]), "parent": row["parent_id"], "mates": [int(p) for p in parents[1:]],
            "operator": row["operator"], "model": row["model"], "island": row["island"],
            "generation": row["generation"], "outcome": row["outcome"] or row["status"], "score": score,
            "delta": delta, "note": row["note"] or "", "focus": False, "children": []}


def lineage(archive: Archive, program_id: int, *, descendants: bool = False, max_depth: int = MAX_DEPTH,
            max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The program's ancestor chain, oldest first, as a nested tree; with ``descendants`` also its subtree.

    Follows the first parent (crossover mates are listed on each node as ``mates``). The walk
    stops at ``max_depth`` ancestors, at ``max_depth`` levels and ``max_nodes`` programs below
    the program, and at a program seen before (a cycle only a damaged archive can hold);
    ``truncated`` says whether anything was left out.
    """
    chain, truncated = archive.ancestors(program_id, max_depth)  # root first
    if not chain:
        raise BrowseError(f"no program {program_id} in {archive.path}")
    nodes = []
    for i, row in enumerate(chain):
        node = _node(row, chain[i - 1]["score"] if i > 0 and chain[i - 1]["id"] == row["parent_id"] else None)
        if nodes:
            nodes[-1]["children"].append(node)
        nodes.append(node)
    focus = nodes[-1]
    focus["focus"] = True
    below = 0
    if descendants:
        rows, cut = archive.descendants(program_id, max_depth=max_depth, max_nodes=max_nodes,
                                        skip=[int(r["id"]) for r in chain])
        by_id = {focus["id"]: focus}
        for row in rows:  # breadth first: a row's parent is the focus or an earlier row
            parent = by_id[int(row["parent_id"])]
            child = _node(row, parent["score"])
            parent["children"].append(child)
            by_id[child["id"]] = child
        below, truncated = len(rows), truncated or cut
    return {"id": program_id, "ancestors": len(chain) - 1, "descendants": below, "truncated": truncated,
            "tree": nodes[0]}


def lineage_rows(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree of :func:`lineage` as flat rows, depth first, with each node's depth (for CSV and tables)."""
    rows: list[dict[str, Any]] = []
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        rows.append({"depth": depth, **{k: v for k, v in node.items() if k != "children"}})
        stack.extend((child, depth + 1) for child in reversed(node["children"]))
    return rows


# -- progress and operators ---------------------------------------------------------------------------


def _parse_time(stamp: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None


def progress(archive: Archive, campaign_id: int) -> list[dict[str, Any]]:
    """The campaign's events over time: QD metrics after each change, starts, stops and migrations.

    ``elapsed_s`` counts from the first event, so it includes the pauses between runs.
    """
    rows = []
    start = None
    for e in archive.events(campaign_id):
        stamp = _parse_time(e["time"])
        start = start or stamp
        rows.append({"time": e["time"], "elapsed_s": (stamp - start).total_seconds() if stamp and start else None,
                     "kind": e["kind"], "evaluations": e["evaluations"], "best": e["best"],
                     "qd_score": e["qd_score"], "coverage": e["coverage"], "evals_per_hour": e["evals_per_hour"],
                     "data": json.loads(e["data"]) if e["data"] else {}})
    return rows


def _arm(operator: str, model: str | None) -> str:
    """The bandit's name for what made a program: the operator, or ``llm:MODEL`` for a language model."""
    return f"llm:{model}" if operator == "llm" else operator


def _coords(grid: Grid, descriptors: str | None) -> list[int]:
    values = json.loads(descriptors) if descriptors else {}
    return grid.coords({a.name: float("nan") if values.get(a.name) is None else values[a.name] for a in grid.axes})


def entered_programs(archive: Archive, campaign_id: int, config: dict) -> set[int] | None:
    """The programs that ever took a cell (filled an empty one or beat its elite), or None if unknown.

    The archive keeps only each cell's current elite, so this replays the campaign: results in
    the order they were recorded, each offered to its island's cell (a seed's to every island)
    as the run did, and the migrations at the evaluation counts their events recorded. The
    replay is trusted only if it ends with exactly the cells the archive holds.
    """
    grid = grid_of(config)
    islands = int(config["archive"]["islands"])
    rows = archive.results_in_order(campaign_id)
    migrations = [(int(e["evaluations"]), json.loads(e["data"] or "{}").get("moved", {}))
                  for e in archive.events(campaign_id, "migration")]
    cell_of: dict[int, int] = {}
    score_of: dict[int, float] = {}
    cells: dict[tuple[int, int], tuple[int, float]] = {}
    entered: set[int] = set()
    evaluations, pending_migration = 0, 0

    def offer(island: int, cell: int, program_id: int, score: float) -> bool:
        held = cells.get((island, cell))
        if held is None or score > held[1]:
            cells[(island, cell)] = (program_id, score)
            return True
        return False

    for r in rows:
        if r["outcome"] == "ok" and r["score"] is not None:
            pid, score = int(r["id"]), float(r["score"])
            cell = grid.index(_coords(grid, r["descriptors"]))
            cell_of[pid], score_of[pid] = cell, score
            for island in range(islands) if r["island"] is None else [int(r["island"])]:
                if offer(island, cell, pid, score):
                    entered.add(pid)
        if r["outcome"] != "duplicate":
            evaluations += 1
        while pending_migration < len(migrations) and migrations[pending_migration][0] <= evaluations:
            for route, moved in migrations[pending_migration][1].items():
                target = int(route.split("->")[1])
                for pid in moved:
                    if pid in cell_of:
                        cells[(target, cell_of[pid])] = (pid, score_of[pid])
            pending_migration += 1
    actual = {(int(c["island"]), int(c["cell"])): int(c["program_id"]) for c in archive.elites(campaign_id)}
    if {key: pid for key, (pid, _) in cells.items()} != actual:
        return None
    return entered


def operator_stats(archive: Archive, campaign_id: int, config: dict | None = None,
                   state: dict | None = None) -> list[dict[str, Any]]:
    """Per operator (or LLM model): what it proposed, how much of it worked, and what it added to the archive.

    ``evaluated`` excludes duplicates by fingerprint (they are never trained); ``ok_rate`` is
    ok over evaluated. ``elites`` counts programs holding a cell now, ``entered`` those that
    ever took one (None when the archive cannot tell, see :func:`entered_programs`), and
    ``improved`` children that scored above their first parent. ``proposal_errors`` are
    attempts that produced no program; ``bandit_reward`` the bandit's mean reward for the arm.
    """
    if config is None or state is None:
        campaign = _campaign_row(archive, campaign_id)
        config = config if config is not None else json.loads(campaign["config"])
        state = state if state is not None else json.loads(campaign["state"])
    entered = entered_programs(archive, campaign_id, config)
    elites = archive.elite_ids(campaign_id)
    stats: dict[str, dict[str, Any]] = {}
    for r in archive.program_outcomes(campaign_id):
        arm = _arm(r["operator"], r["model"])
        s = stats.setdefault(arm, {"operator": arm, "programs": 0, "pending": 0, "evaluated": 0, "ok": 0,
                                   "duplicates": 0, "failed": 0, "entered": 0 if entered is not None else None,
                                   "elites": 0, "improved": 0, "scores": [], "best_score": None,
                                   "best_program": None})
        s["programs"] += 1
        if r["status"] == "pending":
            s["pending"] += 1
            continue
        if r["outcome"] == "duplicate":
            s["duplicates"] += 1
            continue
        s["evaluated"] += 1
        if r["outcome"] != "ok" or r["score"] is None:
            s["failed"] += 1
            continue
        pid, score = int(r["id"]), float(r["score"])
        s["ok"] += 1
        s["scores"].append(score)
        if s["best_score"] is None or score > s["best_score"]:
            s["best_score"], s["best_program"] = score, pid
        s["elites"] += pid in elites
        if entered is not None:
            s["entered"] += pid in entered
        if r["parent_score"] is not None and score > r["parent_score"]:
            s["improved"] += 1
    bandit = state.get("bandit") or {}
    errors = state.get("proposal_errors") or {}
    for arm in set(errors) | set(bandit.get("trials", {})):
        stats.setdefault(arm, {"operator": arm, "programs": 0, "pending": 0, "evaluated": 0, "ok": 0,
                               "duplicates": 0, "failed": 0, "entered": 0 if entered is not None else None,
                               "elites": 0, "improved": 0, "scores": [], "best_score": None, "best_program": None})
    out = []
    for arm, s in sorted(stats.items(), key=lambda kv: (kv[0] != "seed", kv[0])):
        scores = s.pop("scores")
        trials = bandit.get("trials", {}).get(arm, 0)
        out.append({
            **s, "ok_rate": s["ok"] / s["evaluated"] if s["evaluated"] else None,
            "enter_rate": s["entered"] / s["evaluated"] if s["evaluated"] and s["entered"] is not None else None,
            "mean_score": sum(scores) / len(scores) if scores else None,
            "proposal_errors": int(errors.get(arm, 0)), "bandit_trials": int(trials),
            "bandit_reward": bandit.get("successes", {}).get(arm, 0.0) / trials if trials else None,
        })
    return out


def llm_usage(archive: Archive, campaign_id: int) -> list[dict[str, Any]]:
    """LLM calls per model: how many, how many gave a program, tokens and cost in USD."""
    return archive.llm_usage(campaign_id)


def stats(archive: Archive, campaign_id: int) -> dict[str, Any]:
    """Everything ``archive stats`` shows: progress over time, per-operator results, LLM spend."""
    c = _campaign_row(archive, campaign_id)
    config, state = json.loads(c["config"]), json.loads(c["state"])
    return {"campaign": c["name"], "status": c["status"], "events": progress(archive, campaign_id),
            "operators": operator_stats(archive, campaign_id, config, state),
            "llm": llm_usage(archive, campaign_id)}


# -- the MAP-Elites grid --------------------------------------------------------------------------------


def heatmap(archive: Archive, campaign_id: int, island: int | None = None) -> dict[str, Any]:
    """The grid's elites: one island's, or with ``island`` None each cell's best over the islands.

    Cells carry their full coordinates (one per axis); :func:`project` folds grids of three or
    more axes onto two for display.
    """
    c = _campaign_row(archive, campaign_id)
    config = json.loads(c["config"])
    grid = grid_of(config)
    islands = int(config["archive"]["islands"])
    if island is not None and not 0 <= island < islands:
        raise BrowseError(f"campaign {c['name']!r} has islands 0 to {islands - 1}, not {island}")
    best: dict[int, dict[str, Any]] = {}
    for r in archive.elites(campaign_id, island):  # best first: the first row of a cell is its best
        if int(r["cell"]) not in best:
            best[int(r["cell"])] = {"cell": int(r["cell"]), "coords": json.loads(r["coords"]), "score": r["score"],
                                    "program_id": int(r["program_id"]), "island": int(r["island"])}
    cells = [best[k] for k in sorted(best)]
    scores = [cell["score"] for cell in cells]
    return {"campaign": c["name"], "island": island, "islands": islands, "axes": axes_info(grid),
            "grid_cells": grid.size, "filled": len(cells),
            "qd_score": float(sum(max(0.0, s - float(config["archive"].get("qd_offset", 0.0))) for s in scores)),
            "cells": cells}


def project(cells: list[dict[str, Any]], dims: int = 2) -> list[dict[str, Any]]:
    """Cells folded onto their first ``dims`` coordinates, keeping the best over the other axes."""
    best: dict[tuple[int, ...], dict[str, Any]] = {}
    for cell in cells:
        key = tuple(cell["coords"][:dims])
        if key not in best or cell["score"] > best[key]["score"]:
            best[key] = {**cell, "coords": list(key)}
    return [best[k] for k in sorted(best)]


__all__ = ["BrowseError", "MAX_DEPTH", "MAX_NODES", "axes_info", "bin_labels", "diff", "entered_programs",
           "grid_of", "heatmap", "lineage", "lineage_rows", "llm_usage", "operator_stats", "pick_campaign",
           "program", "progress", "project", "stats"]
