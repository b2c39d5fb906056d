"""The ``rule`` kind: ``loss(b)``, an actor-critic loss the harness trains agents with.

Evaluated by training networks with it in the sandbox (:mod:`evosearch.evaluate.rules`), on
a CPU or a GPU; fingerprinted by the parameter update it makes on a fixed probe batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evosearch.kinds.base import Kind

if TYPE_CHECKING:
    from evosearch.envs.suites import Suite
    from evosearch.evaluate.cascade import CascadeConfig, Evaluator
    from evosearch.propose.base import Operator


@dataclass(frozen=True)
class RuleKind(Kind):
    def evaluator(self, config: CascadeConfig, suite: Suite | None = None) -> Evaluator:
        from evosearch.evaluate.rules import RuleEvaluator

        return RuleEvaluator(config, suite)

    def gp_operators(self, seed_genomes: tuple[str, ...]) -> list[Operator]:
        from evosearch.propose.gp import gp_operators

        return gp_operators(seed_genomes)


KIND = RuleKind(
    name="rule", entry_point="loss", signature="loss(b)", default_suite="classic-quick", reference="PPO-clip",
    contract_args={"loss": ("batch",), "advantages": ("tensor",) * 4}, clamp_call="clamp", trains=True,
)
