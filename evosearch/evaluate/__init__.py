"""Evaluation: the one home of how a program becomes a score.

- :mod:`~evosearch.evaluate.result`: outcomes, stages, the per-task and whole-evaluation records.
- :mod:`~evosearch.evaluate.cascade`: the cascade's settings and the evaluator contract.
- :mod:`~evosearch.evaluate.rules`: rules, trained in the sandbox and scored by trusted jobs.
- :mod:`~evosearch.evaluate.policies` and :mod:`~evosearch.evaluate.referee`: policies, played by a referee.
- :mod:`~evosearch.evaluate.jobs`: the job catalogue the sandbox runs, with typed payloads.
- :mod:`~evosearch.evaluate.calibrate`: a suite's normalisation constants.

Which evaluator a program gets is its kind's choice (``evosearch.kinds``). The names below are
imported on first use: a sandbox worker imports ``evosearch.evaluate.jobs``, and a job process
should hold only what its jobs need (not the evaluators, the suites or scipy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "CascadeConfig": "cascade", "Evaluator": "cascade", "SkipIf": "cascade",
    "OUTCOMES": "result", "STAGES": "result", "EvalResult": "result", "TaskResult": "result",
    "task_result": "result",
    "RuleEvaluator": "rules", "train_and_score": "rules",
    "PolicyEvaluator": "policies",
}

if TYPE_CHECKING:
    from evosearch.evaluate.cascade import CascadeConfig, Evaluator, SkipIf
    from evosearch.evaluate.policies import PolicyEvaluator
    from evosearch.evaluate.result import OUTCOMES, STAGES, EvalResult, TaskResult, task_result
    from evosearch.evaluate.rules import RuleEvaluator, train_and_score


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = ["OUTCOMES", "STAGES", "CascadeConfig", "EvalResult", "Evaluator", "PolicyEvaluator", "RuleEvaluator",
           "SkipIf", "TaskResult", "task_result", "train_and_score"]
