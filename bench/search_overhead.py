"""What the search itself costs, apart from training: campaign bookkeeping and archive queries.

Why: a campaign's main thread proposes, selects, records and reports between evaluations
while the evaluations train in worker threads. If that bookkeeping were slow, or grew with the
archive, it would cap how many evaluations can run in parallel and slow long campaigns down
however fast the trainer is. This measures both halves in one run:

1. **Campaign bookkeeping per evaluation.** A real :class:`~evosearch.campaign.Campaign`
   (``configs/classic.yaml``'s archive, selection and operators, i.e. the default AST and GP
   ones, seeded with ``programs/rules/reinforce.py`` and ``a2c.py``, ``parallel: 1``, a real
   SQLite file in a temporary directory) runs ``--evals`` evaluations against an *instant
   stand-in evaluator*, and the same campaign is then resumed on the large archive of part 2
   for ``--large-evals`` more, to show how the bookkeeping grows with the archive. The stand-in replaces only
   the training (which ``bench/eval_throughput.py`` measures): it returns a well-formed
   :class:`~evosearch.evaluate.EvalResult` (quick-suite shape: 2 tasks x 6 seeds, 20-point
   curves), fails some programs at the static, smoke and hurdle stages, and asks
   ``skip_if(fingerprint)`` after its "smoke stage" as the real evaluator does, with a
   fingerprint that is the hash of the rule's AST with constants rounded to 3 significant
   digits (two spellings of one rule collide, as under the real probe), and for ~5% of
   programs an earlier program's fingerprint, so the duplicate path is exercised too. The
   campaign's wall time minus the stand-in's own time is the bookkeeping; timers wrapped
   around Campaign and Archive methods from outside break it down. ``run()`` gets a no-op
   ``on_progress``, so it takes the progress snapshot the CLI's display takes. The references, measured in
   the same run: one real smoke-stage sandbox job (``probe`` on a2c.py, median of 5 after a
   warm-up) and a typical quick-suite evaluation (``--typical-eval-s``, see its help).

2. **Archive queries at ``--programs`` programs.** A campaign database (created by Campaign,
   its seeds recorded) is filled with synthetic but realistic rows (~1 KB sources, descriptor
   and metrics JSON, ~20% failures, 4 islands over the classic config's 8x6x4 grid, per-seed
   evaluation rows for a tenth of the successful programs, an event every 5 evaluations) by
   ``executemany`` in one transaction, then each query the campaign or the CLI issues is
   timed (median of many repetitions, warm OS page cache). The reference is the same queries
   on a 1,000-program database built the same way in the same run; the ratio shows which
   queries grow with the archive.

Figures are printed, never asserted: they depend on the machine and on what else runs on it.

    .venv/bin/python bench/search_overhead.py [--programs 100000] [--evals 400] [--large-evals 30]
                                              [--typical-eval-s 20] [--json]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # works without PYTHONPATH and from any working directory
    sys.path.insert(0, str(ROOT))

from _common import no_nan  # noqa: E402

import evosearch.campaign as campaign_module  # noqa: E402
from evosearch.archive.descriptors import Grid, grid_from_config  # noqa: E402
from evosearch.archive.selection import select_inspirations, select_parent  # noqa: E402
from evosearch.archive.store import Archive, CellEntry, dumps, now  # noqa: E402
from evosearch.campaign import Campaign  # noqa: E402
from evosearch.config import CampaignConfig, load_config  # noqa: E402
from evosearch.evaluate import EvalResult, TaskResult  # noqa: E402
from evosearch.program import Program, split_block  # noqa: E402
from evosearch.propose.base import Parent, Proposal  # noqa: E402
from evosearch.propose.registry import OPERATOR_NAMES  # noqa: E402

CLASSIC = ROOT / "configs" / "classic.yaml"
RULES = ROOT / "programs" / "rules"
SEED_RULES = ("reinforce.py", "a2c.py")
# The quick suite's shape: two tasks, six seeds, 20-point learning curves (harness default).
TASKS = {"CartPole-v1": (22.5, 220.6), "Acrobot-v1": (-498.8, -428.6)}  # r_random, r_ref
SEEDS = 6
CURVE_POINTS = 20


# -- timing helpers ------------------------------------------------------------------------------


@dataclass
class Timers:
    """Wall seconds and calls per name; a wrapped callable adds to its name on every call."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] += 1

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)

        return timed

    def get(self, name: str) -> float:
        return self.seconds.get(name, 0.0)


def median_ms(fn: Callable[[], Any], budget_s: float, min_reps: int = 7, max_reps: int = 300) -> dict[str, float]:
    """Run ``fn`` once untimed, then until ``budget_s`` is spent (within the rep bounds); median and p90 in ms."""
    fn()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < min_reps or (len(samples) < max_reps and time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p90_ms": samples[int(0.9 * (len(samples) - 1))],
            "reps": len(samples)}


