"""evosearch: search for reinforcement-learning algorithms written as small Python programs.

The Python API (:mod:`evosearch.api`) is importable from here: ``evaluate_file``, ``run_campaign``,
``open_archive`` and the configs they take. The names are imported on first use, so ``import
evosearch`` stays light: a sandbox job process imports this package and should hold only what its
job needs (not torch's evaluators, the campaign loop or scipy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_WHERE = {
    "evaluate_file": "evosearch.api", "run_campaign": "evosearch.api", "open_archive": "evosearch.api",
    "CascadeConfig": "evosearch.evaluate.cascade", "EvalResult": "evosearch.evaluate.result",
    "CampaignConfig": "evosearch.config", "EvaluationConfig": "evosearch.config", "ArchiveConfig": "evosearch.config",
    "BudgetConfig": "evosearch.config", "ConfigError": "evosearch.config",
    "RunSummary": "evosearch.campaign", "BudgetReached": "evosearch.campaign",
}

if TYPE_CHECKING:
    from evosearch.api import evaluate_file, open_archive, run_campaign
    from evosearch.campaign import BudgetReached, RunSummary
    from evosearch.config import ArchiveConfig, BudgetConfig, CampaignConfig, ConfigError, EvaluationConfig
    from evosearch.evaluate.cascade import CascadeConfig
    from evosearch.evaluate.result import EvalResult


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = ["ArchiveConfig", "BudgetConfig", "BudgetReached", "CampaignConfig", "CascadeConfig", "ConfigError",
           "EvalResult", "EvaluationConfig", "RunSummary", "evaluate_file", "open_archive", "run_campaign"]
