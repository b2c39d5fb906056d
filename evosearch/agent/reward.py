"""The reward for RL-training a proposer LLM: every outcome of a proposed edit as one number in [0, 1].

A step of a search is a parent and the model's answer; the answer becomes a child through the
campaign's own applier (:func:`~evosearch.propose.llm_edits.apply_response`) and the child is
measured by the campaign's own cascade (the kind's evaluator, in the sandbox), so the model is
rewarded for exactly what a campaign would make of its answer. The scheme follows ML-Agent's
(Liu et al. 2025: a format error is worth 0, a failed action 0, a success sigma(alpha *
improvement)), case by case:

- **Unparseable, not applying, identical to the parent** (``unparseable``: no SEARCH/REPLACE
  block and no code; ``no_apply``: a SEARCH that matches nothing, or twice, or text outside the
  EVOLVE-BLOCK, or an edit that changes nothing) and **refused by**
  :func:`~evosearch.propose.base.checked_child` (``rejected``: a failed static check, e.g. an
  ``import os``, or a child that differs outside the block): ``failed`` (0). These are ML-Agent's
  format errors: nothing ran, and nothing about the search was learned.
- **The program fails** (``candidate_error``: an exception, NaN, a timeout, the memory limit, a
  killed job): ``failed``. The limits are part of the contract: a rule that needs more than its
  job may use is as useless to a search as one that raises. The evaluator's ``outcome`` keeps
  which one it was.
- **The machine fails** (``infra``: the evaluator's ``NOT_THE_PROGRAMS`` outcomes, a lost
  worker, an environment that will not build): also ``failed``, counted apart and never cached,
  so the same completion is measured again when it comes back. Why not None: TRL (1.16) leaves
  a completion out of its group's baseline only when *every* reward function returned None for
  it; beside another reward function (a format reward), or in older TRL, a None is summed as 0
  all the same, and this module's other readers (our trainers, the mean in
  :meth:`RewardModule.stats`) read floats. The price is a small push away from a completion the
  machine failed on, in a group where others were measured; it is rare, and the separate count
  (and the ``evosearch/infra`` metric) tells a run that its machine, not its model, went wrong:
  a run whose share of ``infra`` grows should be stopped, not trusted.
- **A behavioural twin** (``duplicate``: the probe's fingerprint is one the module knows, from
  the archive given at construction, a parent, or an earlier child): ``duplicate`` (0.1). Above
  ``failed`` because the answer was well formed, applied and ran; below the 0.5 of an edit that
  changes nothing measurable, because a rename, a comment or a reformatting would otherwise earn
  0.5 for free and the model would learn to make cosmetic edits. A twin of a program that
  *failed* here gets ``failed``: re-wording a crash is not worth more than the crash.
- **Evaluated**: ``sigmoid(alpha * (score - parent_score))``. Scores are normalised (0 random
  play, 1 PPO-clip at the suite's budget), so with alpha = 10 a gain of a tenth of that gap is
  worth 0.73 and a loss of a tenth 0.27; no change is 0.5. The parent's score is measured by
  this module on the same suite and seeds (like for like, and with common random numbers: the
  harness is deterministic given its seeds, so the difference carries no seed noise of its
  own), once per parent. The score a dataset stored (the campaign's suite, another budget) is
  used only when the parent cannot be measured here; with neither, the reward is 0.5 (a valid
  new program, nothing to compare it with).

Stages (``RewardConfig.stages``), from cheap to faithful:

- ``"smoke"``: the probe only. A valid new behaviour gets 0.5, a twin ``duplicate``, a failure
  ``failed``: a reward for well-formed, applicable, novel edits, with no training at all.
- ``"hurdle"`` (default): the suite's hurdle task (its environment, budget and seeds) becomes
  the whole suite, and the hurdle stage is off: the cascade's own cheapest training stage
  gives the score. The hurdle's threshold is not applied: a threshold would flatten every
  score below it to one "rejected", and the reward needs the whole range to tell a bad edit
  from a terrible one.
- ``"full"``: the suite's tasks and seeds, hurdle off for the same reason.

The default suite is ``quick`` (the quickstart's suite, the GRPO trainer's default too): its
hurdle is CartPole-v1 for 12,800 steps on 2 seeds, the cheapest training stage of the packaged
suites (the others' hurdles train 25,000 steps), 4-8 s per candidate on 2 busy cores, and it
separates rules (PPO-clip 0.22, REINFORCE 0.30, REINFORCE with its loss's sign flipped -0.06;
the fix of that flip earns 0.97). Jobs run on the CPU by default: the GPU belongs to the model
being trained, a CartPole-sized network gains little from one, and GPU memory has no per-job
limit (docs/security.md).

A completion is contained like any candidate of a campaign: its child runs only in the
evaluator's sandboxed jobs, under the same limits, after the same static check (which turns
away an ``import os`` before any process starts); an attack that passes it (a memory bomb, a
busy loop) ends as that program's ``memory_limit`` or ``timeout``, a ``candidate_error`` here.

Every measurement is cached by the child's source hash (a repeated completion costs nothing and
gets the reward it got before) and by fingerprint: the cascade asks ``skip_if`` once the probe
has the fingerprint, so a twin stops there, before any training.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from evosearch import kinds
from evosearch.envs.suites import Suite, load_suite
from evosearch.evaluate.cascade import CascadeConfig, Evaluator
from evosearch.evaluate.result import NOT_THE_PROGRAMS, EvalResult
from evosearch.program import Program
from evosearch.propose.base import ProposalError
from evosearch.propose.llm_edits import EditError, apply_response

STAGES = ("smoke", "hurdle", "full")
KINDS = ("unparseable", "no_apply", "rejected", "candidate_error", "duplicate", "evaluated", "infra")
NEUTRAL = 0.5  # sigmoid(0): a valid new program with nothing to compare it with

_BOOTSTRAP_REPS = 200  # the reward reads the score, not its CI
# A complete SEARCH/REPLACE block or a code fence: what makes an answer an edit, applicable or not.
_EDIT_RE = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH.*?^[ \t]*={5,9}[ \t]*$.*?^[ \t]*>{5,9}[ \t]*REPLACE|^ {0,3}(```|~~~)",
                      re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class RewardConfig:
    """What the reward measures with, and what each outcome is worth (see the module docstring)."""

    suite: str = "quick"  # a packaged suite's name or a YAML path
    alpha: float = 10.0  # reward = sigmoid(alpha * (score - parent_score))
    duplicate: float = 0.1
    failed: float = 0.0
    stages: str = "hurdle"  # "smoke" | "hurdle" | "full"
    seeds: int | None = None  # None: the hurdle's seeds ("hurdle"), the suite's ("full")
    smoke_timeout_s: float = 30.0
    task_timeout_s: float = 300.0
    memory_mb: int = 4096
    sandbox: str | None = None  # a sandbox mode; None: EVOSEARCH_SANDBOX or "auto"
    device: str = "cpu"  # the GPU is the trained model's
    workers: int = 1  # tasks trained at once within one evaluation ("full" with several tasks)
    parallel: int = 1  # evaluations at once within one batch

    def __post_init__(self) -> None:
        if self.stages not in STAGES:
            raise ValueError(f"stages must be one of {', '.join(STAGES)}, not {self.stages!r}")
        if not self.failed <= self.duplicate <= NEUTRAL:
            raise ValueError("expected failed <= duplicate <= 0.5: a twin is worth more than a failure and less "
                             "than a new program")
        if self.alpha <= 0 or self.parallel < 1 or self.workers < 1:
            raise ValueError("alpha must be positive, parallel and workers at least 1")


@dataclass
class RewardOutcome:
    """One edit's reward and what it came from (``kind`` is one of :data:`KINDS`)."""

    reward: float
    kind: str
    score: float | None = None  # the child's, on the reward's suite
    parent_score: float | None = None  # what the child was compared with
    fingerprint: str | None = None
    error: str = ""
    outcome: str = ""  # the evaluator's outcome (timeout, memory_limit, ...), when the child was evaluated
    cached: bool = False  # no new evaluation was needed


