"""Program kinds: ``rule`` (an actor-critic loss) and ``policy`` (``act(obs)`` for one environment).

Each module of this package that defines ``KIND`` adds a kind; :func:`get` and :func:`detect`
are how the rest of evosearch finds one.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from functools import cache

from evosearch.kinds.base import ExportParts, Kind

DEFAULT = "rule"  # what a program that defines no entry point (or several) is taken for


@cache
def _registry() -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        kind = getattr(importlib.import_module(f"{__name__}.{module}"), "KIND", None)
        if isinstance(kind, Kind):
            kinds[kind.name] = kind
    return kinds


def names() -> tuple[str, ...]:
    """The known kinds' names, the default first."""
    return tuple(sorted(_registry(), key=lambda n: (n != DEFAULT, n)))


def get(name: str) -> Kind:
    """The kind called ``name``, or a ValueError listing the known ones."""
    try:
        return _registry()[name]
    except KeyError:
        raise ValueError(f"unknown program kind {name!r} (expected one of {', '.join(names())})") from None


def detect(source: str) -> Kind:
    """The kind whose entry point ``source`` defines; the default kind when none or several do."""
    try:
        defined = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        return get(DEFAULT)
    matches = [k for k in _registry().values() if k.entry_point in defined]
    return matches[0] if len(matches) == 1 else get(DEFAULT)


__all__ = ["DEFAULT", "ExportParts", "Kind", "detect", "get", "names"]
