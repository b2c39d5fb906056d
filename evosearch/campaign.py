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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evosearch import fmt
from evosearch.archive.descriptors import grid_from_config
from evosearch.archive.selection import as_parent, select_inspirations, select_parent
from evosearch.archive.store import Archive, CellEntry, confirmed_score, dumps
from evosearch.campaign_llm import LlmDriver, ShareKeeper
from evosearch.config import CampaignConfig, ConfigError, resolved_suite
from evosearch.evaluate import EvalResult, Evaluator, SkipIf
from evosearch.evaluate.result import NOT_THE_PROGRAMS
from evosearch.executor import ExecutorLost, ray_evaluator
from evosearch.executor.local import local_evaluator
from evosearch.program import Program
from evosearch.propose.bandit import Bandit
from evosearch.propose.base import DeferredOperator, Operator, Parent, Proposal, ProposalError
from evosearch.propose.registry import build_operators

log = logging.getLogger("evosearch.campaign")

#: Config sections that decide what a score means; a resumed campaign must keep them.
FIXED_SECTIONS = ("kind", "evaluation", "archive")
#: Consecutive duplicate candidates after which a run stops: its operators only re-make what it has.
MAX_DUPLICATE_STREAK = 200

#: How many more times a program that behaves like one that ended in ``sandbox_failure`` is evaluated:
#: the machine may have failed once, but a program that fails it every time must not take every slot.
SANDBOX_FAILURE_RETRIES = 1
#: Seconds between stores of the executor's snapshot (nodes, work in flight) for `evosearch status`.
EXECUTOR_SNAPSHOT_S = 5.0
#: How many times a program whose evaluation failed outside its code (``sandbox_failure``,
#: ``infra_error``) goes back to the queue before that outcome is recorded as its result.
INFRA_RETRIES = 1


class EvaluatorLike(Protocol):
    def evaluate(self, program: Program, skip_if: SkipIf | None = None) -> EvalResult: ...


@dataclass
class Pending:
    """A proposal being made: by which operator, from which parents, for which island."""

    name: str
    parents: list[Parent]
    island: int
    future: Future
    work: Callable[[], Proposal] | None = None  # a deferred operator's work, handed back to it when settled


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
    llm_share: float | None = None  # of the proposals asked of a model so far (None: no model configured or none yet)
    llm_share_target: float | None = None  # llm.share, when a model is configured


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
    llm_share: float | None = None  # of the proposals asked of a model, whole campaign; None without a model
    paused: bool = False  # evaluations kept failing outside the programs' code: the machine needs a look


class BudgetReached(Exception):
    """The campaign already has the evaluations its budget allows."""


def default_evaluator(config: CampaignConfig) -> Evaluator:
    """The evaluator of the local executor (see :mod:`evosearch.executor.local`)."""
    return local_evaluator(config)