# -- a synthetic evaluation record -----------------------------------------------------------------


def synthetic_tasks(rng: random.Random, level: float) -> dict[str, TaskResult]:
    """Quick-suite-shaped per-task results around a normalised ``level``."""
    tasks = {}
    steps = [2500 * (k + 1) for k in range(CURVE_POINTS)]
    for env_id, (r_random, r_ref) in TASKS.items():
        normalized = [level + rng.gauss(0.0, 0.15) for _ in range(SEEDS)]
        returns = [r_random + n * (r_ref - r_random) for n in normalized]
        speed = rng.uniform(0.1, 0.95)
        curves = [[r_random + (ret - r_random) * min(1.0, (k + 1) / (CURVE_POINTS * speed)) + rng.gauss(0, 2)
                   for k in range(CURVE_POINTS)] for ret in returns]
        aucs = [n * speed for n in normalized]
        mean = statistics.fmean(normalized)
        tasks[env_id] = TaskResult(
            env_id=env_id, returns=returns, normalized=normalized, mean_return=statistics.fmean(returns),
            normalized_mean=mean, ci=[mean - 0.1, mean + 0.1], curve_steps=steps, curves=curves,
            auc_per_seed=aucs, auc=statistics.fmean(aucs), train_wall_s=rng.uniform(12.0, 18.0))
    return tasks


def synthetic_ok(rng: random.Random, fingerprint: str | None) -> EvalResult:
    level = rng.betavariate(2.0, 4.0) * 1.3 - 0.15
    tasks = synthetic_tasks(rng, level)
    score = statistics.fmean(t.normalized_mean for t in tasks.values())
    return EvalResult(outcome="ok", stage="full", score=score, ci=[score - 0.12, score + 0.12],
                      fingerprint=fingerprint, suite="quick", iqm=score,
                      auc=statistics.fmean(t.auc for t in tasks.values()), tasks=tasks,
                      hurdle_score=rng.uniform(0.0, 0.6), cpu_s=60.0, peak_rss_mb=450.0)


def behaviour_key(source: str) -> str:
    """A stand-in for the probe fingerprint: the rule's AST with numeric constants rounded to 3 digits."""
    try:
        _, block, _ = split_block(source)
    except ValueError:
        block = source
    try:
        tree = ast.parse(block)
    except SyntaxError:
        return hashlib.sha256(source.encode()).hexdigest()[:32]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            node.value = float(f"{node.value:.3g}")
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:32]


TRACEBACK = ("Traceback (most recent call last):\n  File \"program.py\", line 14, in loss\n"
             "    return pg_loss - ENT_COEF * b.entropy.mean()\nRuntimeError: shape mismatch\n") * 4


