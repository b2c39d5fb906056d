"""Turn a GP loss tree into a program file a person can read (the rendering half of :mod:`gp`).

A tree is rendered through Python's own ``ast`` module: each primitive becomes an AST node
and ``ast.unparse`` places the parentheses, so the source is exactly as nested as the tree
and never over-parenthesised. Derived features (``ratio``, ``adv_norm``, ...) are bound to
local variables, only when the tree uses them, with the same spelling the baselines in
``programs/rules/`` use, so a GP tree equal to a baseline renders to a program with the same
behavioural fingerprint. A long return is split along its top-level sums into named terms.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence

from evosearch.program import BLOCK_END, BLOCK_START

#: Per-sample fields of the batch, rendered as ``b.<name>``.
BATCH_FIELDS = ("logp", "old_logp", "adv", "ret", "value", "old_value", "entropy")
#: 0-d fields of the batch.
BATCH_SCALARS = ("progress",)
#: Derived features, in the order they are bound, with the expression that defines each.
#: ``ratio`` reuses ``log_ratio`` when both are bound (same value, same floating-point result).
DERIVED = {
    "log_ratio": "b.logp - b.old_logp",
    "ratio": "torch.exp(b.logp - b.old_logp)",
    "adv_norm": "(b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)",
    "td": "b.ret - b.value",
}

#: Protection constants. They keep every primitive finite with finite gradients on any
#: finite input, so a random tree fails the smoke test for its behaviour, not for a NaN.
DIV_EPS = 1e-3
LOG_EPS = 1e-6
EXP_MAX = 10.0

#: Terminals through which the loss reaches the policy network, the value network.
POLICY_TERMINALS = frozenset({"logp", "ratio", "log_ratio", "entropy"})
VALUE_TERMINALS = frozenset({"value", "td"})
_PG_TERMINALS = frozenset({"logp", "ratio", "log_ratio"})
_LINE = 88  # a return longer than this is split into named terms

DOCSTRING = '''"""A loss found by evosearch's genetic programming (a typed DEAP expression tree).

The tree was generated and recombined at random and kept for its score; the code below is
its direct rendering, so every term and constant came out of the search, not from a person.
"""'''


class Node:
    """One tree node with its children: the nested form of DEAP's prefix list."""

    __slots__ = ("name", "value", "children")

    def __init__(self, name: str, value: object, children: list[Node]) -> None:
        self.name, self.value, self.children = name, value, children

    @property
    def is_const(self) -> bool:
        return not self.children and isinstance(self.value, float)

    def terminals(self) -> set[str]:
        """Names of the non-constant terminals in this subtree."""
        if not self.children:
            return set() if self.is_const else {self.name}
        return set().union(*(c.terminals() for c in self.children))


def nest(tree: Sequence) -> Node:
    """Rebuild the nesting of a DEAP ``PrimitiveTree`` (a prefix-ordered list of nodes)."""
    pos = 0

    def build() -> Node:
        nonlocal pos
        node = tree[pos]
        pos += 1
        children = [build() for _ in range(node.arity)]
        return Node(node.name, getattr(node, "value", None), children)

    root = build()
    if pos != len(tree):
        raise ValueError(f"tree has {len(tree) - pos} nodes after its root's subtree")
    return root


# ----------------------------------------------------------------------------- AST helpers


def _name(ident: str) -> ast.expr:
    return ast.Name(id=ident, ctx=ast.Load())


def _attr(obj: ast.expr, attr: str) -> ast.expr:
    return ast.Attribute(value=obj, attr=attr, ctx=ast.Load())


def _torch(fn: str, *args: ast.expr, **kwargs: ast.expr) -> ast.expr:
    keywords = [ast.keyword(arg=k, value=v) for k, v in kwargs.items()]
    return ast.Call(func=_attr(_name("torch"), fn), args=list(args), keywords=keywords)


def _method(obj: ast.expr, method: str) -> ast.expr:
    return ast.Call(func=_attr(obj, method), args=[], keywords=[])


