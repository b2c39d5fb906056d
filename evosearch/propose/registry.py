"""Operator names a config may enable, and how to build them."""

from __future__ import annotations

from evosearch import kinds
from evosearch.propose.base import Operator

OPERATOR_NAMES: tuple[str, ...] = (
    "ast.constant", "ast.operator", "ast.clamp", "ast.drop_term", "ast.duplicate_term", "ast.crossover",
    "gp.new", "gp.mutate", "gp.crossover",
)


def build_operators(names: tuple[str, ...] | list[str], gp_seed_genomes: tuple[str, ...] = ("a2c", "pg"),
                    kind: str = "rule") -> dict[str, Operator]:
    """The enabled operators by name, in the order given (imports DEAP only if a GP one is enabled).

    The GP operators are the kind's (loss expressions for rules, expressions over observation
    features for policies); the AST ones serve every kind.
    """
    available: dict[str, Operator] = {}
    if any(n.startswith("ast.") for n in names):
        from evosearch.propose.ast_ops import ast_operators

        available.update({op.name: op for op in ast_operators()})
    if any(n.startswith("gp.") for n in names):
        available.update({op.name: op for op in kinds.get(kind).gp_operators(tuple(gp_seed_genomes))})
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"unknown operators: {', '.join(missing)}")
    return {n: available[n] for n in names}
