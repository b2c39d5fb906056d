"""The cascade's settings and the contract every kind's evaluator keeps.

A cascade runs cheap stages first (static check, smoke, hurdle) so a search wastes little on
broken candidates, and each stage that ends an evaluation says why, for the proposer to read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from evosearch.envs.suites import Suite
from evosearch.evaluate.result import EvalResult
from evosearch.program import Program
from evosearch.sandbox import Mode

#: Asked with a candidate's behavioural fingerprint as soon as it is known: True ends the
#: evaluation there as a ``duplicate`` (a search reuses the result of a program that behaves the same).
SkipIf = Callable[[str], bool]


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
    # Off only to test the OS layers alone: turns off the static check and the rule's minimal builtins.
    static_check: bool = True
    sandbox: str | None = None  # a mode of evosearch.sandbox.modes; None: EVOSEARCH_SANDBOX or "auto"
    device: str = "auto"  # auto, cpu, cuda or cuda:N (evosearch.devices)
    # Confirmation (re-evaluation of a candidate that did well): seeds per task, None: twice the
    # search's; its seeds start here, so they are never the ones the search score was measured on.
    confirm_seeds: int | None = None
    confirm_seed_offset: int = 1000


class Evaluator(Protocol):
    """Scores programs of one kind on one suite. ``evaluate`` never raises for a bad program."""

    config: CascadeConfig
    suite: Suite
    sandbox: Mode

    def evaluate(self, program: Program, skip_if: SkipIf | None = None) -> EvalResult: ...

    def fingerprint(self, program: Program) -> str | None:
        """The behavioural fingerprint alone (the cascade's probe step); None when the probe fails."""
        ...
