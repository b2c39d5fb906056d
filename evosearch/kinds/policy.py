"""The ``policy`` kind: ``act(obs) -> actions`` for the one environment its ``ENV_ID`` names.

Evaluated with no training: the referee (:mod:`evosearch.evaluate.policies`) steps the
environment on the CPU and asks the sandboxed policy for actions over a socket; fingerprinted
by its actions on a fixed batch of observations.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evosearch.kinds.base import ExportParts, Kind

if TYPE_CHECKING:
    from evosearch.envs.suites import Suite
    from evosearch.evaluate.cascade import CascadeConfig, Evaluator
    from evosearch.propose.base import Operator


@dataclass(frozen=True)
class PolicyKind(Kind):
    def env_id(self, source: str) -> str | None:
        """The ``ENV_ID = "..."`` the policy declares at top level."""
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return None
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == "ENV_ID" and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)):
                return node.value.value
        return None

    def check_device(self, device: str) -> None:
        if device not in ("auto", "cpu"):
            from evosearch.devices import DeviceError

            raise DeviceError(f"device {device!r} does not apply to policies: a policy is played, not trained, "
                              "and the referee steps its environment on the CPU (use auto or cpu)")

    def evaluator(self, config: CascadeConfig, suite: Suite | None = None) -> Evaluator:
        from evosearch.evaluate.policies import PolicyEvaluator

        return PolicyEvaluator(config, suite)

    def gp_operators(self, seed_genomes: tuple[str, ...]) -> list[Operator]:
        from evosearch.propose.gp_policy import gp_policy_operators

        return gp_policy_operators()

    def export_parts(self, bound: dict[str, str], prov: dict[str, Any]) -> ExportParts:
        """``act`` with ``act_one`` for a plain gymnasium loop (one observation, one action)."""
        from evosearch.envs.spaces import known_env_ids, spaces
        from evosearch.export import ExportError, literal, template

        if bound.get("act") != "other":
            raise ExportError("the program defines no `act(obs)`: nothing to export")
        clash = sorted(n for n in ("PROVENANCE", "act_one", "DISCRETE_ENVS") if n in bound)
        if clash:
            raise ExportError(f"the program binds {', '.join(clash)}, which the exported module needs; rename first")
        if "ENV_ID" not in bound:
            raise ExportError("the policy declares no ENV_ID: a gymnasium loop would not know its environment")
        discrete = sorted(env_id for env_id in known_env_ids() if spaces(env_id).discrete)
        entry = template("policy_entry.py.txt").substitute(provenance=literal(prov), discrete_envs=repr(discrete))
        usage = template("policy_usage.txt").substitute(program_id=str(prov.get("program_id")))
        return ExportParts(entry=entry, usage=usage, exports=["act", "act_one", "ENV_ID", "PROVENANCE"])


KIND = PolicyKind(
    name="policy", entry_point="act", signature="act(obs)", default_suite="policies", reference="the reference",
    contract_args={"act": ("tensor",)}, clamp_call="clip", allowed_imports=frozenset({"numpy", "math"}),
)
