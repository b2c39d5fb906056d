"""Lift a rule's numeric constants out of its source, and write tuned values back.

``evosearch metatune`` tunes a rule's numbers by meta-gradients. It needs each number as a
tensor the loss is a function of (:attr:`LiftedRule.parametric_source`), and afterwards the
same program with the new numbers and nothing else changed (:func:`write_back`): the tuned rule
stays a readable program that a proposer can edit and ``archive diff`` shows as a few numbers.

What is lifted, and only inside the EVOLVE-BLOCK (the rest belongs to the harness):

* ``NAME = 0.5`` (or ``-0.5``, or an int) at module level, NAME upper case and bound nowhere
  else: the convention for a rule's hyperparameters. Loads of NAME in functions become the tensor.
* Float literals (and ``-0.5``) in function bodies: coefficients written inline (``0.5 * v``).
  Ints there are structure (``** 2``, ``1 - CLIP``, dims, indices), not constants, and so are
  the floats 1.0 and -1.0 (``1.0 - dones``). Floats under 1e-6 in size are numerical guards
  (``+ 1e-8``): tuning them only risks a division by zero. A
  literal run at import (a default, a decorator) is left alone: the tensor exists only at call time.
* ``True``/``False`` never.

An inline literal is named by its line (``line 15``; ``line 15 #2`` for the second one there),
not by its text, so that the name survives :func:`write_back` and two versions of a rule line
up in :func:`changed_constants`. (An inline value tuned below 1e-6 reads as a guard next time.)
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from evosearch.program import evolve_block

PARAMETERS = "CONSTANTS"  # the module global the tuner fills with 0-d tensors
NAME_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*")
MIN_INLINE = 1e-6
SIGNIFICANT_DIGITS = 4

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (*_FUNCTIONS, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class LiftError(ValueError):
    """The source has nothing (or not the named things) to tune, or cannot be read."""


@dataclass(frozen=True)
class Constant:
    """One tunable number and where its literal sits in the original source.

    ``line``/``end_line`` are 1-based, ``col``/``end_col`` character offsets in those lines; the
    span covers a unary minus. ``integer``: the literal was an int (written back as one while
    the value stays integral). ``inline``: a literal in a function body, not an UPPER_CASE name.
    """

    name: str
    value: float
    log_space: bool
    line: int
    col: int
    end_line: int
    end_col: int
    integer: bool = False
    inline: bool = False


@dataclass(frozen=True)
class LiftedRule:
    """A rule's source, its constants, and the same module reading them from ``CONSTANTS[i]``."""

    source: str
    constants: tuple[Constant, ...]
    parametric_source: str

    def names(self) -> list[str]:
        return [c.name for c in self.constants]


# -- reading the literals ---------------------------------------------------------------------------


def _number(node: ast.AST, types: tuple[type, ...]) -> float | None:
    """The value of ``node`` if it is a finite literal of ``types`` or one negated; bools are not numbers."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1.0, node.operand
    if not isinstance(node, ast.Constant) or type(node.value) not in types:
        return None
    value = sign * float(node.value)
    return value if math.isfinite(value) else None


def _scope_walk(nodes: Sequence[ast.AST]) -> Iterator[ast.AST]:
    """Every node under ``nodes`` in their own scope: nested functions, classes and comprehensions not entered."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _bound_names(node: ast.AST) -> list[str]:
    """Names that ``node`` binds in the scope it sits in (repeated once per binding)."""
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return [node.id]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [node.name]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return [n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)]  # := binds outside
    return []


