"""A program: source plus kind, its EVOLVE-BLOCK, and the static check.

The static check gives a proposer (often an LLM) a readable reason for rejecting a program
before any process is started, and it is the first of the layers that keep a program to what
it claims to be: array math on the data it is given. Imports come from the kind's list, every
attribute from :mod:`evosearch.allowlist`, and module level only defines things. It cannot
prove everything (Python is too dynamic), so what must hold is held by the processes: a rule
runs apart from the code that trains it, a policy apart from the referee (docs/security.md).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

from evosearch import allowlist

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"

ALLOWED_IMPORTS = frozenset({"torch", "torch.nn", "torch.nn.functional", "math", "numpy", "functools"})
BANNED_NAMES = frozenset({
    "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars", "getattr",
    "setattr", "delattr", "input", "breakpoint", "memoryview", "exit", "quit", "help",
})
MAX_SOURCE_BYTES = 64_000


@dataclass(frozen=True)
class Program:
    """Source of one candidate and the name of its kind (:mod:`evosearch.kinds`)."""

    source: str
    kind: str = "rule"
    name: str = "<program>"

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    @classmethod
    def from_file(cls, path: str | Path, kind: str = "rule") -> Program:
        path = Path(path)
        return cls(source=path.read_text(encoding="utf-8"), kind=kind, name=str(path))


@dataclass(frozen=True)
class StaticIssue:
    """Why a program was rejected, with the line it concerns."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def evolve_block(source: str) -> tuple[int, int] | None:
    """Line indices (0-based, exclusive of the markers) of the EVOLVE-BLOCK, if any."""
    lines = source.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == BLOCK_START]
    ends = [i for i, line in enumerate(lines) if line.strip() == BLOCK_END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        return None
    return starts[0] + 1, ends[0]


def split_block(source: str) -> tuple[str, str, str]:
    """``(head, block, tail)`` of ``source``: the evolvable text and what surrounds it, markers in head/tail.

    ``head + block + tail == source``. Proposers edit ``block`` only and join the parts back
    with :func:`join_block`, so the text outside the block is kept byte for byte.
    """
    span = evolve_block(source)
    if span is None:
        raise ValueError(f"source has no single {BLOCK_START} ... {BLOCK_END} pair")
    lines = source.splitlines(keepends=True)
    start, end = span
    return "".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])


def join_block(head: str, block: str, tail: str) -> str:
    """Put an edited block back between its markers (adding the newline the end marker needs)."""
    if block and not block.endswith("\n"):
        block += "\n"
    return head + block + tail


def outside_block_unchanged(parent: str, child: str) -> bool:
    """True when ``child`` differs from ``parent`` only inside the EVOLVE-BLOCK."""
    try:
        p_head, _, p_tail = split_block(parent)
        c_head, _, c_tail = split_block(child)
    except ValueError:
        return False
    return (p_head, p_tail) == (c_head, c_tail)


