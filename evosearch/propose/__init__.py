"""Proposers: where candidate programs come from (DESIGN §7)."""

from evosearch.propose.base import Operator, Proposal, ProposalError, Parent

__all__ = ["Operator", "Parent", "Proposal", "ProposalError"]
