"""Evaluating policy programs: static check, then the referee plays the policy's episodes.

A policy (``act(obs) -> actions``) is scored with no training: the evaluator owns
the environment and the return accounting and asks the sandboxed candidate for actions over a
socket (:mod:`evosearch.evaluate.referee`), so a policy can neither touch the environment nor its score.
Scores are normalised per task as for rules, against random play and against the PPO-clip
network trained by this harness, with ``seeds x eval_episodes`` episodes, and summarised by
the IQM over seeds with a bootstrap CI. The result record is the rule evaluator's.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from evosearch import sandbox
from evosearch.envs.backend import make_env
from evosearch.envs.spaces import spaces
from evosearch.envs.suites import Suite, Task, load_suite
from evosearch.evaluate.cascade import CascadeConfig, SkipIf
from evosearch.evaluate.jobs import PolicyJob
from evosearch.evaluate.referee import (
    Channel,
    Listener,
    PolicyError,
    PolicyGone,
    PolicyTimeout,
    check_actions,
)
from evosearch.evaluate.result import EvalResult, summarise, task_result
from evosearch.kinds.policy import KIND
from evosearch.program import Program, static_check
from evosearch.sandbox import JobOutcome, Limits, run_job
from evosearch.sandbox.runner import RESULT_FILE
from evosearch.train.score import first_episode_returns, uniform_random_actions

POLICY_SUITE = KIND.default_suite
ENV_SEED = 30_000_001  # every candidate meets the same initial states (common random numbers)
PROBE_SEED = 40_000_003
CONNECT_TIMEOUT_S = 30.0
#: How long a job that hung up may take to end by itself (and report its own error, a traceback
#: from ``act``) before it is stopped: ending takes milliseconds, so this is only slack.
HANGUP_GRACE_S = 2.0


@dataclass
class PlayRecord:
    """What the referee measured; everything here comes from the evaluator's side."""

    returns: np.ndarray | None = None  # [seeds], mean over each seed's episodes
    fingerprint: str | None = None
    smoothness: float = float("nan")  # mean action change per step (0: constant actions)
    steps: int = 0
    error: PolicyError | None = None
    duplicate: bool = False


def probe_observations(env_id: str, backend: str, count: int = 256) -> np.ndarray:
    """Observations from random play on ``env_id``, the same every time: the fingerprint's probe."""
    env = make_env(env_id, 16, seed=PROBE_SEED, backend=backend)
    generator = torch.Generator().manual_seed(PROBE_SEED)
    env.reset()
    seen: list[np.ndarray] = []
    while sum(len(o) for o in seen) < count:
        obs = env.step(uniform_random_actions(env, generator)).obs
        seen.append(obs.numpy().copy())
    env.close()
    return np.concatenate(seen)[:count]


def _fingerprint(actions: np.ndarray) -> str:
    rounded = np.round(actions.astype(np.float64), 4)
    return hashlib.sha256(rounded.tobytes() + str(rounded.shape).encode()).hexdigest()[:32]


