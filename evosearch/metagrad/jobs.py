"""The sandbox catalogue of metatune: a job that runs some meta-steps of a rule's tuning.

Tuning executes the candidate's code (its loss, differentiated twice), so it runs confined
like any training. Unlike a training job, the rule is loaded in the job's own process: a
second-order gradient cannot cross a process boundary cheaply, and nothing the job writes is
trusted anyway. The host reads back a list of numbers (the constants and their trajectory),
checks them, and writes them into the source itself; the tuned child's score then comes from
the normal cascade and trusted scorer, never from here.

A run is cut into jobs of a few meta-steps each, the tuner's state carried from one to the next
as a plain ``.npz`` in the job's scratch directory: the host prints progress between jobs, a
Ctrl-C loses at most one job's work, and no job runs for long.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch

from evosearch.metagrad.tuner import MetaTuner, TunerConfig
from evosearch.sandbox import Job
from evosearch.train import harness
from evosearch.train.rule import load_rule

torch.set_num_threads(1)
# Subnormal floats (|x| < 1.2e-38) cost x86 CPUs ~100x a normal operation: saturated sigmoids on
# large observations (MiniGrid's object ids) fill the backward pass with them, and flushing them
# to zero made MiniGrid training 2.8x faster. Forked jobs (and their companions) inherit it.
torch.set_flush_denormal(True)

CATALOGUE = __name__
STATE_FILE = "state.npz"


@dataclass(frozen=True)
class MetatuneJob(Job):
    """Run ``steps`` meta-steps from the state in ``state.npz`` (if given) and leave the new state there."""

    catalogue: ClassVar[str] = CATALOGUE
    name: ClassVar[str] = "metatune"
    parametric_source: str
    initial: tuple[float, ...]
    log_space: tuple[bool, ...]
    tasks: tuple[dict[str, Any], ...]  # TrainConfig dicts
    tuner: dict[str, Any] = field(default_factory=dict)  # a TunerConfig as a dict
    steps: int = 1
    stream: int = 0  # which job of the run this is: its random streams differ from the others'
    resume: bool = False  # state.npz was handed in
    device: str = "cpu"
    filename: str = "<rule>"
    minimal_builtins: bool = True

    def payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> MetatuneJob:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in payload.items() if k in known}
        for key in ("initial", "log_space", "tasks"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def _metatune(job: MetatuneJob, scratch: str) -> dict:
    constants = [torch.tensor(float(v)) for v in job.initial]  # what a function called at import reads
    rule = load_rule(job.parametric_source, job.filename, minimal_builtins=job.minimal_builtins,
                     preset={"CONSTANTS": constants})
    tuner = MetaTuner(rule, list(job.initial), list(job.log_space),
                      [harness.TrainConfig(**t) for t in job.tasks], TunerConfig(**job.tuner),
                      device=job.device, stream=job.stream)
    path = os.path.join(scratch, STATE_FILE)
    if job.resume:
        with np.load(path, allow_pickle=False) as saved:
            tuner.load_state(dict(saved))
    records = []
    try:
        for _ in range(int(job.steps)):
            records.append(tuner.step().to_dict())
    finally:
        tuner.close()
    np.savez(path, **tuner.state())
    return {"records": records}


def _handle(payload: dict, scratch: str) -> dict:
    return _metatune(MetatuneJob.from_payload(payload), scratch)


#: Job name -> handler; the sandbox worker dispatches on it.
JOBS = {MetatuneJob.name: _handle}
