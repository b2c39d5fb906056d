"""Proposers: where candidate programs come from (docs/architecture.md)."""

from evosearch.propose.base import Operator, Parent, Proposal, ProposalError

__all__ = ["Operator", "Parent", "Proposal", "ProposalError"]