def _const(value: float) -> ast.expr:
    return ast.Constant(value=float(value))


def _bin(left: ast.expr, op: ast.operator, right: ast.expr) -> ast.expr:
    """``left op right``, written ``x - 1.0`` rather than ``x + -1.0`` (the same number exactly)."""
    if isinstance(right, ast.Constant) and isinstance(right.value, float) and right.value < 0:
        if isinstance(op, ast.Add):
            return ast.BinOp(left=left, op=ast.Sub(), right=_const(-right.value))
        if isinstance(op, ast.Sub):
            return ast.BinOp(left=left, op=ast.Add(), right=_const(-right.value))
    return ast.BinOp(left=left, op=op, right=right)


def _neg(x: ast.expr) -> ast.expr:
    if isinstance(x, ast.Constant):
        return _const(-x.value)
    return ast.UnaryOp(op=ast.USub(), operand=x)


def _bounded_above(node: Node) -> bool:
    """Whether a subtree is at most ``EXP_MAX`` by construction, so ``exp`` needs no clamp."""
    if node.name in ("tanh", "sigmoid"):
        return True
    if node.name == "clamp" and node.children[1].is_const:
        return abs(node.children[1].value) <= EXP_MAX
    if node.name == "clamp1" and node.children[1].is_const:
        return 1.0 + abs(node.children[1].value) <= EXP_MAX
    return False


def _exp(node: Node, x: ast.expr) -> ast.expr:
    if _bounded_above(node.children[0]):
        return _torch("exp", x)
    return _torch("exp", _torch("clamp", x, max=_const(EXP_MAX)))


def _clamp(x: ast.expr, c: ast.expr, around_one: bool) -> ast.expr:
    """``clamp(x, -|c|, |c|)``, or ``clamp(x, 1 - |c|, 1 + |c|)`` written as PPO-clip writes it."""
    if not isinstance(c, ast.Constant):  # the width is a float-typed argument: always a constant
        raise ValueError("clamp width must be a constant")
    width = _const(abs(c.value))
    if around_one:
        one = ast.Constant(value=1)
        return _torch("clamp", x, ast.BinOp(left=one, op=ast.Sub(), right=width),
                      ast.BinOp(left=one, op=ast.Add(), right=width))
    return _torch("clamp", x, _neg(width), width)


#: How each primitive is written. ``node`` is the tree node, ``a`` its rendered arguments.
RULES: dict[str, Callable[[Node, list[ast.expr]], ast.expr]] = {
    # per-sample tensors
    "add": lambda n, a: _bin(a[0], ast.Add(), a[1]),
    "sub": lambda n, a: _bin(a[0], ast.Sub(), a[1]),
    "mul": lambda n, a: _bin(a[0], ast.Mult(), a[1]),
    "div": lambda n, a: _bin(a[0], ast.Div(), _bin(_method(a[1], "abs"), ast.Add(), _const(DIV_EPS))),
    "neg": lambda n, a: _neg(a[0]),
    "abs": lambda n, a: _method(a[0], "abs"),
    "square": lambda n, a: _bin(a[0], ast.Pow(), ast.Constant(value=2)),
    "tanh": lambda n, a: _torch("tanh", a[0]),
    "relu": lambda n, a: _torch("relu", a[0]),
    "sigmoid": lambda n, a: _torch("sigmoid", a[0]),
    "exp": _exp,
    "log": lambda n, a: _torch("log", _bin(_method(a[0], "abs"), ast.Add(), _const(LOG_EPS))),
    "minimum": lambda n, a: _torch("minimum", a[0], a[1]),
    "maximum": lambda n, a: _torch("maximum", a[0], a[1]),
    "clamp": lambda n, a: _clamp(a[0], a[1], around_one=False),
    "clamp1": lambda n, a: _clamp(a[0], a[1], around_one=True),
    "scale": lambda n, a: _bin(a[1], ast.Mult(), a[0]),
    "add_s": lambda n, a: _bin(a[0], ast.Add(), a[1]),
    "mul_s": lambda n, a: _bin(a[0], ast.Mult(), a[1]),
    "if_pos": lambda n, a: _torch(
        "where", ast.Compare(left=_attr(_name("b"), "adv"), ops=[ast.GtE()], comparators=[ast.Constant(value=0)]),
        a[0], a[1]),
    # 0-d scalars
    "mean": lambda n, a: _method(a[0], "mean"),
    "sadd": lambda n, a: _bin(a[0], ast.Add(), a[1]),
    "ssub": lambda n, a: _bin(a[0], ast.Sub(), a[1]),
    "smul": lambda n, a: _bin(a[0], ast.Mult(), a[1]),
    "sneg": lambda n, a: _neg(a[0]),
    "sscale": lambda n, a: _bin(a[1], ast.Mult(), a[0]),
    "sconst": lambda n, a: a[0],
}


