"""Tune a rule's constants in sandboxed jobs and write the tuned child: the host's side of metatune.

The host lifts the constants (reading the source, never running it), runs the tuning as a
series of sandboxed jobs (:mod:`evosearch.metagrad.jobs`), checks every number they report,
and writes the last constants into the rule's own source. What comes out is a child program
like any operator's; its score is whatever the cascade then measures.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from evosearch.envs.native import NATIVE_ENVS
from evosearch.envs.suites import Suite
from evosearch.evaluate.result import StageFailure, failure_from_job
from evosearch.evaluate.rules import train_config
from evosearch.metagrad.constants import LiftedRule, lift, write_back
from evosearch.metagrad.jobs import STATE_FILE, MetatuneJob
from evosearch.metagrad.tuner import TunerConfig
from evosearch.sandbox import runner
from evosearch.sandbox.runner import Limits
from evosearch.train.harness import TrainConfig

#: A tuning job's wall-clock limit: a few meta-steps take seconds to a minute on CPU.
JOB_WALL_S = 900.0


class MetatuneError(Exception):
    """Tuning could not run or did not finish: the message says why; ``outcome`` classifies it."""

    def __init__(self, message: str, outcome: str = "candidate_error", tail: str = "") -> None:
        super().__init__(message)
        self.outcome, self.tail = outcome, tail


@dataclass(frozen=True)
class MetatuneSettings:
    """One tuning run: how long, how the constants move, where the agents train."""

    meta_steps: int = 60
    tuner: TunerConfig = TunerConfig()
    steps_per_job: int = 10  # meta-steps per sandboxed job (progress is reported between jobs)
    only: tuple[str, ...] = ()  # tune only these constants (names as `archive diff` shows them); () = all
    device: str = "cpu"
    memory_mb: int = 4096
    minimal_builtins: bool = True

    def __post_init__(self) -> None:
        if self.meta_steps < 1 or self.steps_per_job < 1:
            raise ValueError("meta_steps and steps_per_job must be at least 1")


@dataclass
class TuneResult:
    """The tuned child and how it got there."""

    lifted: LiftedRule
    child_source: str
    before: list[float]
    after: list[float]
    records: list[dict] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def changes(self) -> list[dict]:
        return [{"name": c.name, "before": b, "after": a, "log_space": c.log_space}
                for c, b, a in zip(self.lifted.constants, self.before, self.after, strict=True)]


def tuning_tasks(suite: Suite, inner_steps: int) -> list[TrainConfig]:
    """The suite's training tasks that have torch-native environments (the unrolled updates need them)."""
    tasks = [train_config(t) for t in suite.tasks if t.env_id in NATIVE_ENVS]
    if not tasks:
        raise MetatuneError(f"suite {suite.name!r} has no task with a torch-native environment "
                            f"(native: {', '.join(sorted(NATIVE_ENVS))})", outcome="config_error")
    for task in tasks:
        updates = task.update_epochs * task.num_minibatches
        if inner_steps > updates:
            raise MetatuneError(f"inner_steps {inner_steps} is more than the {updates} updates of one iteration "
                                f"on {task.env_id} ({task.update_epochs} epochs x {task.num_minibatches} "
                                "minibatches)", outcome="config_error")
    return tasks


