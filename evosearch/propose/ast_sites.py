"""Where the AST operators may edit a program, and how an edit is spliced back in as text.

The operators in :mod:`evosearch.propose.ast_ops` find nodes with :mod:`ast` but write the
child by replacing only the changed node's text at its position in the parent's source, so
comments and formatting elsewhere survive and a lineage diff shows just the change. Nothing
here imports or runs the program: it is analysis of its text and tree only.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from functools import cached_property

from evosearch import kinds
from evosearch.program import BANNED_NAMES, join_block, split_block
from evosearch.propose.base import ProposalError

CAPS = re.compile(r"^[A-Z][A-Z0-9_]*$")
BUILTIN_NAMES = frozenset(dir(builtins)) - BANNED_NAMES

BATCH_FIELDS = frozenset({"logp", "old_logp", "adv", "ret", "value", "old_value", "entropy", "progress"})

#: Modules a call's receiver may name, by what ``import`` bound it to.
MODULES = {"torch": "torch", "torch.nn.functional": "functional", "numpy": "numpy", "math": "math"}
#: Functions (by namespace) whose result is a tensor/array when an argument is one.
TENSOR_FUNCS = frozenset({
    "exp", "expm1", "log", "log1p", "abs", "tanh", "sigmoid", "relu", "softplus", "elu", "silu", "softsign",
    "sqrt", "square", "sign", "clamp", "clip", "clamp_min", "clamp_max", "where", "maximum", "minimum",
    "fmax", "fmin", "amax", "amin", "max", "min", "mean", "sum", "std", "var", "pow", "zeros_like", "ones_like",
})
ANY_RANK = -1  # a tensor of unknown shape
REDUCTIONS = frozenset({"mean", "sum", "std", "var", "max", "min", "amax", "amin"})
RESHAPES = frozenset({"squeeze", "unsqueeze", "reshape", "view", "flatten"})
#: Tensor methods whose result is again a tensor (``max``/``min`` only without a ``dim``).
TENSOR_METHODS = TENSOR_FUNCS - {"where", "zeros_like", "ones_like", "softplus", "elu", "silu", "softsign"} | {
    "detach", "neg", "reciprocal", "float", "double", "squeeze", "unsqueeze", "reshape", "view", "flatten",
}


@dataclass(frozen=True)
class Edit:
    """Replace ``source[start:end]`` (character offsets into the whole source) with ``text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Gap:
    """The text between a binary operator's operands: the operator token and any grouping parentheses."""

    op_start: int
    op_end: int
    left_end: int  # just after the left operand's closing parentheses
    right_start: int  # at the right operand's opening parentheses


@dataclass(frozen=True)
class Term:
    """One term of a +/- chain; ``holder`` is the BinOp whose right operand it is (None for the first)."""

    node: ast.expr
    sign: str
    holder: ast.BinOp | None


@dataclass(frozen=True)
class Chain:
    """A maximal left-nested chain ``t0 +/- t1 +/- ...`` (a parenthesised right operand is one term)."""

    top: ast.BinOp
    terms: tuple[Term, ...]