class InstantEvaluator:
    """Stands in for :class:`evosearch.evaluate.Evaluator` with no training: a synthetic record at once.

    Outcomes: ~8% rejected by the static check, ~7% fail the smoke stage, then ``skip_if`` is
    asked (duplicates end there), ~15% of the rest fail the hurdle, the others finish the suite.
    The fingerprint is :func:`behaviour_key`, except that ~5% of programs take an earlier
    program's: a rewrite the AST cannot tell is equivalent (the probe can), so that the
    duplicate path is exercised too.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seconds = 0.0  # the stand-in's own time, skip_if (the campaign's) excluded
        self.skip_if_seconds = 0.0
        self.calls = 0
        self.outcomes: Counter = Counter()
        self.fingerprints: list[str] = []

    def evaluate(self, program: Program, skip_if: Callable[[str], bool] | None = None) -> EvalResult:
        start = time.perf_counter()
        result = self._evaluate(program, skip_if)
        result.wall_s = time.perf_counter() - start
        self.seconds += result.wall_s
        self.calls += 1
        self.outcomes[result.outcome] += 1
        return result

    def _evaluate(self, program: Program, skip_if: Callable[[str], bool] | None) -> EvalResult:
        u = self.rng.random()
        if u < 0.08:
            return EvalResult(outcome="rejected", stage="static", suite="quick",
                              error="static check: line 12: name 'foo' is not defined")
        if u < 0.15:
            return EvalResult(outcome="candidate_error", stage="smoke", suite="quick",
                              error="smoke test: RuntimeError: shape mismatch", output_tail=TRACEBACK)
        fingerprint = behaviour_key(program.source)
        if self.fingerprints and self.rng.random() < 0.05:
            fingerprint = self.rng.choice(self.fingerprints)
        self.fingerprints.append(fingerprint)
        if skip_if is not None:
            t0 = time.perf_counter()
            duplicate = skip_if(fingerprint)
            self.skip_if_seconds += time.perf_counter() - t0
            if duplicate:
                return EvalResult(outcome="duplicate", stage="smoke", fingerprint=fingerprint, suite="quick",
                                  error=f"behaves like an evaluated program (fingerprint {fingerprint})")
        if self.rng.random() < 0.15:
            return EvalResult(outcome="rejected", stage="hurdle", fingerprint=fingerprint, suite="quick",
                              hurdle_score=-0.1, error="hurdle: normalised score -0.100 on CartPole-v1 is below "
                                                       "the threshold 0.000")
        return synthetic_ok(self.rng, fingerprint)


# -- part 1: a real campaign with the stand-in -----------------------------------------------------------


class _TimedOperator:
    """An operator whose ``propose`` is timed (under its own name and under ``operator.propose``)."""

    def __init__(self, op: Any, timers: Timers) -> None:
        self._op, self._timers = op, timers
        self.name, self.arity = op.name, op.arity

    def applies(self, parents: list[Parent]) -> bool:
        return self._op.applies(parents)

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        start = time.perf_counter()
        try:
            return self._op.propose(parents, rng)
        finally:
            elapsed = time.perf_counter() - start
            self._timers.add("operator.propose", elapsed)
            self._timers.add(f"op {self.name}", elapsed)


class _TimedGrid:
    def __init__(self, grid: Grid, timers: Timers) -> None:
        self._grid, self.size = grid, grid.size
        self.describe = timers.wrap("describe", grid.describe)
        self.coords, self.index = grid.coords, grid.index


class TimedCampaign(Campaign):
    """A Campaign whose steps are timed from outside; its behaviour is unchanged."""

    def __init__(self, *args: Any, timers: Timers, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timers = timers
        self.per_eval: list[float] = []  # propose + tell seconds of each evaluation, in order
        self._pending_propose = 0.0
        self.operators = {name: _TimedOperator(op, timers) for name, op in self.operators.items()}
        self.grid = _TimedGrid(self.grid, timers)
        for name in ("has_source", "winning_cells", "record", "add_event"):
            setattr(self.archive, name, timers.wrap(name, getattr(self.archive, name)))
        self._where = "other"  # who asks for counts and stats: tell (progress events), the snapshot, or run()
        for name in ("counts", "qd_stats"):
            setattr(self.archive, name, self._timed_by_caller(name, getattr(self.archive, name)))

    def _timed_by_caller(self, name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.timers.add(f"{name} ({self._where})", time.perf_counter() - start)

        return timed

    def _propose(self):  # noqa: ANN202 - same signature as the base class
        start = time.perf_counter()
        try:
            return super()._propose()
        finally:
            elapsed = time.perf_counter() - start
            self.timers.add("propose", elapsed)
            self._pending_propose += elapsed

    def _store_proposal(self, *args: Any, **kwargs: Any):  # noqa: ANN202
        return self.timers.wrap("store proposal", super()._store_proposal)(*args, **kwargs)

    def _tell(self, row, result) -> None:  # noqa: ANN001
        start = time.perf_counter()
        self._where = "tell"
        try:
            super()._tell(row, result)
        finally:
            self._where = "other"
        elapsed = time.perf_counter() - start
        self.timers.add("tell", elapsed)
        self.per_eval.append(self._pending_propose + elapsed)
        self._pending_propose = 0.0

    def _maybe_migrate(self) -> None:
        self.timers.wrap("migrate", super()._maybe_migrate)()

    def _event(self, kind: str, data: dict) -> dict:
        label = kind if kind in ("progress", "migration") else "start/stop"
        return self.timers.wrap(f"event {label}", super()._event)(kind, data)

    def progress(self, *args: Any, **kwargs: Any):  # noqa: ANN202
        self._where = "snapshot"
        try:
            return self.timers.wrap("progress snapshot", super().progress)(*args, **kwargs)
        finally:
            self._where = "other"


def bench_config(name: str, db: Path, evals: int, seed: int) -> CampaignConfig:
    """configs/classic.yaml's archive, selection and operators; reinforce + a2c seeds, parallel 1."""
    return load_config(CLASSIC, {
        "name": name, "parallel": 1, "rng_seed": seed, "db": str(db), "evaluation": {"suite": "quick"},
        "seeds": [str(RULES / rule) for rule in SEED_RULES], "budget": {"max_evals": evals, "minutes": None},
    })