def metatune(source: str, tasks: Sequence[TrainConfig], settings: MetatuneSettings, *,
             on_record: Callable[[dict], None] | None = None, filename: str = "<rule>") -> TuneResult:
    """Tune ``source``'s constants on ``tasks`` and return the child with the tuned values written in.

    Raises :class:`MetatuneError` when the source has nothing to tune, or a job fails (the
    program's fault, a timeout, or the sandbox's), with the job's output tail.
    """
    try:
        lifted = lift(source, only=settings.only or None)
    except ValueError as err:
        raise MetatuneError(f"nothing to tune: {err}", outcome="rejected") from err
    initial = [c.value for c in lifted.constants]
    limits = Limits(wall_s=JOB_WALL_S, memory_mb=settings.memory_mb, gpu=settings.device != "cpu")
    _prepare_device(settings.device)
    records: list[dict] = []
    state_dir: str | None = None
    wall = 0.0
    try:
        for stream in range(math.ceil(settings.meta_steps / settings.steps_per_job)):
            steps = min(settings.steps_per_job, settings.meta_steps - len(records))
            job = MetatuneJob(parametric_source=lifted.parametric_source, initial=tuple(initial),
                              log_space=tuple(c.log_space for c in lifted.constants),
                              tasks=tuple(t.to_dict() for t in tasks), tuner=asdict(settings.tuner), steps=steps,
                              stream=stream, resume=state_dir is not None, device=settings.device,
                              filename=filename, minimal_builtins=settings.minimal_builtins)
            inputs = {STATE_FILE: f"{state_dir}/{STATE_FILE}"} if state_dir else None
            try:
                outcome = runner.run_job(job, limits, keep_scratch=True, inputs=inputs)
            except runner.JobInputError as err:  # the previous job, which ran the candidate, left no plain state file
                raise MetatuneError(f"metatune job {stream}: its state file was refused ({err})") from err
            _remove(state_dir)
            state_dir = outcome.scratch
            wall += outcome.wall_s
            if outcome.status != "ok":
                failure: StageFailure = failure_from_job(outcome, f"metatune job {stream + 1}")
                raise MetatuneError(failure.message, failure.outcome, failure.tail)
            for record in checked_records(outcome.result, len(initial), steps, start=len(records)):
                records.append(record)
                if on_record is not None:
                    on_record(record)
    finally:
        _remove(state_dir)
    after = records[-1]["values"]
    return TuneResult(lifted, write_back(lifted, after), initial, after, records, [t.env_id for t in tasks], wall)


def checked_records(result: object, constants: int, steps: int, start: int) -> list[dict]:
    """The job's per-step records, as plain finite numbers; anything else is the job's fault.

    The job ran the candidate's code, so what it wrote is data to check, not to trust: the
    values end up in a program's source (as number literals the host formats itself).
    """
    def bad(why: str) -> MetatuneError:
        return MetatuneError(f"the metatune job's report is malformed: {why}")

    raw = result.get("records") if isinstance(result, dict) else None
    if not isinstance(raw, list) or len(raw) != steps:
        raise bad(f"expected {steps} records")
    out = []
    for i, record in enumerate(raw):
        if not isinstance(record, dict):
            raise bad(f"record {i} is not an object")
        values, gradient, by_es = record.get("values"), record.get("gradient"), record.get("by_es")
        for name, seq in (("values", values), ("gradient", gradient)):
            if not isinstance(seq, list) or len(seq) != constants or not all(_finite(x) for x in seq):
                raise bad(f"record {i}: {name} must be {constants} finite numbers")
        if not isinstance(by_es, list) or len(by_es) != constants or not all(isinstance(x, bool) for x in by_es):
            raise bad(f"record {i}: by_es must be {constants} booleans")
        returns = record.get("returns")
        if not isinstance(returns, dict) or not all(isinstance(k, str) and (v is None or _finite(v))
                                                    for k, v in returns.items()):
            raise bad(f"record {i}: returns must map task names to numbers")
        out.append({"step": start + i + 1, "values": [float(x) for x in values],
                    "gradient": [float(x) for x in gradient], "by_es": list(by_es),
                    "returns": {k[:100]: None if v is None else float(v) for k, v in list(returns.items())[:16]},
                    "objective_gain": float(record["objective_gain"]) if _finite(record.get("objective_gain")) else 0.0,
                    "seconds": float(record["seconds"]) if _finite(record.get("seconds")) else 0.0,
                    "replaced": int(record["replaced"]) if isinstance(record.get("replaced"), int) else 0})
    return out


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _prepare_device(device: str) -> None:
    """On a GPU, jobs run in the sandbox mode in which CUDA starts (decided once per process)."""
    if device == "cpu":
        return
    from evosearch.sandbox import gpu

    gpu.sandbox_for_gpu(device)


def _remove(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["MetatuneError", "MetatuneSettings", "TuneResult", "checked_records", "metatune", "tuning_tasks"]
