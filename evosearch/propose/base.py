"""The contract every proposer keeps: parents in, one candidate source out.

Proposers never read the database. The campaign hands them parents (and inspirations) taken
from the archive's selection API, and gets back a :class:`Proposal` or a
:class:`ProposalError` saying why the operator could not apply, which the campaign records
rather than skipping silently.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class ProposalError(Exception):
    """An operator could not produce a valid child from these parents (the reason is the message).

    ``records`` are what the attempt left to store (a language model's calls, with their cost);
    ``blame`` is False when the operator is not at fault (its endpoint was down), so the bandit
    does not learn from it.
    """

    def __init__(self, message: str, *, records: list[dict] | None = None, blame: bool = True) -> None:
        super().__init__(message)
        self.records = records or []
        self.blame = blame


@dataclass(frozen=True)
class Parent:
    """What a proposer may know about a program in the archive."""

    source: str
    program_id: int | None = None
    score: float | None = None
    genome: str | None = None  # e.g. the DEAP tree of a GP program, as its string form
    kind: str = "rule"


@dataclass
class Proposal:
    """One candidate: its source, the operator that made it, and where it came from."""

    source: str
    operator: str  # e.g. "ast.constant", "gp.mutate"
    parent_ids: tuple[int, ...] = ()
    genome: str | None = None
    note: str = ""  # one line on what changed, for lineage views
    meta: dict = field(default_factory=dict)
    model: str | None = None  # the language model that wrote it, if one did (its bandit arm is operator:model)
    records: list[dict] = field(default_factory=list)  # stored with the child (a language model's calls)


class Operator(Protocol):
    """A named way to make a child; ``arity`` parents are passed (the first is the main one)."""

    name: str
    arity: int

    def applies(self, parents: list[Parent]) -> bool:
        """Whether the operator can work on these parents (e.g. GP needs a genome)."""

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        """Return a child, or raise :class:`ProposalError` with the reason."""


class DeferredOperator(ABC):
    """An operator whose proposals take seconds to minutes (a language model): the campaign runs its work
    beside the evaluations instead of waiting for it.

    The campaign asks it the same way as any operator, in two halves: :meth:`prepare` on the
    campaign's thread (gather what the work needs, reserve budget), the returned callable in a
    proposer thread, then :meth:`settle` back on the campaign's thread with the proposal or the
    :class:`ProposalError` (accounting).
    """

    name: str
    arity: int = 1

    @abstractmethod
    def applies(self, parents: list[Parent]) -> bool:
        """Whether it can be asked now (up, under its limits) for these parents."""

    @abstractmethod
    def prepare(self, parents: list[Parent], inspirations: list[Parent],
                rng: random.Random) -> Callable[[], Proposal] | None:
        """The work to run in a proposer thread; None when it declines now (e.g. its budget is reserved)."""

    @abstractmethod
    def settle(self, work: Callable[[], Proposal], outcome: Proposal | ProposalError) -> None:
        """Account for ``work`` (what :meth:`prepare` returned) once it finished, on the campaign's thread."""

    def may_come_back(self) -> bool:
        """Whether an operator that does not apply now may apply later (work in flight, a finite rest)."""
        return False


def checked_child(parent_source: str | None, child_source: str, kind: str = "rule") -> str:
    """Return ``child_source`` if it is a valid child of ``parent_source``, else raise ProposalError.

    Valid: it passes the static check, differs from its parent, and (when there is a parent)
    changes nothing outside the EVOLVE-BLOCK. Every operator ends with this, so an edit that
    fails is an error the campaign records, never a silent no-op.
    """
    from evosearch.program import outside_block_unchanged, static_check

    if parent_source is not None:
        if child_source == parent_source:
            raise ProposalError("the edit left the program unchanged")
        if not outside_block_unchanged(parent_source, child_source):
            raise ProposalError("the edit changed code outside the EVOLVE-BLOCK")
    issues = static_check(child_source, kind)
    if issues:
        raise ProposalError("the child fails the static check: " + "; ".join(str(i) for i in issues))
    return child_source