def run_campaign(config: CampaignConfig, evals: int, seed: int) -> dict:
    """Run ``evals`` evaluations of the campaign in ``config`` against the stand-in; return the timings."""
    timers = Timers()
    evaluator = InstantEvaluator(seed)
    t0 = time.perf_counter()
    campaign = TimedCampaign(config, db_path=config.db, evaluator=evaluator, timers=timers)
    setup_s = time.perf_counter() - t0
    saved = campaign_module.select_parent, campaign_module.select_inspirations
    campaign_module.select_parent = timers.wrap("select_parent", select_parent)
    campaign_module.select_inspirations = timers.wrap("select_inspirations", select_inspirations)
    logging.getLogger("evosearch").setLevel(logging.ERROR)
    try:
        programs_before = sum(campaign.archive.counts(campaign.campaign_id).values())
        evaluations_before = campaign.state["evaluations"]
        t0 = time.perf_counter()
        # on_progress: the CLI's display takes a snapshot (qd_stats + counts) on every loop iteration.
        summary = campaign.run(max_evals=evaluations_before + evals, on_progress=lambda progress: None)
        total_s = time.perf_counter() - t0
    finally:
        campaign_module.select_parent, campaign_module.select_inspirations = saved
        campaign.close()
    calls = evaluator.calls
    bookkeeping_s = total_s - evaluator.seconds
    per_eval = campaign.per_eval
    fifth = max(1, len(per_eval) // 5)
    return {
        "programs_before": programs_before, "evaluations_counted": summary.evaluations - evaluations_before,
        "evaluate_calls": calls, "outcomes": dict(evaluator.outcomes),
        "proposals": campaign.state["proposals"], "same_source_retries": campaign.state["same_source"],
        "proposal_errors": sum(campaign.state["proposal_errors"].values()),
        "coverage": summary.coverage, "best": summary.best, "setup_s": setup_s, "total_s": total_s,
        "standin_s": evaluator.seconds, "bookkeeping_s": bookkeeping_s,
        "bookkeeping_ms_per_eval": 1000 * bookkeeping_s / calls,
        "first_fifth_ms": 1000 * statistics.fmean(per_eval[:fifth]),
        "last_fifth_ms": 1000 * statistics.fmean(per_eval[-fifth:]),
        "p90_ms": 1000 * sorted(per_eval)[int(0.9 * (len(per_eval) - 1))],
        "timers_s": dict(timers.seconds), "timer_calls": dict(timers.calls),
        "skip_if_s": evaluator.skip_if_seconds,
    }


def smoke_job_s(reps: int) -> dict:
    """Wall seconds of one real smoke-stage job (probe of a2c.py): a warm-up, then the median of ``reps``."""
    from evosearch.evaluate.jobs import ProbeJob
    from evosearch.sandbox import Limits, run_job

    source = (RULES / "a2c.py").read_text(encoding="utf-8")
    t0 = time.perf_counter()
    first = run_job(ProbeJob(source=source), Limits(wall_s=60))
    warmup = time.perf_counter() - t0
    if first.status != "ok":
        raise RuntimeError(f"the probe job failed: {first.status} {first.error}")
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        job = run_job(ProbeJob(source=source), Limits(wall_s=60))
        walls.append(time.perf_counter() - t0)
        if job.status != "ok":
            raise RuntimeError(f"the probe job failed: {job.status} {job.error}")
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "reps": reps,
            "warmup_s": warmup}


# -- part 2: archive queries on a large database ----------------------------------------------------


def _variant_source(base: str, i: int, rng: random.Random) -> str:
    """A ~1 KB rule: a seed rule with its constants changed and a few lines that make it unique."""
    extra = "\n".join(f"    # term {i}.{k}: weight {rng.uniform(-2, 2):.6f}" for k in range(rng.randint(1, 4)))
    return base.replace("0.01", f"{rng.uniform(0.001, 0.05):.5f}").replace("0.5", f"{rng.uniform(0.1, 1):.4f}") + (
        f"\n# variant {i}\n{extra}\n")