class Parsed:
    """One program: its source, tree, EVOLVE-BLOCK span, and position helpers; raises ProposalError if unusable."""

    def __init__(self, source: str, kind: str = "rule") -> None:
        try:
            self.head, self.block, self.tail = split_block(source)
        except ValueError as err:
            raise ProposalError(str(err)) from None
        try:
            self.tree = ast.parse(source)
        except SyntaxError as err:
            raise ProposalError(f"the program does not parse: {err.msg} (line {err.lineno})") from None
        self.source, self.kind = source, kind
        self.block_start = len(self.head)
        self.block_end = self.block_start + len(self.block)
        self._lines = source.split("\n")  # ast counts lines by "\n" only
        self._line_starts = [0]
        for line in self._lines:
            self._line_starts.append(self._line_starts[-1] + len(line) + 1)
        self.parent = {child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)}
        self._scopes: dict[ast.FunctionDef, TensorScope] = {}

    # -- positions ---------------------------------------------------------------------------

    def offset(self, lineno: int, col: int) -> int:
        """Character offset of an ast position (``col`` counts UTF-8 bytes)."""
        line = self._lines[lineno - 1]
        chars = col if line.isascii() else len(line.encode()[:col].decode())
        return self._line_starts[lineno - 1] + chars

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.source[start:end]

    def line_span(self, node: ast.stmt) -> tuple[int, int]:
        """Whole lines of a statement (decorators included), with the final newline."""
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        end = min(self._line_starts[node.end_lineno], len(self.source))
        return self._line_starts[first - 1], end

    def line_start_above_comments(self, lineno: int) -> int:
        """Start of line ``lineno``, moved up over comment lines directly above it (inside the block)."""
        while lineno > 1 and self._lines[lineno - 2].strip().startswith("#"):
            if self._line_starts[lineno - 2] < self.block_start:
                break
            lineno -= 1
        return self._line_starts[lineno - 1]

    def in_block(self, node: ast.AST) -> bool:
        start, end = self.span(node)
        return self.block_start <= start and end <= self.block_end

    def gap(self, left: ast.expr, right: ast.expr) -> Gap:
        """Locate the operator token between two operands, skipping parentheses and comments."""
        a, b = self.span(left)[1], self.span(right)[0]
        marks: list[tuple[int, str]] = []
        i = a
        while i < b:
            ch = self.source[i]
            if ch == "#":
                newline = self.source.find("\n", i, b)
                i = b if newline < 0 else newline
                continue
            if not ch.isspace() and ch != "\\":
                marks.append((i, ch))
            i += 1
        ops = [i for i, ch in marks if ch not in "()"]
        if not ops:
            raise ProposalError("no operator token between the operands")
        op_start, op_end = ops[0], ops[-1] + 1
        closes = [i + 1 for i, ch in marks if ch == ")" and i < op_start]
        opens = [i for i, ch in marks if ch == "(" and i >= op_end]
        return Gap(op_start, op_end, closes[-1] if closes else a, opens[0] if opens else b)

    # -- applying edits ----------------------------------------------------------------------

    def apply(self, edits: list[Edit]) -> str:
        """The child source: ``edits`` spliced into the block (earlier-listed text first at equal offsets)."""
        block = self.block
        ordered = sorted(enumerate(edits), key=lambda pair: (pair[1].start, pair[0]), reverse=True)
        limit = self.block_end
        for _, edit in ordered:
            if not self.block_start <= edit.start <= edit.end <= limit:
                raise ProposalError("the edit falls outside the EVOLVE-BLOCK or overlaps another edit")
            start, end = edit.start - self.block_start, edit.end - self.block_start
            block = block[:start] + edit.text + block[end:]
            limit = edit.start
        return join_block(self.head, block, self.tail)

    # -- structure ---------------------------------------------------------------------------

    def block_nodes(self, kind: type | tuple[type, ...]) -> list:
        """Nodes of ``kind`` inside the block, in source order."""
        nodes = [n for n in ast.walk(self.tree) if isinstance(n, kind) and self.in_block(n)]
        return sorted(nodes, key=self.span)

    def top_functions(self) -> dict[str, ast.FunctionDef]:
        """Module-level functions defined inside the block, by name."""
        return {n.name: n for n in self.tree.body if isinstance(n, ast.FunctionDef) and self.in_block(n)}

    def function_of(self, node: ast.AST) -> ast.FunctionDef | None:
        """The function whose own body holds ``node`` (None at module level or inside a lambda)."""
        up = self.parent.get(node)
        while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            up = self.parent.get(up)
        return up if isinstance(up, ast.FunctionDef) else None

    def body_index(self, func: ast.FunctionDef, node: ast.AST) -> int:
        """Index of the statement of ``func.body`` that contains ``node``."""
        while self.parent.get(node) is not func:
            node = self.parent[node]
        return func.body.index(node)

    def in_index_position(self, node: ast.AST) -> bool:
        """Whether ``node`` feeds an index, a keyword argument or ``range``: places that need ints."""
        child, up = node, self.parent.get(node)
        while up is not None and not isinstance(up, ast.stmt):
            if isinstance(up, ast.Subscript) and child is up.slice or isinstance(up, ast.keyword):
                return True
            if isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id in ("range", "int"):
                return True
            child, up = up, self.parent.get(up)
        return False

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Names bound by imports, mapped to the module (or module attribute) they stand for."""
        out: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
        return out

    @cached_property
    def module_names(self) -> frozenset[str]:
        """Every name bound at module level (imports, constants, functions), plus builtins."""
        names = set(BUILTIN_NAMES)
        for stmt in self.tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(stmt.name)
                continue
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    names.add(n.id)
                elif isinstance(n, (ast.Import, ast.ImportFrom)):
                    names |= {a.asname or a.name.split(".")[0] for a in n.names}
        return frozenset(names)

    def namespace(self, receiver: ast.expr) -> str | None:
        """``torch``/``functional``/``numpy``/``math`` for a module receiver, ``method`` for a value, else None."""
        parts: list[str] = []
        while isinstance(receiver, ast.Attribute):
            parts.append(receiver.attr)
            receiver = receiver.value
        if not isinstance(receiver, ast.Name) or receiver.id not in self.aliases:
            return "method"
        return MODULES.get(".".join([self.aliases[receiver.id], *reversed(parts)]))

    def scope(self, func: ast.FunctionDef) -> TensorScope:
        if func not in self._scopes:
            self._scopes[func] = TensorScope(self, func)
        return self._scopes[func]

    def rank(self, node: ast.expr) -> int | None:
        """Conservatively, the rank of the tensor (or array) ``node`` holds in its function; None if not surely one."""
        func = self.function_of(node)
        return None if func is None else self.scope(func).rank(node)

    def is_tensor(self, node: ast.expr) -> bool:
        return self.rank(node) is not None


class TensorScope:
    """Which expressions of one function surely hold tensors, and of what rank, from the contract and assignments.

    Conservative by design: a clamp or a crossover term goes only where a tensor surely is, so a
    child fails the smoke test for what it computes, not for calling ``.clamp`` on a float.
    Ranks: 0 for a reduction (``x.mean()``, ``b.progress``), 1 for a per-sample field, ANY_RANK
    when unknown; None means "not surely a tensor".
    """

    def __init__(self, parsed: Parsed, func: ast.FunctionDef) -> None:
        self.parsed = parsed
        roles = kinds.get(parsed.kind).contract_args.get(func.name, ())
        params = [a.arg for a in func.args.posonlyargs + func.args.args]
        own = [n for n in ast.walk(func) if n is not func and parsed.function_of(n) is func]
        simple = [n for n in own if isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) for t in n.targets)]
        simple.sort(key=parsed.span)
        targets = {id(t) for a in simple for t in a.targets}
        # Names bound any other way (loops, unpacking, augmented assignment) are never trusted.
        poisoned = {n.id for n in own if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
                    and id(n) not in targets}
        roles_of = dict(zip(params, roles, strict=False))  # extra parameters have no contract role
        self.batches = {p for p, r in roles_of.items() if r == "batch"} - poisoned
        self.ranks = {p: ANY_RANK for p, r in roles_of.items() if r == "tensor" and p not in poisoned}
        for assign in simple:
            names = {t.id for t in assign.targets}
            rank = None if names & poisoned else self.rank(assign.value)
            if rank is None:
                poisoned |= names
                self.batches -= names
                for name in names:
                    self.ranks.pop(name, None)
                continue
            for name in names:  # reassigned with another rank: still a tensor, of unknown rank
                self.ranks[name] = rank if self.ranks.get(name, rank) == rank else ANY_RANK

    def is_tensor(self, node: ast.expr) -> bool:
        return self.rank(node) is not None

    def rank(self, node: ast.expr) -> int | None:
        if isinstance(node, ast.Name):
            return self.ranks.get(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in self.batches and node.attr in BATCH_FIELDS:
                return 0 if node.attr == "progress" else 1
            return None
        if isinstance(node, ast.Subscript):
            return None if self.rank(node.value) is None else ANY_RANK
        if isinstance(node, ast.BinOp):
            return combine(self.rank(node.left), self.rank(node.right))
        if isinstance(node, ast.UnaryOp):
            return self.rank(node.operand) if isinstance(node.op, (ast.USub, ast.UAdd)) else None
        if isinstance(node, ast.IfExp):
            body, orelse = self.rank(node.body), self.rank(node.orelse)
            return None if body is None or orelse is None else body if body == orelse else ANY_RANK
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return self._call_rank(node, node.func)
        return None

    def _call_rank(self, call: ast.Call, func: ast.Attribute) -> int | None:
        namespace, name = self.parsed.namespace(func.value), func.attr
        has_args = bool(call.args or call.keywords)
        if namespace == "method":
            base = self.rank(func.value)
            if base is None or name not in TENSOR_METHODS or name in ("max", "min") and has_args:
                return None
            if name in REDUCTIONS:
                return ANY_RANK if has_args else 0
            return ANY_RANK if name in RESHAPES else base
        if namespace not in ("torch", "functional", "numpy") or name not in TENSOR_FUNCS:
            return None
        ranks = [self.rank(a) for a in call.args]
        if name in ("max", "min"):  # torch.max(x, dim) is a (values, indices) pair
            if call.keywords or not 1 <= len(ranks) <= 2 or None in ranks:
                return None
            return 0 if len(ranks) == 1 else combine(*ranks)
        if name in REDUCTIONS and ranks and ranks[0] is not None:
            return 0 if len(ranks) == 1 and not call.keywords else ANY_RANK
        return combine(*ranks)


def combine(*ranks: int | None) -> int | None:
    """Rank of an elementwise result: the largest operand rank, ANY_RANK if one is unknown, None if no tensor."""
    known = [r for r in ranks if r is not None]
    if not known:
        return None
    return ANY_RANK if ANY_RANK in known else max(known)


# -- names -----------------------------------------------------------------------------------


def free_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads but does not bind itself (over-approximating what it binds)."""
    loaded, bound = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not node:
            bound.add(n.name)
    return loaded - bound


