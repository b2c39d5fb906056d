"""The ``rule`` kind: ``loss(b)``, an actor-critic loss the harness trains agents with.

Evaluated by training networks with it in the sandbox (:mod:`evosearch.evaluate.rules`), on
a CPU or a GPU; fingerprinted by the parameter update it makes on a fixed probe batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evosearch.kinds.base import ExportParts, Kind

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

    def export_parts(self, bound: dict[str, str], prov: dict[str, Any]) -> ExportParts:
        """``loss`` with ``compute_loss``, ``compute_advantages`` (the rule's own estimator, else GAE) and ``gae``."""
        from evosearch.export import ExportError, literal, template, template_text

        if bound.get("loss") != "other":
            raise ExportError("the program defines no `loss(b)`: nothing to export")
        clash = sorted(n for n in EXPORT_NAMES if n in bound)
        if bound.get("torch") == "other":
            clash.append("torch")
        if clash:
            raise ExportError(f"the program binds {', '.join(clash)}, which the exported module needs for its "
                              "entry points; rename them in the program first")
        has_adv = bound.get("advantages") == "other"
        adv_doc = ("Advantages by the rule's own ``advantages(...)`` estimator (it replaces GAE)." if has_adv else
                   "Advantages for the rule: plain GAE, since the rule defines no estimator of its own.")
        adv_body = template_text("adv_from_rule.py.txt" if has_adv else "adv_from_gae.py.txt").strip("\n")
        entry = template("rule_entry.py.txt").substitute(
            provenance=literal({**prov, "advantages": "rule" if has_adv else "gae"}), adv_doc=adv_doc,
            adv_body=adv_body)
        exports = ["loss", *(["advantages"] if has_adv else []), "compute_loss", "compute_advantages", "gae",
                   "PROVENANCE"]
        return ExportParts(entry=entry, usage=template("rule_usage.txt").substitute(), exports=exports,
                           imports="import torch  # the only dependency of the entry points below\n\n")


#: Names an exported rule module adds at module level; a rule that binds one cannot be exported as is.
EXPORT_NAMES = frozenset({"PROVENANCE", "RuleBatch", "compute_loss", "compute_advantages", "gae"})


KIND = RuleKind(
    name="rule", entry_point="loss", signature="loss(b)", default_suite="classic-quick", reference="PPO-clip",
    contract_args={"loss": ("batch",), "advantages": ("tensor",) * 4}, clamp_call="clamp",
)