def build_database(config: CampaignConfig, programs: int, seed: int) -> dict:
    """A real campaign's database (created by Campaign, its seeds evaluated) plus ``programs`` synthetic rows.

    The rows go in with ``executemany`` in one transaction; the cells hold the best of them per
    island and cell, as the campaign would have left them.
    """
    rng = random.Random(seed)
    grid, islands = grid_from_config(config.archive.descriptors), config.archive.islands
    bases = [(RULES / name).read_text(encoding="utf-8") for name in ("reinforce.py", "a2c.py", "ppo_clip.py")]
    t0 = time.perf_counter()
    opened = Campaign(config, db_path=config.db, evaluator=InstantEvaluator(seed))  # campaign row + pending seeds
    campaign_id = opened.campaign_id
    opened.close()
    archive = Archive(config.db)
    state = json.loads(archive.campaign(config.name)["state"])  # kept as is: the campaign resumes on this file
    for row in archive.pending(campaign_id):  # the seeds, evaluated and in every island's grid
        result = synthetic_ok(rng, behaviour_key(row["source"]))
        descriptors = grid.describe(row["source"], result)
        coords = grid.coords(descriptors)
        archive.record(campaign_id, int(row["id"]), result, descriptors=descriptors,
                       cells=[CellEntry(i, grid.index(coords), coords) for i in range(islands)], state=state)
    first_id = 1 + archive.conn.execute("SELECT MAX(id) FROM programs").fetchone()[0]
    seq = archive.conn.execute("SELECT MAX(eval_seq) FROM programs").fetchone()[0]
    best = {(r["island"], r["cell"]): (r["score"], r["program_id"], json.loads(r["coords"]))
            for r in archive.elites(campaign_id)}
    program_rows, evaluation_rows, event_rows = [], [], []
    fingerprints: list[str] = []
    failures = ("rejected", "candidate_error", "timeout", "duplicate")
    for pid in range(first_id, first_id + programs):
        source = _variant_source(bases[pid % 3], pid, rng)
        operator = rng.choice(OPERATOR_NAMES)
        island = pid % islands
        parent = rng.randrange(max(1, pid - 5000), pid)
        u = rng.random()
        outcome = "ok" if u >= 0.2 else failures[min(3, int(u / 0.05))]  # 5% of each failure
        fingerprint = None
        if outcome in ("ok", "timeout"):
            fingerprint = hashlib.sha256(f"fp{pid}".encode()).hexdigest()[:32]
            fingerprints.append(fingerprint)
        elif outcome == "duplicate" and fingerprints:
            fingerprint = rng.choice(fingerprints)
        score = descriptors = metrics = None
        if outcome == "ok":
            level = rng.betavariate(2.0, 4.0) * 1.3 - 0.15
            score = level + rng.gauss(0, 0.05)
            descriptors = {"code_size": rng.gauss(90, 45), "learning_speed": rng.betavariate(2, 2) * 1.2,
                           "seed_spread": rng.expovariate(1 / 0.15)}
            metrics = {"iqm": score, "auc": score * 0.6, "hurdle_score": rng.uniform(0, 0.6), "suite": "quick",
                       "fitness": "iqm", "tasks": {env: {"mean_return": rng.uniform(-500, 500),
                                                         "normalized_mean": level, "ci": [level - 0.1, level + 0.1],
                                                         "auc": level * 0.6,
                                                         "curve_steps": [2500 * (k + 1) for k in range(20)]}
                                                   for env in TASKS}, "held_out": {}}
            coords = grid.coords(descriptors)
            cell = grid.index(coords)
            if (island, cell) not in best or score > best[(island, cell)][0]:
                best[(island, cell)] = (score, pid, coords)
            if rng.random() < 0.1:
                for env in TASKS:
                    for s in range(SEEDS):
                        curve = [round(rng.uniform(0, 300), 2) for _ in range(CURVE_POINTS)]
                        evaluation_rows.append((pid, env, s, 0, rng.uniform(0, 300), rng.uniform(-0.2, 1.2),
                                                rng.uniform(0, 1), dumps(curve), 15.0))
        stamp = now()
        seq += 1
        error = "" if outcome == "ok" else f"{outcome}: synthetic failure of program {pid}"
        program_rows.append((
            pid, campaign_id, "rule", source, hashlib.sha256(source.encode()).hexdigest(), fingerprint, parent,
            dumps([parent]), operator, None, island, rng.randint(0, 40), None, f"{operator} on #{parent}", stamp,
            "done", stamp, seq, outcome, "full" if outcome == "ok" else "smoke", score,
            None if score is None else score - 0.1, None if score is None else score + 0.1,
            dumps(descriptors or {}), dumps(metrics or {}), None, error,
            TRACEBACK if outcome == "candidate_error" else "", rng.uniform(1, 40), rng.uniform(1, 80), 450.0))
        if seq % 5 == 0:
            event_rows.append((campaign_id, stamp, "progress", seq, 1.0, 10.0, 0.5, 500.0, "{}"))
    columns = ("id, campaign_id, kind, source, sha, fingerprint, parent_id, parent_ids, operator, model, island, "
               "generation, genome, note, created, status, evaluated, eval_seq, outcome, stage, score, ci_low, "
               "ci_high, descriptors, metrics, duplicate_of, error, output_tail, wall_s, cpu_s, peak_rss_mb")
    with archive.transaction() as conn:
        conn.executemany(f"INSERT INTO programs ({columns}) VALUES ({', '.join('?' * len(columns.split(',')))})",
                         program_rows)
        conn.executemany("INSERT INTO evaluations (program_id, task, seed, held_out, mean_return, normalized, auc, "
                         "curve, train_wall_s) VALUES (?,?,?,?,?,?,?,?,?)", evaluation_rows)
        conn.execute("DELETE FROM cells WHERE campaign_id = ?", (campaign_id,))
        conn.executemany("INSERT INTO cells (campaign_id, island, cell, coords, program_id, score, updated) "
                         "VALUES (?,?,?,?,?,?,?)",
                         [(campaign_id, isl, cell, dumps(coords), pid, score, now())
                          for (isl, cell), (score, pid, coords) in best.items()])
        conn.executemany("INSERT INTO events (campaign_id, time, kind, evaluations, best, qd_score, coverage, "
                         "evals_per_hour, data) VALUES (?,?,?,?,?,?,?,?,?)", event_rows)
    archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    build_s = time.perf_counter() - t0
    total = archive.conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
    archive.close()
    return {"programs": total, "cells": len(best), "evaluation_rows": len(evaluation_rows),
            "build_s": build_s, "size_mb": Path(config.db).stat().st_size / 2**20, "campaign_id": campaign_id}