@dataclass(frozen=True)
class Edit:
    """One proposed edit: the parent it applies to and the model's answer."""

    parent_source: str
    answer: str
    parent_score: float | None = None  # the dataset's (the campaign's suite): a fallback only
    kind: str | None = None  # None: the suite's kind


@dataclass(frozen=True)
class _Measurement:
    """What the cascade said about one source; ``outcome`` is an evaluator outcome or ``probed`` (smoke only)."""

    outcome: str
    score: float | None = None
    fingerprint: str | None = None
    error: str = ""

    @property
    def program_failed(self) -> bool:
        return self.outcome not in ("ok", "probed", "duplicate") and self.outcome not in NOT_THE_PROGRAMS


def sigmoid(x: float) -> float:
    """The logistic function, without overflow for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def hurdle_suite(suite: Suite) -> Suite:
    """``suite`` reduced to its hurdle task: that environment, budget and number of seeds, nothing held out."""
    return replace(suite, name=f"{suite.name}:hurdle", tasks=(suite.hurdle,), held_out=(), seeds=suite.hurdle_seeds)


def build_evaluator(config: RewardConfig) -> Evaluator:
    """The kind's own evaluator on the reward's suite, with the hurdle stage off (see the module docstring)."""
    suite = load_suite(config.suite)
    if config.stages == "hurdle":
        if suite.kind != "rule":
            raise ValueError(f"suite {suite.name!r} scores {suite.kind} programs, which have no hurdle stage: "
                             "use stages='full' or 'smoke'")
        suite = hurdle_suite(suite)
    cascade = CascadeConfig(suite=config.suite, seeds=config.seeds, hurdle=False,
                            smoke_timeout_s=config.smoke_timeout_s, task_timeout_s=config.task_timeout_s,
                            memory_mb=config.memory_mb, workers=config.workers, bootstrap_reps=_BOOTSTRAP_REPS,
                            sandbox=config.sandbox, device=config.device)
    return kinds.get(suite.kind).evaluator(cascade, suite)


def completion_text(completion: Any) -> str:
    """The answer in a TRL completion: a string, or a conversation whose assistant messages hold it."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        said = [m for m in messages if m.get("role") == "assistant"] or messages
        return "\n".join(_content(m) for m in said)
    raise TypeError(f"a completion is a string or a list of messages, not {type(completion).__name__}")


