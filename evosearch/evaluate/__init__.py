"""Evaluation: the one home of how a program becomes a score.

- :mod:`~evosearch.evaluate.result`: outcomes, stages, the per-task and whole-evaluation records.
- :mod:`~evosearch.evaluate.cascade`: the cascade's settings and the evaluator contract.
- :mod:`~evosearch.evaluate.rules`: rules, trained in the sandbox and scored by trusted jobs.
- :mod:`~evosearch.evaluate.policies` and :mod:`~evosearch.evaluate.referee`: policies, played by a referee.
- :mod:`~evosearch.evaluate.jobs`: the job catalogue the sandbox runs, with typed payloads.
- :mod:`~evosearch.evaluate.calibrate`: a suite's normalisation constants.

Which evaluator a program gets is its kind's choice (:meth:`evosearch.kinds.Kind.evaluator`).
"""

from evosearch.evaluate.cascade import CascadeConfig, Evaluator, SkipIf
from evosearch.evaluate.policies import PolicyEvaluator
from evosearch.evaluate.result import OUTCOMES, STAGES, EvalResult, TaskResult, task_result
from evosearch.evaluate.rules import RuleEvaluator, train_and_score

__all__ = ["OUTCOMES", "STAGES", "CascadeConfig", "EvalResult", "Evaluator", "PolicyEvaluator", "RuleEvaluator",
           "SkipIf", "TaskResult", "task_result", "train_and_score"]