def time_queries(config: CampaignConfig, campaign_id: int, budget_s: float, seed: int) -> dict[str, dict[str, float]]:
    """Median wall time of each query the campaign or the CLI issues, on the campaign's database."""
    archive = Archive(config.db)
    state = json.loads(archive.campaign(config.name)["state"])  # with its RNG state, as the campaign writes it
    grid, islands, selection = grid_from_config(config.archive.descriptors), config.archive.islands, config.selection
    rng = random.Random(seed)
    results: dict[str, dict[str, float]] = {}
    island = [0]

    def select() -> None:
        island[0] = (island[0] + 1) % islands
        parent = select_parent(archive, campaign_id, island[0], rng, selection)
        select_inspirations(archive, campaign_id, island[0], parent, rng, selection.inspirations)

    results["select_parent + select_inspirations"] = median_ms(select, budget_s)

    counter = [0]
    add_ms: list[float] = []
    record_ms: list[float] = []

    def record() -> None:
        counter[0] += 1
        source = f"# bench program {counter[0]} {rng.random()}\n" + "x = 1\n" * 150
        t0 = time.perf_counter()
        pid = archive.add_pending(campaign_id, {"kind": "rule", "source": source,
                                                "sha": hashlib.sha256(source.encode()).hexdigest(),
                                                "operator": "ast.constant", "island": island[0], "parent_ids": [1]},
                                  state=state)
        add_ms.append((time.perf_counter() - t0) * 1000)
        result = synthetic_ok(rng, hashlib.sha256(f"new{counter[0]}".encode()).hexdigest()[:32])
        result.score = (result.score or 0.0) + 0.5  # wins its cell often, so the cell update is exercised
        descriptors = {"code_size": rng.uniform(20, 300), "learning_speed": rng.uniform(0, 1.2),
                       "seed_spread": rng.uniform(0, 0.6)}
        coords = grid.coords(descriptors)
        t0 = time.perf_counter()
        archive.record(campaign_id, pid, result, descriptors=descriptors,
                       cells=[CellEntry(island[0], grid.index(coords), coords)], state=state)
        record_ms.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    while counter[0] < 9 or (counter[0] < 300 and time.perf_counter() - started < budget_s):
        record()
    for name, samples in (("add_pending (a new proposal)", add_ms), ("record (result + cell update)", record_ms)):
        samples = sorted(samples[1:])  # the first is the warm-up
        results[name] = {"median_ms": statistics.median(samples), "p90_ms": samples[int(0.9 * (len(samples) - 1))],
                         "reps": len(samples)}

    queries: dict[str, Callable[[], Any]] = {
        "has_source": lambda: archive.has_source(campaign_id, "0" * 64),
        "winning_cells": lambda: archive.winning_cells(campaign_id, [CellEntry(1, 7, [0, 1, 3])], 0.5),
        "list_programs(order=score, limit=50)": lambda: archive.list_programs(campaign_id, order="score", limit=50),
        "list_programs(outcome=ok) full": lambda: archive.list_programs(campaign_id, outcome="ok"),
        "qd_stats": lambda: archive.qd_stats(campaign_id, grid.size, config.archive.qd_offset),
        "counts": lambda: archive.counts(campaign_id),
        "fingerprints": lambda: archive.fingerprints(campaign_id),
    }
    for name, fn in queries.items():
        results[name] = median_ms(fn, budget_s)
    archive.close()
    return results


# -- report ----------------------------------------------------------------------------------------------

BREAKDOWN: tuple[tuple[str, tuple[str, ...] | str, int], ...] = (  # label, timer(s), indent (0: parts of the total)
    ("propose (select, operator, store)", "propose", 0),
    ("select_parent", "select_parent", 1),
    ("select_inspirations", "select_inspirations", 1),
    ("operator.propose (AST/GP)", "operator.propose", 1),
    ("has_source", "has_source", 1),
    ("store proposal (add_pending)", "store proposal", 1),
    ("tell (describe, record, events)", "tell", 0),
    ("describe (descriptors)", "describe", 1),
    ("winning_cells", "winning_cells", 1),
    ("record", "record", 1),
    ("migrate", "migrate", 1),
    ("progress events (counts, qd_stats)", ("event progress", "counts (tell)"), 1),
    ("progress snapshot (CLI display)", "progress snapshot", 0),
    ("counts", "counts (snapshot)", 1),
    ("qd_stats", "qd_stats (snapshot)", 1),
)


