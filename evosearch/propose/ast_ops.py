"""AST mutation operators: small edits of any program, confined to its EVOLVE-BLOCK.

Each operator finds the sites it could edit, tries a few of them in an order drawn from the
rng it is given (so the same parents and rng state give the same child), and splices only the
changed node's new text into the parent's source: comments and formatting elsewhere survive,
and a lineage diff shows just the change. Every child goes through :func:`checked_child`; when
no site gives a valid child the operator raises :class:`ProposalError` with the reason.

The edits are kept plausible rather than merely valid: constants are scaled, not replaced;
swaps stay within families of like functions (``max``/``min``, ``tanh``/``sigmoid``), never
``mean``/``sum`` whose scale differs by the batch size; clamps and crossover terms go only
where a tensor surely is (see :class:`~evosearch.propose.ast_sites.TensorScope`).
"""

from __future__ import annotations

import ast
import math
import random
from typing import Any

from evosearch import kinds
from evosearch.program import evolve_block
from evosearch.propose.ast_crossover import Piece, crossover_pieces
from evosearch.propose.ast_sites import (
    ATOMS,
    Chain,
    Edit,
    Parsed,
    Swap,
    caps_constant,
    chains,
    clamp_sites,
    free_names,
    is_arithmetic_int,
    is_integral_exponent,
    operand_text,
    operator_swaps,
    short,
)
from evosearch.propose.base import Operator, Parent, Proposal, ProposalError, checked_child

MAX_TRIES = 8  # sites tried per proposal before giving up
LOG_SIGMA = 0.4  # constants are multiplied by exp(N(0, LOG_SIGMA)): about +-50% at two sigma
CAPS_PREFERENCE = 0.75  # chance to perturb a named ALL_CAPS constant first, when there is one
CLAMP_BOUNDS = (0.1, 0.2, 0.5, 1, 2, 5, 10)
DUPLICATE_SCALES = (0.1, 0.25, 0.5, 2)


class AstOperator:
    """Shared loop: list the sites, try up to MAX_TRIES of them, return the first valid child."""

    name = "ast"
    arity = 1
    nothing = "no site to edit"  # the reason given when a program has no site at all

    def applies(self, parents: list[Parent]) -> bool:
        chosen = parents[: self.arity]
        return (len(chosen) == self.arity and len({p.kind for p in chosen}) == 1
                and all(evolve_block(p.source) is not None for p in chosen))

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        chosen = parents[: self.arity]
        if len(chosen) < self.arity or len({p.kind for p in chosen}) != 1:
            raise ProposalError(f"{self.name} needs {self.arity} parent(s) of one kind")
        main = chosen[0]
        programs = [Parsed(p.source, main.kind) for p in chosen]
        sites = self.sites(programs, chosen)
        if not sites:
            raise ProposalError(f"{self.name}: {self.nothing}")
        reason = ""
        for site in self.order(sites, rng):
            try:
                edits, note = self.edit(programs[0], site, rng)
                child = checked_child(main.source, programs[0].apply(edits), main.kind)
            except ProposalError as err:
                reason = str(err)
                continue
            ids = tuple(p.program_id for p in chosen if p.program_id is not None)
            return Proposal(source=child, operator=self.name, parent_ids=ids, note=note)
        raise ProposalError(f"{self.name}: no valid edit at {min(len(sites), MAX_TRIES)} site(s); last: {reason}")

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[Any]:
        raise NotImplementedError

    def order(self, sites: list[Any], rng: random.Random) -> list[Any]:
        return rng.sample(sites, min(len(sites), MAX_TRIES))

    def edit(self, parsed: Parsed, site: Any, rng: random.Random) -> tuple[list[Edit], str]:
        raise NotImplementedError


# -- ast.constant ------------------------------------------------------------------------------


def format_float(x: float) -> str:
    """Three significant digits, always spelled as a float literal."""
    text = f"{x:.3g}"
    return text if any(c in text for c in ".en") else text + ".0"


def perturb(value: float, keep_int: bool, rng: random.Random) -> str:
    """``value`` times log-normal noise (sign kept), as literal text that differs from ``value``."""
    for _ in range(20):
        x = value * math.exp(rng.gauss(0.0, LOG_SIGMA))
        text = str(max(1, round(x))) if keep_int else format_float(x)
        if float(text) != value:
            return text
    return str(int(value) + 1) if keep_int else format_float(value * 2)


