"""Evaluating rules: static check -> smoke -> hurdle -> full suite, training in the sandbox.

Candidate code only ever runs in sandboxed jobs (``probe``, ``train``); scores come from
separate ``score`` jobs that read a plain weights file and never ran the candidate. The
evaluator knows nothing about search.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from evosearch import sandbox
from evosearch.devices import DevicePool
from evosearch.envs.backend import resolve_backend
from evosearch.envs.native import is_native
from evosearch.envs.suites import Suite, Task, load_suite
from evosearch.evaluate.cascade import CascadeConfig, SkipIf
from evosearch.evaluate.jobs import ProbeJob, ScoreJob, TrainJob
from evosearch.evaluate.result import (
    EvalResult,
    StageFailure,
    TaskResult,
    Usage,
    failure_from_job,
    summarise,
    task_result,
)
from evosearch.kinds.rule import KIND
from evosearch.program import Program, static_check
from evosearch.sandbox import Limits, gpu, run_job
from evosearch.sandbox.cleanup import remove_tree
from evosearch.sandbox.runner import JobInputError
from evosearch.train.harness import TrainConfig
from evosearch.train.score import BadWeights, NonFiniteWeights


def train_config(task: Task) -> TrainConfig:
    """The harness's settings for ``task``: its budget and backend, and any training settings the suite gives it."""
    return TrainConfig(env_id=task.env_id, total_steps=task.total_steps, backend=task.backend, **dict(task.train))


def train_and_score(
    program: Program, task: Task, seeds: list[int], limits: Limits, episodes: int, stage: str = "full",
    usage: Usage | None = None, device: str = "cpu", minimal_builtins: bool = True,
) -> tuple[list[float], dict, float]:
    """Train ``seeds`` on ``task`` in an untrusted job, then score the weights in a trusted one.

    Returns the per-seed returns, the training job's report (curves) and its wall seconds.
    """
    cfg = train_config(task)
    usage = usage or Usage()
    if device != "cpu":
        limits = replace(limits, gpu=True)
    train = usage.add(run_job(TrainJob.of(program.source, cfg, seeds, program.name, device, minimal_builtins), limits,
                              keep_scratch=True))
    try:
        if train.status != "ok":
            raise failure_from_job(train, f"training on {task.env_id} ({stage})")
        weights = os.path.join(train.scratch, "weights.npz")
        try:
            scored = usage.add(run_job(ScoreJob(env_id=task.env_id, episodes=episodes, seeds=len(seeds),
                                                hidden=cfg.hidden, backend=task.backend, device=device), limits,
                                       inputs={"weights.npz": weights}))
        except JobInputError as err:  # its report claimed success, so the candidate wrote it, not the harness
            raise StageFailure("candidate_error", f"training on {task.env_id} ({stage}) left no usable weights "
                                f"file ({err}); did the program end its own process?", train.output_tail) from err
    finally:
        remove_tree(train.scratch)
    if scored.status != "ok":
        if scored.error.get("type") == NonFiniteWeights.__name__:
            raise StageFailure("candidate_error", f"training on {task.env_id} produced non-finite weights")
        if scored.error.get("type") == BadWeights.__name__:  # trusted code read what the candidate's job left
            raise StageFailure("candidate_error", f"training on {task.env_id} left unusable weights: "
                               f"{scored.error.get('message', '')}")
        failure = failure_from_job(scored, f"scoring on {task.env_id}")
        raise StageFailure("sandbox_failure", failure.message, failure.tail)
    return scored.result["returns"], train.result, train.wall_s


def gpu_warning(message: str) -> None:
    """Say loudly that GPU jobs fell back to another sandbox mode: in the log and on stderr."""
    import logging
    import sys

    logging.getLogger("evosearch.sandbox").warning("%s", message)
    print(f"WARNING: {message}", file=sys.stderr)


def _checked_fingerprint(report: dict) -> str:
    """The probe's fingerprint, if its report (written in the candidate's process) holds a well-formed one."""
    fingerprint = report.get("fingerprint") if isinstance(report, dict) else None
    if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{8,64}", fingerprint):
        raise StageFailure("candidate_error", "smoke test: the probe's report holds no fingerprint (did the program "
                           "write the job's result itself?)")
    return fingerprint