def defined_before(func: ast.FunctionDef, index: int) -> set[str]:
    """Parameters of ``func`` and the names its first ``index`` body statements bind."""
    args = func.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for stmt in func.body[:index]:
        names |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        names |= {n.name for n in ast.walk(stmt) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return names


# -- sites -----------------------------------------------------------------------------------


def is_addsub(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))


def chains(parsed: Parsed) -> list[Chain]:
    """Every maximal +/- chain in the block, terms left to right."""
    out = []
    for top in parsed.block_nodes(ast.BinOp):
        up = parsed.parent.get(top)
        if not is_addsub(top) or (is_addsub(up) and up.left is top):
            continue
        terms, node = [], top
        while is_addsub(node):
            terms.append(Term(node.right, "+" if isinstance(node.op, ast.Add) else "-", node))
            node = node.left
        terms.append(Term(node, "+", None))
        out.append(Chain(top, tuple(reversed(terms))))
    return out


def caps_constant(parsed: Parsed, node: ast.Constant) -> str | None:
    """The name, when ``node`` is the value of a module-level ``ALL_CAPS = <number>`` assignment."""
    up = parsed.parent.get(node)
    if isinstance(up, ast.UnaryOp) and isinstance(up.op, (ast.USub, ast.UAdd)):
        up = parsed.parent.get(up)
    if isinstance(up, ast.Assign) and up in parsed.tree.body and len(up.targets) == 1:
        target = up.targets[0]
        if isinstance(target, ast.Name) and CAPS.match(target.id):
            return target.id
    return None


