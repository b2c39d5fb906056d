"""The read-only questions the browsers, the web report and the exporter ask of an archive.

:class:`ArchiveReads` is a base of :class:`~evosearch.archive.store.Archive`, kept apart from
the writes so each half stays readable. Every query of the archive lives in this package:
callers get rows (``sqlite3.Row``), small dicts or plain values, never a connection to run
SQL on. All methods use the archive's own connection (one thread) except
:meth:`ArchiveReads.source_known`, which opens its own for the threads that need it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

#: What a lineage shows of each program: everything but the source and the evaluation record.
LINEAGE_COLUMNS = ("id, campaign_id, parent_id, parent_ids, operator, model, island, generation, status, outcome, "
                   "score, note")


class Walk(NamedTuple):
    """Programs reached by a walk along parent links, and whether the walk stopped before its end."""

    rows: list[sqlite3.Row]
    truncated: bool


class ArchiveReads:
    """Read queries over one campaign database (the :class:`Archive` provides ``path`` and ``conn``)."""

    path: Path
    conn: sqlite3.Connection

    # -- campaigns ---------------------------------------------------------------------------------

    def campaign_by_id(self, campaign_id: int) -> sqlite3.Row | None:
        """The campaign row (name, kind, status, config and state as JSON text, ...), or None."""
        return self.conn.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()

    # -- lineage -----------------------------------------------------------------------------------

    def lineage_node(self, program_id: int) -> sqlite3.Row | None:
        """One program as a lineage shows it (:data:`LINEAGE_COLUMNS`, no source), or None."""
        return self.conn.execute(f"SELECT {LINEAGE_COLUMNS} FROM programs WHERE id = ?", (program_id,)).fetchone()

    def children(self, program_id: int) -> list[sqlite3.Row]:
        """The programs whose first parent is ``program_id``, oldest first (:data:`LINEAGE_COLUMNS`)."""
        return self.conn.execute(f"SELECT {LINEAGE_COLUMNS} FROM programs WHERE parent_id = ? ORDER BY id",
                                 (program_id,)).fetchall()

    def ancestors(self, program_id: int, max_depth: int | None = None) -> Walk:
        """The chain of first parents from the root down to ``program_id`` (root first, the program last).

        Crossover mates are not followed (each row's ``parent_ids`` names them). The walk stops,
        with ``truncated`` set, after ``max_depth`` ancestors, at a parent id that does not exist,
        or at a program already in the chain (a cycle only a damaged archive can hold). An
        unknown ``program_id`` gives no rows.
        """
        row = self.lineage_node(program_id)
        if row is None:
            return Walk([], False)
        chain, seen, truncated = [row], {int(row["id"])}, False
        while chain[-1]["parent_id"] is not None:
            parent_id = int(chain[-1]["parent_id"])
            parent = self.lineage_node(parent_id) if parent_id not in seen else None
            if parent is None or (max_depth is not None and len(chain) - 1 >= max_depth):
                truncated = True
                break
            seen.add(parent_id)
            chain.append(parent)
        chain.reverse()
        return Walk(chain, truncated)

    def descendants(self, program_id: int, *, max_depth: int, max_nodes: int, skip: Iterable[int] = ()) -> Walk:
        """The programs below ``program_id`` by first parent, breadth first (each level in id order).

        At most ``max_depth`` levels and ``max_nodes`` programs; ``skip`` (say, the program's
        ancestors) and programs already reached are not entered again, which ends the walk on a
        damaged archive whose parent links form a cycle. ``truncated`` says whether anything was
        left out. Each row's ``parent_id`` is the program or an earlier row.
        """
        seen = {int(program_id), *(int(i) for i in skip)}
        found: list[sqlite3.Row] = []
        level, depth = [int(program_id)], 0
        while level:
            next_level = []
            for parent_id in level:
                children = [r for r in self.children(parent_id) if int(r["id"]) not in seen]
                if children and depth >= max_depth:
                    return Walk(found, True)
                for row in children:
                    if len(found) >= max_nodes:
                        return Walk(found, True)
                    seen.add(int(row["id"]))
                    found.append(row)
                    next_level.append(int(row["id"]))
            level, depth = next_level, depth + 1
        return Walk(found, False)

    # -- programs and results ----------------------------------------------------------------------

    def programs_of(self, campaign_id: int) -> list[sqlite3.Row]:
        """Every program of the campaign, every column (source included), by id."""
        return self.conn.execute("SELECT * FROM programs WHERE campaign_id = ? ORDER BY id",
                                 (campaign_id,)).fetchall()

    def programs_changed(self, campaign_id: int, after_id: int, after_seq: int) -> list[sqlite3.Row]:
        """The campaign's programs added after ``after_id`` or evaluated after ``after_seq``, every column, by id.

        A program row changes twice in its life: when it is proposed (a new, higher id) and when
        its result is recorded (the campaign's next ``eval_seq``). So these are exactly the rows a
        reader who held ids up to ``after_id`` and results up to ``after_seq`` has not seen.
        """
        return self.conn.execute(
            "SELECT * FROM programs WHERE campaign_id = ? AND (id > ? OR eval_seq > ?) ORDER BY id",
            (campaign_id, after_id, after_seq)).fetchall()

    def results_in_order(self, campaign_id: int) -> list[sqlite3.Row]:
        """Evaluated programs in the order their results were recorded: id, island, outcome, score, descriptors."""
        return self.conn.execute(
            "SELECT id, island, outcome, score, descriptors FROM programs WHERE campaign_id = ? AND status = 'done' "
            "ORDER BY eval_seq, id", (campaign_id,)).fetchall()

    def program_outcomes(self, campaign_id: int) -> list[sqlite3.Row]:
        """Every program by id with what made it and how it did.

        Columns: id, operator, model, status, outcome, score, and ``parent_score``, the score
        of its first parent (None for a seed or an unscored parent).
        """
        return self.conn.execute(
            "SELECT p.id, p.operator, p.model, p.status, p.outcome, p.score, pp.score AS parent_score FROM programs p "
            "LEFT JOIN programs pp ON pp.id = p.parent_id WHERE p.campaign_id = ? ORDER BY p.id",
            (campaign_id,)).fetchall()

    def best_program_id(self, campaign_id: int) -> int | None:
        """The id of the campaign's best scored program (the oldest among equals), or None."""
        row = self.conn.execute("SELECT id FROM programs WHERE campaign_id = ? AND score IS NOT NULL "
                                "ORDER BY score DESC, id LIMIT 1", (campaign_id,)).fetchone()
        return int(row["id"]) if row is not None else None

    def learning_curves(self, campaign_id: int, *, evaluated_after: int = 0) -> list[sqlite3.Row]:
        """Per-seed learning curves (program_id, task, held_out, curve as JSON text) of the campaign's programs.

        Ordered by program, then held-out flag, task and seed; rows without a curve are left out.
        ``evaluated_after`` keeps only programs whose result came after that ``eval_seq``.
        """
        newer = " AND p.eval_seq > ?" if evaluated_after else ""
        return self.conn.execute(
            "SELECT e.program_id, e.task, e.held_out, e.curve FROM evaluations e JOIN programs p ON p.id = e.program_id"
            f" WHERE p.campaign_id = ? AND e.curve IS NOT NULL{newer}"
            " ORDER BY e.program_id, e.held_out, e.task, e.seed",
            (campaign_id, evaluated_after) if evaluated_after else (campaign_id,)).fetchall()

    def task_results(self, campaign_id: int, program_id: int | None = None) -> list[sqlite3.Row]:
        """Per-task results (the ``task_results`` view): one row per program and task, by program, held-out, task.

        Columns: campaign_id, program_id, operator, outcome, task, held_out, seeds, normalized
        (mean over seeds), ci_low, ci_high, mean_return, returns and normalized_by_seed (JSON
        lists by seed), auc, train_wall_s. ``program_id`` narrows it to one program.
        """
        where, args = "campaign_id = ?", [campaign_id]
        if program_id is not None:
            where, args = where + " AND program_id = ?", [*args, program_id]
        return self.conn.execute(f"SELECT * FROM task_results WHERE {where} ORDER BY program_id, held_out, task",
                                 args).fetchall()

    # -- the grid ----------------------------------------------------------------------------------

    def cells(self, campaign_id: int) -> list[sqlite3.Row]:
        """Every occupied cell of every island (island, cell, coords, program_id, score, updated).

        Ordered by island, then cell.
        """
        return self.conn.execute("SELECT * FROM cells WHERE campaign_id = ? ORDER BY island, cell",
                                 (campaign_id,)).fetchall()

    def elite_ids(self, campaign_id: int) -> set[int]:
        """The programs that hold a cell of some island now."""
        rows = self.conn.execute("SELECT DISTINCT program_id FROM cells WHERE campaign_id = ?", (campaign_id,))
        return {int(r[0]) for r in rows}

    # -- language models ---------------------------------------------------------------------------

    def llm_usage(self, campaign_id: int) -> list[dict[str, Any]]:
        """LLM calls per model label, by label: calls, ok answers, programs made, tokens, cost in USD."""
        rows = self.conn.execute(
            "SELECT model, COUNT(*) AS calls, SUM(status = 'ok') AS ok, SUM(program_id IS NOT NULL) AS programs, "
            "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, SUM(cost) AS cost "
            "FROM llm_calls WHERE campaign_id = ? GROUP BY model ORDER BY model", (campaign_id,))
        return [{"model": r["model"], "calls": int(r["calls"]), "ok": int(r["ok"] or 0),
                 "programs": int(r["programs"] or 0), "prompt_tokens": int(r["prompt_tokens"] or 0),
                 "completion_tokens": int(r["completion_tokens"] or 0),
                 "cost": float(r["cost"] or 0.0)} for r in rows]

    # -- consistency and change --------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees one state, however a campaign writes meanwhile (WAL)."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def last_program_id(self) -> int:
        """The highest program id in the archive (0 when it holds none)."""
        return self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM programs").fetchone()[0]

    def change_marks(self) -> tuple[Any, ...]:
        """Values of which one moves with every write a reader can see.

        A proposal moves ``programs.id`` and ``campaigns.updated``; a result or a migration
        ``campaigns.updated`` and ``cells.updated``; a progress event ``events.id``. Equal
        marks mean nothing a browser shows has changed.
        """
        row = self.conn.execute(
            "SELECT (SELECT MAX(updated) FROM campaigns), (SELECT COUNT(*) FROM campaigns),"
            " (SELECT MAX(id) FROM programs), (SELECT MAX(eval_seq) FROM programs), (SELECT MAX(id) FROM events),"
            " (SELECT MAX(updated) FROM cells)"
        ).fetchone()
        return tuple(row)

    # -- from other threads ------------------------------------------------------------------------

    def source_known(self, campaign_id: int, sha: str) -> bool:
        """Whether the campaign already holds a program with this source hash; safe from any thread.

        A SQLite connection cannot cross threads, so this opens its own short-lived one on the
        archive's file (an in-memory archive has no file to open). In the archive's own thread,
        :meth:`Archive.has_source` asks the same on the open connection.
        """
        conn = sqlite3.connect(str(self.path), timeout=30.0)
        try:
            return conn.execute("SELECT 1 FROM programs WHERE campaign_id = ? AND sha = ?",
                                (campaign_id, sha)).fetchone() is not None
        finally:
            conn.close()


__all__ = ["LINEAGE_COLUMNS", "ArchiveReads", "Walk"]
