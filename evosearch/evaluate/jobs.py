"""The evaluation's job catalogue: what a sandboxed process may be asked to do, with typed payloads.

A job is a frozen dataclass (its payload) with a ``name``; the host builds one, the sandbox
carries it across the process boundary as plain JSON, and the catalogue's handler runs it in
the confined child. ``probe`` and ``train`` run a rule's code, but not in the job's own
process: their handlers declare a companion (:mod:`evosearch.train.rule_process`), so the
rule is loaded in a second, more confined process and the job trains with the losses and
gradients it reports; the training loop and the weights it writes stay out of the rule's
reach. ``policy`` runs a policy's ``act`` for the referee. ``score`` and ``random`` never run
candidate code: they are the trusted side, reading only a plain ``.npz`` of weights, so a
candidate cannot forge its score.

The sandbox worker imports this module once before it forks any job (``CATALOGUE``), so torch,
the environments and the harness are warm in every job.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch

from evosearch.sandbox import Job, companion
from evosearch.train import harness, probe, rule_process, score
from evosearch.train.rule import RuleError

torch.set_num_threads(1)
# Subnormal floats (|x| < 1.2e-38) cost x86 CPUs ~100x a normal operation: saturated sigmoids on
# large observations (MiniGrid's object ids) fill the backward pass with them, and flushing them
# to zero made MiniGrid training 2.8x faster. Forked jobs (and their companions) inherit it.
torch.set_flush_denormal(True)

#: The module the sandbox worker preloads and looks handlers up in.
CATALOGUE = __name__


@dataclass(frozen=True)
class EvaluationJob(Job):
    """Base of this catalogue's jobs: a payload that travels as JSON and comes back as itself."""

    catalogue: ClassVar[str] = CATALOGUE
    name: ClassVar[str] = ""

    def payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EvaluationJob:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})


@dataclass(frozen=True)
class ProbeJob(EvaluationJob):
    """Smoke-test a rule and fingerprint its behaviour on the fixed probe batch (runs candidate code)."""

    name: ClassVar[str] = "probe"
    source: str
    filename: str = "<rule>"
    minimal_builtins: bool = True  # False only to test the OS layers alone (the static check is off then too)


@dataclass(frozen=True)
class TrainJob(EvaluationJob):
    """Train every seed with a rule and leave ``weights.npz`` in the scratch directory (runs candidate code)."""

    name: ClassVar[str] = "train"
    source: str
    config: dict[str, Any]  # a TrainConfig as a dict
    seeds: tuple[int, ...]
    filename: str = "<rule>"
    device: str = "cpu"
    minimal_builtins: bool = True

    @classmethod
    def of(cls, source: str, config: harness.TrainConfig, seeds: list[int], filename: str = "<rule>",
           device: str = "cpu", minimal_builtins: bool = True) -> TrainJob:
        return cls(source=source, config=config.to_dict(), seeds=tuple(int(s) for s in seeds), filename=filename,
                   device=device, minimal_builtins=minimal_builtins)


@dataclass(frozen=True)
class ScoreJob(EvaluationJob):
    """Measure trained weights' returns; trusted: it never runs candidate code."""

    name: ClassVar[str] = "score"
    env_id: str
    episodes: int
    weights: str = "weights.npz"  # a file name in the job's scratch directory
    seeds: int | None = None  # how many seeds the weights must hold (None: whatever they hold)
    hidden: int | None = None  # the hidden width they must have (None: read from them)
    seed: int = 1
    backend: str = "auto"
    device: str = "cpu"


@dataclass(frozen=True)
class RandomJob(EvaluationJob):
    """Returns of uniform random play, the normalisation's floor; trusted."""

    name: ClassVar[str] = "random"
    env_id: str
    episodes: int
    seed: int = 0
    backend: str = "auto"


@dataclass(frozen=True)
class PolicyJob(EvaluationJob):
    """Answer the referee's observation batches with a policy's ``act`` (runs candidate code)."""

    name: ClassVar[str] = "policy"
    source: str
    obs_dim: int
    filename: str = "<policy>"
    minimal_builtins: bool = True  # False only to test the OS layers alone (the static check is off then too)


# -- handlers: run inside the confined job process ------------------------------------------------


def _remote_rule(job: ProbeJob | TrainJob) -> rule_process.RemoteRule:
    """The rule, loaded in this job's companion process: this process never runs its code."""
    sock, pid = companion.channel()
    return rule_process.RemoteRule(sock, pid, job.source, job.filename, minimal_builtins=job.minimal_builtins)


def _probe(job: ProbeJob, scratch: str) -> dict:
    loaded = _remote_rule(job)
    report = probe.probe(loaded)
    loaded.close()
    return report


def _train(job: TrainJob, scratch: str) -> dict:
    loaded = _remote_rule(job)
    result = harness.train(loaded, harness.TrainConfig(**job.config), [int(s) for s in job.seeds],
                           device=job.device)
    loaded.close()  # and reaped: nothing of the candidate runs while the weights are written
    np.savez(os.path.join(scratch, "weights.npz"), **result.weights)
    return {
        "curve_steps": result.curve_steps,
        "curves": result.curves,
        "env_steps": result.env_steps,
        "wall_s": result.wall_s,
        "used_vmap": result.used_vmap,
        "backend": result.backend,
        "device": result.device,
    }


def _score(job: ScoreJob, scratch: str) -> dict:
    weights = score.load_weights(job.weights)
    returns = score.score_weights(weights, job.env_id, int(job.episodes), int(job.seed), job.hidden,
                                  seeds=job.seeds, backend=job.backend, device=job.device)
    return {"returns": [float(r) for r in returns]}


def _random(job: RandomJob, scratch: str) -> dict:
    returns = score.random_returns(job.env_id, int(job.episodes), int(job.seed), backend=job.backend)
    return {"returns": [float(r) for r in returns]}


def _policy(job: PolicyJob, scratch: str) -> dict:
    from evosearch.evaluate import referee

    act = referee.load_policy(job.source, job.filename, minimal_builtins=job.minimal_builtins)
    return {"batches": referee.serve(act, int(job.obs_dim))}


@dataclass(frozen=True)
class Handler:
    """A job's handler; ``companion`` (if set) serves the candidate's code from a process of its own.

    ``candidate_faults``: with a companion, the job's own process runs only the harness, and the
    candidate's faults reach it as these exceptions (a rule's error, the companion's memory
    error); anything else raised there is the harness's or the machine's (see ``jobrun.run``).
    """

    job: type[EvaluationJob]
    run: Callable[[Any, str], dict] = field(repr=False)
    companion: Callable[[Any], None] | None = field(default=None, repr=False)
    candidate_faults: tuple[type[BaseException], ...] | None = None

    def __call__(self, payload: dict, scratch: str) -> dict:
        return self.run(self.job.from_payload(payload), scratch)


#: How a rule's faults reach the job that trains with it: its errors (raised by its companion or
#: found in what it answered), and running out of memory (the memory-limit outcome either way).
RULE_FAULTS: tuple[type[BaseException], ...] = (RuleError, MemoryError)

#: Job name -> handler; the sandbox worker dispatches on it.
JOBS: dict[str, Handler] = {h.job.name: h for h in (
    Handler(ProbeJob, _probe, rule_process.serve, RULE_FAULTS),
    Handler(TrainJob, _train, rule_process.serve, RULE_FAULTS),
    Handler(ScoreJob, _score), Handler(RandomJob, _random), Handler(PolicyJob, _policy),
)}
