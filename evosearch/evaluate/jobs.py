"""The evaluation's job catalogue: what a sandboxed process may be asked to do, with typed payloads.

A job is a frozen dataclass (its payload) with a ``name``; the host builds one, the sandbox
carries it across the process boundary as plain JSON, and the catalogue's handler runs it in
the confined child. ``probe``, ``train`` and ``policy`` run candidate code. ``score`` and
``random`` never do: they are the trusted side, reading only a plain ``.npz`` of weights, so a
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

from evosearch.sandbox import Job
from evosearch.train import harness, probe, rule, score

torch.set_num_threads(1)

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


@dataclass(frozen=True)
class TrainJob(EvaluationJob):
    """Train every seed with a rule and leave ``weights.npz`` in the scratch directory (runs candidate code)."""

    name: ClassVar[str] = "train"
    source: str
    config: dict[str, Any]  # a TrainConfig as a dict
    seeds: tuple[int, ...]
    filename: str = "<rule>"
    device: str = "cpu"

    @classmethod
    def of(cls, source: str, config: harness.TrainConfig, seeds: list[int], filename: str = "<rule>",
           device: str = "cpu") -> TrainJob:
        return cls(source=source, config=config.to_dict(), seeds=tuple(int(s) for s in seeds), filename=filename,
                   device=device)


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


# -- handlers: run inside the confined job process ------------------------------------------------


def _probe(job: ProbeJob, scratch: str) -> dict:
    return probe.probe(rule.load_rule(job.source, job.filename))


def _train(job: TrainJob, scratch: str) -> dict:
    loaded = rule.load_rule(job.source, job.filename)
    result = harness.train(loaded, harness.TrainConfig(**job.config), [int(s) for s in job.seeds],
                           device=job.device)
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

    act = referee.load_policy(job.source, job.filename)
    return {"batches": referee.serve(act, int(job.obs_dim))}


@dataclass(frozen=True)
class Handler:
    job: type[EvaluationJob]
    run: Callable[[Any, str], dict] = field(repr=False)

    def __call__(self, payload: dict, scratch: str) -> dict:
        return self.run(self.job.from_payload(payload), scratch)


#: Job name -> handler; the sandbox worker dispatches on it.
JOBS: dict[str, Handler] = {h.job.name: h for h in (
    Handler(ProbeJob, _probe), Handler(TrainJob, _train), Handler(ScoreJob, _score), Handler(RandomJob, _random),
    Handler(PolicyJob, _policy),
)}
