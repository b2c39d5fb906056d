"""The search loop: propose, evaluate in parallel, archive; resumable at any instant.

Everything a resume needs lives in the database, written in the same transaction as the
change it belongs to: a proposal is stored ``pending`` together with the RNG state after
making it, and a finished evaluation together with the cells it won, the bandit and the
counters. Running the same command again after a crash, a ``kill -9`` or Ctrl-C re-queues the
pending programs and carries on; no completed evaluation is lost or repeated.

Only the main thread touches the database and the RNG; worker threads only run the evaluator
(which runs sandboxed jobs), so the proposal sequence does not depend on thread timing.
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import sqlite3
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evosearch.archive.descriptors import Axis, Grid
from evosearch.archive.selection import as_parent, select_inspirations, select_parent
from evosearch.archive.store import Archive, CellEntry, dumps
from evosearch.campaign_llm import LlmDriver
from evosearch.config import CampaignConfig, ConfigError, resolved_suite
from evosearch.evaluate import CascadeConfig, EvalResult, Evaluator
from evosearch.program import Program
from evosearch.propose.bandit import Bandit
from evosearch.propose.base import Parent, Proposal, ProposalError
from evosearch.propose.llm import LlmRequest, LlmResult
from evosearch.propose.registry import build_operators

log = logging.getLogger("evosearch.campaign")

#: What ``_propose`` returns when only LLMs could propose and all are busy or resting: wait, do not stop.
WAIT = object()

#: Config sections that decide what a score means; a resumed campaign must keep them.
FIXED_SECTIONS = ("kind", "evaluation", "archive")
#: Consecutive duplicate candidates after which a run stops: its operators only re-make what it has.
MAX_DUPLICATE_STREAK = 200


class EvaluatorLike(Protocol):
    def evaluate(self, program: Program, skip_if=None) -> EvalResult: ...


@dataclass
class Progress:
    """What the progress display shows; a snapshot taken by the main thread."""

    name: str
    evaluations: int
    max_evals: int | None
    in_flight: int
    best: float | None
    qd_score: float
    coverage: float
    cells: int
    evals_per_hour: float
    outcomes: dict[str, int]
    proposal_errors: int
    elapsed_s: float
    minutes: float | None
    stopping: str = ""
    llm_spend: float = 0.0
    llm_cap: float | None = None
    llm_models: dict[str, str] = field(default_factory=dict)  # label -> "ok" or why it is resting
    llm_in_flight: int = 0
    llm_capped: bool = False


@dataclass
class RunSummary:
    campaign_id: int
    evaluations: int
    evaluated_this_run: int
    stop_reason: str
    best: float | None
    best_program: int | None
    qd_score: float
    coverage: float
    outcomes: dict[str, int] = field(default_factory=dict)


class BudgetReached(Exception):
    """The campaign already has the evaluations its budget allows."""


def _grid(config: CampaignConfig) -> Grid:
    return Grid(tuple(Axis(d.name, d.min, d.max, d.bins) for d in config.archive.descriptors))


def default_evaluator(config: CampaignConfig) -> EvaluatorLike:
    ev = config.evaluation
    cascade = CascadeConfig(
        suite=resolved_suite(config), seeds=ev.seeds, hurdle=ev.hurdle, hurdle_threshold=ev.hurdle_threshold,
        fitness=ev.fitness, smoke_timeout_s=ev.smoke_timeout_s, task_timeout_s=ev.task_timeout_s,
        memory_mb=ev.memory_mb, workers=ev.workers, sandbox=ev.sandbox, device=ev.device)
    if config.kind == "policy":
        from evosearch.evaluate_policy import PolicyEvaluator

        return PolicyEvaluator(cascade)
    return Evaluator(cascade)


class Campaign:
    """One campaign in one database: ``run()`` starts it or resumes it where it stopped."""

    def __init__(self, config: CampaignConfig, *, db_path: str | Path | None = None,
                 evaluator: EvaluatorLike | None = None) -> None:
        self.config = config
        self.db_path = Path(db_path) if db_path else config.db_path()
        self.archive = Archive(self.db_path)
        self.grid = _grid(config)
        self.operators = build_operators(config.operators.enabled, config.operators.gp_seed_genomes, config.kind)
        self.evaluator = evaluator
        self.campaign_id, self.state = self._open()
        self.rng = random.Random()
        self.rng.setstate(_rng_from_json(self.state["rng"]))
        self._known_fingerprints = self.archive.fingerprints(self.campaign_id)
        self._running_fingerprints: dict[str, int] = {}
        self._fingerprint_lock = threading.Lock()
        self.llm = (LlmDriver(config, self.archive, self.campaign_id, self.state, self._fingerprint_known)
                    if config.llm.models else None)
        arms = tuple(self.operators) + (self.llm.arms() if self.llm else ())
        self.bandit = Bandit.from_state(arms, config.operators.bandit, self.state.get("bandit"))
        self.bandit.weights = self.llm.weights() if self.llm else {}
        self._stop = ""
        self._interrupts = 0
        self._run_start = (time.monotonic(), self.state["evaluations"])

    # -- opening, state ----------------------------------------------------------------------

    def _open(self) -> tuple[int, dict]:
        stored_config = json.loads(dumps(self.config.to_dict()))  # as it reads back: lists, not tuples
        row = self.archive.campaign(self.config.name)
        if row is None:
            state = {"rng": _rng_to_json(random.Random(self.config.rng_seed).getstate()), "proposals": 0,
                     "evaluations": 0, "duplicates": 0, "same_source": 0, "proposal_errors": {},
                     "next_island": 0, "last_migration": 0, "runs": 0}
            seeds: dict[str, dict] = {}
            for path in self.config.seed_paths():
                source = path.read_text(encoding="utf-8")
                seeds.setdefault(Program(source).sha, {"kind": self.config.kind, "source": source,
                                                       "sha": Program(source).sha, "operator": "seed",
                                                       "note": f"seed {path.name}"})
            campaign_id = self.archive.create_campaign(self.config.name, self.config.kind, stored_config, state,
                                                       list(seeds.values()))
            return campaign_id, json.loads(self.archive.campaign(self.config.name)["state"])
        old = json.loads(row["config"])
        changed = [s for s in FIXED_SECTIONS if old.get(s) != stored_config.get(s)]
        if changed:
            raise ConfigError(
                f"campaign {self.config.name!r} in {self.db_path} was started with a different "
                f"{' and '.join(changed)} section; its scores would not be comparable. Use a new campaign name "
                f"(or --db) for the new settings")
        self.archive.set_campaign(row["id"], config=stored_config)
        return int(row["id"]), json.loads(row["state"])

    def _state(self) -> dict:
        self.state["rng"] = _rng_to_json(self.rng.getstate())
        self.state["bandit"] = self.bandit.to_state()
        return self.state

    # -- the loop ------------------------------------------------------------------------------

    def run(self, *, max_evals: int | None = None, minutes: float | None = None,
            on_progress=None) -> RunSummary:
        """Run until the budget is spent, nothing more can be proposed, or Ctrl-C; return a summary."""
        budget = self.config.budget
        max_evals = max_evals if max_evals is not None else budget.max_evals
        minutes = minutes if minutes is not None else budget.minutes
        if max_evals is not None and self.state["evaluations"] >= max_evals:
            raise BudgetReached(f"campaign {self.config.name!r} already has {self.state['evaluations']} evaluations "
                                f"(budget {max_evals}); raise --max-evals to continue it")
        evaluator = self.evaluator or default_evaluator(self.config)
        start = time.monotonic()
        self._run_start = (start, self.state["evaluations"])
        deadline = start + minutes * 60 if minutes else math.inf
        queue = deque(self.archive.pending(self.campaign_id))
        requeued = len(queue) if self.state["runs"] else 0  # on a first run, what is pending is the seeds
        self.state["runs"] += 1
        self.state["budget"] = {"max_evals": max_evals, "minutes": minutes}  # this run's, CLI overrides included
        self.archive.set_campaign(self.campaign_id, status="running", state=self._state())
        log.info("campaign %r %s in %s: %d evaluations so far, %d pending re-queued; budget %s evaluations, %s min",
                 self.config.name, "resumed" if self.state["runs"] > 1 else "started", self.db_path,
                 self.state["evaluations"], requeued, max_evals, minutes)
        mode = getattr(evaluator, "sandbox", None)
        if mode is not None:
            (log.info if mode.strong else log.warning)("sandbox: %s%s", mode.summary(),
                                                       "" if mode.strong else " (weak: see `evosearch doctor`)")
        self._event("start", {"requeued": requeued, "max_evals": max_evals, "minutes": minutes,
                              "sandbox": mode.summary() if mode is not None else None})
        done_this_run = 0
        self._duplicate_streak = 0  # duplicates do not count as evaluations: a search that only makes them never ends
        in_flight: dict[Future, sqlite3.Row] = {}  # evaluations
        proposing: dict[Future, tuple[LlmRequest, int]] = {}  # LLM proposals, with their island
        previous_handler = self._install_interrupt_handler()
        pool = ThreadPoolExecutor(self.config.parallel, thread_name_prefix="evaluate")
        llm_pool = ThreadPoolExecutor(self.config.llm.max_in_flight, thread_name_prefix="llm")
        try:
            while True:
                # Fill the evaluation slots. LLM proposals run beside them, not in them, so the CPU
                # keeps evaluating while a model thinks; their children queue for the next free slot.
                waiting = False
                while not self._stop and len(in_flight) < self.config.parallel:
                    if self._duplicate_streak >= MAX_DUPLICATE_STREAK:
                        self._stop = (f"the last {self._duplicate_streak} candidates all behaved like evaluated "
                                      "programs: the operators are stuck (add seeds, operators or an LLM)")
                        break
                    if max_evals is not None and self.state["evaluations"] + len(in_flight) + len(proposing) \
                            >= max_evals:
                        break
                    if time.monotonic() >= deadline:
                        self._stop = self._stop or "time budget reached"
                        break
                    made = queue.popleft() if queue else self._propose()
                    if made is WAIT:
                        waiting = True  # only models that are busy or resting could propose now
                        break
                    if made is None:
                        self._stop = "no operator could propose a new program"
                        break
                    if isinstance(made, tuple):  # an LLM request: answered in the background
                        proposing[llm_pool.submit(self.llm.propose, made[0])] = made
                    else:
                        in_flight[pool.submit(self._evaluate, evaluator, made)] = made
                if not in_flight and not proposing:
                    if waiting and not self._stop:
                        time.sleep(0.5)  # a resting model's cooldown
                        continue
                    break
                finished, _ = wait([*in_flight, *proposing], timeout=0.5, return_when=FIRST_COMPLETED)
                for future in finished:
                    if future in proposing:
                        row = self._take_llm(*proposing.pop(future), future)
                        if row is not None:
                            queue.appendleft(row)  # stored as pending: the next free slot (or a resume) runs it
                        continue
                    row = in_flight.pop(future)
                    result = future.result()
                    self._tell(row, result)
                    self._duplicate_streak = self._duplicate_streak + 1 if result.outcome == "duplicate" else 0
                    done_this_run += 1
                if on_progress:
                    on_progress(self.progress(start, len(in_flight), max_evals, minutes, len(proposing)))
        except KeyboardInterrupt:
            self._stop = "interrupted (pending work is re-queued on resume)"
            from evosearch.sandbox.runner import shutdown

            shutdown()  # the evaluation threads return at once; their results are discarded
            pool.shutdown(wait=True, cancel_futures=True)
            llm_pool.shutdown(wait=False, cancel_futures=True)  # a call in flight ends by its own timeout
            # Status only: the in-memory state may be ahead of a record the interrupt rolled back, and
            # the stored state is always the one written with its change.
            self.archive.set_campaign(self.campaign_id, status="interrupted")
            raise
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            pool.shutdown(wait=True, cancel_futures=True)
            llm_pool.shutdown(wait=False, cancel_futures=True)
        reason = self._stop or ("evaluation budget reached" if max_evals is not None else "done")
        finished_budget = max_evals is not None and self.state["evaluations"] >= max_evals
        self.archive.set_campaign(self.campaign_id, status="finished" if finished_budget else "stopped",
                                  state=self._state())
        stats = self._event("stop", {"reason": reason})
        log.info("campaign %r stopped: %s; %d evaluations (%d this run), best %s, QD score %.3f, coverage %.1f%%",
                 self.config.name, reason, self.state["evaluations"], done_this_run, _fmt(stats["best"]),
                 stats["qd_score"], 100 * stats["coverage"])
        if on_progress:
            on_progress(self.progress(start, 0, max_evals, minutes))
        best = self.archive.list_programs(self.campaign_id, outcome="ok", order="score", limit=1)
        return RunSummary(self.campaign_id, self.state["evaluations"], done_this_run, reason, stats["best"],
                          int(best[0]["id"]) if best else None, stats["qd_score"], stats["coverage"],
                          self.archive.counts(self.campaign_id))

    def _install_interrupt_handler(self):
        """First Ctrl-C: stop proposing and finish what is running. Second: abandon it (KeyboardInterrupt)."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._interrupts += 1
            if self._interrupts == 1:
                self._stop = "stopped by Ctrl-C"
                log.info("Ctrl-C: finishing the evaluations in flight; Ctrl-C again abandons them")
            else:
                raise KeyboardInterrupt

        return signal.signal(signal.SIGINT, handler)

    # -- proposing -------------------------------------------------------------------------------

    def _propose(self) -> sqlite3.Row | tuple[LlmRequest, int] | object | None:
        """A new program stored as pending, or an LLM request to send; WAIT when only a busy or resting
        model could propose; None when nothing can."""
        cfg = self.config
        island = self.state["next_island"]
        self.state["next_island"] = (island + 1) % cfg.archive.islands
        unaffordable: set[str] = set()
        for _ in range(cfg.operators.max_attempts):
            parent = select_parent(self.archive, self.campaign_id, island, self.rng, cfg.selection)
            if parent is None:
                parent = self._fallback_parent()
            mates = select_inspirations(self.archive, self.campaign_id, island, parent, self.rng,
                                        max(1, cfg.selection.inspirations))
            options = {name: self._parents_for(op.arity, parent, mates) for name, op in self.operators.items()}
            allowed = [n for n, ps in options.items() if ps is not None and self.operators[n].applies(ps)]
            if self.llm is not None and parent is not None:
                allowed += [a for a in self.llm.available() if a not in unaffordable]
            if not allowed:
                return WAIT if self.llm is not None and self.llm.may_come_back() else None
            name = self.bandit.choose(self.rng, allowed)
            if name.startswith("llm:"):
                request = self.llm.request(name[4:], parent, [m for m in mates if m.program_id != parent.program_id],
                                           self.rng)
                if request is not None:
                    return request, island
                unaffordable.add(name)  # until calls in flight release their reserved budget
                continue
            try:
                proposal = self.operators[name].propose(options[name], self.rng)
            except Exception as err:  # noqa: BLE001 - ProposalError, or a bug in an operator: never fatal
                self.state["proposal_errors"][name] = self.state["proposal_errors"].get(name, 0) + 1
                self.bandit.update(name, 0.0)
                if isinstance(err, ProposalError):
                    log.info("proposal by %s failed: %s", name, err)
                else:
                    log.exception("operator %s crashed on parent %s", name, parent and parent.program_id)
                continue
            sha = Program(proposal.source).sha
            if self.archive.has_source(self.campaign_id, sha):
                self.state["same_source"] += 1
                self.bandit.update(name, 0.0)
                continue
            return self._store_proposal(proposal, options[name], island, sha)
        log.warning("no new program after %d attempts on island %d", cfg.operators.max_attempts, island)
        return None

    def _fallback_parent(self) -> Parent | None:
        """With an empty grid (every seed failed), mutate a seed program."""
        seeds = [r for r in self.archive.list_programs(self.campaign_id, operator="seed")]
        if not seeds:
            return None
        return as_parent(self.archive.program(int(seeds[self.rng.randrange(len(seeds))]["id"])))

    @staticmethod
    def _parents_for(arity: int, parent: Parent | None, mates: list[Parent]) -> list[Parent] | None:
        if arity == 0:
            return []
        if parent is None:
            return None
        if arity == 1:
            return [parent]
        others = [m for m in mates if m.program_id != parent.program_id and m.source != parent.source]
        return [parent, *others[: arity - 1]] if len(others) >= arity - 1 else None

    def _store_proposal(self, proposal: Proposal, parents: list[Parent], island: int, sha: str,
                        model: str | None = None, llm_calls: list[dict] | None = None) -> sqlite3.Row:
        generation = 1 + max((self._generation(p.program_id) for p in parents), default=-1)
        self.state["proposals"] += 1
        program_id = self.archive.add_pending(self.campaign_id, {
            "kind": self.config.kind, "source": proposal.source, "sha": sha,
            "parent_id": parents[0].program_id if parents else None,
            "parent_ids": [p.program_id for p in parents if p.program_id is not None],
            "operator": proposal.operator, "model": model, "island": island, "generation": generation,
            "genome": proposal.genome, "note": proposal.note[:500],
        }, state=self._state(), llm_calls=llm_calls)
        return self.archive.program(program_id)

    def _take_llm(self, request: LlmRequest, island: int, future: Future) -> sqlite3.Row | None:
        """Store a finished LLM proposal (its calls, and its child as pending); return the child's row."""
        try:
            result: LlmResult = future.result()
        except Exception as err:  # noqa: BLE001 - a bug in the proposer must not end the campaign
            log.exception("the LLM proposer crashed")
            result = LlmResult(request=request, proposal=None, reason=f"proposer crashed: {err}")
        calls = self.llm.take(request, result)
        name = f"llm:{request.model.label}"
        proposal = result.proposal
        if proposal is not None and self.archive.has_source(self.campaign_id, Program(proposal.source).sha):
            calls[-1]["status"], calls[-1]["error"] = "duplicate", "an identical program was stored meanwhile"
            proposal = None
        if proposal is None:
            if result.endpoint_error is None:  # the model answered, but nothing usable: that is its score
                self.bandit.update(name, 0.0)
            self.archive.add_llm_calls(self.campaign_id, calls, self._state())
            return None
        return self._store_proposal(proposal, [request.parent], island, Program(proposal.source).sha,
                                    model=request.model.label, llm_calls=calls)

    def _generation(self, program_id: int | None) -> int:
        row = self.archive.program(program_id) if program_id is not None else None
        return int(row["generation"]) if row else 0

    # -- evaluating (worker threads) -------------------------------------------------------------

    def _evaluate(self, evaluator: EvaluatorLike, row: sqlite3.Row) -> EvalResult:
        """Evaluate one program; an error of the machinery itself is that program's ``sandbox_failure``."""
        program = Program(row["source"], kind=row["kind"], name=f"program_{row['id']}.py")
        try:
            return evaluator.evaluate(program, skip_if=lambda fp: self._claim_fingerprint(fp, int(row["id"])))
        except Exception as err:  # noqa: BLE001 - a long campaign must outlive a failing worker start or a bug
            log.exception("evaluating program %s failed outside the candidate", row["id"])
            return EvalResult(outcome="sandbox_failure", stage="smoke", error=f"{type(err).__name__}: {err}",
                              output_tail=traceback.format_exc()[-4000:])

    def _claim_fingerprint(self, fingerprint: str, program_id: int) -> bool:
        """True if another program already has this behaviour (evaluated, or being trained now)."""
        with self._fingerprint_lock:
            if fingerprint in self._known_fingerprints or fingerprint in self._running_fingerprints:
                return True
            self._running_fingerprints[fingerprint] = program_id
            return False

    # -- telling ---------------------------------------------------------------------------------

    def _tell(self, row: sqlite3.Row, result: EvalResult) -> None:
        program_id, fingerprint = int(row["id"]), result.fingerprint
        descriptors: dict[str, float] = {}
        cells: list[CellEntry] = []
        if result.ok:
            descriptors = self.grid.describe(row["source"], result)
            coords = self.grid.coords(descriptors)
            islands = range(self.config.archive.islands) if row["island"] is None else [row["island"]]
            cells = [CellEntry(i, self.grid.index(coords), coords) for i in islands]
        duplicate_of = None
        with self._fingerprint_lock:
            if result.outcome == "duplicate":
                duplicate_of = self._known_fingerprints.get(fingerprint, self._running_fingerprints.get(fingerprint))
            elif fingerprint:
                if self._running_fingerprints.get(fingerprint) == program_id:
                    del self._running_fingerprints[fingerprint]
                if result.outcome != "sandbox_failure":  # not the program's doing: let a twin try again
                    self._known_fingerprints.setdefault(fingerprint, program_id)
        if result.outcome == "duplicate":
            self.state["duplicates"] += 1
        else:
            self.state["evaluations"] += 1
        winning = self.archive.winning_cells(self.campaign_id, cells, result.score) if result.ok else []
        arm = f"llm:{row['model']}" if row["operator"] == "llm" else row["operator"]
        if arm in self.bandit.arms:  # the bandit learns in the same transaction as the result
            self.bandit.update(arm, self._reward(row, result, bool(winning)))
        entered = self.archive.record(self.campaign_id, program_id, result, descriptors=descriptors, cells=cells,
                                      state=self._state(), duplicate_of=duplicate_of)
        log.info("#%d %s island %s: %s at %s, score %s, %s, %.1f s%s", program_id, row["operator"],
                 "all" if row["island"] is None else row["island"], result.outcome, result.stage,
                 _fmt(result.score), f"entered {len(entered)} cell(s)" if entered else "no cell", result.wall_s,
                 f" ({result.error[:200]})" if result.error else "")
        self._maybe_migrate()
        if self.state["evaluations"] % 5 == 0 or entered:
            self._event("progress", {"outcomes": self.archive.counts(self.campaign_id)})

    def _reward(self, row: sqlite3.Row, result: EvalResult, entered: bool) -> float:
        """Half for entering the archive, half for the score gained over the parent (a gain of 0.25 or more: all)."""
        parent = self.archive.program(row["parent_id"]) if row["parent_id"] is not None else None
        gain = 0.0
        if result.ok and result.score is not None and parent is not None and parent["score"] is not None:
            gain = min(1.0, max(0.0, (result.score - parent["score"]) / 0.25))
        return 0.5 * float(entered) + 0.5 * gain

    def _fingerprint_known(self, fingerprint: str) -> bool:
        with self._fingerprint_lock:
            return fingerprint in self._known_fingerprints or fingerprint in self._running_fingerprints

    def _maybe_migrate(self) -> None:
        cfg = self.config.archive
        if cfg.islands < 2 or cfg.migration_count == 0:
            return
        if self.state["evaluations"] - self.state["last_migration"] < cfg.migration_interval:
            return
        self.state["last_migration"] = self.state["evaluations"]
        moved = {}
        for source in range(cfg.islands):
            target = (source + 1) % cfg.islands
            moved[f"{source}->{target}"] = self.archive.migrate_elites(self.campaign_id, source, target,
                                                                       cfg.migration_count, self._state())
        log.info("migration after %d evaluations: %s", self.state["evaluations"], moved)
        self._event("migration", {"moved": moved})

    # -- reporting -------------------------------------------------------------------------------

    def _stats(self) -> dict:
        return self.archive.qd_stats(self.campaign_id, self.grid.size,
                                     self.config.archive.qd_offset)

    def _event(self, kind: str, data: dict) -> dict:
        stats = self._stats()
        self.archive.add_event(self.campaign_id, kind, self.state["evaluations"], stats, self._rate(), data)
        return stats

    def _rate(self) -> float | None:
        """Completed evaluations per hour in this run."""
        started, evaluations_then = self._run_start
        hours = (time.monotonic() - started) / 3600
        done = self.state["evaluations"] - evaluations_then
        return done / hours if hours > 0 and done > 0 else None

    def progress(self, start: float, in_flight: int, max_evals: int | None, minutes: float | None,
                 llm_in_flight: int = 0) -> Progress:
        stats = self._stats()
        counts = self.archive.counts(self.campaign_id)
        counts.pop("pending", None)
        return Progress(
            name=self.config.name, evaluations=self.state["evaluations"], max_evals=max_evals, in_flight=in_flight,
            best=stats["best"], qd_score=stats["qd_score"], coverage=stats["coverage"], cells=stats["cells"],
            evals_per_hour=self._rate() or 0.0, outcomes=counts,
            proposal_errors=sum(self.state["proposal_errors"].values()), elapsed_s=time.monotonic() - start,
            minutes=minutes,
            stopping=self._stop + ("; Ctrl-C again abandons the running evaluations (re-run on resume)"
                                   if in_flight and self._interrupts == 1 else ""),
            llm_spend=self.state.get("llm_cost", 0.0), llm_cap=self.config.llm.cost_cap,
            llm_models=self.llm.status() if self.llm else {}, llm_in_flight=llm_in_flight,
            llm_capped=bool(self.llm and self.llm.capped))

    def close(self) -> None:
        self.archive.close()


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