class PerturbConstant(AstOperator):
    """Scale one numeric literal, preferring named module constants (ENT_COEF, CLIP)."""

    name = "ast.constant"
    nothing = "no numeric literal in the EVOLVE-BLOCK"

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[tuple[ast.Constant, str | None]]:
        parsed, out = programs[0], []
        for node in parsed.block_nodes(ast.Constant):
            value = node.value
            if (type(value) not in (int, float) or value == 0 or not math.isfinite(value)
                    or is_integral_exponent(parsed, node)):
                continue
            caps = caps_constant(parsed, node)
            if isinstance(value, float) or caps or is_arithmetic_int(parsed, node):
                out.append((node, caps))
        return out

    def order(self, sites: list[Any], rng: random.Random) -> list[Any]:
        caps = [s for s in sites if s[1]]
        if not caps or rng.random() >= CAPS_PREFERENCE:
            return super().order(sites, rng)
        rest = [s for s in sites if not s[1]]
        return (rng.sample(caps, len(caps)) + rng.sample(rest, len(rest)))[:MAX_TRIES]

    def edit(self, parsed: Parsed, site: Any, rng: random.Random) -> tuple[list[Edit], str]:
        node, caps = site
        old = parsed.text(node)
        new = perturb(node.value, isinstance(node.value, int) and caps is not None, rng)
        where = caps if caps else f"line {node.lineno}:"
        return [Edit(*parsed.span(node), new)], f"{where} {old} -> {new}"


# -- ast.operator ------------------------------------------------------------------------------


class SwapOperator(AstOperator):
    """Swap one operator or function for its counterpart: + and -, * and /, max and min, tanh and sigmoid."""

    name = "ast.operator"
    nothing = "no swappable operator or function in the EVOLVE-BLOCK"

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[Swap]:
        return operator_swaps(programs[0])

    def edit(self, parsed: Parsed, site: Swap, rng: random.Random) -> tuple[list[Edit], str]:
        new = rng.choice(site.choices)
        return [Edit(site.start, site.end, new)], f"line {site.line}: {site.prefix}{site.old} -> {site.prefix}{new}"


# -- ast.clamp ---------------------------------------------------------------------------------


class WrapClamp(AstOperator):
    """Wrap a tensor subexpression in ``(...).clamp(-c, c)``: method form, so no import is needed.

    Policies may hold numpy arrays, so for them the wrap is ``.clip``, which both libraries have.
    """

    name = "ast.clamp"
    nothing = "no tensor-valued expression in a function of the EVOLVE-BLOCK"

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[ast.expr]:
        return clamp_sites(programs[0])

    def edit(self, parsed: Parsed, site: ast.expr, rng: random.Random) -> tuple[list[Edit], str]:
        bound = f"{rng.choice(CLAMP_BOUNDS):g}"
        method = kinds.get(parsed.kind).clamp_call
        start, end = parsed.span(site)
        text = parsed.text(site)
        note = f"line {site.lineno}: clamp `{short(text)}` to [-{bound}, {bound}]"
        if not isinstance(site, ATOMS):
            # Outside a call's argument list, parentheses right around the node can only be grouping ones.
            if not isinstance(parsed.parent.get(site), ast.Call) and parsed.source[start - 1:end + 1] == f"({text})":
                start, end = start - 1, end + 1  # reuse the grouping parentheses already there
            text = f"({text})"
        return [Edit(start, end, f"{text}.{method}(-{bound}, {bound})")], note


# -- ast.drop_term and ast.duplicate_term ------------------------------------------------------


def term_sites(parsed: Parsed) -> list[tuple[Chain, int]]:
    return [(chain, i) for chain in chains(parsed) for i in range(len(chain.terms))]


def _drop_right(parsed: Parsed, holder: ast.BinOp) -> Edit:
    """Delete `` op right`` from ``left op right``, keeping comments when the term starts its own line."""
    source = parsed.source
    gap = parsed.gap(holder.left, holder.right)
    start, end = gap.left_end, parsed.span(holder)[1]
    newline = source.rfind("\n", start, gap.op_start)
    if newline < 0 or "\\" in source[start:newline]:
        return Edit(start, end, "")
    line_end = source.find("\n", end)
    rest = source[end:line_end].strip()
    if line_end >= 0 and rest[:1] in ("", "#"):  # the term is all its lines hold: remove them whole
        return Edit(newline, line_end, "")
    if rest[:1] not in ")]}":  # another term follows on the line: take the space before it too
        end = len(source) - len(source[end:].lstrip(" \t"))
    return Edit(gap.op_start, end, "")