def _local_names(scope: ast.AST) -> set[str]:
    """Names local to a function, lambda or comprehension: a load of one of them is not the module constant."""
    if isinstance(scope, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return {n.id for g in scope.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    args = scope.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}
    body = [scope.body] if isinstance(scope, ast.Lambda) else scope.body
    declared: set[str] = set()
    for node in _scope_walk(body):
        names.update(_bound_names(node))
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
    return names - declared


def _named_candidates(tree: ast.Module) -> list[tuple[str, ast.expr, float, bool]]:
    """``(name, value node, value, is int)`` of each ``NAME = literal`` at module level bound only once."""
    counts: dict[str, int] = {}
    for node in _scope_walk(tree.body):
        for name in _bound_names(node):
            counts[name] = counts.get(name, 0) + 1
    rebound = {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and stmt.simple:
            target = stmt.target
        else:
            continue
        value = _number(stmt.value, (int, float))
        if (isinstance(target, ast.Name) and NAME_PATTERN.fullmatch(target.id) and value is not None
                and counts.get(target.id) == 1 and target.id not in rebound):
            operand = stmt.value.operand if isinstance(stmt.value, ast.UnaryOp) else stmt.value
            found.append((target.id, stmt.value, value, type(operand.value) is int))
    return found


def _inline_candidates(tree: ast.Module) -> list[tuple[ast.expr, float]]:
    """``(node, value)`` of each float literal (or negated one) evaluated inside a function body."""
    found: list[tuple[ast.expr, float]] = []

    def visit(node: ast.AST, in_body: bool) -> None:
        if in_body:
            value = _number(node, (float,))
            if value is not None:
                if abs(value) >= MIN_INLINE and abs(value) != 1.0:
                    found.append((node, value))
                return
        if isinstance(node, _FUNCTIONS):
            body = node.body if isinstance(node.body, list) else [node.body]
            for child in ast.iter_child_nodes(node):  # defaults and decorators run where the def is
                visit(child, in_body or any(child is b for b in body))
            return
        for child in ast.iter_child_nodes(node):
            visit(child, in_body)

    visit(tree, False)
    return found


# -- positions ----------------------------------------------------------------------------------------


def _line_starts(source: str) -> list[int]:
    """Character offset of each line's start, splitting where the parser does (\\n, \\r\\n, \\r)."""
    return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", source))]


def _char_col(source: str, starts: list[int], line: int, byte_col: int) -> int:
    """ast's UTF-8 byte column as a character column (a docstring line may hold non-ASCII)."""
    end = starts[line] if line < len(starts) else len(source)
    return len(source[starts[line - 1]:end].encode("utf-8")[:byte_col].decode("utf-8"))




def _constant(name: str, node: ast.expr, value: float, *, source: str, starts: list[int], integer: bool = False,
              inline: bool = False) -> Constant:
    return Constant(name=name, value=value, log_space=value > 0, line=node.lineno,
                    col=_char_col(source, starts, node.lineno, node.col_offset), end_line=node.end_lineno,
                    end_col=_char_col(source, starts, node.end_lineno, node.end_col_offset), integer=integer,
                    inline=inline)


def _line_labels(lines: list[int]) -> list[str]:
    """``line N``, or ``line N #k`` for the k-th of several lifted literals on line N."""
    labels = []
    for i, line in enumerate(lines):
        k = lines[:i].count(line) + 1
        labels.append(f"line {line}" if lines.count(line) == 1 else f"line {line} #{k}")
    return labels


# -- lift ---------------------------------------------------------------------------------------------


class _Parametrise(ast.NodeTransformer):
    """Replace lifted literals (by node identity) and loads of lifted names in function bodies by ``CONSTANTS[i]``."""

    def __init__(self, literals: dict[int, int], names: dict[str, int]):
        self.literals, self.names = literals, names
        self.shadowed: list[set[str]] = []  # local names of each enclosing function scope
        self.depth = 0  # function bodies we are in

    @staticmethod
    def _parameter(index: int) -> ast.Subscript:
        return ast.Subscript(value=ast.Name(id=PARAMETERS, ctx=ast.Load()), slice=ast.Constant(value=index),
                             ctx=ast.Load())

    def _scoped(self, node: ast.AST, body_fields: tuple[str, ...], function: bool) -> ast.AST:
        """Visit what runs outside ``node``'s scope (defaults, decorators) before what runs inside it."""
        body_fields = tuple(f for f in body_fields if f in node._fields)
        for field, value in ast.iter_fields(node):
            if field not in body_fields:
                setattr(node, field, self._visit_field(value))
        self.shadowed.append(_local_names(node))
        self.depth += function
        for field in body_fields:
            setattr(node, field, self._visit_field(getattr(node, field)))
        self.depth -= function
        self.shadowed.pop()
        return node

    def _visit_field(self, value):
        if isinstance(value, list):
            return [self.visit(v) if isinstance(v, ast.AST) else v for v in value]
        return self.visit(value) if isinstance(value, ast.AST) else value

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._scoped(node, ("body",), True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return self._scoped(node, ("body",), True)

    def visit_ListComp(self, node: ast.AST) -> ast.AST:
        return self._scoped(node, ("elt", "key", "value", "generators"), False)

    visit_SetComp = visit_GeneratorExp = visit_DictComp = visit_ListComp

    def visit_Name(self, node: ast.Name) -> ast.AST:
        index = self.names.get(node.id)
        if (index is None or not isinstance(node.ctx, ast.Load) or not self.depth
                or any(node.id in names for names in self.shadowed)):
            return node
        return ast.copy_location(self._parameter(index), node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        index = self.literals.get(id(node))
        return node if index is None else ast.copy_location(self._parameter(index), node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        index = self.literals.get(id(node))
        return self.generic_visit(node) if index is None else ast.copy_location(self._parameter(index), node)


def _parse(source: str) -> tuple[ast.Module, int, int]:
    """The module and the first and last (1-based) lines of its EVOLVE-BLOCK."""
    span = evolve_block(source)
    if span is None:
        raise LiftError("the source has no single # EVOLVE-BLOCK-START ... # EVOLVE-BLOCK-END pair")
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise LiftError(f"syntax error: line {err.lineno}: {err.msg}") from err
    if any(isinstance(n, ast.Name) and n.id == PARAMETERS for n in ast.walk(tree)):
        raise LiftError(f"the source uses the name {PARAMETERS}, which the tuned module needs for itself")
    return tree, span[0] + 1, span[1]


def _select(constants: list[tuple[Constant, ast.expr]], only: Sequence[str] | None) -> list[tuple[Constant, ast.expr]]:
    if not constants:
        raise LiftError("no constant to tune in the EVOLVE-BLOCK: it has no UPPER_CASE = number at module level "
                        f"and no float literal of size {MIN_INLINE:g} or more in a function body")
    if only is None:
        return constants
    available = [c.name for c, _ in constants]
    unknown = [name for name in only if name not in available]
    if unknown:
        raise LiftError(f"no constant {', '.join(map(repr, unknown))}; the rule has: {', '.join(available)}")
    wanted = set(only)
    chosen = [(c, node) for c, node in constants if c.name in wanted]
    if not chosen:
        raise LiftError(f"no constant chosen; the rule has: {', '.join(available)}")
    return chosen


def lift(source: str, *, only: Sequence[str] | None = None) -> LiftedRule:
    """The constants of ``source``'s EVOLVE-BLOCK (all, or those named in ``only``), in source order."""
    tree, first, last = _parse(source)
    starts = _line_starts(source)

    def in_block(node: ast.AST) -> bool:
        return first <= node.lineno and node.end_lineno <= last

    named = [(_constant(name, node, value, source=source, starts=starts, integer=integer), node)
             for name, node, value, integer in _named_candidates(tree) if in_block(node)]
    inline = [(_constant("", node, value, source=source, starts=starts, inline=True), node)
              for node, value in _inline_candidates(tree) if in_block(node)]
    inline.sort(key=lambda pair: (pair[0].line, pair[0].col))
    labels = _line_labels([c.line for c, _ in inline])
    inline = [(replace(c, name=label), node) for (c, node), label in zip(inline, labels, strict=True)]
    found = sorted(named + inline, key=lambda pair: (pair[0].line, pair[0].col))
    chosen = _select(found, only)
    literals = {id(node): i for i, (c, node) in enumerate(chosen) if c.inline}
    names = {c.name: i for i, (c, _) in enumerate(chosen) if not c.inline}
    parametric = ast.unparse(ast.fix_missing_locations(_Parametrise(literals, names).visit(tree)))
    return LiftedRule(source=source, constants=tuple(c for c, _ in chosen), parametric_source=parametric + "\n")


# -- write back --------------------------------------------------------------------------------------


def format_constant(value: float) -> str:
    """``value`` to 4 significant digits as a float literal that reads back as that number (``2.0``, ``1.5e-05``)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a constant must be a finite number, not {value}")
    return repr(float(f"{value:.{SIGNIFICANT_DIGITS}g}"))


def _literal(constant: Constant, value: float, original: str) -> str:
    """The text that replaces ``constant``'s literal: the original if the value did not change."""
    value = float(value)
    if value == constant.value:
        return original
    if constant.integer and value.is_integer():
        text = str(int(value))
    else:
        text = format_constant(value)
    # ``0.5`` in ``0.5 ** x`` or ``x.y(0.5)``: a bare ``-0.2`` there could parse as another expression
    if text.startswith("-") and constant.inline and not original.startswith("-"):
        text = f"({text})"
    return text


def write_back(lifted: LiftedRule, values: Sequence[float]) -> str:
    """The original source with each lifted literal replaced by its new value; every other byte kept."""
    if len(values) != len(lifted.constants):
        raise ValueError(f"{len(values)} values for {len(lifted.constants)} constants ({', '.join(lifted.names())})")
    for constant, value in zip(lifted.constants, values, strict=True):
        if not math.isfinite(float(value)):
            raise ValueError(f"{constant.name}: a constant must be a finite number, not {value}")
    source, starts = lifted.source, _line_starts(lifted.source)
    spans = [(starts[c.line - 1] + c.col, starts[c.end_line - 1] + c.end_col, c, v)
             for c, v in zip(lifted.constants, values, strict=True)]
    for start, end, constant, value in sorted(spans, key=lambda s: s[0], reverse=True):
        source = source[:start] + _literal(constant, value, source[start:end]) + source[end:]
    try:
        ast.parse(source)
    except SyntaxError as err:  # a guard: the literals are chosen to parse in any position
        raise ValueError(f"the values {list(values)} give a source that does not parse: {err}") from err
    return source


def changed_constants(before: str, after: str) -> list[tuple[str, float, float]]:
    """``(name, before, after)`` of each constant whose value differs between two versions of a rule.

    The constants must line up (the same names in the same order), else ``[]``. An inline one is
    named by its line only, so it counts only when the code around the constants is the same too:
    otherwise ``line 15`` may be another expression in ``after``. Never raises.
    """
    try:
        a, b = lift(before), lift(after)
        if a.names() != b.names():
            return []
        same_code = _skeleton(a) == _skeleton(b)
    except (ValueError, SyntaxError, RecursionError):  # LiftError is a ValueError
        return []
    return [(ca.name, ca.value, cb.value) for ca, cb in zip(a.constants, b.constants, strict=True)
            if ca.value != cb.value and (same_code or not ca.inline)]


def _skeleton(lifted: LiftedRule) -> str:
    """The rule's syntax tree with every constant set to 1.5: equal for two rules that differ only in constants."""
    return ast.dump(ast.parse(write_back(lifted, [1.5] * len(lifted.constants))))
