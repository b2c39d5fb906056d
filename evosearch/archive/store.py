"""The campaign database: one SQLite file (WAL, foreign keys) that holds everything a resume needs.

Every change that must stay consistent with another happens in one transaction: a proposal
is stored together with the RNG state that produced it, and a finished evaluation together
with its per-seed rows, the cells it entered and the campaign's counters. A campaign killed
at any instant therefore reopens to a state where each completed evaluation is stored exactly
once and every program not yet evaluated is still ``pending``, ready to be re-queued.
"""

from __future__ import annotations

import datetime
import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evosearch.archive.opening import connect
from evosearch.archive.reads import ArchiveReads
from evosearch.archive.schema import SCHEMA_VERSION
from evosearch.fmt import finite

if TYPE_CHECKING:
    from evosearch.evaluate import EvalResult


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def dumps(value: Any) -> str:
    """Compact JSON with NaN and infinities turned into null: the archive never stores NaN."""
    return json.dumps(_without_nan(value), allow_nan=False, separators=(",", ":"))


def _without_nan(value: Any) -> Any:
    """``value`` with every non-finite float inside it (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nan(v) for v in value]
    return value


def confirmed_score(confirmed: dict | None) -> float | None:
    """The score a confirmation measured (``EvalResult.confirmed``), or None when there was none or it failed."""
    if not confirmed or confirmed.get("outcome") != "ok":
        return None
    return finite(confirmed.get("score"))


def beats(score: float, confirmed: float | None, elite_score: float, elite_confirmed: float | None) -> bool:
    """Whether a challenger takes an elite's cell: compared on the measurement both have.

    Two confirmed programs compare their confirmed scores (fresh seeds, the same for every
    program: a paired comparison, free of the winner's curse). Otherwise both search scores,
    never a search score against a confirmed one: a search score is biased upward, so such a
    contest would favour whichever side was not confirmed. A campaign confirms a challenger
    before it contests a confirmed elite (``Campaign``), so that fallback is for campaigns
    without confirmation and for confirmations that failed.
    """
    if confirmed is not None and elite_confirmed is not None:
        return confirmed > elite_confirmed
    return score > elite_score


@dataclass(frozen=True)
class CellEntry:
    """A cell a program competes for: island, flat index and per-axis coordinates."""

    island: int
    cell: int
    coords: list[int]


class Archive(ArchiveReads):
    """Read and write access to one campaign database; use from one thread.

    The writes and the reads a campaign needs are here; the reads of the browsers, the report
    and the exporter come from :class:`~evosearch.archive.reads.ArchiveReads`.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, timeout: float = 30.0,
                 on_wait: Callable[[str], None] | None = None) -> None:
        """Open (or, unless ``readonly``, create) the archive at ``path``.

        ``readonly`` is for browsing: the file is opened read-only and must already be an
        archive, so a wrong path is refused (:class:`~evosearch.archive.schema.NotAnArchive`)
        instead of being turned into one. Without it, an empty or missing file becomes an archive
        and another program's database is refused the same way. ``on_wait`` is told, before
        the wait, when another process holds the file; after ``timeout`` seconds of waiting,
        :class:`~evosearch.archive.opening.ArchiveLocked`.
        """
        self.path = Path(path)
        self.readonly = readonly
        if str(path) != ":memory:" and not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn, self.migrated_from = connect(self.path, readonly=readonly, timeout=timeout, on_wait=on_wait)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- campaigns -------------------------------------------------------------------------

    def campaign(self, name: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM campaigns WHERE name = ?", (name,)).fetchone()

    def campaigns(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM campaigns ORDER BY id").fetchall()

    def create_campaign(self, name: str, kind: str, config: dict, state: dict, seeds: list[dict] = ()) -> int:
        """Create a campaign with its seed programs (pending) in one transaction.

        One, because a campaign is only ever seeded when it is created: a kill between the two
        would leave a campaign that resumes without its seeds.
        """
        stamp = now()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO campaigns (name, kind, config, state, status, created, updated) VALUES (?,?,?,?,?,?,?)",
                (name, kind, dumps(config), dumps(state), "created", stamp, stamp))
            campaign_id = int(cur.lastrowid)
            for seed in seeds:
                row = {"campaign_id": campaign_id, "created": stamp, "status": "pending", "parent_ids": "[]", **seed}
                conn.execute(f"INSERT INTO programs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
        return campaign_id

    def set_campaign(self, campaign_id: int, *, status: str | None = None, state: dict | None = None,
                     config: dict | None = None) -> None:
        with self.transaction() as conn:
            self._set_campaign(conn, campaign_id, status=status, state=state, config=config)

    def _set_campaign(self, conn: sqlite3.Connection, campaign_id: int, *, status: str | None = None,
                      state: dict | None = None, config: dict | None = None) -> None:
        sets, args = ["updated = ?"], [now()]
        for column, value in (("status", status), ("state", state), ("config", config)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value if isinstance(value, str) else dumps(value))
        conn.execute(f"UPDATE campaigns SET {', '.join(sets)} WHERE id = ?", (*args, campaign_id))

    # -- programs --------------------------------------------------------------------------

    def has_source(self, campaign_id: int, sha: str) -> bool:
        return self.conn.execute("SELECT 1 FROM programs WHERE campaign_id = ? AND sha = ?",
                                 (campaign_id, sha)).fetchone() is not None

    def seed_program(self, campaign_id: int, file_name: str) -> int | None:
        """The id of the campaign's seed program read from ``file_name`` (its note says so), if any."""
        row = self.conn.execute("SELECT id FROM programs WHERE campaign_id = ? AND note = ? ORDER BY id LIMIT 1",
                                (campaign_id, f"seed {file_name}")).fetchone()
        return int(row[0]) if row else None

    def add_pending(self, campaign_id: int, program: dict, state: dict | None = None,
                    llm_calls: list[dict] | None = None) -> int:
        """Store a proposed program as ``pending``, with the campaign state and the LLM calls that produced it."""
        row = {"campaign_id": campaign_id, "created": now(), "status": "pending", **program}
        row["parent_ids"] = dumps(list(row.get("parent_ids") or []))
        columns = ", ".join(row)
        with self.transaction() as conn:
            cur = conn.execute(f"INSERT INTO programs ({columns}) VALUES ({', '.join('?' * len(row))})",
                               tuple(row.values()))
            self._insert_llm_calls(conn, campaign_id, llm_calls or [], int(cur.lastrowid))
            if state is not None:
                self._set_campaign(conn, campaign_id, state=state)
        return int(cur.lastrowid)

    def add_llm_calls(self, campaign_id: int, calls: list[dict], state: dict) -> None:
        """Store the calls of a proposal that produced no program (their cost still counts)."""
        with self.transaction() as conn:
            self._insert_llm_calls(conn, campaign_id, calls, None)
            self._set_campaign(conn, campaign_id, state=state)

    @staticmethod
    def _insert_llm_calls(conn: sqlite3.Connection, campaign_id: int, calls: list[dict],
                          program_id: int | None) -> None:
        for call in calls:
            conn.execute(
                "INSERT INTO llm_calls (campaign_id, program_id, parent_id, conversation, model, base_url, attempt,"
                " status, prompt, response, prompt_tokens, completion_tokens, cost, latency_s, error, created)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (campaign_id, program_id if call["status"] == "ok" else None, call.get("parent_id"),
                 call["conversation"], call["model"], call["base_url"], call["attempt"], call["status"],
                 dumps(call["messages"]), call.get("response"), call.get("prompt_tokens", 0),
                 call.get("completion_tokens", 0), call.get("cost", 0.0), finite(call.get("latency_s")),
                 call.get("error", "")[:4000], now()))

    def llm_spend(self, campaign_id: int) -> dict[str, float]:
        """Spend in USD per model label."""
        rows = self.conn.execute("SELECT model, SUM(cost) AS cost FROM llm_calls WHERE campaign_id = ? "
                                 "GROUP BY model", (campaign_id,))
        return {r["model"]: float(r["cost"] or 0.0) for r in rows}

    def llm_calls_of(self, program_id: int) -> list[sqlite3.Row]:
        """Every call of the conversation that produced ``program_id``, failed attempts included."""
        return self.conn.execute(
            "SELECT c.* FROM llm_calls c JOIN llm_calls ok ON ok.campaign_id = c.campaign_id AND "
            "ok.conversation = c.conversation WHERE ok.program_id = ? ORDER BY c.id", (program_id,)).fetchall()

    def pending(self, campaign_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM programs WHERE campaign_id = ? AND status = 'pending' ORDER BY id",
                                 (campaign_id,)).fetchall()

    def program(self, program_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM programs WHERE id = ?", (program_id,)).fetchone()

    def programs_by_id(self, ids: list[int]) -> list[sqlite3.Row]:
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = {r["id"]: r for r in self.conn.execute(f"SELECT * FROM programs WHERE id IN ({marks})", ids)}
        return [rows[i] for i in ids if i in rows]

    def fingerprints(self, campaign_id: int) -> dict[str, int]:
        """Fingerprint -> the first evaluated program with it (its result is the one reused).

        Not a sandbox failure: that was not the program's doing, and a twin deserves its own try.
        """
        rows = self.conn.execute(
            "SELECT fingerprint, MIN(id) AS id FROM programs WHERE campaign_id = ? AND status = 'done' "
            "AND fingerprint IS NOT NULL AND outcome NOT IN ('duplicate', 'sandbox_failure', 'infra_error') "
            "GROUP BY fingerprint",
            (campaign_id,))
        return {r["fingerprint"]: r["id"] for r in rows}

    def record(self, campaign_id: int, program_id: int, result: EvalResult, *, descriptors: dict[str, float],
               cells: list[CellEntry], state: dict, duplicate_of: int | None = None) -> list[CellEntry]:
        """Store a finished evaluation, its per-seed rows, the cells it wins and the new state; atomically.

        Returns the cells the program entered (it replaced a worse elite or filled an empty cell).
        """
        score = finite(result.score) if result.ok else None
        ci = result.ci or [None, None]
        metrics = {
            "iqm": result.iqm, "auc": result.auc, "hurdle_score": result.hurdle_score, "suite": result.suite,
            "fitness": result.fitness,
            "tasks": {k: {"mean_return": t.mean_return, "normalized_mean": t.normalized_mean, "ci": t.ci,
                          "auc": t.auc, "curve_steps": t.curve_steps} for k, t in result.tasks.items()},
            "held_out": {k: {"mean_return": t.mean_return, "normalized_mean": t.normalized_mean, "ci": t.ci}
                         for k, t in result.held_out.items()},
        }
        if result.confirmed:  # measured again on fresh seeds: kept beside the search score, never instead of it
            metrics["confirmed"] = result.confirmed
        entered: list[CellEntry] = []
        with self.transaction() as conn:
            seq = conn.execute("SELECT COALESCE(MAX(eval_seq), 0) + 1 FROM programs WHERE campaign_id = ?",
                               (campaign_id,)).fetchone()[0]
            updated = conn.execute(
                """UPDATE programs SET status = 'done', evaluated = ?, eval_seq = ?, outcome = ?, stage = ?,
                   score = ?, ci_low = ?, ci_high = ?, fingerprint = ?, descriptors = ?, metrics = ?,
                   duplicate_of = ?, error = ?, output_tail = ?, wall_s = ?, cpu_s = ?, peak_rss_mb = ?
                   WHERE id = ? AND status = 'pending'""",
                (now(), seq, result.outcome, result.stage, score, finite(ci[0]) if score is not None else None,
                 finite(ci[1]) if score is not None else None, result.fingerprint, dumps(descriptors),
                 dumps(metrics), duplicate_of, result.error[:4000], result.output_tail[-4000:], result.wall_s,
                 result.cpu_s, result.peak_rss_mb, program_id)).rowcount
            if updated != 1:
                raise RuntimeError(f"program {program_id} is not pending: refusing to record it twice")
            for held_out, tasks in ((0, result.tasks), (1, result.held_out)):
                for env_id, task in tasks.items():
                    for seed, (ret, norm) in enumerate(zip(task.returns, task.normalized, strict=True)):
                        curve = task.curves[seed] if seed < len(task.curves) else None
                        auc = task.auc_per_seed[seed] if seed < len(task.auc_per_seed) else None
                        conn.execute(
                            "INSERT INTO evaluations (program_id, task, seed, held_out, mean_return, normalized, auc,"
                            " curve, train_wall_s) VALUES (?,?,?,?,?,?,?,?,?)",
                            (program_id, env_id, seed, held_out, ret, norm, finite(auc),
                             dumps(curve) if curve is not None else None, task.train_wall_s))
            if score is not None:
                confirmed = confirmed_score(result.confirmed)
                for entry in cells:
                    if self._offer(conn, campaign_id, entry, program_id, score, confirmed):
                        entered.append(entry)
            self._set_campaign(conn, campaign_id, state=state)
        return entered

    def winning_cells(self, campaign_id: int, cells: list[CellEntry], score: float | None,
                      confirmed: float | None = None) -> list[CellEntry]:
        """The cells that a program scoring ``score`` (``confirmed`` on fresh seeds) would take; see :func:`beats`."""
        if score is None or not math.isfinite(score):
            return []
        winning = []
        for entry in cells:
            row = self.conn.execute("SELECT score, confirmed FROM cells WHERE campaign_id = ? AND island = ? "
                                    "AND cell = ?", (campaign_id, entry.island, entry.cell)).fetchone()
            if row is None or beats(score, confirmed, row["score"], row["confirmed"]):
                winning.append(entry)
        return winning

    def _offer(self, conn: sqlite3.Connection, campaign_id: int, entry: CellEntry, program_id: int,
               score: float, confirmed: float | None = None) -> bool:
        """Put the program in the cell if the cell is empty or holds a worse one (:func:`beats`); say whether it did."""
        cur = conn.execute(
            """INSERT INTO cells (campaign_id, island, cell, coords, program_id, score, confirmed, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (campaign_id, island, cell) DO UPDATE SET
                   program_id = excluded.program_id, score = excluded.score, confirmed = excluded.confirmed,
                   updated = excluded.updated
               WHERE CASE WHEN excluded.confirmed IS NOT NULL AND cells.confirmed IS NOT NULL
                          THEN excluded.confirmed > cells.confirmed
                          ELSE excluded.score > cells.score END""",
            (campaign_id, entry.island, entry.cell, dumps(entry.coords), program_id, score, finite(confirmed),
             now()))
        return cur.rowcount == 1

    def confirmed_elites(self, campaign_id: int) -> dict[tuple[int, int], float]:
        """``(island, cell) -> search score`` of the confirmed elites: a challenger is confirmed to contest one."""
        rows = self.conn.execute("SELECT island, cell, score FROM cells WHERE campaign_id = ? "
                                 "AND confirmed IS NOT NULL", (campaign_id,))
        return {(int(r["island"]), int(r["cell"])): float(r["score"]) for r in rows}

    # -- cells, islands ----------------------------------------------------------------------

    def elites(self, campaign_id: int, island: int | None = None) -> list[sqlite3.Row]:
        """The grid's occupants (cell rows: island, cell, coords, program_id, score, confirmed), best first.

        Best by the confirmed score where there is one: the unbiased measurement of what an elite is worth.
        """
        if island is None:
            return self.conn.execute("SELECT * FROM cells WHERE campaign_id = ? "
                                     "ORDER BY COALESCE(confirmed, score) DESC", (campaign_id,)).fetchall()
        return self.conn.execute("SELECT * FROM cells WHERE campaign_id = ? AND island = ? "
                                 "ORDER BY COALESCE(confirmed, score) DESC", (campaign_id, island)).fetchall()

    def migrate_elites(self, campaign_id: int, source: int, target: int, count: int, state: dict) -> list[int]:
        """Offer ``source`` island's ``count`` best elites to the same cells of ``target``; return those taken."""
        moved = []
        with self.transaction() as conn:
            best = conn.execute("SELECT * FROM cells WHERE campaign_id = ? AND island = ? "
                                "ORDER BY COALESCE(confirmed, score) DESC LIMIT ?",
                                (campaign_id, source, count)).fetchall()
            for row in best:
                entry = CellEntry(target, row["cell"], json.loads(row["coords"]))
                if self._offer(conn, campaign_id, entry, row["program_id"], row["score"], row["confirmed"]):
                    moved.append(int(row["program_id"]))
            self._set_campaign(conn, campaign_id, state=state)
        return moved

    # -- statistics and events ---------------------------------------------------------------

    def counts(self, campaign_id: int) -> dict[str, int]:
        """Programs by outcome (``pending`` for those not evaluated yet)."""
        counts: dict[str, int] = {}
        rows = self.conn.execute("SELECT status, outcome, COUNT(*) AS n FROM programs WHERE campaign_id = ? "
                                 "GROUP BY status, outcome", (campaign_id,))  # served by an index, no table scan
        for r in rows:
            key = r["outcome"] or r["status"]
            counts[key] = counts.get(key, 0) + int(r["n"])
        return counts

    def qd_stats(self, campaign_id: int, grid_size: int, qd_offset: float) -> dict[str, float | None]:
        """Best score, QD score and coverage over the union of the islands' grids.

        A cell of the union holds the best of that cell over islands; QD score sums
        ``max(0, score - qd_offset)`` over filled cells, coverage is filled cells / cells.
        """
        per_cell = self.conn.execute("SELECT cell, MAX(score) AS s FROM cells WHERE campaign_id = ? GROUP BY cell",
                                     (campaign_id,)).fetchall()
        best = self.conn.execute("SELECT MAX(score) FROM programs WHERE campaign_id = ? AND score IS NOT NULL",
                                 (campaign_id,)).fetchone()[0]
        return {
            "best": best,
            "qd_score": float(sum(max(0.0, r["s"] - qd_offset) for r in per_cell)),
            "coverage": len(per_cell) / grid_size if grid_size else 0.0,
            "cells": len(per_cell),
        }

    def add_event(self, campaign_id: int, kind: str, evaluations: int, stats: dict, evals_per_hour: float | None,
                  data: dict | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO events (campaign_id, time, kind, evaluations, best, qd_score, coverage, evals_per_hour,"
                " data) VALUES (?,?,?,?,?,?,?,?,?)",
                (campaign_id, now(), kind, evaluations, finite(stats.get("best")),
                 finite(stats.get("qd_score")), finite(stats.get("coverage")),
                 finite(evals_per_hour), dumps(data or {})))

    def last_event(self, campaign_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM events WHERE campaign_id = ? ORDER BY id DESC LIMIT 1",
                                 (campaign_id,)).fetchone()

    def events(self, campaign_id: int, kind: str | None = None, *, after: int = 0) -> list[sqlite3.Row]:
        """The campaign's events in order; ``kind`` keeps one kind, ``after`` only those with a higher id."""
        if kind is None:
            return self.conn.execute("SELECT * FROM events WHERE campaign_id = ? AND id > ? ORDER BY id",
                                     (campaign_id, after)).fetchall()
        return self.conn.execute("SELECT * FROM events WHERE campaign_id = ? AND kind = ? AND id > ? ORDER BY id",
                                 (campaign_id, kind, after)).fetchall()

    # -- listings ------------------------------------------------------------------------------

    def list_programs(self, campaign_id: int | None = None, *, outcome: str | None = None,
                      island: int | None = None, operator: str | None = None, min_score: float | None = None,
                      order: str = "id", limit: int | None = None) -> list[sqlite3.Row]:
        """Programs without their source, filtered and sorted, for listings."""
        # NULL scores sort last under DESC; no "score IS NULL" term, so the score index can serve the order.
        orders = {"id": "p.id", "score": "p.score DESC, p.id", "created": "p.created, p.id"}
        where, args = ["1 = 1"], []
        for clause, value in (("p.campaign_id = ?", campaign_id), ("p.outcome = ?", outcome),
                              ("p.island = ?", island), ("p.operator = ?", operator),
                              ("p.score >= ?", min_score)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = (f"SELECT p.id, c.name AS campaign, p.kind, p.operator, p.model, p.island, p.generation, p.parent_id,"
               f" p.status, p.outcome, p.stage, p.score, p.ci_low, p.ci_high, p.fingerprint, p.descriptors, p.note,"
               f" json_extract(p.metrics, '$.confirmed.score') AS confirmed,"
               f" p.created, p.evaluated, p.wall_s, p.error FROM programs p JOIN campaigns c ON c.id = p.campaign_id"
               f" WHERE {' AND '.join(where)} ORDER BY {orders[order]}")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return self.conn.execute(sql, args).fetchall()

    def evaluations(self, program_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM evaluations WHERE program_id = ? ORDER BY held_out, task, seed",
                                 (program_id,)).fetchall()

    def integrity(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])


__all__ = ["Archive", "CellEntry", "SCHEMA_VERSION", "dumps", "now"]
