"""The evaluation cascade: static check -> smoke -> hurdle -> full suite.

Each stage can end the evaluation with an outcome and a readable reason, so a search wastes
little on broken candidates and a proposer learns why. Candidate code only ever runs in
sandboxed jobs; scores come from separate ``score`` jobs that read plain weights files.
The evaluator knows nothing about search.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from evosearch import sandbox, stats
from evosearch.devices import DevicePool
from evosearch.envs.backend import resolve_backend
from evosearch.envs.native import is_native
from evosearch.envs.suites import Calibration, Suite, Task, load_suite
from evosearch.program import Program, static_check
from evosearch.sandbox import JobOutcome, Limits, run_job
from evosearch.sandbox.runner import JobInputError
from evosearch.train.harness import TrainConfig
from evosearch.train.score import NonFiniteWeights

OUTCOMES = ("ok", "rejected", "candidate_error", "timeout", "memory_limit", "killed", "sandbox_failure",
            "duplicate")
STAGES = ("static", "smoke", "hurdle", "full")


@dataclass(frozen=True)
class CascadeConfig:
    """Thresholds and limits of the cascade; every field can be set from a campaign config."""

    suite: str = "classic-quick"
    seeds: int | None = None  # None: the suite's number of seeds
    hurdle: bool = True
    hurdle_threshold: float | None = None  # normalised hurdle score to pass; None: the suite's
    smoke_timeout_s: float = 60.0
    task_timeout_s: float = 600.0
    memory_mb: int = 4096
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    fitness: str = "iqm"  # "iqm" of final normalised returns, or "auc" of normalised learning curves
    held_out: bool = False  # also train and score the suite's held-out tasks (report only)
    bootstrap_reps: int = 2000
    static_check: bool = True  # off only to test the OS layers: the check is for readable rejections
    sandbox: str | None = None  # a mode of evosearch.sandbox.modes; None: EVOSEARCH_SANDBOX or "auto"
    device: str = "auto"  # auto, cpu, cuda or cuda:N (evosearch.devices)


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

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


class _StageFailure(Exception):
    def __init__(self, outcome: str, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.outcome, self.message, self.tail = outcome, message, tail


def _failure_from_job(job: JobOutcome, what: str) -> _StageFailure:
    """Turn a failed sandbox job into the outcome and message the user sees."""
    err = job.error or {}
    etype, message = err.get("type", ""), err.get("message", "")
    trace = err.get("traceback", "")
    tail = (trace + ("\n--- output ---\n" + job.output_tail if job.output_tail.strip() else ""))[-4000:]
    if job.status == "timeout":
        return _StageFailure("timeout", f"{what}: {message}", tail)
    if etype == "MemoryError" or "can't allocate memory" in message or "not enough memory" in message:
        return _StageFailure("memory_limit", f"{what}: ran out of its memory limit ({etype}: {message})".rstrip(": "),
                             tail)
    if job.status == "error":
        return _StageFailure("candidate_error", f"{what}: {etype}: {message}", tail)
    if job.status == "killed":
        if "SIGXCPU" in message:
            return _StageFailure("timeout", f"{what}: {message}", tail)
        return _StageFailure("killed", f"{what}: {message}", tail)
    if err.get("type") in ("WorkerLost", "SandboxSetup"):
        return _StageFailure("sandbox_failure", f"{what}: {message}", tail)
    return _StageFailure("candidate_error", f"{what}: {message} (did the program exit the process?)", tail)


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


def train_and_score(
    program: Program, task: Task, seeds: list[int], limits: Limits, episodes: int, stage: str = "full",
    usage: Usage | None = None, device: str = "cpu",
) -> tuple[list[float], dict, float]:
    """Train ``seeds`` on ``task`` in an untrusted job, then score the weights in a trusted one.

    Returns the per-seed returns, the training job's report (curves) and its wall seconds.
    """
    cfg = TrainConfig(env_id=task.env_id, total_steps=task.total_steps, backend=task.backend)
    usage = usage or Usage()
    if device != "cpu":  # CUDA maps far more address space than it uses: the cgroup bounds memory instead
        limits = replace(limits, limit_address_space=False)
    train = usage.add(run_job("train", {"source": program.source, "filename": program.name,
                                        "config": cfg.to_dict(), "seeds": seeds, "device": device}, limits,
                              keep_scratch=True))
    try:
        if train.status != "ok":
            raise _failure_from_job(train, f"training on {task.env_id} ({stage})")
        weights = os.path.join(train.scratch, "weights.npz")
        try:
            scored = usage.add(run_job("score", {"weights": "weights.npz", "env_id": task.env_id,
                                                 "episodes": episodes, "seed": 1, "backend": task.backend,
                                                 "device": device}, limits,
                                       inputs={"weights.npz": weights}))
        except JobInputError as err:  # its report claimed success, so the candidate wrote it, not the harness
            raise _StageFailure("candidate_error", f"training on {task.env_id} ({stage}) left no usable weights "
                                f"file ({err}); did the program end its own process?", train.output_tail) from err
    finally:
        shutil.rmtree(train.scratch, ignore_errors=True)
    if scored.status != "ok":
        if scored.error.get("type") == NonFiniteWeights.__name__:
            raise _StageFailure("candidate_error", f"training on {task.env_id} produced non-finite weights")
        failure = _failure_from_job(scored, f"scoring on {task.env_id}")
        raise _StageFailure("sandbox_failure", failure.message, failure.tail)
    return scored.result["returns"], train.result, train.wall_s


def _checked_curves(train: dict, seeds: int) -> tuple[list[int], list[list[float]]]:
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
    steps, curves = _checked_curves(train, len(returns))
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


class Evaluator:
    """Runs the cascade for rule programs on one suite."""

    def __init__(self, config: CascadeConfig | None = None, suite: Suite | None = None) -> None:
        self.config = config or CascadeConfig()
        self.suite = suite or load_suite(self.config.suite)
        self.seeds = self.config.seeds or self.suite.seeds
        needed = self.suite.tasks + (self.suite.held_out if self.config.held_out else ()) + (self.suite.hurdle,)
        for task in needed:  # refuse an uncalibrated suite before any training, not after it
            self.suite.calibrated(task.env_id)
        self.sandbox = sandbox.ensure(self.config.sandbox)  # SandboxUnavailable now, not at the first job
        self.devices = DevicePool(self.config.device)  # DeviceError now, not at the first job

    def _limits(self, wall_s: float) -> Limits:
        return Limits(wall_s=wall_s, memory_mb=self.config.memory_mb)

    def _train_and_score(self, program: Program, task: Task, seeds: list[int], stage: str,
                         usage: Usage) -> TaskResult:
        device = self.devices.for_task(gpu_native=is_native(task.env_id) and task.backend != "envpool")
        returns, train, wall = train_and_score(program, task, seeds, self._limits(self.config.task_timeout_s),
                                               self.suite.eval_episodes, stage, usage, device)
        result = self._task_result(task.env_id, returns, train, wall)
        result.backend, result.device = resolve_backend(task.env_id, task.backend, device), device
        return result

    def _task_result(self, env_id: str, returns: list[float], train: dict, wall_s: float) -> TaskResult:
        return task_result(env_id, returns, self.suite.calibrated(env_id), train, wall_s, self.config.bootstrap_reps)

    def _run_tasks(self, program: Program, tasks: tuple[Task, ...], seeds: list[int], stage: str,
                   usage: Usage) -> dict:
        workers = max(1, min(self.config.workers, len(tasks)))
        with ThreadPoolExecutor(workers) as pool:
            futures = {t.env_id: pool.submit(self._train_and_score, program, t, seeds, stage, usage) for t in tasks}
            return {env_id: f.result() for env_id, f in futures.items()}

    def evaluate(self, program: Program, skip_if: Callable[[str], bool] | None = None) -> EvalResult:
        """Run the whole cascade on ``program`` and return its record (never raises for bad programs).

        ``skip_if(fingerprint)`` is asked once the smoke stage has the fingerprint; when it says
        yes the evaluation ends there with outcome ``duplicate`` (a search uses it to reuse the
        result of a program that behaves the same instead of training again).
        Safe to call from several threads at once: everything of one evaluation is local to the call.
        """
        start = time.monotonic()
        usage = Usage()
        result = EvalResult(outcome="ok", stage="static", suite=self.suite.name, fitness=self.config.fitness,
                            sandbox=self.sandbox.summary())
        try:
            self._cascade(program, result, usage, skip_if)
        except _StageFailure as failure:
            result.outcome, result.error, result.output_tail = failure.outcome, failure.message, failure.tail
        result.wall_s = time.monotonic() - start
        result.cpu_s, result.peak_rss_mb = usage.cpu_s, usage.peak_rss_mb
        return result

    def _cascade(self, program: Program, result: EvalResult, usage: Usage,
                 skip_if: Callable[[str], bool] | None) -> None:
        issues = static_check(program.source, program.kind) if self.config.static_check else []
        if issues:
            raise _StageFailure("rejected", "static check: " + "; ".join(str(i) for i in issues))

        result.stage = "smoke"
        probe = usage.add(run_job("probe", {"source": program.source, "filename": program.name},
                                        self._limits(self.config.smoke_timeout_s)))
        if probe.status != "ok":
            raise _failure_from_job(probe, "smoke test")
        result.fingerprint = probe.result["fingerprint"]
        if skip_if is not None and skip_if(result.fingerprint):
            raise _StageFailure("duplicate", f"behaves like an evaluated program (fingerprint {result.fingerprint})")

        if self.config.hurdle:
            result.stage = "hurdle"
            task = self.suite.hurdle
            hurdle = self._train_and_score(program, task, list(range(self.suite.hurdle_seeds)), "hurdle", usage)
            result.hurdle_score = hurdle.normalized_mean
            threshold = self.config.hurdle_threshold
            threshold = self.suite.hurdle_threshold if threshold is None else threshold
            if hurdle.normalized_mean < threshold:
                raise _StageFailure("rejected", f"hurdle: normalised score {hurdle.normalized_mean:.3f} on "
                                    f"{task.env_id} is below the threshold {threshold:.3f}")

        result.stage = "full"
        seeds = list(range(self.seeds))
        result.tasks = self._run_tasks(program, self.suite.tasks, seeds, "full", usage)
        matrix = np.array([t.normalized for t in result.tasks.values()]).T  # [seeds, tasks]
        result.iqm = stats.iqm(matrix)
        result.auc = float(np.mean([t.auc for t in result.tasks.values()]))
        if self.config.fitness == "auc":
            areas = np.array([t.auc_per_seed for t in result.tasks.values()]).T  # [seeds, tasks]
            result.score = stats.iqm(areas)
            result.ci = list(stats.stratified_bootstrap_ci(areas, reps=self.config.bootstrap_reps))
        else:
            result.score = result.iqm
            result.ci = list(stats.stratified_bootstrap_ci(matrix, reps=self.config.bootstrap_reps))
        if self.config.held_out and self.suite.held_out:
            result.held_out = self._run_tasks(program, self.suite.held_out, seeds, "held-out", usage)