@dataclass
class RefereeSession:
    """One policy job's referee: the ``Session`` the sandbox runner drives while the job runs.

    Every wait it makes ends by ``wall_s`` after the job started at the latest (the job's own
    wall-clock limit), so the runner's call never outlives the job, whatever the policy does.
    """

    task: Task
    seeds: int
    episodes: int
    act_timeout_s: float
    skip_if: SkipIf | None = None  # asked with the fingerprint: True ends the play there
    wall_s: float = math.inf
    record: PlayRecord = field(default_factory=PlayRecord)

    def __post_init__(self) -> None:
        self.env = make_env(self.task.env_id, self.seeds * self.episodes, seed=ENV_SEED, backend=self.task.backend)
        self.space = spaces(self.task.env_id)
        self.probe = probe_observations(self.task.env_id, self.env.backend)
        self.listener: Listener | None = None
        self.result_path: str | None = None

    @property
    def obs_dim(self) -> int:
        return self.env.spec.obs_dim

    def prepare(self, scratch: str) -> list[str]:
        self.listener = Listener(scratch)
        self.result_path = os.path.join(scratch, RESULT_FILE)
        return [self.listener.path]

    def _job_ended(self) -> bool:
        """Whether the job has written its result, as it does when it ends (a plain check: no file is read).

        Asked only while waiting for the job to connect: a job that failed to load never will.
        """
        return self.result_path is not None and os.path.lexists(self.result_path)

    def _ask(self, channel: Channel, obs: np.ndarray) -> np.ndarray:
        channel.send_observations(obs, self.act_timeout_s)
        raw = channel.receive_actions(len(obs), self.act_timeout_s)
        return check_actions(raw, len(obs), self.space)

    def run(self) -> bool:
        """Play every episode; True (kill the job) when the policy failed its part and is still running."""
        until = time.monotonic() + self.wall_s
        channel = None
        try:
            channel = self.listener.accept(CONNECT_TIMEOUT_S, until, self._job_ended)
            return self._play_episodes(channel)
        except PolicyGone as err:
            self.record.error = err
            return self._stop_after_hangup(channel)
        except PolicyError as err:
            self.record.error = err
            return True
        finally:
            if channel is not None:
                channel.close()
            self.listener.close()
            self.env.close()

    def _stop_after_hangup(self, channel: Channel | None) -> bool:
        """Whether to stop a job that hung up: yes, unless it is seen to end within the grace.

        A job that ends by itself (``act`` raised) reports its own error, which says more than ours;
        one that lives on (it closed its end and sleeps) is stopped after the grace, not at its
        wall-clock limit. A job that cannot be watched (it never connected, or the kernel has no
        pidfd) is given the grace and then stopped all the same: a stop that comes after the job
        has ended is ignored by the worker, and a sign the job could fake (its result file) is no
        reason to let it run on.
        """
        if channel is not None and channel.pidfd is not None:
            return not channel.peer_ended(HANGUP_GRACE_S)
        time.sleep(HANGUP_GRACE_S)
        return True

    def _play_episodes(self, channel: Channel) -> bool:
        """The probe, then every episode; True when the fingerprint's ``skip_if`` ended the play early."""
        self.record.fingerprint = _fingerprint(self._ask(channel, self.probe))
        if self.skip_if is not None and self.skip_if(self.record.fingerprint):
            self.record.duplicate = True
            return True  # behaves like an evaluated policy: no need to play its episodes
        previous: list[np.ndarray] = []
        changes: list[float] = []
        span = None if self.space.discrete else np.maximum(self.space.action_high - self.space.action_low, 1e-6)

        def choose(obs: torch.Tensor) -> torch.Tensor:
            actions = self._ask(channel, obs.numpy())
            if previous:
                delta = actions != previous[0] if span is None else np.abs(actions - previous[0]) / span
                changes.append(float(np.mean(delta)))
            previous[:] = [actions]
            self.record.steps += 1
            return torch.from_numpy(actions)

        returns = first_episode_returns(self.env, choose)
        self.record.returns = returns.reshape(self.seeds, self.episodes).mean(1)
        self.record.smoothness = float(np.mean(changes)) if changes else 0.0
        return False