class RuleEvaluator:
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
        if self.devices.gpus:  # CUDA must start inside a job of the mode GPU jobs run in, before any program is blamed
            self.sandbox = gpu.sandbox_for_gpu(self.devices.gpus[0], sandbox.requested_for(self.config.sandbox),
                                               warn=gpu_warning).mode

    def _limits(self, wall_s: float) -> Limits:
        return Limits(wall_s=wall_s, memory_mb=self.config.memory_mb)

    def _train_and_score(self, program: Program, task: Task, seeds: list[int], stage: str,
                         usage: Usage) -> TaskResult:
        device = self.devices.for_task(gpu_native=is_native(task.env_id) and task.backend != "envpool")
        returns, train, wall = train_and_score(program, task, seeds, self._limits(self.config.task_timeout_s),
                                               self.suite.eval_episodes, stage, usage, device,
                                               minimal_builtins=self.config.static_check)
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

    def fingerprint(self, program: Program) -> str | None:
        """The rule's behavioural fingerprint from the smoke probe alone; None if the probe fails."""
        try:
            return self._smoke(program, Usage())
        except StageFailure:
            return None

    def _smoke(self, program: Program, usage: Usage) -> str:
        """Run the probe job; its fingerprint, or the StageFailure that says why there is none."""
        probe = usage.add(run_job(ProbeJob(source=program.source, filename=program.name,
                                           minimal_builtins=self.config.static_check),
                                  self._limits(self.config.smoke_timeout_s)))
        if probe.status != "ok":
            raise failure_from_job(probe, "smoke test")
        return _checked_fingerprint(probe.result)

    def evaluate(self, program: Program, skip_if: SkipIf | None = None) -> EvalResult:
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
        except StageFailure as failure:
            result.outcome, result.error, result.output_tail = failure.outcome, failure.message, failure.tail
        result.wall_s = time.monotonic() - start
        result.cpu_s, result.peak_rss_mb = usage.cpu_s, usage.peak_rss_mb
        return result

    def confirm(self, program: Program, result: EvalResult) -> EvalResult:
        """Re-evaluate an ``ok`` result on fresh seeds (more of them) and the held-out tasks; fill ``result.confirmed``.

        Why: a search keeps the best of many noisy scores, so its winners' scores are biased
        upward (the winner's curse). A second measurement on seeds the search never used is
        not: the gap between the two is the curse's size, and the confirmed score is what the
        program is worth. The search score itself is left as it was.
        """
        if not result.ok:
            return result
        start, usage = time.monotonic(), Usage()
        count = self.config.confirm_seeds or 2 * self.seeds
        seeds = list(range(self.config.confirm_seed_offset, self.config.confirm_seed_offset + count))
        fresh = EvalResult(outcome="ok", stage="full", suite=self.suite.name, fitness=self.config.fitness)
        try:
            fresh.tasks = self._run_tasks(program, self.suite.tasks, seeds, "confirmation", usage)
            if self.suite.held_out:
                fresh.held_out = self._run_tasks(program, self.suite.held_out, seeds, "confirmation, held-out",
                                                 usage)
        except StageFailure as failure:
            result.confirmed = {"outcome": failure.outcome, "error": failure.message, "seeds": count}
            return result
        summarise(fresh, self.config.fitness, self.config.bootstrap_reps)
        result.confirmed = {
            "outcome": "ok", "score": fresh.score, "ci": fresh.ci, "seeds": count, "first_seed": seeds[0],
            "tasks": {k: {"normalized_mean": t.normalized_mean, "ci": t.ci} for k, t in fresh.tasks.items()},
            "held_out": {k: {"normalized_mean": t.normalized_mean, "ci": t.ci} for k, t in fresh.held_out.items()},
            "wall_s": time.monotonic() - start, "cpu_s": usage.cpu_s,
        }
        return result

    def _cascade(self, program: Program, result: EvalResult, usage: Usage,
                 skip_if: SkipIf | None) -> None:
        issues = static_check(program.source, KIND.name) if self.config.static_check else []
        if issues:
            raise StageFailure("rejected", "static check: " + "; ".join(str(i) for i in issues))

        result.stage = "smoke"
        result.fingerprint = self._smoke(program, usage)
        if skip_if is not None and skip_if(result.fingerprint):
            raise StageFailure("duplicate", f"behaves like an evaluated program (fingerprint {result.fingerprint})")

        if self.config.hurdle:
            result.stage = "hurdle"
            task = self.suite.hurdle
            hurdle = self._train_and_score(program, task, list(range(self.suite.hurdle_seeds)), "hurdle", usage)
            result.hurdle_score = hurdle.normalized_mean
            threshold = self.config.hurdle_threshold
            threshold = self.suite.hurdle_threshold if threshold is None else threshold
            if hurdle.normalized_mean < threshold:
                raise StageFailure("rejected", f"hurdle: normalised score {hurdle.normalized_mean:.3f} on "
                                    f"{task.env_id} is below the threshold {threshold:.3f}")

        result.stage = "full"
        seeds = list(range(self.seeds))
        result.tasks = self._run_tasks(program, self.suite.tasks, seeds, "full", usage)
        summarise(result, self.config.fitness, self.config.bootstrap_reps)
        if self.config.held_out and self.suite.held_out:
            result.held_out = self._run_tasks(program, self.suite.held_out, seeds, "held-out", usage)