def print_campaign(runs: list[tuple[str, dict]], smoke: dict, typical_eval_s: float) -> dict:
    fresh = runs[0][1]
    print("\n1. Campaign bookkeeping per evaluation (configs/classic.yaml's archive: 4 islands, 8x6x4 grid; "
          "AST + GP operators; seeds reinforce.py, a2c.py; parallel 1)")
    for label, c in runs:
        print(f"   {label}: {c['programs_before']:,} programs before; {c['evaluate_calls']} evaluate() calls "
              f"({c['evaluations_counted']} counted), outcomes {dict(sorted(c['outcomes'].items()))}; "
              f"{c['proposals']} proposed, {c['same_source_retries']} same-source retries, "
              f"{c['proposal_errors']} operator errors; opening the campaign took {c['setup_s']:.2f} s")
        print(f"     total {c['total_s']:.2f} s = stand-in evaluator {c['standin_s']:.2f} s + bookkeeping "
              f"{c['bookkeeping_s']:.2f} s")
    width = 14
    head = f"   {'ms per evaluate() call':<40}" + "".join(f"{label:>{width}}" for label, _ in runs)

    def ms(c: dict, keys: tuple[str, ...] | str) -> float:
        keys = (keys,) if isinstance(keys, str) else keys
        return 1000 * sum(c["timers_s"].get(k, 0.0) for k in keys) / c["evaluate_calls"]

    print("\n" + head)
    print("   " + "-" * (len(head) - 3))
    for label, key, indent in BREAKDOWN:
        cells = "".join(f"{ms(c, key):>{width}.2f}" for _, c in runs)
        print(f"   {'  ' * indent + label:<40}{cells}")
    tops = [key for _, key, indent in BREAKDOWN if indent == 0]
    other = [1000 * (c["bookkeeping_s"] - sum(c["timers_s"].get(k, 0.0) for k in tops)) / c["evaluate_calls"]
             for _, c in runs]
    print(f"   {'loop, thread hand-off, start/stop':<40}" + "".join(f"{ms:>{width}.2f}" for ms in other))
    print("   " + "-" * (len(head) - 3))
    for text, key in (("bookkeeping per evaluation", "bookkeeping_ms_per_eval"),
                      ("  propose + tell, first fifth of run", "first_fifth_ms"),
                      ("  propose + tell, last fifth of run", "last_fifth_ms"), ("  propose + tell, p90", "p90_ms")):
        print(f"   {text:<40}" + "".join(f"{c[key]:>{width}.2f}" for _, c in runs))
    ops = {k[3:]: (1000 * v / fresh["timer_calls"][k]) for k, v in fresh["timers_s"].items() if k.startswith("op ")}
    print("\n   mean ms per proposal attempt by operator (fresh run): "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1])))
    smoke_ms = 1000 * smoke["median_s"]
    print(f"   reference: one real smoke-stage job (probe of a2c.py in the sandbox) takes {smoke_ms:.0f} ms, median of "
          f"{smoke['reps']} (min {1000 * smoke['min_s']:.0f}, max {1000 * smoke['max_s']:.0f}; the first, which "
          f"starts the warm worker, {smoke['warmup_s']:.1f} s)")
    ratios: dict[str, dict[str, float]] = {}
    print(f"\n   {'':<40}" + "".join(f"{label:>{width}}" for label, _ in runs))
    for label, c in runs:
        per = c["bookkeeping_ms_per_eval"]
        ratios[label] = {"bookkeeping_over_smoke_job": per / smoke_ms,
                         "bookkeeping_fraction_of_typical_eval": per / (1000 * typical_eval_s),
                         "main_thread_saturates_at_parallel": typical_eval_s * 1000 / per}
    rows = (("bookkeeping / smoke job", "bookkeeping_over_smoke_job", ".3f", 1),
            (f"bookkeeping / {typical_eval_s:g} s quick-suite eval (%)", "bookkeeping_fraction_of_typical_eval",
             ".3f", 100),
            ("main thread saturated at parallel =", "main_thread_saturates_at_parallel", ",.0f", 1))
    for text, key, spec, scale in rows:
        print(f"   {text:<40}" + "".join(f"{format(scale * ratios[label][key], spec):>{width}}" for label, _ in runs))
    snapshot = "".join(f"{100 * _snapshot_share(c):>{width}.0f}" for _, c in runs)
    print(f"   {'idle main thread in snapshots (%)':<40}{snapshot}")
    print("\n   The stand-in evaluator replaces only the training (bench/eval_throughput.py measures that); the "
          "rest is the real\n   campaign loop on a real SQLite file. 'Saturated at' = typical evaluation / "
          "bookkeeping: the evaluations in\n   flight at which the single main thread would be busy all the time. "
          "While evaluations train, run() also takes a\n   progress snapshot every 0.5 s (its wait timeout): "
          "'idle main thread in snapshots' = snapshot / (0.5 s + snapshot).")
    return ratios


def _snapshot_share(c: dict) -> float:
    """Share of an otherwise idle main thread spent on progress snapshots, one after each 0.5 s wait."""
    calls = c["timer_calls"].get("progress snapshot", 0)
    per_call = c["timers_s"].get("progress snapshot", 0.0) / calls if calls else 0.0
    return per_call / (0.5 + per_call)