def expression(node: Node) -> ast.expr:
    """The AST of one subtree; terminals become ``b.<field>`` or a local's name."""
    if not node.children:
        if node.is_const:
            return _const(node.value)
        if node.name in BATCH_FIELDS or node.name in BATCH_SCALARS:
            return _attr(_name("b"), node.name)
        if node.name in DERIVED:
            return _name(node.name)
        raise ValueError(f"unknown terminal {node.name!r}")
    if node.name not in RULES:
        raise ValueError(f"no rendering for primitive {node.name!r}")
    return RULES[node.name](node, [expression(c) for c in node.children])


def _used(node: Node) -> set[str]:
    used = node.terminals()
    if _has(node, "if_pos"):
        used.add("adv")
    return used


def _has(node: Node, name: str) -> bool:
    return node.name == name or any(_has(c, name) for c in node.children)


def _bindings(used: set[str]) -> list[str]:
    lines = []
    for feature, definition in DERIVED.items():
        if feature not in used:
            continue
        if feature == "ratio" and "log_ratio" in used:
            definition = "torch.exp(log_ratio)"
        lines.append(f"{feature} = {definition}")
    return lines


def _spine(root: Node) -> list[tuple[str, Node]]:
    """The terms of the root's left-nested sum, with the sign each is added with (first is '+')."""
    terms: list[tuple[str, Node]] = []
    node = root
    while node.name in ("sadd", "ssub"):
        terms.append(("+" if node.name == "sadd" else "-", node.children[1]))
        node = node.children[0]
    terms.append(("+", node))
    return terms[::-1]


def _term_name(node: Node, taken: set[str]) -> str:
    used = node.terminals()
    groups = [bool(used & _PG_TERMINALS), "entropy" in used, bool(used & VALUE_TERMINALS)]
    base = "term"
    if sum(groups) == 1:
        base = ("policy_loss", "entropy_term", "value_loss")[groups.index(True)]
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def body_lines(root: Node) -> list[str]:
    """Statements of ``loss(b)``: bindings of used features, then the return."""
    lines = _bindings(_used(root))
    whole = ast.unparse(expression(root))
    terms = _spine(root)
    if len(f"return {whole}") <= _LINE or len(terms) < 2:
        return [*lines, f"return {whole}"]
    # Left-nested sums split into locals evaluate in the same order: (t1 - t2) + t3.
    taken = set(DERIVED) | {"b", "torch", "loss"}
    names = []
    for _, term in terms:
        name = _term_name(term, taken)
        names.append(name)
        lines.append(f"{name} = {ast.unparse(expression(term))}")
    ret = names[0] + "".join(f" {sign} {name}" for (sign, _), name in zip(terms[1:], names[1:], strict=True))
    return [*lines, f"return {ret}"]


def render_nested(root: Node) -> str:
    """The whole program file for a nested tree."""
    body = "\n".join(f"    {line}" for line in body_lines(root))
    return f"{DOCSTRING}\n\nimport torch\n\n\n{BLOCK_START}\ndef loss(b):\n{body}\n{BLOCK_END}\n"