class Campaign:
    """One campaign in one database: ``run()`` starts it or resumes it where it stopped."""

    def __init__(self, config: CampaignConfig, *, db_path: str | Path | None = None,
                 evaluator: EvaluatorLike | None = None, on_wait: Callable[[str], None] | None = None) -> None:
        """``on_wait`` is told when another process holds the archive, before the wait for it."""
        self.config = config
        self.db_path = Path(db_path) if db_path else config.db_path()
        self.archive = Archive(self.db_path, on_wait=on_wait)
        self.grid = grid_from_config(config.archive.descriptors)
        self.operators: dict[str, Operator | DeferredOperator] = dict(
            build_operators(config.operators.enabled, config.operators.gp_seed_genomes, config.kind))
        self.evaluator = evaluator
        self._owns_evaluator = False  # a Ray executor this campaign started, which close() stops
        self._executor_lost = ""  # why the Ray cluster went away during this run, if it did
        self.campaign_id, self.state = self._open()
        self.rng = random.Random()
        self.rng.setstate(_rng_from_json(self.state["rng"]))
        self._known_fingerprints = self.archive.fingerprints(self.campaign_id)
        self._running_fingerprints: dict[str, int] = {}
        self._sandbox_failures: dict[str, int] = {}  # per fingerprint, this run
        self._fingerprint_lock = threading.Lock()
        self.llm = (LlmDriver(config, self.archive, self.campaign_id, self.state, self._fingerprint_known,
                              self._fingerprint) if config.llm.models else None)
        self.share = ShareKeeper(config.llm.share, self.state) if self.llm is not None else None
        if self.llm is not None:
            self.operators.update(self.llm.operators())
        if config.metatune.every > 0:
            from evosearch.metagrad.operator import NAME, campaign_operator

            tuned = {int(r["parent_id"]) for r in self.archive.list_programs(self.campaign_id, operator=NAME)
                     if r["parent_id"] is not None}
            self.operators[NAME] = campaign_operator(config.metatune, resolved_suite(config),
                                                     lambda: self.state["evaluations"], tuned)
        self.bandit = Bandit.from_state(tuple(self.operators), config.operators.bandit, self.state.get("bandit"))
        self.bandit.weights = self.llm.weights() if self.llm else {}
        self._stop = ""
        self._interrupts = 0
        self._infra_streak, self._paused = 0, False  # evaluations failed in a row outside the programs' code
        self._infra_attempts: dict[int, int] = {}  # program id -> such failures this run
        # The campaign's best scores so far (at most confirm.top), for deciding what to confirm.
        self._best_scores: list[float] = self._stored_best_scores()
        # (island, cell) -> search score of each confirmed elite, which a challenger is confirmed to contest.
        self._confirmed_elites: dict[tuple[int, int], float] = {}
        self._refresh_confirmed_elites()
        self._run_start = (time.monotonic(), self.state["evaluations"])

    def _refresh_confirmed_elites(self) -> None:
        if not self.config.confirm.top:
            return
        confirmed = self.archive.confirmed_elites(self.campaign_id)
        with self._fingerprint_lock:
            self._confirmed_elites = confirmed

    def _stored_best_scores(self) -> list[float]:
        if not self.config.confirm.top:
            return []
        best = self.archive.list_programs(self.campaign_id, outcome="ok", order="score", limit=self.config.confirm.top)
        return [float(r["score"]) for r in best if r["score"] is not None]

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
        describe = getattr(self.evaluator, "describe", None)  # a Ray executor: its nodes and work in flight
        if describe is not None:
            self.state["executor"] = describe()
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
        evaluator = self._evaluator()
        slots = getattr(evaluator, "slots", None) or self.config.parallel  # a Ray executor: its actors
        if not hasattr(evaluator, "describe"):
            self.state.pop("executor", None)  # an earlier run was on Ray; this one is not
        self._executor_lost = ""
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
        started = {"requeued": requeued, "max_evals": max_evals, "minutes": minutes,
                   "sandbox": mode.summary() if mode is not None else None}
        if "executor" in self.state:  # a Ray executor: where this run evaluates
            started["executor"] = self.state["executor"]
        self._event("start", started)
        self._last_snapshot = (time.monotonic(), self.state.get("executor"))
        done_this_run = 0
        self._infra_streak, self._infra_attempts, self._paused = 0, {}, False  # per run
        self._duplicate_streak = 0  # duplicates do not count as evaluations: a search that only makes them never ends
        in_flight: dict[Future, sqlite3.Row] = {}  # evaluations
        proposing: dict[Future, Pending] = {}  # deferred operators' proposals (a model thinking)
        previous_handler = self._install_interrupt_handler()
        pool = ThreadPoolExecutor(slots, thread_name_prefix="evaluate")
        self._proposer_pool = llm_pool = ThreadPoolExecutor(self.config.llm.max_in_flight,
                                                            thread_name_prefix="propose")
        try:
            while True:
                # Fill the evaluation slots. Deferred proposals (a model thinking) run beside them, not in
                # them, so the CPU keeps evaluating meanwhile; their children queue for the next free slot.
                waiting = False
                while not self._stop and len(in_flight) < slots:
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
                    if made is None:
                        if self._may_come_back():
                            waiting = True  # only operators that are busy or resting could propose now
                        else:
                            self._stop = "no operator could propose a new program"
                        break
                    if isinstance(made, Pending):  # a deferred operator at work: its child comes later
                        proposing[made.future] = made
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
                        row = self._take(proposing.pop(future))
                        if row is not None:
                            queue.appendleft(row)  # stored as pending: the next free slot (or a resume) runs it
                        continue
                    row = in_flight.pop(future)
                    result = future.result()
                    if self._executor_lost and result.outcome in NOT_THE_PROGRAMS:
                        self._pause_for_lost_executor(row, result)
                        continue  # still pending: evaluated on resume, once the cluster is back
                    if result.outcome in NOT_THE_PROGRAMS and not self._record_infra_failure(row, result, queue):
                        continue  # still pending: evaluated again later in this run, or on resume
                    if result.outcome not in NOT_THE_PROGRAMS:
                        self._infra_streak = 0
                    self._tell(row, result)
                    self._duplicate_streak = self._duplicate_streak + 1 if result.outcome == "duplicate" else 0
                    done_this_run += 1
                self._executor_news(evaluator)
                if on_progress:
                    on_progress(self.progress(start, len(in_flight), max_evals, minutes, len(proposing)))
        except KeyboardInterrupt:
            self._stop = "interrupted (pending work is re-queued on resume)"
            from evosearch.sandbox.runner import shutdown

            shutdown()  # the evaluation threads return at once; their results are discarded
            if hasattr(evaluator, "abandon"):  # a Ray executor: its actors, likewise
                evaluator.abandon()
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
        status = "paused" if self._paused else "finished" if finished_budget else "stopped"
        self.archive.set_campaign(self.campaign_id, status=status, state=self._state())
        stats = self._event("stop", {"reason": reason})
        log.info("campaign %r stopped: %s; %d evaluations (%d this run), best %s, QD score %.3f, coverage %.1f%%",
                 self.config.name, reason, self.state["evaluations"], done_this_run, fmt.score(stats["best"]),
                 stats["qd_score"], 100 * stats["coverage"])
        if on_progress:
            on_progress(self.progress(start, 0, max_evals, minutes))
        best = self.archive.list_programs(self.campaign_id, outcome="ok", order="score", limit=1)
        return RunSummary(self.campaign_id, self.state["evaluations"], done_this_run, reason, stats["best"],
                          int(best[0]["id"]) if best else None, stats["qd_score"], stats["coverage"],
                          self.archive.counts(self.campaign_id), self.state.get("llm_share"), self._paused)

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

    def _propose(self) -> sqlite3.Row | Pending | None:
        """A new program stored as pending, or a deferred operator's proposal under way; None when no
        operator can propose now (:meth:`_may_come_back` says whether one may later)."""
        cfg = self.config
        island = self.state["next_island"]
        self.state["next_island"] = (island + 1) % cfg.archive.islands
        declined: set[str] = set()  # deferred operators that declined this round (their budget is reserved)
        for _ in range(cfg.operators.max_attempts):
            parent = select_parent(self.archive, self.campaign_id, island, self.rng, cfg.selection)
            if parent is None:
                parent = self._fallback_parent()
            mates = select_inspirations(self.archive, self.campaign_id, island, parent, self.rng,
                                        max(1, cfg.selection.inspirations))
            options = {name: self._parents_for(op.arity, parent, mates) for name, op in self.operators.items()
                       if name not in declined}
            allowed = [n for n, ps in options.items() if ps is not None and self.operators[n].applies(ps)]
            if not allowed:
                return None
            name = self.bandit.choose(self.rng, self.share.narrow(allowed) if self.share else allowed)
            pending = self._start(name, options[name], mates, island)
            if pending is None:
                declined.add(name)
                continue
            if self.share is not None:
                self.share.count(name)
            if not pending.future.done():
                return pending
            row = self._take(pending)
            if row is not None:
                return row
        log.warning("no new program after %d attempts on island %d", cfg.operators.max_attempts, island)
        return None

    def _start(self, name: str, parents: list[Parent], mates: list[Parent], island: int) -> Pending | None:
        """Ask operator ``name`` for a child: at once, or (a deferred operator) in a proposer thread.

        None when a deferred operator declines now.
        """
        op = self.operators[name]
        if isinstance(op, DeferredOperator):
            work = op.prepare(parents, mates, self.rng)
            if work is None:
                return None
            return Pending(name, parents, island, self._proposer_pool.submit(work), work)
        future: Future = Future()
        try:
            future.set_result(op.propose(parents, self.rng))
        except Exception as err:  # noqa: BLE001 - ProposalError, or a bug in an operator: never fatal
            future.set_exception(err)
        return Pending(name, parents, island, future)

    def _may_come_back(self) -> bool:
        """Whether an operator that cannot propose now may later (a model busy or resting)."""
        return any(isinstance(op, DeferredOperator) and op.may_come_back() for op in self.operators.values())

    def _take(self, pending: Pending) -> sqlite3.Row | None:
        """Store a finished proposal's child as pending and return its row; or record why there is none."""
        name, op = pending.name, self.operators[pending.name]
        try:
            outcome: Proposal | ProposalError = pending.future.result()
        except ProposalError as err:
            outcome = err
        except Exception as err:  # noqa: BLE001 - a bug in an operator must not end the campaign
            log.error("operator %s crashed on parent %s", name, pending.parents and pending.parents[0].program_id,
                      exc_info=err)
            outcome = ProposalError(f"{name} crashed: {type(err).__name__}: {err}")
        if pending.work is not None:
            op.settle(pending.work, outcome)  # accounting (a model's cost), on this thread
        if isinstance(outcome, ProposalError):
            if outcome.blame:
                self.state["proposal_errors"][name] = self.state["proposal_errors"].get(name, 0) + 1
                self.bandit.update(name, 0.0)
            log.info("proposal by %s failed: %s", name, outcome)
            if outcome.records:
                self.archive.add_llm_calls(self.campaign_id, outcome.records, self._state())
            return None
        sha = Program(outcome.source).sha
        if self.archive.has_source(self.campaign_id, sha):
            self.state["same_source"] += 1
            self.bandit.update(name, 0.0)
            if outcome.records:
                outcome.records[-1].update(status="duplicate", error="an identical program was stored meanwhile")
                self.archive.add_llm_calls(self.campaign_id, outcome.records, self._state())
            return None
        return self._store_proposal(outcome, pending.parents, pending.island, sha)

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

    def _store_proposal(self, proposal: Proposal, parents: list[Parent], island: int, sha: str) -> sqlite3.Row:
        parent_ids = [p.program_id for p in parents if p.program_id is not None]
        if not parent_ids and proposal.meta.get("seed_genome"):
            # A GP seed genome computes what programs/rules/<name>.py does: the seed from that file
            # is the child's parent, so lineage reaches it.
            seed_id = self.archive.seed_program(self.campaign_id, f"{proposal.meta['seed_genome']}.py")
            parent_ids = [seed_id] if seed_id is not None else []
        generation = 1 + max((self._generation(p) for p in parent_ids), default=-1)
        self.state["proposals"] += 1
        program_id = self.archive.add_pending(self.campaign_id, {
            "kind": self.config.kind, "source": proposal.source, "sha": sha,
            "parent_id": parent_ids[0] if parent_ids else None,
            "parent_ids": parent_ids,
            "operator": proposal.operator, "model": proposal.model, "island": island, "generation": generation,
            "genome": proposal.genome, "note": proposal.note[:500],
        }, state=self._state(), llm_calls=proposal.records or None)
        return self.archive.program(program_id)

    def adopt(self, proposal: Proposal, parents: list[Parent], island: int | None) -> int:
        """Store a child made outside the loop (``evosearch metatune ID``) as pending; returns its id.

        The next :meth:`run` evaluates pending programs before proposing anything, so the child is
        scored by this campaign's cascade and contests its cells like any other.
        """
        sha = Program(proposal.source).sha
        if self.archive.has_source(self.campaign_id, sha):
            raise ValueError("an identical program is already in this campaign")
        return int(self._store_proposal(proposal, parents, island if island is not None else 0, sha)["id"])

    def _generation(self, program_id: int | None) -> int:
        row = self.archive.program(program_id) if program_id is not None else None
        return int(row["generation"]) if row else 0

    # -- evaluating (worker threads) -------------------------------------------------------------

    def _evaluate(self, evaluator: EvaluatorLike, row: sqlite3.Row) -> EvalResult:
        """Evaluate one program; an error of the machinery itself is that program's ``sandbox_failure``.

        A result good enough to rank among the ``confirm.top`` best is confirmed in the same
        slot (measured again on fresh seeds, see ``RuleEvaluator.confirm``) before it is told,
        and so is one that would take a confirmed elite's cell on search scores: cells are
        contested on confirmed scores when both sides have one (``beats``).
        """
        program = Program(row["source"], kind=row["kind"], name=f"program_{row['id']}.py")
        try:
            result = evaluator.evaluate(program, skip_if=lambda fp: self._claim_fingerprint(fp, int(row["id"])))
            if result.ok and hasattr(evaluator, "confirm") and (
                    self._ranks_among_the_best(result.score) or self._contests_a_confirmed_elite(row, result)):
                evaluator.confirm(program, result)
            return result
        except ExecutorLost as err:  # the cluster went away: the run pauses, the program stays pending
            self._executor_lost = str(err)
            return EvalResult(outcome="infra_error", stage="smoke", error=str(err))
        except Exception as err:  # noqa: BLE001 - a long campaign must outlive a failing worker start or a bug
            log.exception("evaluating program %s failed outside the candidate", row["id"])
            return EvalResult(outcome="sandbox_failure", stage="smoke", error=f"{type(err).__name__}: {err}",
                              output_tail=traceback.format_exc()[-4000:])

    def _ranks_among_the_best(self, score: float | None) -> bool:
        """Whether ``score`` would rank among the campaign's ``confirm.top`` best scores told so far."""
        top = self.config.confirm.top
        if not top or score is None:
            return False
        with self._fingerprint_lock:
            best = self._best_scores
            return len(best) < top or score > best[top - 1]

    def _contests_a_confirmed_elite(self, row: sqlite3.Row, result: EvalResult) -> bool:
        """Whether ``result`` beats, on search scores, a confirmed elite of a cell it competes for."""
        if not self.config.confirm.top or result.score is None:
            return False
        with self._fingerprint_lock:
            confirmed = self._confirmed_elites
        return any(result.score > confirmed[(entry.island, entry.cell)]
                   for entry in self._cells(row, result)[1] if (entry.island, entry.cell) in confirmed)

    def _cells(self, row: sqlite3.Row, result: EvalResult) -> tuple[dict[str, float], list[CellEntry]]:
        """The descriptors of an ``ok`` result and the cells (one per island it belongs to) it competes for."""
        if not result.ok:
            return {}, []
        descriptors = self.grid.describe(row["source"], result)
        coords = self.grid.coords(descriptors)
        islands = range(self.config.archive.islands) if row["island"] is None else [row["island"]]
        return descriptors, [CellEntry(i, self.grid.index(coords), coords) for i in islands]

    def _record_infra_failure(self, row: sqlite3.Row, result: EvalResult, queue: deque) -> bool:
        """Whether to record an evaluation that failed outside the program's code as its result.

        Such a failure says nothing about the program, so it goes back to the queue once first;
        only a second failure is recorded. Several in a row mean the machine is broken (a GPU
        that will not start, an environment that will not build): the run pauses rather than
        spend its budget, and the programs it could not evaluate stay pending for a resume.
        """
        program_id = int(row["id"])
        self._infra_streak += 1
        attempts = self._infra_attempts[program_id] = self._infra_attempts.get(program_id, 0) + 1
        log.warning("#%d: %s at %s, not the program's doing (%d in a row): %s", program_id, result.outcome,
                    result.stage, self._infra_streak, result.error[:300])
        limit = self.config.budget.pause_after_failures
        if limit and self._infra_streak >= limit:
            if not self._paused:
                self._paused = True
                self._stop = (f"paused: the last {self._infra_streak} evaluations failed outside the programs' code "
                              f"({result.outcome}: {result.error.splitlines()[0][:300] if result.error else '?'}); "
                              "their programs stay pending. Check the machine (`evosearch doctor`), then run the "
                              "same command again to resume")
                self._event("pause", {"outcome": result.outcome, "error": result.error[:2000],
                                      "streak": self._infra_streak})
            self._forget_running(result.fingerprint, program_id)
            return False
        if attempts <= INFRA_RETRIES:
            self._forget_running(result.fingerprint, program_id)
            queue.append(row)
            return False
        return True

    def _pause_for_lost_executor(self, row: sqlite3.Row, result: EvalResult) -> None:
        """The Ray cluster went away: pause the run at once, leaving this program pending (nothing recorded).

        Not counted against the program or the machine's failure streak: no evaluation can run
        until the cluster is back, and the same command then resumes the campaign.
        """
        self._forget_running(result.fingerprint, int(row["id"]))
        if not self._paused:
            self._paused = True
            self._stop = f"paused: {self._executor_lost}"
            log.warning("%s", self._stop)
            self._event("pause", {"outcome": result.outcome, "error": self._executor_lost[:2000], "executor": "lost"})

    def _executor_news(self, evaluator: EvaluatorLike) -> None:
        """A Ray executor's restarted evaluations become events; its snapshot is stored when it changed.

        The snapshot (nodes, evaluations in flight and where) is what ``evosearch status`` shows
        from another process; it is stored at most every ``EXECUTOR_SNAPSHOT_S`` seconds.
        """
        take = getattr(evaluator, "take_requeues", None)
        if take is None:
            return
        for record in take():
            self.state["requeued"] = self.state.get("requeued", 0) + 1
            self._event("requeue", record)
        when, stored = self._last_snapshot
        if time.monotonic() - when >= EXECUTOR_SNAPSHOT_S:
            snapshot = evaluator.describe()
            if snapshot != stored:
                self.archive.set_campaign(self.campaign_id, state=self._state())
            self._last_snapshot = (time.monotonic(), snapshot)

    def _forget_running(self, fingerprint: str | None, program_id: int) -> None:
        """Release the fingerprint an unrecorded evaluation claimed, so that its next attempt is not its own twin."""
        with self._fingerprint_lock:
            if fingerprint and self._running_fingerprints.get(fingerprint) == program_id:
                del self._running_fingerprints[fingerprint]

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
        descriptors, cells = self._cells(row, result)
        duplicate_of = None
        with self._fingerprint_lock:
            if result.outcome == "duplicate":
                duplicate_of = self._known_fingerprints.get(fingerprint, self._running_fingerprints.get(fingerprint))
            elif fingerprint:
                if self._running_fingerprints.get(fingerprint) == program_id:
                    del self._running_fingerprints[fingerprint]
                if result.outcome in NOT_THE_PROGRAMS:  # not the program's doing: a twin may try again, once
                    self._sandbox_failures[fingerprint] = self._sandbox_failures.get(fingerprint, 0) + 1
                if (result.outcome not in NOT_THE_PROGRAMS
                        or self._sandbox_failures[fingerprint] > SANDBOX_FAILURE_RETRIES):
                    self._known_fingerprints.setdefault(fingerprint, program_id)
        if result.outcome == "duplicate":
            self.state["duplicates"] += 1
        else:
            self.state["evaluations"] += 1
        if result.ok and result.score is not None and self.config.confirm.top:
            with self._fingerprint_lock:
                self._best_scores = sorted([*self._best_scores, result.score], reverse=True)[:self.config.confirm.top]
        winning = (self.archive.winning_cells(self.campaign_id, cells, result.score, confirmed_score(result.confirmed))
                   if result.ok else [])
        arm = f"{row['operator']}:{row['model']}" if row["model"] else row["operator"]  # a model is its own arm
        if arm in self.bandit.arms:  # the bandit learns in the same transaction as the result
            self.bandit.update(arm, self._reward(row, result, bool(winning)))
        entered = self.archive.record(self.campaign_id, program_id, result, descriptors=descriptors, cells=cells,
                                      state=self._state(), duplicate_of=duplicate_of)
        log.info("#%d %s island %s: %s at %s, score %s, %s, %s%s", program_id, row["operator"],
                 "all" if row["island"] is None else row["island"], result.outcome, result.stage,
                 fmt.score(result.score), f"entered {len(entered)} cell(s)" if entered else "no cell",
                 fmt.duration(result.wall_s),
                 f" ({result.error[:200]})" if result.error else "")
        self._maybe_migrate()
        self._refresh_confirmed_elites()
        if self.state["evaluations"] % 5 == 0 or entered:
            self._event("progress", {"outcomes": self.archive.counts(self.campaign_id)})

    def _reward(self, row: sqlite3.Row, result: EvalResult, entered: bool) -> float:
        """Half for entering the archive, half for the score gained over the parent (a gain of 0.25 or more: all)."""
        parent = self.archive.program(row["parent_id"]) if row["parent_id"] is not None else None
        gain = 0.0
        if result.ok and result.score is not None and parent is not None and parent["score"] is not None:
            gain = min(1.0, max(0.0, (result.score - parent["score"]) / 0.25))
        return 0.5 * float(entered) + 0.5 * gain

    def _evaluator(self) -> EvaluatorLike:
        """The evaluator given, or the config's, made once (it checks the suite, sandbox and device)."""
        if self.evaluator is None:
            if self.config.executor.kind == "ray":
                self.evaluator, self._owns_evaluator = ray_evaluator(self.config), True
            else:
                self.evaluator = default_evaluator(self.config)
        return self.evaluator

    def _fingerprint(self, source: str) -> str | None:
        """A candidate's behavioural fingerprint, before it is stored (its kind's probe, in the sandbox)."""
        fingerprint = getattr(self._evaluator(), "fingerprint", None)
        return fingerprint(Program(source, kind=self.config.kind, name="candidate.py")) if fingerprint else None

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
            llm_capped=bool(self.llm and self.llm.capped), llm_share=self.state.get("llm_share"),
            llm_share_target=self.config.llm.share if self.llm else None)

    def close(self) -> None:
        if self._owns_evaluator:
            self.evaluator.close()
            self.evaluator, self._owns_evaluator = None, False
        self.archive.close()


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
