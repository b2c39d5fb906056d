"""Helpers for the report tests: a hostile program (its text must reach the page as text, never as markup)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evosearch.evaluate.result import EvalResult

HOSTILE = "</script><script>alert(1)</script>"
# Also what JSON-in-HTML gets wrong most often: '&', a line separator (a line end to old JS parsers), a comment.
HOSTILE_NOTE = f"{HOSTILE} & \u2028 <!-- <img src=x onerror=alert(2)>"


def copy_db(src: Path, dest: Path) -> Path:
    """A consistent copy through SQLite's backup API: the session's fixture stays untouched."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dest)
    source.backup(target)
    target.close()
    source.close()
    return dest


def add_hostile_program(db: Path) -> int:
    """Store an evaluated child of the first seed whose comment, note, model and error hold HOSTILE.

    It is given the best score and an empty cell of island 0, so it is on the heatmap of every view.
    """
    from evosearch.archive.store import Archive, dumps

    archive = Archive(db)
    try:
        campaign = archive.campaigns()[0]
        config = json.loads(campaign["config"])
        seed = archive.conn.execute("SELECT * FROM programs WHERE operator = 'seed' ORDER BY id LIMIT 1").fetchone()
        lines = seed["source"].split("\n")
        at = next(i for i, line in enumerate(lines) if "EVOLVE-BLOCK-START" in line) + 1
        source = "\n".join(lines[:at] + [f"# {HOSTILE}"] + lines[at:])
        program_id = archive.add_pending(campaign["id"], {
            "kind": seed["kind"], "source": source, "sha": hashlib.sha256(source.encode()).hexdigest(),
            "parent_id": seed["id"], "parent_ids": [seed["id"]], "operator": "llm", "model": HOSTILE,
            "island": 0, "generation": 1, "note": HOSTILE_NOTE})
        best = archive.conn.execute("SELECT MAX(score) FROM programs").fetchone()[0]
        axes = config["archive"]["descriptors"]
        taken = {r["cell"] for r in archive.elites(campaign["id"], 0)}
        size = 1
        for axis in axes:
            size *= axis["bins"]
        cell = next(c for c in range(size) if c not in taken)
        coords, rest = [], cell
        for axis in reversed(axes):  # row-major, the last axis fastest (evosearch.archive.descriptors.Grid)
            coords.insert(0, rest % axis["bins"])
            rest //= axis["bins"]
        with archive.transaction() as conn:
            conn.execute(
                "UPDATE programs SET status = 'done', outcome = 'ok', stage = 'full', score = ?, ci_low = ?,"
                " ci_high = ?, descriptors = ?, metrics = ?, error = ?, eval_seq = 1000, evaluated = created"
                " WHERE id = ?",
                (best + 1, best, best + 2, dumps({a["name"]: 0.0 for a in axes}), dumps({"tasks": {}}), HOSTILE,
                 program_id))
            conn.execute("INSERT INTO cells (campaign_id, island, cell, coords, program_id, score, updated) "
                         "VALUES (?, 0, ?, ?, ?, ?, '2030-01-01')",
                         (campaign["id"], cell, dumps(coords), program_id, best + 1))
        return program_id
    finally:
        archive.close()


def stage_report_cases(db: Path, hostile_id: int) -> dict:
    """Make the archive at ``db`` show what the quickstart archive showed wrong in the report (issue 16).

    - program 1's seeds diverge (one never learns) and its curve ends with a 52-step interval (a hook);
    - another program holds the hostile program's cell on island 1 with a lower score, so that cell is
      filled on both islands while its elite lives on island 0 only;
    - a program that ran 0.198 s, and resources (CPU time, peak memory) to show;
    - a duplicate (an outcome that the campaign's state counts too).
    Returns the ids and values the tests look for.
    """
    conn = sqlite3.connect(db)
    try:
        seeded = 1
        metrics = json.loads(conn.execute("SELECT metrics FROM programs WHERE id = ?", (seeded,)).fetchone()[0])
        task = next(iter(metrics["tasks"]))
        steps = metrics["tasks"][task]["curve_steps"]
        metrics["tasks"][task]["curve_steps"] = steps + [steps[-1] + 52]
        conn.execute("UPDATE programs SET metrics = ? WHERE id = ?", (json.dumps(metrics), seeded))
        seeds = [s for (s,) in conn.execute(
            "SELECT seed FROM evaluations WHERE program_id = ? AND task = ? ORDER BY seed", (seeded, task))]
        for k, seed in enumerate(seeds):
            curve = [10.0] * len(steps) if k == 0 else [10.0 + 40 * i for i in range(len(steps))]
            conn.execute("UPDATE evaluations SET curve = ? WHERE program_id = ? AND task = ? AND seed = ?",
                         (json.dumps(curve + [500.0]), seeded, task, seed))
        other = conn.execute("SELECT id FROM programs WHERE id NOT IN (?, ?) AND outcome = 'ok' ORDER BY id DESC",
                             (seeded, hostile_id)).fetchone()[0]
        cell = conn.execute("SELECT * FROM cells WHERE program_id = ?", (hostile_id,)).fetchone()
        conn.execute("INSERT OR REPLACE INTO cells (campaign_id, island, cell, coords, program_id, score, updated) "
                     "VALUES (?, 1, ?, ?, ?, -5, '2030-01-01')", (cell[0], cell[2], cell[3], other))
        conn.execute("UPDATE programs SET wall_s = 0.198, cpu_s = 0.31, peak_rss_mb = 123.4 WHERE id = ?", (other,))
        conn.execute("INSERT INTO programs (campaign_id, kind, source, sha, operator, created, status, outcome, "
                     "duplicate_of) SELECT campaign_id, kind, source || '\n', 'dup', 'ast.noop', created, 'done', "
                     "'duplicate', id FROM programs WHERE id = ?", (seeded,))
        duplicates = conn.execute("SELECT COUNT(*) FROM programs WHERE outcome = 'duplicate'").fetchone()[0]
        conn.execute("UPDATE campaigns SET state = json_set(state, '$.duplicates', ?)", (duplicates,))
        conn.commit()
        return {"curved": seeded, "task": task, "checkpoints": len(steps), "seeds": len(seeds), "other": other}
    finally:
        conn.close()


def finished_result(score: float) -> EvalResult:
    """An ok result on one task with two seeds' learning curves, as the evaluator would record it."""
    from evosearch.evaluate.result import EvalResult, TaskResult

    task = TaskResult(env_id="CartPole-v1", returns=[100.0, 120.0], normalized=[score - 0.1, score + 0.1],
                      mean_return=110.0, normalized_mean=score, ci=[score - 0.2, score + 0.2],
                      curve_steps=[1000, 2000, 3000], curves=[[10.0, 50.0, 100.0], [12.0, 60.0, 120.0]],
                      auc_per_seed=[0.3, 0.4], auc=0.35, train_wall_s=1.5)
    return EvalResult(outcome="ok", stage="full", score=score, ci=[score - 0.2, score + 0.2], wall_s=2.0,
                      suite="quick", iqm=score, auc=0.35, tasks={"CartPole-v1": task})
