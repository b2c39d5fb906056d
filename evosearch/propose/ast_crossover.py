"""Pieces one program can lend another: the sites of the ``ast.crossover`` operator.

A piece is a module constant, a whole top-level function, an assignment to a local, or a term
of a +/- chain, turned into ready edits of the recipient. A piece is offered only when every
name it reads is defined where it lands, counting the donor's literal module constants that
come along with it (inserted after the recipient's own constants).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from evosearch.propose.ast_sites import (
    Edit,
    Parsed,
    chains,
    defined_before,
    free_names,
    literal_constants,
    operand_text,
    short,
)


@dataclass(frozen=True)
class Piece:
    """A ready edit bringing one piece of the donor into the recipient."""

    kind: str  # "constant", "function", "assignment" or "term"
    edits: tuple[Edit, ...]
    note: str


def _constant_slot(r: Parsed) -> tuple[int, str]:
    """Where new module constants go: after the block's leading statements, before its first function."""
    body = [s for s in r.tree.body if r.in_block(s)]
    defs = [i for i, s in enumerate(body) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    first = defs[0] if defs else len(body)
    return (r.line_span(body[first - 1])[1], "") if first else (r.block_start, "\n\n")


def _bring(r: Parsed, d: Parsed, names: set[str], local: set[str]) -> list[Edit] | None:
    """Edits adding the donor's literal constants for ``names`` the recipient lacks; None when one cannot be had."""
    missing = names - local - r.module_names
    consts = literal_constants(d)
    if any(n not in consts for n in missing):
        return None
    if not missing:
        return []
    text = "".join(d.text(consts[n]) + "\n" for n in sorted(missing, key=lambda n: d.span(consts[n])))
    offset, suffix = _constant_slot(r)
    return [Edit(offset, offset, text + suffix)]


def _reindent(text: str, old: int, new: int) -> str:
    """Shift the continuation lines of a statement from indentation ``old`` to ``new``."""
    first, *rest = text.split("\n")
    shifted = [(" " * (new - old) + line) if new >= old else line[min(old - new, len(line) - len(line.lstrip())):]
               for line in rest]
    return "\n".join([first, *shifted])


def constant_pieces(r: Parsed, d: Parsed, label: str) -> list[Piece]:
    """The donor's value for a module constant both define differently."""
    rc, out = literal_constants(r), []
    for name, stmt in literal_constants(d).items():
        mine = rc.get(name)
        if mine is not None and ast.dump(mine.value) != ast.dump(stmt.value):
            old, new = r.text(mine.value), d.text(stmt.value)
            out.append(Piece("constant", (Edit(*r.span(mine.value), new),), f"{name} {old} -> {new} from {label}"))
    return out


def function_pieces(r: Parsed, d: Parsed, label: str) -> list[Piece]:
    """A whole top-level function of the donor, replacing the recipient's namesake or added before its functions."""
    mine, out = r.top_functions(), []
    for name, func in d.top_functions().items():
        target = mine.get(name)
        if target is None and name in r.module_names:
            continue
        # Replacing the recipient's only function would just copy the donor, constants aside.
        if target is not None and (ast.dump(target) == ast.dump(func) or len(mine) == 1):
            continue
        bring = _bring(r, d, free_names(func), {name})
        if bring is None:
            continue
        text = d.source[slice(*d.line_span(func))].rstrip("\n") + "\n"
        if target is not None:
            edit = Edit(*r.line_span(target), text)
        elif mine:
            first = min(mine.values(), key=r.span)
            offset = r.line_start_above_comments(min([first.lineno] + [x.lineno for x in first.decorator_list]))
            edit = Edit(offset, offset, text + "\n\n")
        else:
            edit = Edit(r.block_end, r.block_end, "\n\n" + text)
        verb = "replace" if target is not None else "add"
        out.append(Piece("function", (*bring, edit), f"{verb} function `{name}` from {label}"))
    return out


def _single_assign(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


def assignment_pieces(r: Parsed, d: Parsed, label: str) -> list[Piece]:
    """The donor's assignment to a local, replacing the recipient's first assignment to it in the same function."""
    out = []
    donors = d.top_functions()
    for name, func in r.top_functions().items():
        if name not in donors:
            continue
        firsts: dict[str, int] = {}
        for i, stmt in enumerate(func.body):
            target = _single_assign(stmt)
            if target is not None:
                firsts.setdefault(target, i)
        for stmt in donors[name].body:
            target = _single_assign(stmt)
            if target is None or target not in firsts:
                continue
            index = firsts[target]
            mine = func.body[index]
            if ast.dump(mine) == ast.dump(stmt) or r.rank(mine.value) != d.rank(stmt.value):
                continue
            bring = _bring(r, d, free_names(stmt.value), defined_before(func, index))
            if bring is None:
                continue
            text = _reindent(d.text(stmt), stmt.col_offset, mine.col_offset)
            note = f"line {mine.lineno}: `{short(text)}` from {label}"
            out.append(Piece("assignment", (*bring, Edit(*r.span(mine), text)), note))
    return out


def term_pieces(r: Parsed, d: Parsed, label: str) -> list[Piece]:
    """A term of a donor chain, appended to a chain of the recipient's namesake function."""
    mine, out = r.top_functions(), []
    recipient_chains = [c for c in chains(r) if not r.in_index_position(c.top)]
    for chain in chains(d):
        func = d.function_of(chain.top)
        if func is None or d.top_functions().get(func.name) is not func or func.name not in mine:
            continue
        target_func = mine[func.name]
        targets = [c for c in recipient_chains if r.function_of(c.top) is target_func]
        present = {ast.dump(n) for n in ast.walk(target_func) if isinstance(n, ast.expr)}
        for term in chain.terms:
            rank = d.rank(term.node)
            # A float term (`- CLIP`) only shifts a loss; a term the recipient already has is no new material.
            if rank is None or ast.dump(term.node) in present:
                continue
            for target in targets:  # joins only a sum of the same rank: no silent broadcasting
                if rank != r.rank(target.top):
                    continue
                index = r.body_index(target_func, target.top)
                bring = _bring(r, d, free_names(term.node), defined_before(target_func, index))
                if bring is None:
                    continue
                added = f"{term.sign} {operand_text(d, term.node)}"
                end = r.span(target.top)[1]
                note = f"line {target.top.lineno}: add `{short(added)}` from {label}"
                out.append(Piece("term", (*bring, Edit(end, end, " " + added)), note))
    return out


def crossover_pieces(r: Parsed, d: Parsed, label: str) -> list[Piece]:
    """Every piece of the donor ``d`` that fits the recipient ``r``; ``label`` names the donor in notes."""
    return [*constant_pieces(r, d, label), *function_pieces(r, d, label),
            *assignment_pieces(r, d, label), *term_pieces(r, d, label)]