class PolicyEvaluator:
    """Runs the policy cascade (static check, then the full suite task) on one suite."""

    def __init__(self, config: CascadeConfig | None = None, suite: Suite | None = None) -> None:
        self.config = config or CascadeConfig(suite=POLICY_SUITE)
        self.suite = suite or load_suite(self.config.suite)
        self.seeds = self.config.seeds or self.suite.seeds
        for task in self.suite.tasks:
            self.suite.calibrated(task.env_id)
        self.sandbox = sandbox.ensure(self.config.sandbox)
        KIND.check_device(self.config.device)  # DeviceError now: a policy is played on the CPU

    def task_for(self, env_id: str | None) -> Task:
        for task in self.suite.tasks:
            if task.env_id == env_id:
                return task
        names = ", ".join(t.env_id for t in self.suite.tasks)
        if env_id is None:
            raise ValueError(f'the policy declares no ENV_ID = "..." at top level (suite {self.suite.name!r} '
                             f"has {names})")
        raise ValueError(f"suite {self.suite.name!r} has no task {env_id} (it has {names})")

    def evaluate(self, program: Program, skip_if: SkipIf | None = None) -> EvalResult:
        """Evaluate ``program`` and return its record; never raises for a bad program."""
        start = time.monotonic()
        result = EvalResult(outcome="ok", stage="static", suite=self.suite.name, fitness="iqm",
                            sandbox=self.sandbox.summary())
        issues = static_check(program.source, KIND.name) if self.config.static_check else []
        env_id = KIND.env_id(program.source)
        try:
            task = self.task_for(env_id)
        except ValueError as err:
            issues.append(str(err))
        if issues:
            result.outcome, result.error = "rejected", "static check: " + "; ".join(str(i) for i in issues)
            result.wall_s = time.monotonic() - start
            return result
        result.stage = "full"
        job, session = self._play(program, task, skip_if)
        result.cpu_s, result.peak_rss_mb = job.cpu_s, job.peak_rss_mb
        record = session.record
        result.fingerprint = record.fingerprint
        if record.duplicate:
            result.outcome, result.error = "duplicate", f"behaves like an evaluated program ({record.fingerprint})"
        else:
            self._judge(result, job, record)
        if result.outcome == "ok":
            task_record = task_result(task.env_id, [float(r) for r in record.returns],
                                      self.suite.calibrated(task.env_id), {}, job.wall_s, self.config.bootstrap_reps)
            task_record.backend, task_record.device = session.env.backend, "cpu"
            result.tasks = {task.env_id: task_record}
            summarise(result, "iqm", self.config.bootstrap_reps)
            result.behaviour = {"action_smoothness": record.smoothness}
        result.wall_s = time.monotonic() - start
        return result

    def _play(self, program: Program, task: Task, skip_if: SkipIf | None) -> tuple[JobOutcome, RefereeSession]:
        """Run the policy's job with a referee session playing ``task``; ``skip_if`` may end it after the probe."""
        limits = Limits(wall_s=self.config.task_timeout_s, memory_mb=self.config.memory_mb)
        session = RefereeSession(task, self.seeds, self.suite.eval_episodes, act_timeout_s=self.config.smoke_timeout_s,
                                 skip_if=skip_if, wall_s=limits.wall_s)
        job = run_job(PolicyJob(source=program.source, obs_dim=session.obs_dim, filename=program.name,
                                 minimal_builtins=self.config.static_check), limits,
                      session=session)
        return job, session

    def fingerprint(self, program: Program) -> str | None:
        """The policy's behavioural fingerprint (its actions on the probe batch) without playing its episodes.

        None when it has none to give: it names no task of the suite, or fails before answering.
        """
        try:
            task = self.task_for(KIND.env_id(program.source))
        except ValueError:
            return None
        _, session = self._play(program, task, skip_if=lambda fingerprint: True)
        return session.record.fingerprint

    @staticmethod
    def _judge(result: EvalResult, job: JobOutcome, record: PlayRecord) -> None:
        """The outcome from what the referee saw and how the job ended; the job's own error wins."""
        tail = ((job.error or {}).get("traceback", "") + "\n" + job.output_tail).strip()[-4000:]
        if job.status == "error":  # act raised, or the module failed to load
            err = job.error or {}
            result.outcome = "candidate_error"
            result.error = f"policy: {err.get('type', 'Error')}: {err.get('message', '')}"
            result.output_tail = tail
        elif isinstance(record.error, PolicyTimeout) or job.status == "timeout":
            result.outcome = "timeout"  # the referee's reason, unless the job's own limit came first
            reason = record.error if isinstance(record.error, PolicyTimeout) else None
            result.error = f"policy: {reason or (job.error or {}).get('message', 'ran past its wall-clock limit')}"
        elif isinstance(record.error, PolicyGone) or job.status in ("killed", "crashed"):
            result.outcome = "candidate_error" if job.status != "killed" else "killed"
            result.error = f"policy: {record.error or job.error.get('message', 'the job ended')}"
            result.output_tail = tail
        elif record.error is not None:
            result.outcome, result.error = "candidate_error", f"policy: {record.error}"
        elif record.returns is None:
            result.outcome, result.error = "sandbox_failure", f"policy job ended with {job.status}: {job.error}"
