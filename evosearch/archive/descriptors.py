"""Behaviour descriptors: where a program sits in the MAP-Elites grid, and how cells are indexed.

The grid keeps the best program per cell, so descriptors decide what "different" means to the
search. These are cheap functions of the source and the evaluation record; the config picks
which ones span the grid and how each is binned.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evosearch.program import split_block

if TYPE_CHECKING:
    from evosearch.evaluate import EvalResult


def code_size(source: str, result: EvalResult) -> float:
    """AST nodes in the EVOLVE-BLOCK (the whole program if it has none): how much the rule says."""
    try:
        _, block, _ = split_block(source)
    except ValueError:
        block = source
    try:
        return float(sum(1 for _ in ast.walk(ast.parse(block))))
    except SyntaxError:
        return float("nan")


def learning_speed(source: str, result: EvalResult) -> float:
    """Normalised area under the learning curve over the final normalised score, mean over tasks.

    Near 1: the rule reached its final level early; near 0: it learned at the very end. The
    curves come from the training job, so a candidate can move itself in this axis, not its score.
    """
    ratios = []
    for task in result.tasks.values():
        final = float(np.mean(task.normalized))
        if final > 0.05:
            ratios.append(min(max(task.auc / final, 0.0), 1.5))
        else:
            ratios.append(0.0)
    return float(np.mean(ratios)) if ratios else float("nan")


def seed_spread(source: str, result: EvalResult) -> float:
    """Interquartile range of the normalised per-seed scores, mean over tasks: how reliable the rule is."""
    spreads = [float(np.subtract(*np.percentile(t.normalized, [75, 25]))) for t in result.tasks.values()]
    return float(np.mean(spreads)) if spreads else float("nan")


def action_smoothness(source: str, result: EvalResult) -> float:
    """A policy's mean action change per step: the fraction of steps whose discrete action changes,
    or the mean absolute change of a continuous one over its range. Measured by the referee, so a
    policy cannot place itself on this axis except by how it acts."""
    return float(result.behaviour.get("action_smoothness", float("nan")))


DESCRIPTORS: dict[str, Callable[[str, EvalResult], float]] = {
    "code_size": code_size,
    "learning_speed": learning_speed,
    "seed_spread": seed_spread,
    "action_smoothness": action_smoothness,
}


@dataclass(frozen=True)
class Axis:
    name: str
    low: float
    high: float
    bins: int

    def bin(self, value: float) -> int:
        """The bin of ``value``; values outside the range go to the edge bins."""
        if not math.isfinite(value):
            return 0
        position = (value - self.low) / (self.high - self.low) * self.bins
        return min(self.bins - 1, max(0, int(math.floor(position))))


@dataclass(frozen=True)
class Grid:
    """A MAP-Elites grid over the configured axes, with cells numbered row-major."""

    axes: tuple[Axis, ...]

    @property
    def size(self) -> int:
        return math.prod(a.bins for a in self.axes)

    def describe(self, source: str, result: EvalResult) -> dict[str, float]:
        return {a.name: DESCRIPTORS[a.name](source, result) for a in self.axes}

    def coords(self, descriptors: dict[str, float]) -> list[int]:
        return [a.bin(descriptors[a.name]) for a in self.axes]

    def index(self, coords: list[int]) -> int:
        flat = 0
        for axis, c in zip(self.axes, coords, strict=True):
            flat = flat * axis.bins + c
        return flat


def grid_from_config(descriptors: Iterable[Any]) -> Grid:
    """The grid that a config's ``archive.descriptors`` describe, one axis per descriptor, in order.

    Takes the parsed config's :class:`~evosearch.config.DescriptorConfig` items or the dicts of
    a config stored as JSON (``{"name", "min", "max", "bins"}``), so a campaign and anything
    that reads its archive later place programs in the same cells.
    """
    axes = []
    for d in descriptors:
        if isinstance(d, Mapping):
            name, low, high, bins = d["name"], d["min"], d["max"], d["bins"]
        else:
            name, low, high, bins = d.name, d.min, d.max, d.bins
        axes.append(Axis(str(name), float(low), float(high), int(bins)))
    return Grid(tuple(axes))