def is_integral_exponent(parsed: Parsed, node: ast.Constant) -> bool:
    """``x ** 2``: scaling the 2 would turn a square of a negative number into NaN."""
    up = parsed.parent.get(node)
    return (isinstance(up, ast.BinOp) and isinstance(up.op, ast.Pow) and up.right is node
            and float(node.value).is_integer())


def is_arithmetic_int(parsed: Parsed, node: ast.Constant) -> bool:
    """An int literal that may become a float: an operand of arithmetic, not an exponent or index."""
    up, child = parsed.parent.get(node), node
    if isinstance(up, ast.UnaryOp):
        up, child = parsed.parent.get(up), up
    if not isinstance(up, ast.BinOp) or (isinstance(up.op, ast.Pow) and up.right is child):
        return False
    return not parsed.in_index_position(node)


def literal_constants(parsed: Parsed) -> dict[str, ast.Assign]:
    """Module-level ``NAME = <literal expression>`` assignments inside the block, by name."""
    out = {}
    for stmt in parsed.tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and parsed.in_block(stmt) and not free_names(stmt.value)
                and not any(isinstance(n, ast.Call) for n in ast.walk(stmt.value))
                and "\n" not in parsed.text(stmt)):
            out[stmt.targets[0].id] = stmt
    return out


def operand_text(parsed: Parsed, node: ast.expr) -> str:
    """``node``'s text, parenthesised unless it binds at least as tightly as ``*`` (so ``k * text`` is safe)."""
    text = parsed.text(node)
    if "\n" in text:
        text = ast.unparse(node)
    tight = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant, ast.List, ast.Tuple)
    if isinstance(node, tight) or isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return text
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.Pow, ast.MatMult)):
        return text
    return f"({text})"