def print_queries(big: dict, small: dict, big_info: dict, small_info: dict) -> dict[str, float]:
    n_big, n_small = big_info["programs"], small_info["programs"]
    print(f"\n2. Archive queries: {n_big:,} programs ({big_info['cells']} filled cells, "
          f"{big_info['evaluation_rows']:,} evaluation rows, {big_info['size_mb']:.0f} MB, built in "
          f"{big_info['build_s']:.1f} s) against {n_small:,} ({small_info['cells']} cells, "
          f"{small_info['size_mb']:.1f} MB) built the same way; warm page cache\n")
    head = f"   {'query':<40}{f'{n_small:,} ms':>12}{f'{n_big:,} ms':>13}{'p90 ms':>10}{'ratio':>9}{'reps':>6}"
    print(head)
    print(f"   {'-' * (len(head) - 3)}")
    ratios = {}
    for name in big:
        b, s = big[name], small[name]
        ratios[name] = b["median_ms"] / s["median_ms"] if s["median_ms"] > 0 else math.nan
        flag = "  <- grows with the archive" if ratios[name] > 10 and b["median_ms"] > 5 else ""
        print(f"   {name:<40}{s['median_ms']:>12.3f}{b['median_ms']:>13.3f}{b['p90_ms']:>10.3f}"
              f"{ratios[name]:>9.1f}{b['reps']:>6}{flag}")
    print(f"\n   ratio = {n_big:,}-program median / {n_small:,}-program median; p90 and reps are the large archive's.")
    return ratios




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100_000, help="programs in the large archive (default 100000)")
    parser.add_argument("--reference-programs", type=int, default=1_000, help="programs in the reference archive")
    parser.add_argument("--evals", type=int, default=400, help="evaluations of the fresh campaign (default 400)")
    parser.add_argument("--large-evals", type=int, default=30,
                        help="evaluations of the campaign resumed on the large archive (default 30; 0 skips it)")
    parser.add_argument("--typical-eval-s", type=float, default=20.0,
                        help="wall seconds of a typical quick-suite evaluation (default 20: configs/quickstart.yaml "
                             "runs 60 evaluations in about 10 minutes with 2 in parallel, many ending early at the "
                             "static, smoke or hurdle stage; a full one trains ~32 s, 15.3 + 16.9 s in "
                             "evosearch/envs/suites/quick.calibration.json)")
    parser.add_argument("--smoke-reps", type=int, default=5, help="timed smoke jobs after one warm-up")
    parser.add_argument("--query-budget-s", type=float, default=0.5, help="seconds of repetitions per query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = parser.parse_args(argv)

    from evosearch.machine import machine_description

    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    machine = machine_description()
    print(f"machine: {machine} | python {sys.version.split()[0]} | load avg {load:.2f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="evosearch-bench-") as tmp:
        work = Path(tmp)
        print(f"running a fresh campaign ({args.evals} evaluations, instant stand-in evaluator) ...", flush=True)
        fresh = run_campaign(bench_config("fresh", work / "fresh.db", args.evals, args.seed), args.evals, args.seed)
        print(f"timing {args.smoke_reps} smoke jobs ...", flush=True)
        smoke = smoke_job_s(args.smoke_reps)
        print(f"building {args.reference_programs:,}- and {args.programs:,}-program archives ...", flush=True)
        small_cfg = bench_config("small", work / "small.db", 1, args.seed)
        big_cfg = bench_config("large", work / "large.db", 1, args.seed)
        small_info = build_database(small_cfg, args.reference_programs, args.seed)
        big_info = build_database(big_cfg, args.programs, args.seed)
        print("timing queries ...", flush=True)
        small = time_queries(small_cfg, small_info["campaign_id"], args.query_budget_s, args.seed)
        big = time_queries(big_cfg, big_info["campaign_id"], args.query_budget_s, args.seed)
        runs = [("fresh", fresh)]
        if args.large_evals > 0:
            print(f"resuming the campaign on the {args.programs:,}-program archive for {args.large_evals} "
                  f"evaluations ...", flush=True)
            runs.append((f"at {big_info['programs'] // 1000:,}k", run_campaign(big_cfg, args.large_evals, args.seed)))

    campaign_ratios = print_campaign(runs, smoke, args.typical_eval_s)
    query_ratios = print_queries(big, small, big_info, small_info)
    total = time.perf_counter() - started
    print(f"\nTotal {total:.0f} s.")
    if args.json:
        payload = {"machine": machine, "loadavg_1m_at_start": load, "total_s": total,
                   "campaign": dict(runs), "smoke_job": smoke, "typical_eval_s": args.typical_eval_s,
                   "campaign_ratios": campaign_ratios,
                   "queries": {"large": {"info": big_info, "ms": big}, "reference": {"info": small_info, "ms": small},
                               "ratios": query_ratios}}
        print(json.dumps(no_nan(payload), allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
