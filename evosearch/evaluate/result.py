"""What an evaluation produces: outcomes, stages, per-task records and the result record.

Shared by every program kind, so the archive, the CLI and the proposers read one shape
whatever was evaluated. Scores here are computed from returns the trusted side measured;
learning curves come from the job that ran the candidate and are checked, never trusted.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

import numpy as np

from evosearch import stats
from evosearch.envs.suites import Calibration
from evosearch.sandbox import JobOutcome

OUTCOMES = ("ok", "rejected", "candidate_error", "timeout", "memory_limit", "killed", "sandbox_failure",
            "infra_error", "duplicate")
#: Outcomes that say nothing about the program: the sandbox, the harness or the machine failed.
NOT_THE_PROGRAMS = ("sandbox_failure", "infra_error")
STAGES = ("static", "smoke", "hurdle", "full")


@dataclass
class TaskResult:
    env_id: str
    returns: list[float]  # per seed, measured by the trusted scorer
    normalized: list[float]
    mean_return: float
    normalized_mean: float
    ci: list[float]  # bootstrap CI of the mean normalised score over seeds
    curve_steps: list[int]
    curves: list[list[float]]  # per seed, from the training job (diagnostic, not trusted)
    auc_per_seed: list[float]  # normalised area under each seed's learning curve
    auc: float  # their mean
    train_wall_s: float
    backend: str = ""  # env backend the task trained and was scored on (native or envpool)
    device: str = "cpu"


@dataclass
class EvalResult:
    """The record of one evaluation, what the archive stores and ``eval --json`` prints."""

    outcome: str
    stage: str
    score: float | None = None
    ci: list[float] | None = None
    fingerprint: str | None = None
    wall_s: float = 0.0
    suite: str = ""
    fitness: str = "iqm"
    iqm: float | None = None
    auc: float | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    held_out: dict[str, TaskResult] = field(default_factory=dict)
    hurdle_score: float | None = None
    cpu_s: float = 0.0  # all jobs of this evaluation, measured by the sandbox worker
    peak_rss_mb: float = 0.0  # the largest job's peak resident memory
    error: str = ""
    output_tail: str = ""
    sandbox: str = ""  # the sandbox mode the candidate ran under
    behaviour: dict[str, float] = field(default_factory=dict)  # measured by trusted code (policies)
    # The confirmation of a good result on fresh seeds (see RuleEvaluator.confirm): score, ci,
    # seeds, per-task means, held-out means; empty when it was not confirmed.
    confirmed: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


class StageFailure(Exception):
    """Ends an evaluation at its current stage with an outcome and a reason the proposer reads."""

    def __init__(self, outcome: str, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.outcome, self.message, self.tail = outcome, message, tail


def failure_from_job(job: JobOutcome, what: str) -> StageFailure:
    """Turn a failed sandbox job into the outcome and message the user sees."""
    err = job.error or {}
    etype, message = err.get("type", ""), err.get("message", "")
    trace = err.get("traceback", "")
    tail = (trace + ("\n--- output ---\n" + job.output_tail if job.output_tail.strip() else ""))[-4000:]
    if job.status == "timeout":
        return StageFailure("timeout", f"{what}: {message}", tail)
    if etype == "MemoryError" or "can't allocate memory" in message or "not enough memory" in message:
        return StageFailure("memory_limit", f"{what}: ran out of its memory limit ({etype}: {message})".rstrip(": "),
                             tail)
    if job.status == "error" and err.get("fault") == "harness":
        # Raised in a job whose own process runs only our harness (the candidate's code is in its
        # companion): an environment, the device or the harness failed, not the program.
        return StageFailure("infra_error", f"{what} failed outside the program's code: {etype}: {message}", tail)
    if job.status == "error":
        return StageFailure("candidate_error", f"{what}: {etype}: {message}", tail)
    if job.status == "killed":
        if "SIGXCPU" in message:
            return StageFailure("timeout", f"{what}: {message}", tail)
        return StageFailure("killed", f"{what}: {message}", tail)
    if err.get("type") in ("WorkerLost", "SandboxSetup"):
        return StageFailure("sandbox_failure", f"{what}: {message}", tail)
    return StageFailure("candidate_error", f"{what}: {message} (did the program exit the process?)", tail)


@dataclass
class Usage:
    """CPU seconds and peak memory of every job of one evaluation, as the worker measured them."""

    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, job: JobOutcome) -> JobOutcome:
        with self._lock:  # tasks train in parallel threads
            self.cpu_s += job.cpu_s
            self.peak_rss_mb = max(self.peak_rss_mb, job.peak_rss_mb)
        return job


def checked_curves(train: dict, seeds: int) -> tuple[list[int], list[list[float]]]:
    """The training job's learning curves if well-formed, else none.

    They come from the process that ran the candidate, so they are checked, never trusted:
    a candidate that forges its report can spoil its own curves, not crash the evaluator.
    """
    steps, curves = train.get("curve_steps"), train.get("curves")
    try:
        steps = [int(x) for x in steps]
        curves = [[float(x) for x in curve] for curve in curves]
    except (TypeError, ValueError):
        return [], []
    if len(curves) != seeds or any(len(c) != len(steps) for c in curves) or not steps:
        return [], []
    if not all(np.isfinite(c).all() for c in curves):
        return [], []
    return steps, curves


def task_result(env_id: str, returns: list[float], cal: Calibration, train: dict, wall_s: float,
                bootstrap_reps: int) -> TaskResult:
    """One task's record from the trusted per-seed returns and the (checked, untrusted) curves in ``train``."""
    norm = stats.normalize(np.array(returns), cal.r_random, cal.r_ref)
    steps, curves = checked_curves(train, len(returns))
    if curves:
        auc = stats.normalize(np.array(curves), cal.r_random, cal.r_ref).mean(axis=1)
    else:  # no usable curve (a policy has none): the final score stands in for the area
        auc = norm
    lo, hi = stats.mean_ci(norm, reps=bootstrap_reps) if len(norm) > 1 else (norm[0], norm[0])
    return TaskResult(
        env_id=env_id, returns=[float(r) for r in returns], normalized=[float(x) for x in norm],
        mean_return=float(np.mean(returns)), normalized_mean=float(norm.mean()), ci=[lo, hi],
        curve_steps=steps, curves=curves, auc_per_seed=[float(a) for a in auc], auc=float(np.mean(auc)),
        train_wall_s=wall_s,
    )


def summarise(result: EvalResult, fitness: str, bootstrap_reps: int) -> None:
    """Fill ``result``'s score, CI, IQM and AUC from its tasks (IQM over tasks x seeds, rliable-style).

    ``fitness`` picks what the score is: ``iqm`` of final normalised returns, or ``auc``, the
    IQM of the normalised areas under the learning curves.
    """
    matrix = np.array([t.normalized for t in result.tasks.values()]).T  # [seeds, tasks]
    result.iqm = stats.iqm(matrix)
    result.auc = float(np.mean([t.auc for t in result.tasks.values()]))
    if fitness == "auc":
        areas = np.array([t.auc_per_seed for t in result.tasks.values()]).T  # [seeds, tasks]
        result.score = stats.iqm(areas)
        result.ci = list(stats.stratified_bootstrap_ci(areas, reps=bootstrap_reps))
    else:
        result.score = result.iqm
        result.ci = list(stats.stratified_bootstrap_ci(matrix, reps=bootstrap_reps))
