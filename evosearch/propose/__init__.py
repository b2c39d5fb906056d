"""Proposers: where candidate programs come from (DESIGN §7)."""

from evosearch.propose.base import Operator, Parent, Proposal, ProposalError

__all__ = ["Operator", "Parent", "Proposal", "ProposalError"]
