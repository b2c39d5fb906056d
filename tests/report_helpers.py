"""Helpers for the report tests: a hostile program (its text must reach the page as text, never as markup)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

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