def _content(message: dict) -> str:
    """A message's text: its content string, or the text parts of a content list."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return ""


def _column(value: Any, n: int, name: str) -> list:
    """A TRL column (one value per completion), a single value for all, or None for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} values for {n} completions")
        return list(value)
    return [value] * n


def _finite(value: Any) -> float | None:
    """A stored score if it is a finite number (a dataset's missing value may be None or NaN)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _sha(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class RewardModule:
    """TRL-style reward function over proposed edits, scored by the real sandboxed cascade.

    ``known_fingerprints``: behaviours the search already has (the archive's), so that a child
    behaving like one is a ``duplicate``. ``evaluator``: replaces the one built from ``config``
    (to share one, or to count its calls); it must score the suite the config names.
    Thread-safe: a batch's evaluations run ``config.parallel`` at once.
    """

    def __init__(self, config: RewardConfig, *, known_fingerprints: set[str] | frozenset[str] = frozenset(),
                 evaluator: Evaluator | None = None) -> None:
        self.config = config
        self.evaluator = evaluator if evaluator is not None else build_evaluator(config)
        self.kind = self.evaluator.suite.kind
        self.__name__ = "evosearch_reward"  # TRL logs a reward function by its __name__
        self._lock = threading.Lock()
        self._by_sha: dict[str, _Measurement] = {}  # every source measured, parents and children
        self._by_fp: dict[str, _Measurement] = {}  # the first finished measurement of each behaviour
        # Who brought each known behaviour: a child's source hash, or None (the archive, a parent).
        self._owner: dict[str, str | None] = dict.fromkeys(known_fingerprints)
        self._kinds: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._reward_sum = 0.0

    # -- the TRL interface ------------------------------------------------------------------------

    def __call__(self, prompts: Sequence, completions: Sequence, parent_source: Sequence[str] | str,
                 parent_score: Sequence[float | None] | float | None = None,
                 kind: Sequence[str | None] | str | None = None, **kwargs: Any) -> list[float]:
        """One reward per completion, GRPOTrainer's way: dataset columns as lists, other columns as kwargs.

        A ``log_metric`` callable among the kwargs (TRL passes one) is given the batch's share of
        each outcome kind and of cache hits.
        """
        n = len(completions)
        edits = [Edit(parent, completion_text(c), score, k) for parent, c, score, k in
                 zip(_column(parent_source, n, "parent_source"), completions,
                     _column(parent_score, n, "parent_score"), _column(kind, n, "kind"), strict=True)]
        outcomes = self.score_batch(edits)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and outcomes:
            self._log_batch(outcomes, log_metric)
        return [o.reward for o in outcomes]

    def score_edit(self, parent_source: str, answer: str, parent_score: float | None = None,
                   kind: str = "rule") -> RewardOutcome:
        """The reward of one answer to one parent, with what it came from."""
        return self.score_batch([Edit(parent_source, answer, parent_score, kind)])[0]

    def score_batch(self, edits: Sequence[Edit]) -> list[RewardOutcome]:
        """Rewards of several edits: apply all, measure each distinct parent, then each distinct child.

        Parents come first so that a child behaving like its own parent is a twin. A child that
        occurs twice in a batch is evaluated once.
        """
        children = [self._apply(edit) for edit in edits]
        applied = [(edit, child) for edit, child in zip(edits, children, strict=True) if isinstance(child, str)]
        parents = self._measure_all([e.parent_source for e, _ in applied], self._measure_parent)
        measured = self._measure_all([child for _, child in applied], self._measure_child)
        outcomes: list[RewardOutcome] = []
        seen: set[str] = set()
        repeats = 0
        for edit, child in zip(edits, children, strict=True):
            if isinstance(child, RewardOutcome):
                outcomes.append(child)
                continue
            measurement, cached = measured[child]
            outcome = self._reward(measurement, self._parent_score(parents[edit.parent_source][0], edit))
            outcome.cached = cached or child in seen  # a repeat within the batch was not evaluated again
            repeats += child in seen
            seen.add(child)
            outcomes.append(outcome)
        self._count(outcomes, repeats)
        return outcomes

    def stats(self) -> dict[str, float]:
        """Counts for logging: edits, each kind, evaluations run, cache hits, twins stopped at the probe, the mean."""
        with self._lock:
            edits = sum(self._kinds.values())
            out: dict[str, float] = {"edits": edits, **{k: self._kinds[k] for k in KINDS}}
            for key in ("evaluations", "parent_evaluations", "cache_hits", "twins_stopped"):
                out[key] = self._counts[key]
            out["mean_reward"] = self._reward_sum / edits if edits else 0.0
            return out

    # -- from an answer to a child -------------------------------------------------------------

    def _apply(self, edit: Edit) -> str | RewardOutcome:
        """The child source, or the outcome that ends the edit before anything runs."""
        kind = edit.kind or self.kind
        if kind != self.kind:
            raise ValueError(f"an edit of a {kind} program, but the reward's suite scores {self.kind} programs")
        try:
            child, _mode = apply_response(edit.parent_source, edit.answer, kind)
        except EditError as err:
            return RewardOutcome(self.config.failed, _edit_failure_kind(edit.answer, err), error=str(err))
        return child

    # -- measuring ------------------------------------------------------------------------------

    def _measure_all(self, sources: list[str],
                     measure: Callable[[str], tuple[_Measurement, bool]]) -> dict[str, tuple[_Measurement, bool]]:
        """``measure`` of each distinct source, ``config.parallel`` at once (in the batch's order if one at a time)."""
        ordered = list(dict.fromkeys(sources))
        if self.config.parallel == 1 or len(ordered) < 2:
            return {s: measure(s) for s in ordered}
        with ThreadPoolExecutor(min(self.config.parallel, len(ordered))) as pool:
            return dict(zip(ordered, pool.map(measure, ordered), strict=True))

    def _measure_parent(self, source: str) -> tuple[_Measurement, bool]:
        """The parent's measurement; a parent behaving like a measured program takes that one's (same training)."""
        sha = _sha(source)

        def reuse(fingerprint: str) -> bool:
            with self._lock:
                self._owner.setdefault(fingerprint, None)
                return self.config.stages == "smoke" or fingerprint in self._by_fp

        with self._lock:
            cached = self._cached(sha)
            if cached is not None:
                return self._by_fp.get(cached.fingerprint or "", cached) if _twin(cached) else cached, True
        result = self._evaluate(Program(source, self.kind, name="parent.py"), reuse, "parent_evaluations")
        measured = _measurement(result)
        with self._lock:
            if result.outcome == "duplicate":  # stopped at the probe: the twin's measurement, or the probe alone
                measured = self._by_fp.get(result.fingerprint, replace(measured, outcome="probed"))
            self._store(sha, measured)
        return measured, False

    def _measure_child(self, source: str) -> tuple[_Measurement, bool]:
        """The child's measurement; stopped at the probe when its behaviour is known from elsewhere.

        A behaviour belongs to the first child source that showed it; for every other source
        (and for a child that is a known parent, or an archived program) it is a twin.
        """
        sha = _sha(source)
        why: dict[str, str] = {}

        def stop(fingerprint: str) -> bool:
            with self._lock:
                if self._owner.setdefault(fingerprint, sha) != sha:
                    why["stop"] = "twin"
                    self._counts["twins_stopped"] += 1
                    return True
                if self.config.stages == "smoke":
                    why["stop"] = "probed"
                    return True
                return False

        with self._lock:
            cached = self._cached(sha)
            if cached is not None:
                fingerprint = cached.fingerprint
                if fingerprint is None or _twin(cached) or self._owner.setdefault(fingerprint, sha) == sha:
                    return cached, True
                return self._as_twin(replace(cached, error="")), True  # measured before as a parent
        result = self._evaluate(Program(source, self.kind, name="completion.py"), stop, "evaluations")
        measured = _measurement(result)
        with self._lock:
            if result.outcome == "duplicate":
                measured = replace(measured, outcome="probed") if why.get("stop") == "probed" \
                    else self._as_twin(measured)
            if result.outcome in NOT_THE_PROGRAMS and self._owner.get(result.fingerprint or "") == sha:
                del self._owner[result.fingerprint]  # not measured: leave the behaviour to the next source showing it
            self._store(sha, measured)
        return measured, False

    def _as_twin(self, measured: _Measurement) -> _Measurement:
        """A child behaving like a known program: ``duplicate``, or ``duplicate_of_failure`` if that one failed here."""
        twin = self._by_fp.get(measured.fingerprint or "")
        if twin is not None and twin.program_failed:
            return replace(measured, outcome="duplicate_of_failure",
                           error=f"behaves like a program that failed here: {twin.error}")
        return replace(measured, outcome="duplicate",
                       error=measured.error or f"behaves like a known program (fingerprint {measured.fingerprint})")

    def _cached(self, sha: str) -> _Measurement | None:
        """A source's earlier measurement (the caller holds the lock)."""
        measured = self._by_sha.get(sha)
        if measured is not None:
            self._counts["cache_hits"] += 1
        return measured

    def _evaluate(self, program: Program, skip_if: Callable[[str], bool], counter: str) -> EvalResult:
        with self._lock:
            self._counts[counter] += 1
        return self.evaluator.evaluate(program, skip_if=skip_if)

    def _store(self, sha: str, measured: _Measurement) -> None:
        """Keep a measurement (the caller holds the lock); the machine's failures are not the program's, not kept."""
        if measured.outcome in NOT_THE_PROGRAMS:
            return
        self._by_sha[sha] = measured
        if measured.fingerprint and not _twin(measured):
            self._by_fp.setdefault(measured.fingerprint, measured)

    # -- from a measurement to a reward ---------------------------------------------------------

    def _parent_score(self, parent: _Measurement, edit: Edit) -> float | None:
        """The parent's score here; the dataset's when it cannot be measured here; else None."""
        if parent.outcome == "ok":
            return parent.score
        return _finite(edit.parent_score)

    def _reward(self, child: _Measurement, parent_score: float | None) -> RewardOutcome:
        cfg = self.config
        base = {"fingerprint": child.fingerprint, "error": child.error, "outcome": child.outcome}
        if child.outcome == "ok":
            reward = NEUTRAL if parent_score is None else sigmoid(cfg.alpha * (child.score - parent_score))
            return RewardOutcome(reward, "evaluated", child.score, parent_score, **base)
        if child.outcome == "probed":
            return RewardOutcome(NEUTRAL, "evaluated", **base)
        if child.outcome == "duplicate":
            return RewardOutcome(cfg.duplicate, "duplicate", **base)
        if child.outcome == "duplicate_of_failure":
            return RewardOutcome(cfg.failed, "duplicate", **base)
        if child.outcome in NOT_THE_PROGRAMS:
            return RewardOutcome(cfg.failed, "infra", **base)
        if child.outcome == "rejected":
            return RewardOutcome(cfg.failed, "rejected", **base)
        return RewardOutcome(cfg.failed, "candidate_error", **base)

    # -- accounting -----------------------------------------------------------------------------

    def _count(self, outcomes: list[RewardOutcome], repeats: int) -> None:
        with self._lock:
            self._kinds.update(o.kind for o in outcomes)
            self._counts["cache_hits"] += repeats
            self._reward_sum += sum(o.reward for o in outcomes)

    def _log_batch(self, outcomes: list[RewardOutcome], log_metric: Callable[[str, float], Any]) -> None:
        n = len(outcomes)
        shares = Counter(o.kind for o in outcomes)
        for kind in KINDS:
            log_metric(f"evosearch/{kind}", shares[kind] / n)
        log_metric("evosearch/cached", sum(o.cached for o in outcomes) / n)


def _twin(measured: _Measurement) -> bool:
    return measured.outcome in ("duplicate", "duplicate_of_failure")


def _measurement(result: EvalResult) -> _Measurement:
    return _Measurement(result.outcome, result.score if result.ok else None, result.fingerprint, result.error)


def _edit_failure_kind(answer: str, err: EditError) -> str:
    """``rejected`` when :func:`checked_child` refused the child, ``unparseable`` when the answer holds no edit at all.

    Everything else (a SEARCH that matches nothing or twice, a change of nothing, text outside
    the block) is an edit in the right format that does not apply: ``no_apply``.
    """
    if isinstance(err.__cause__, ProposalError):
        return "rejected"
    if not _EDIT_RE.search(answer):
        return "unparseable"
    return "no_apply"
