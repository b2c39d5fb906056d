"""A program: source plus kind, its EVOLVE-BLOCK, and the static check.

The static check exists to give a proposer (often an LLM) a readable reason for rejecting a
program before any process is started. It is not a security boundary; the sandbox is.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"

ALLOWED_IMPORTS = frozenset({"torch", "torch.nn", "torch.nn.functional", "math", "numpy", "functools"})
BANNED_NAMES = frozenset({
    "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars", "getattr",
    "setattr", "delattr", "input", "breakpoint", "memoryview", "exit", "quit", "help",
})
#: Attributes that reach the OS or files through an allowed module (``torch.os.system``,
#: ``numpy.ctypeslib``, ``torch.save``): the sandbox stops them anyway; this says why, readably.
BANNED_ATTRIBUTES = frozenset({
    "os", "sys", "subprocess", "ctypes", "ctypeslib", "multiprocessing", "importlib", "builtins",
    "system", "popen", "save", "load", "from_file", "hub",
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


def static_check(source: str, kind: str = "rule") -> list[StaticIssue]:
    """Return the reasons to reject ``source``; an empty list means it may be run."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        return [StaticIssue(f"source is {len(source.encode())} bytes, over the {MAX_SOURCE_BYTES} limit")]
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [StaticIssue(f"syntax error: {err.msg}", err.lineno)]
    issues: list[StaticIssue] = []
    modules = _module_names(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        for target in _assigned_attributes(node):
            root = _root_name(target)
            if root in modules:
                issues.append(StaticIssue(f"changing {ast.unparse(target)!r} alters the module {root!r} for the "
                                          "code that trains and scores the program: not allowed", line))
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_IMPORTS:
                    issues.append(StaticIssue(f"import of {alias.name!r} is not allowed "
                                              f"(allowed: {', '.join(sorted(ALLOWED_IMPORTS))})", line))
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module not in ALLOWED_IMPORTS:
                issues.append(StaticIssue(f"import from {node.module!r} is not allowed", line))
            for alias in node.names:  # `from torch import sys` reaches what `torch.sys` would
                if alias.name == "*" or alias.name.startswith("_") or alias.name in BANNED_ATTRIBUTES | BANNED_NAMES:
                    issues.append(StaticIssue(f"importing {alias.name!r} from {node.module!r} is not allowed", line))
        elif isinstance(node, ast.Name) and node.id in BANNED_NAMES:
            issues.append(StaticIssue(f"use of {node.id!r} is not allowed", line))
        elif isinstance(node, ast.Name) and node.id.startswith("__") and node.id != "__name__":
            issues.append(StaticIssue(f"dunder name {node.id!r} is not allowed", line))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            issues.append(StaticIssue(f"private or dunder attribute {node.attr!r} is not allowed", line))
        elif isinstance(node, ast.Attribute) and node.attr in BANNED_ATTRIBUTES:
            issues.append(StaticIssue(f"attribute {node.attr!r} reaches the system or files: not allowed", line))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            issues.append(StaticIssue("global/nonlocal statements are not allowed", line))
    from evosearch import kinds  # the kinds build on this module: imported when first needed

    return issues + kinds.get(kind).entry_issues(tree)
