"""What a program kind is: everything that differs between a rule and a policy, in one object.

The rest of evosearch asks the program's :class:`Kind` instead of branching on its name: the
static check, the LLM's contract and code-block choice, the AST operators, the GP operators,
the evaluator (and with it the behavioural fingerprint), the devices it may use and the export
template. A new kind is one module in this package that defines ``KIND``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evosearch.program import ALLOWED_IMPORTS, StaticIssue

if TYPE_CHECKING:
    from evosearch.envs.suites import Suite
    from evosearch.evaluate.cascade import CascadeConfig, Evaluator
    from evosearch.propose.base import Operator


@dataclass(frozen=True)
class Kind:
    """One program kind. Subclasses override the methods; the fields are plain facts."""

    name: str
    entry_point: str  # the top-level function a program of this kind must define
    signature: str  # how the contract writes it, e.g. "loss(b)"
    default_suite: str  # what `evosearch eval` scores it on when no suite is named
    reference: str  # what a normalised score of 1.0 means, in the proposer's words
    #: The positional parameters of the contract's functions: "batch" has tensor fields
    #: (``b.logp``), "tensor" is a tensor or array itself (the AST operators read this).
    contract_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    clamp_call: str = "clamp"  # the method that bounds a tensor/array of this kind (torch clamp, numpy clip)
    #: The modules a program of this kind may import; the static check accepts nothing else.
    allowed_imports: frozenset[str] = ALLOWED_IMPORTS

    def entry_issues(self, tree: ast.Module) -> list[StaticIssue]:
        """Static-check findings about the kind's contract (the general checks are the program's)."""
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if self.entry_point not in names:
            return [StaticIssue(f"a {self.name} must define a top-level function `{self.signature}`")]
        return []

    def env_id(self, source: str) -> str | None:
        """The one environment a program of this kind is tied to, if it is (read without running it)."""
        return None

    def check_device(self, device: str) -> None:
        """Raise :class:`~evosearch.devices.DeviceError` if ``device`` cannot serve this kind's evaluation."""

    def evaluator(self, config: CascadeConfig, suite: Suite | None = None) -> Evaluator:
        """The evaluator for this kind on ``config``'s suite (or ``suite``)."""
        raise NotImplementedError

    def gp_operators(self, seed_genomes: tuple[str, ...]) -> list[Operator]:
        """The genetic-programming operators that make programs of this kind."""
        return []

    def export_parts(self, bound: dict[str, str], prov: dict[str, Any]) -> ExportParts:
        """What an exported module adds around the program's code (see :mod:`evosearch.export`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ExportParts:
    """The kind-specific pieces of an exported module: entry points after the code, imports before it."""

    entry: str
    usage: str
    exports: list[str]
    imports: str = ""
