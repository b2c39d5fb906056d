"""Where a campaign's evaluations run: here, or on the workers of a Ray cluster.

The campaign asks one evaluator for every evaluation (``evaluate``, ``confirm``,
``fingerprint``) and does not care where it runs:

- :mod:`~evosearch.executor.local`: the cascade evaluator in this process, whose sandboxed
  jobs fork from this machine's warm workers (the default).
- :mod:`~evosearch.executor.ray_pool`: the same evaluator hosted by Ray actors, one per
  evaluation slot, on whatever nodes the cluster has; the driver keeps the search.
- :mod:`~evosearch.executor.worker`: what such an actor runs on its node.
- :mod:`~evosearch.executor.nodes`: ``evosearch doctor`` on every node of a cluster.

Ray is an optional extra and is imported only when a Ray executor is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evosearch.config import CampaignConfig
    from evosearch.executor.ray_pool import RayEvaluator

#: What to install when Ray is asked for and missing: said the same way everywhere.
RAY_MISSING = ("the Ray executor needs the `ray` package, which is not installed: "
               "pip install 'evosearch[ray]' (or pip install 'ray>=2.40')")


class ExecutorError(RuntimeError):
    """The executor cannot start: Ray missing, a cluster that cannot be reached, workers that cannot start."""


class ExecutorLost(ExecutorError):
    """The cluster went away during a run: the campaign pauses with its programs pending."""


def import_ray():
    """The ``ray`` module, or an :class:`ExecutorError` that says what to install."""
    try:
        import ray
    except ImportError as err:
        raise ExecutorError(RAY_MISSING) from err
    return ray


def ray_evaluator(config: CampaignConfig) -> RayEvaluator:
    """A started :class:`~evosearch.executor.ray_pool.RayEvaluator` for ``config`` (its slots ready)."""
    import_ray()
    from evosearch.executor.ray_pool import RayEvaluator

    return RayEvaluator.for_campaign(config)


__all__ = ["RAY_MISSING", "ExecutorError", "ExecutorLost", "import_ray", "ray_evaluator"]