def _module_names(tree: ast.Module) -> set[str]:
    """Names an ``import`` binds to a module (``import torch.nn as nn``: ``nn``; ``import torch.nn``: ``torch``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def _assigned_attributes(node: ast.AST) -> list[ast.Attribute]:
    """Attribute targets that ``node`` assigns or deletes (``x.y = ...``, ``x.y += ...``, ``del x.y``)."""
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = list(node.targets)
    else:
        return []
    found = []
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        elif isinstance(target, ast.Starred):
            targets.append(target.value)
        elif isinstance(target, ast.Attribute):
            found.append(target)
    return found


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


#: What a module-level value may be built from: literals, names, arithmetic, containers, and calls
#: of the allowed modules' functions (``math.log(2)``, ``torch.tensor(...)``) or a few builtins.
_CONSTANT_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare,
                   ast.IfExp, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Call, ast.keyword, ast.Subscript,
                   ast.Slice, ast.Load, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
_CONSTANT_CALLS = frozenset({"float", "int", "bool", "str", "tuple", "list", "dict", "frozenset", "range", "abs",
                             "min", "max", "round", "pow", "sum", "len"})


def _module_level_issues(tree: ast.Module, modules: set[str]) -> list[StaticIssue]:
    """Module level holds imports, a docstring, constants and function definitions: nothing runs at import."""
    issues = []
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            continue
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) for t in targets):
                bad = next((n for n in ast.walk(node.value) if not isinstance(n, _CONSTANT_NODES)
                            or (isinstance(n, ast.Call) and not _constant_call(n.func, modules))), None)
                if bad is None:
                    continue
                issues.append(StaticIssue("a module-level value may only be a constant (numbers, strings, "
                                          "arithmetic, calls of torch/numpy/math functions), not "
                                          f"{ast.unparse(bad)[:60]!r}", node.lineno))
                continue
        issues.append(StaticIssue("module level may only hold imports, constants and function definitions "
                                  f"(found {type(node).__name__.lower()}): the code runs when called, not at "
                                  "import", node.lineno))
    return issues


def _constant_call(func: ast.expr, modules: set[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in _CONSTANT_CALLS
    return isinstance(func, ast.Attribute) and _root_name(func) in modules


def _import_issues(node: ast.Import | ast.ImportFrom, allowed: frozenset[str]) -> list[StaticIssue]:
    line, listed = node.lineno, ", ".join(sorted(allowed))
    if isinstance(node, ast.Import):
        return [StaticIssue(f"import of {a.name!r} is not allowed (allowed: {listed})", line)
                for a in node.names if a.name not in allowed]
    if node.level or node.module not in allowed:
        return [StaticIssue(f"import from {node.module!r} is not allowed (allowed: {listed})", line)]
    issues = []
    for alias in node.names:  # `from torch import sys` reaches what `torch.sys` would
        if alias.name == "*" or alias.name in BANNED_NAMES:
            why = "not allowed"
        else:
            why = allowlist.attribute_verdict(alias.name, allowed)
        if why:
            issues.append(StaticIssue(f"importing {alias.name!r} from {node.module!r}: {why}", line))
    return issues


def _node_issue(node: ast.AST, modules: set[str], allowed: frozenset[str]) -> str:
    """Why one node is not allowed, or ``""``."""
    if isinstance(node, ast.Name):
        if node.id in BANNED_NAMES:
            return f"use of {node.id!r} is not allowed"
        if node.id.startswith("__") and node.id != "__name__":
            return f"dunder name {node.id!r} is not allowed"
    elif isinstance(node, ast.Attribute):
        return allowlist.attribute_verdict(node.attr, allowed)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "__" in node.value:
        return "strings naming dunders (such as '__builtins__') are not allowed"
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        return "global/nonlocal statements are not allowed"
    elif isinstance(node, ast.ClassDef):
        return "class definitions are not allowed: a program is functions of tensors or arrays"
    elif isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await, ast.AsyncFunctionDef, ast.AsyncFor, ast.AsyncWith)):
        return "generators and coroutines are not allowed"
    for target in _assigned_attributes(node):
        if _root_name(target) in modules:
            return (f"changing {ast.unparse(target)!r} alters the module {_root_name(target)!r} for the code that "
                    "trains and scores the program: not allowed")
    return ""


def static_check(source: str, kind: str = "rule") -> list[StaticIssue]:
    """Return the reasons to reject ``source``; an empty list means it may be run."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        return [StaticIssue(f"source is {len(source.encode())} bytes, over the {MAX_SOURCE_BYTES} limit")]
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [StaticIssue(f"syntax error: {err.msg}", err.lineno)]
    from evosearch import kinds  # the kinds build on this module: imported when first needed

    program_kind = kinds.get(kind)
    allowed = program_kind.allowed_imports
    modules = _module_names(tree)
    issues: list[StaticIssue] = _module_level_issues(tree, modules)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            issues += _import_issues(node, allowed)
        elif why := _node_issue(node, modules, allowed):
            issues.append(StaticIssue(why, getattr(node, "lineno", None)))
    return issues + program_kind.entry_issues(tree)
