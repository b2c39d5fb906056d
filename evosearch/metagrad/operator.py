"""Metatune as a campaign operator: every N evaluations, an elite's constants tuned by meta-gradients.

It is a deferred operator (its work takes minutes and runs beside the evaluations, like a
language model's), chosen by the bandit like any other when it applies: when N evaluations
have passed since its last run and the parent is an elite it has not tuned before. Its child is
the parent's source with new numbers in it; the cascade scores it, so the bandit learns from
metatune's children exactly as from any operator's.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

from evosearch.config import MetatuneConfig
from evosearch.metagrad.constants import LiftError, lift
from evosearch.metagrad.run import MetatuneError, MetatuneSettings, TuneResult, metatune
from evosearch.metagrad.tuner import TunerConfig
from evosearch.propose.base import DeferredOperator, Parent, Proposal, ProposalError, checked_child
from evosearch.train.harness import TrainConfig

NAME = "metatune"


def settings_from(config: MetatuneConfig, *, meta_steps: int | None = None) -> MetatuneSettings:
    """The run settings a campaign's ``metatune:`` section (or the CLI's options) describe."""
    tuner = TunerConfig(inner_steps=config.inner_steps, population=config.population, method=config.method,
                        meta_lr=config.meta_lr, es_pairs=config.es_pairs, es_sigma=config.es_sigma)
    return MetatuneSettings(meta_steps=meta_steps or config.meta_steps, tuner=tuner, only=tuple(config.only),
                            device=config.device)


def describe(result: TuneResult) -> str:
    """One line for lineage views: which constants moved, from what to what."""
    moved = [f"{c['name']} {c['before']:.4g}->{c['after']:.4g}" for c in result.changes()
             if abs(c["after"] - c["before"]) > 1e-12 * max(1.0, abs(c["before"]))]
    return f"metatune ({len(result.records)} meta-steps): " + (", ".join(moved) or "no constant moved")


class MetatuneOperator(DeferredOperator):
    """Tunes one elite at a time; ``evaluations`` reads the campaign's count (for ``every``)."""

    name = NAME
    arity = 1

    def __init__(self, config: MetatuneConfig, tasks: Sequence[TrainConfig], evaluations: Callable[[], int],
                 tuned: set[int] | None = None, last_run_at: int = 0) -> None:
        self.config, self.tasks, self.evaluations = config, list(tasks), evaluations
        self.settings = settings_from(config)
        self.tuned = set(tuned or ())  # parents already tuned (from the archive on resume)
        self.last_run_at = last_run_at
        self._busy = threading.Event()

    def applies(self, parents: list[Parent]) -> bool:
        if self._busy.is_set() or not parents or parents[0].program_id is None:
            return False
        if parents[0].kind != "rule" or parents[0].program_id in self.tuned:
            return False
        if self.evaluations() - self.last_run_at < self.config.every:
            return False
        try:
            lift(parents[0].source, only=self.config.only or None)
        except LiftError:
            return False
        return True

    def prepare(self, parents: list[Parent], inspirations: list[Parent],
                rng: random.Random) -> Callable[[], Proposal] | None:
        parent = parents[0]
        assert parent.program_id is not None
        self._busy.set()
        self.tuned.add(parent.program_id)
        self.last_run_at = self.evaluations()

        def work() -> Proposal:
            try:
                result = metatune(parent.source, self.tasks, self.settings, filename=f"program-{parent.program_id}")
            except MetatuneError as err:
                raise ProposalError(f"metatune: {err}") from err
            if result.child_source == parent.source:
                raise ProposalError("metatune: no constant moved enough to change the source")
            child = checked_child(parent.source, result.child_source)
            return Proposal(source=child, operator=NAME, parent_ids=(parent.program_id,), note=describe(result),
                            meta={"metatune": {"changes": result.changes(), "tasks": result.tasks}})
        return work

    def settle(self, work: Callable[[], Proposal], outcome: Proposal | ProposalError) -> None:
        self._busy.clear()

    def may_come_back(self) -> bool:
        return self._busy.is_set()


def campaign_operator(config: MetatuneConfig, suite_name: str, evaluations: Callable[[], int],
                      tuned: set[int]) -> MetatuneOperator:
    """The operator a campaign with ``metatune.every > 0`` adds; ``tuned`` are parents tuned in earlier runs."""
    from evosearch.envs.suites import load_suite
    from evosearch.metagrad.run import tuning_tasks

    tasks = tuning_tasks(load_suite(suite_name), config.inner_steps)
    return MetatuneOperator(config, tasks, evaluations, tuned, last_run_at=evaluations() if tuned else 0)