def short(text: str, width: int = 60) -> str:
    """One line of at most ``width`` characters, for notes."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# -- swaps and clamps ------------------------------------------------------------------------

BINARY_SWAPS = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*"}
BINARY_TOKENS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
COMPARE_SWAPS = {ast.Lt: ("<", ">"), ast.Gt: (">", "<"), ast.LtE: ("<=", ">="), ast.GtE: (">=", "<="),
                 ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
#: Families of functions that may stand in for one another (same arguments, similar meaning).
FUNCTION_GROUPS = (
    ("max", "min"), ("maximum", "minimum"), ("amax", "amin"), ("fmax", "fmin"), ("clamp_min", "clamp_max"),
    ("tanh", "sigmoid", "softsign"), ("relu", "abs", "softplus", "elu", "silu"), ("exp", "expm1"),
    ("log", "log1p"),
)
_TORCH = frozenset({"max", "min", "maximum", "minimum", "amax", "amin", "fmax", "fmin", "clamp_min", "clamp_max",
                    "tanh", "sigmoid", "relu", "abs", "exp", "expm1", "log", "log1p"})
#: Which members of the families each namespace has (``method``: tensor methods).
AVAILABLE = {
    "torch": _TORCH,
    "method": _TORCH,
    "functional": frozenset({"tanh", "sigmoid", "softsign", "relu", "softplus", "elu", "silu"}),
    "numpy": _TORCH - {"clamp_min", "clamp_max", "sigmoid", "relu"},
    "math": frozenset({"tanh", "exp", "expm1", "log", "log1p"}),
    "builtins": frozenset({"max", "min"}),
}


@dataclass(frozen=True)
class Swap:
    """A token that may be replaced by one of ``choices``; ``prefix`` only decorates the note."""

    start: int
    end: int
    old: str
    choices: tuple[str, ...]
    line: int
    prefix: str = ""


def alternatives(namespace: str | None, name: str) -> tuple[str, ...]:
    available = AVAILABLE.get(namespace or "", frozenset())
    for group in FUNCTION_GROUPS:
        if name in group and name in available:
            return tuple(n for n in group if n != name and n in available)
    return ()


def operator_swaps(parsed: Parsed) -> list[Swap]:
    """Arithmetic (+/-, * and /), comparison and function-family swaps in the block."""
    out = []
    for node in parsed.block_nodes((ast.BinOp, ast.Compare, ast.Call)):
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY_SWAPS and not parsed.in_index_position(node):
            gap = parsed.gap(node.left, node.right)
            if parsed.source[gap.op_start:gap.op_end] == BINARY_TOKENS[type(node.op)]:
                new = BINARY_SWAPS[type(node.op)]
                out.append(Swap(gap.op_start, gap.op_end, BINARY_TOKENS[type(node.op)], (new,), node.lineno))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                if type(op) in COMPARE_SWAPS:
                    gap = parsed.gap(left, right)
                    old, new = COMPARE_SWAPS[type(op)]
                    if parsed.source[gap.op_start:gap.op_end] == old:
                        out.append(Swap(gap.op_start, gap.op_end, old, (new,), node.lineno))
        elif isinstance(node, ast.Call):
            out.extend(_call_swap(parsed, node))
    return out


def _call_swap(parsed: Parsed, call: ast.Call) -> list[Swap]:
    func = call.func
    if isinstance(func, ast.Attribute):
        namespace = parsed.namespace(func.value)
        end = parsed.span(func)[1]
        prefix = "." if namespace == "method" else short(parsed.text(func.value), 30) + "."
        choices = alternatives(namespace, func.attr)
        return [Swap(end - len(func.attr), end, func.attr, choices, call.lineno, prefix)] if choices else []
    if isinstance(func, ast.Name) and func.id not in parsed.module_names - BUILTIN_NAMES:
        choices = alternatives("builtins", func.id)
        return [Swap(*parsed.span(func), func.id, choices, call.lineno)] if choices else []
    return []


ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript)
CLAMPS = ("clamp", "clip")
SHAPE_ONLY = ("zeros_like", "ones_like", "empty_like")  # calls that read only their argument's shape


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
        return node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
    return None


def _is_called(parsed: Parsed, attribute: ast.Attribute) -> bool:
    """Whether ``x.attr`` is a method call (``x.mean()``) rather than a property (``x.shape``)."""
    up = parsed.parent.get(attribute)
    return isinstance(up, ast.Call) and up.func is attribute


def clamp_sites(parsed: Parsed) -> list[ast.expr]:
    """Tensor-valued expressions in function bodies that are not already clamped."""
    out = []
    for node in parsed.block_nodes(ast.expr):
        up = parsed.parent.get(node)
        if (isinstance(node, ast.Constant) or not isinstance(getattr(node, "ctx", ast.Load()), ast.Load)
                or isinstance(up, ast.Call) and (up.func is node or _call_name(up) in SHAPE_ONLY)
                or isinstance(up, ast.Subscript) and up.slice is node
                or isinstance(up, ast.Attribute) and (up.attr in CLAMPS or not _is_called(parsed, up))
                or _call_name(node) in CLAMPS):
            continue
        if parsed.is_tensor(node):
            out.append(node)
    return out
