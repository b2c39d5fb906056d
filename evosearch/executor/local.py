"""The local executor: the program kind's cascade evaluator in this process.

Its sandboxed jobs fork from warm workers on this machine, and ``parallel`` evaluations run at
once in the campaign's threads. The Ray executor builds the very same evaluator on each of its
nodes from :func:`cascade_config`, which is what makes a score mean the same thing there.
"""

from __future__ import annotations

from evosearch import kinds
from evosearch.config import CampaignConfig, resolved_suite
from evosearch.evaluate import CascadeConfig, Evaluator


def cascade_config(config: CampaignConfig) -> CascadeConfig:
    """The cascade's settings for a campaign: its evaluation section, its confirmation seeds."""
    ev = config.evaluation
    return CascadeConfig(
        suite=resolved_suite(config), seeds=ev.seeds, hurdle=ev.hurdle, hurdle_threshold=ev.hurdle_threshold,
        fitness=ev.fitness, smoke_timeout_s=ev.smoke_timeout_s, task_timeout_s=ev.task_timeout_s,
        memory_mb=ev.memory_mb, workers=ev.workers, sandbox=ev.sandbox, device=ev.device,
        confirm_seeds=config.confirm.seeds)


def local_evaluator(config: CampaignConfig) -> Evaluator:
    """The evaluator a campaign uses on this machine (it checks the suite, sandbox and device now)."""
    return kinds.get(config.kind).evaluator(cascade_config(config))