class DropTerm(AstOperator):
    """Remove one term of a +/- chain (the entropy bonus, the value loss, an epsilon)."""

    name = "ast.drop_term"
    nothing = "no +/- chain in the EVOLVE-BLOCK"

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[tuple[Chain, int]]:
        parsed = programs[0]

        def keeps_tensor(chain: Chain, i: int) -> bool:  # a tensor sum must not become a float
            rest = [t for j, t in enumerate(chain.terms) if j != i]
            return not parsed.is_tensor(chain.top) or any(parsed.is_tensor(t.node) for t in rest)

        return [(c, i) for c, i in term_sites(parsed) if keeps_tensor(c, i)]

    def edit(self, parsed: Parsed, site: tuple[Chain, int], rng: random.Random) -> tuple[list[Edit], str]:
        chain, i = site
        term = chain.terms[i]
        if term.holder is not None:  # `left op term` -> `left`
            edit = _drop_right(parsed, term.holder)
        else:  # `term op right` -> `right` or `-right`
            holder = chain.terms[1].holder
            gap = parsed.gap(holder.left, holder.right)
            edit = Edit(parsed.span(holder)[0], gap.right_start, "-" if isinstance(holder.op, ast.Sub) else "")
        return [edit], f"line {term.node.lineno}: drop `{term.sign} {short(parsed.text(term.node))}`"


class DuplicateTerm(AstOperator):
    """Add a scaled copy of a term to its chain: ``a + b`` -> ``a + b + 0.5 * b`` (reweights that term)."""

    name = "ast.duplicate_term"
    nothing = "no +/- chain with a non-constant term in the EVOLVE-BLOCK"

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[tuple[Chain, int]]:
        parsed = programs[0]
        return [(c, i) for c, i in term_sites(parsed)
                if free_names(c.terms[i].node) and not parsed.in_index_position(c.top)]

    def edit(self, parsed: Parsed, site: tuple[Chain, int], rng: random.Random) -> tuple[list[Edit], str]:
        chain, i = site
        term = chain.terms[i]
        added = f"{term.sign} {rng.choice(DUPLICATE_SCALES):g} * {operand_text(parsed, term.node)}"
        end = parsed.span(chain.top)[1]
        return [Edit(end, end, " " + added)], f"line {chain.top.lineno}: add `{short(added)}`"


# -- ast.crossover -----------------------------------------------------------------------------


class Crossover(AstOperator):
    """Bring one piece of the second parent into the first: a constant, a function, an assignment or a term.

    A piece is offered only when every name it reads is defined where it lands, counting module
    constants of the donor that come along with it.
    """

    name = "ast.crossover"
    arity = 2
    nothing = "the second parent has no piece that fits the first"

    def sites(self, programs: list[Parsed], parents: list[Parent]) -> list[Piece]:
        r, d = programs
        donor_id = parents[1].program_id
        label = f"#{donor_id}" if donor_id is not None else "the second parent"
        return crossover_pieces(r, d, label)

    def order(self, sites: list[Piece], rng: random.Random) -> list[Piece]:
        """Each try first draws a kind of piece uniformly, so the many terms do not crowd out functions."""
        groups: dict[str, list[Piece]] = {}
        for piece in sites:
            groups.setdefault(piece.kind, []).append(piece)
        out: list[Piece] = []
        while groups and len(out) < MAX_TRIES:
            kind = rng.choice(sorted(groups))
            pool = groups[kind]
            out.append(pool.pop(rng.randrange(len(pool))))
            if not pool:
                del groups[kind]
        return out

    def edit(self, parsed: Parsed, site: Piece, rng: random.Random) -> tuple[list[Edit], str]:
        return list(site.edits), site.note


def ast_operators() -> list[Operator]:
    """One instance of each AST operator, in the order the docs list them (docs/campaign.md)."""
    return [PerturbConstant(), SwapOperator(), WrapClamp(), DropTerm(), DuplicateTerm(), Crossover()]
